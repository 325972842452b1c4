/*-------------------------------------------------------------------------
 *
 * program.h
 *		A strategy prepared for a point, and its interpreter (program.c).
 *
 * Floor: the strategies, as program.c (see the map in coupon-stress.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_STRESS_PROGRAM_H
#define COUPON_STRESS_PROGRAM_H

#include "libpq-fe.h"

#include "common.h"
#include "histogram.h"

#define CS_MAX_PROGRAM		(CS_MAX_STEPS + 3)	/* with BEGIN, fault, COMMIT */
#define CS_SQL_LEN			512

/*
 * A strategy prepared for one point: its steps with the fault point and,
 * where the faults need one, an explicit transaction added, the SQL with
 * the schema filled in, and what is known of each step before it runs.
 */
typedef struct Program
{
	const StrategyDef *strategy;
	int			nsteps;
	const StepDef *steps[CS_MAX_PROGRAM];
	bool		in_tx[CS_MAX_PROGRAM];	/* sent inside BEGIN ... COMMIT */
	bool		commits_grant[CS_MAX_PROGRAM];
	bool		commits_confirm[CS_MAX_PROGRAM];
	char		sql[CS_MAX_PROGRAM + 1][CS_SQL_LEN];	/* last: ROLLBACK */
	int			rollback;		/* index of the ROLLBACK statement */
	char		warm_up[CS_SQL_LEN];	/* run once a connection opens, or "" */
	int64_t		race_window_us;
	int64_t		gc_pause_us;	/* --pause-ms, for the calls chosen */
} Program;

typedef enum Phase
{
	PH_IDLE,					/* between calls */
	PH_BUSY,					/* a statement or Redis script is in flight */
	PH_SLEEP,					/* pause or retry backoff */
	PH_RECONNECT,				/* waiting to reconnect */
	PH_DONE
} Phase;

/* Where a call is: running its steps, or ending (rollback, cleanups). */
typedef enum Stage
{
	STAGE_RUN,
	STAGE_ROLLBACK,
	STAGE_CLEANUP
} Stage;

struct redisContext;

/* One simulated user (burst) or client (throughput): its connections. */
typedef struct Client
{
	PGconn	   *conn;
	struct redisContext *redis[CS_LOCK_INSTANCES];
	int			id;				/* index within its process */
	Phase		phase;
	Stage		stage;
	int			pc;				/* the step in flight or next */
	const StepDef *inflight;	/* the statement or script in flight */
	uint32_t	redis_waiting;	/* instances whose answer is expected */
	int			lock_acquired;	/* instances that granted the lock */
	bool		lock_busy;		/* this try found the lock taken */
	int64_t		token;			/* fencing token: the largest of theirs */
	bool		gc_pause;		/* this call stops --pause-ms at its pause */
	bool		drawn;			/* this call runs the drawn steps */
	bool		granted;		/* the grant committed: the call is granted,
								 * whatever the steps after it do */
	int64_t		lock_start_ns;
	Outcome		ending;			/* what the call concludes, once known */
	uint32_t	armed;			/* steps whose cleanup is due, bit = pc */
	int			tries;			/* tries of this call (conflicts) so far */
	int			busy_tries;		/* tries that found the lock taken */
	int64_t		seq;			/* calls made, for unique customer names */
	int64_t		call_start_ns;
	int64_t		wake_ns;
	int			reconnect_ms;
	int64_t		remaining;		/* read by REPLY_STOCK */
	int64_t		version;
	int64_t		grant_id;		/* returned by the grant, for the ack log */
	PGresult   *res;			/* first result of the statement in flight */
	unsigned short rng[3];
	Stats	   *stats;
	char		customer[64];
	char		lock_value[40];
	char		argbuf[CS_MAX_ARGS][24];
} Client;

/* What the interpreter asks the driver to do next. */
typedef enum ActionKind
{
	ACT_SEND,					/* send .step (SQL: prepared as .prepared) */
	ACT_SLEEP,					/* sleep .sleep_us, then strategy_wake() */
	ACT_FAULT,					/* the fault point: strike, then
								 * strategy_next() */
	ACT_WAIT,					/* more Redis answers to come */
	ACT_FINISH					/* the call is over: .outcome */
} ActionKind;

typedef struct Action
{
	ActionKind	kind;
	const StepDef *step;		/* ACT_SEND */
	int			prepared;		/* ACT_SEND of SQL: the statement's index */
	Outcome		outcome;		/* ACT_FINISH */
	int64_t		sleep_us;		/* ACT_SLEEP */
} Action;

/* Fixed context of a strategy during one point. */
typedef struct StrategyCtx
{
	const Program *prog;
	int64_t		lease_ms;
	int64_t		lock_wait_ms;
	int			max_tries;
	int			nlock;			/* lock instances connected per client */
	const char *pool;			/* value of the grant rows' pool column */
	int64_t		hold_us;		/* --hold */
	double		share;			/* --confirm: calls drawn for drawn steps */
} StrategyCtx;

extern bool program_build(Program *prog, const StrategyDef *s,
						  const Target *tgt, const Options *opt,
						  char *err, size_t errlen);
extern void strategy_args(const StrategyCtx *ctx, Client *c,
						  const StepDef *step, const char **values,
						  int *nvalues);
extern Action strategy_begin(const StrategyCtx *ctx, Client *c);
extern Action strategy_next(const StrategyCtx *ctx, Client *c);
extern Action strategy_result(const StrategyCtx *ctx, Client *c,
							  PGresult *res);
extern Action strategy_error(const StrategyCtx *ctx, Client *c,
							 const char *sqlstate, const char *message);
extern Action strategy_redis_reply(const StrategyCtx *ctx, Client *c,
								   int instance, bool ok, int64_t value,
								   const char *error);
extern Action strategy_wake(const StrategyCtx *ctx, Client *c);
extern Action strategy_abandon(const StrategyCtx *ctx, Client *c,
							   Outcome outcome);

#endif							/* COUPON_STRESS_PROGRAM_H */
