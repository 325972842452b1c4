/*-------------------------------------------------------------------------
 *
 * coupon-stress.h
 *		Declarations shared by the files of the coupon-stress client.
 *
 * coupon-stress replays the seed's story: many users race for a few
 * coupons, first with the read-check-write code that oversells, then with
 * each fix, in the database and in Redis, and prints correctness and cost
 * side by side.  It follows pgbench's model (src/bin/pgbench/pgbench.c in
 * postgres/postgres): worker threads own slices of connections and drive
 * them asynchronously, all connections are opened before a common barrier,
 * and per-thread statistics are merged at the end.  The files are:
 *
 *	coupon-stress.c	options, the run plan (strategies x client counts),
 *					forking the "application server" processes, the barrier
 *					across them, progress and the exit status
 *	strategy.c		the strategies as data, one table entry each (steps,
 *					stock, exactness), and the interpreter that decides what
 *					a client does after each answer
 *	driver.c		one process's share of a point: threads, connections,
 *					the asynchronous event loop over PostgreSQL and Redis,
 *					reconnects, the faults, the ack log
 *	redis.c			hiredis: connections, non-blocking commands, and the
 *					parent's setup and read-back of the Redis servers
 *	setup.c			the admin connection to PostgreSQL: schema reset, pools,
 *					reading the truth back after a point
 *	histogram.c		mergeable log-bucket latency histogram and statistics
 *	report.c		the result table, the JSON output and progress lines
 *
 * A "point" is one strategy at one client count.  For every point the
 * parent process resets the database (and Redis), forks --servers children
 * that share the clients, releases them together and, once they have
 * exited, merges their statistics (kept in a shared anonymous mapping) and
 * reads back the ledger and the stock.
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_STRESS_H
#define COUPON_STRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "libpq-fe.h"

#define CS_VERSION			"1.1"
#define CS_MAX_POINTS		64		/* entries of a -c list */
#define CS_MAX_STRATEGIES	16
#define CS_MAX_STEPS		12		/* steps of one strategy */
#define CS_MAX_PROGRAM		(CS_MAX_STEPS + 3)	/* with BEGIN, fault, COMMIT */
#define CS_MAX_ARGS			4		/* parameters of one step */
#define CS_MAX_REDIS		8		/* --redis addresses */
#define CS_LOCK_INSTANCES	3		/* Redlock's independent instances */
#define CS_ERRMSG_LEN		256
#define CS_SQL_LEN			512

/* The Redis keys of the redis and redlock strategies. */
#define CS_STOCK_KEY		"coupon_stress:stock"
#define CS_LOCK_KEY			"coupon_stress:lock"
#define CS_FENCE_KEY		"coupon_stress:fence"

#define CS_PRINTF(f, a)		__attribute__((format(printf, f, a)))

/*
 * Strategies are data (strategy.c, builtin_strategies[]): a strategy is a
 * list of steps, and a step is one statement, one Redis script or one
 * pause, with what its answer means.  The interpreter in strategy.c walks
 * the list; nothing else knows a strategy by name.
 */

/* What a step talks to, or does. */
typedef enum StepKind
{
	STEP_END = 0,				/* terminates a strategy's list */
	STEP_SQL,					/* a prepared statement on PostgreSQL */
	STEP_REDIS,					/* a Lua script on the first Redis instance */
	STEP_REDIS_ALL,				/* a Lua script on every lock instance at
								 * once (Redlock) */
	STEP_PAUSE,					/* --race-window plus --pause-ms */
	STEP_FAULT					/* where --kill-server and --restart-redis
								 * strike; inserted after the take */
} StepKind;

/* The values a step sends, in order: $1, $2, ... or ARGV[1], ... */
typedef enum Arg
{
	ARG_NONE = 0,
	ARG_POOL,					/* the pool column of the grant rows */
	ARG_CUSTOMER,				/* unique per call */
	ARG_QTY,					/* always 1 */
	ARG_READ_LESS_QTY,			/* the stock read by REPLY_STOCK, minus qty */
	ARG_VERSION,				/* the version read by REPLY_STOCK */
	ARG_LOCK_VALUE,				/* the call's random Redlock value */
	ARG_LEASE_MS,				/* --lease-ms */
	ARG_TOKEN,					/* the fencing token of the lock */
	ARG_TTL,					/* --hold, in microseconds */
	ARG_GRANT_ID				/* the id REPLY_GRANT returned */
} Arg;

/* What a step's answer means. */
typedef enum Reply
{
	REPLY_ANY = 0,				/* go on */
	REPLY_STOCK,				/* a row: remaining [, version]; remaining <
								 * qty is sold out, no row is .no_row */
	REPLY_ROW,					/* a row must come back, else .no_row */
	REPLY_GRANT,				/* a non-null id is the grant, NULL sold out */
	REPLY_TAKEN,				/* Redis: an integer >= 0 is taken, < 0 sold
								 * out */
	REPLY_QUORUM,				/* STEP_REDIS_ALL: a majority answered >= 1
								 * within the lease, else busy (retry) */
	REPLY_CONFIRM				/* true: the hold is confirmed; the error of
								 * a hold that expired or was returned
								 * (UC001, UC002) is "too late", no error */
} Reply;

/* What a call concludes. */
typedef enum Outcome
{
	OUT_NONE = 0,
	OUT_GRANTED,
	OUT_REFUSED,				/* sold out */
	OUT_FAILED,
	OUT_RETRY					/* conflict, stale token or busy lock: again */
} Outcome;

typedef struct StepDef StepDef;

struct StepDef
{
	StepKind	kind;
	const char *text;			/* SQL ("@extschema@" is the extension's
								 * schema) or a Lua script */
	const char *keys[2];		/* Redis: KEYS[1], KEYS[2] */
	Arg			args[CS_MAX_ARGS];
	Reply		reply;
	Outcome		no_row;			/* REPLY_STOCK, REPLY_ROW: when no row came
								 * back (OUT_NONE means OUT_REFUSED) */
	bool		takes;			/* the coupon is taken here and not yet
								 * committed: the faults strike after it */
	const StepDef *cleanup;		/* a Redis script run when the call ends
								 * after this step answered (not sold out)... */
	bool		cleanup_always; /* ...whatever the outcome (a lock's release),
								 * or only when the call failed (the
								 * compensation a shop writes) */
	bool		drawn;			/* run only by the calls drawn for it, a
								 * share of them (--confirm); the others
								 * skip it */
};

/* Where a strategy keeps its stock, which is read back after a point. */
typedef enum StockKind
{
	STOCK_NONE,					/* insert-only: no check at all */
	STOCK_COUNTER,				/* a row of a counter table */
	STOCK_POOL,					/* the extension's pool */
	STOCK_HOLDS,				/* the pool, taken by holds (--hold): read
								 * once every hold is confirmed or expired */
	STOCK_REDIS					/* a key in the first Redis instance */
} StockKind;

typedef struct StrategyDef
{
	const char *name;
	const char *description;	/* one line of --help */
	bool		exact;			/* claimed correct: inexact is exit status 1 */
	StockKind	stock;
	const char *counter;		/* STOCK_COUNTER: the table */
	bool		needs_extension;
	int			redis;			/* Redis instances used: 0, 1 or 3 */
	StepDef		steps[CS_MAX_STEPS];
} StrategyDef;

extern const StrategyDef builtin_strategies[];
extern const int n_builtin_strategies;

/* Command line options; filled once by the parser, then read only. */
typedef struct Options
{
	bool		strategies[CS_MAX_STRATEGIES];
	bool		strategies_given;	/* --strategy given */
	bool		throughput;		/* -T given */
	int			users;			/* burst: users, one call each */
	int64_t		coupons;		/* initial stock */
	bool		coupons_set;
	double		duration;		/* -T, seconds */
	int			clients[CS_MAX_POINTS];
	int			nclients;
	int			threads;		/* -j per process, 0 = number of CPUs */
	int			servers;		/* --servers processes */
	int64_t		race_window_us;
	int64_t		pause_ms;		/* --pause-ms: the "GC pause" */
	int64_t		pause_every;	/* --pause-every: which calls pause */
	int64_t		lease_ms;		/* --lease-ms: Redlock's lease */
	int64_t		lock_wait_ms;	/* --lock-wait-ms: give up on a busy lock */
	int			max_tries;
	int64_t		kill_server_at; /* --kill-server: at this take, 0 = off */
	int64_t		restart_redis_at;	/* --restart-redis: at this take */
	int64_t		hold_us;		/* --hold: the holds' TTL, 0 = claims */
	double		confirm;		/* --confirm: share of holds confirmed */
	double		progress;		/* -P seconds, 0 = off */
	bool		json;
	const char *ack_log;
	bool		reconnect;
	const char *dsn;
	const char *host;
	const char *port;
	const char *user;
	const char *dbname;
	int			nredis;			/* --redis addresses */
	char		redis_host[CS_MAX_REDIS][256];
	int			redis_port[CS_MAX_REDIS];
} Options;

/* What the setup found on the servers; read only during a point. */
typedef struct Target
{
	char	   *extschema;		/* quoted identifier, NULL without extension */
	char		extschema_name[64];	/* the same, as a name */
	char		server_version[64];
	char		ext_version[64];
	char		synchronous_commit[16];
	char		fsync[16];
	char		redis_version[CS_MAX_REDIS][32];
	char		redis_appendonly[CS_MAX_REDIS][16];
	char		redis_appendfsync[CS_MAX_REDIS][16];
} Target;

/* Latency histogram: exact below 64 us, then 64 linear buckets per octave. */
#define HIST_SUB_BITS		6
#define HIST_SUB			(1 << HIST_SUB_BITS)
#define HIST_OCTAVES		42
#define HIST_BUCKETS		(HIST_SUB + HIST_OCTAVES * HIST_SUB)

typedef struct Histogram
{
	int64_t		count;
	int64_t		max_us;
	int64_t		buckets[HIST_BUCKETS];
} Histogram;

/*
 * Statistics of one worker thread.  They live in memory shared with the
 * parent process, which reads the counters while the run goes on (progress
 * lines) and everything after the worker has exited.  The owning thread
 * is the only writer; counters read for progress are updated with relaxed
 * atomic stores.
 */
typedef struct Stats
{
	int64_t		calls;			/* calls finished: granted, refused, failed */
	int64_t		granted;		/* calls the client saw succeed */
	int64_t		refused;		/* sold out */
	int64_t		errors;			/* failed calls, and steps that failed
								 * after a grant */
	int64_t		in_doubt;		/* failed while a commit of a grant may have
								 * been in flight (broken connection) */
	int64_t		retries;		/* conflicts, stale tokens, busy locks */
	int64_t		confirms;		/* confirms the client saw succeed */
	int64_t		confirms_late;	/* refused: the hold expired, or was
								 * returned */
	int64_t		confirms_in_doubt;	/* in flight on a broken connection */
	int64_t		lat_sum_us;		/* over granted and refused calls */
	double		lat_sum2;		/* sum of squares, us^2 */
	int64_t		start_ns;		/* release time of this thread */
	int64_t		end_ns;			/* when its last client finished */
	int			aborted;		/* a connection broke without --reconnect */
	int			setup_failed;	/* a connection could not be opened */
	char		first_error[CS_ERRMSG_LEN];
	Histogram	hist;
} Stats;

/* The shared anonymous mapping for one point. */
typedef struct Shared
{
	volatile int abort;			/* stop everything now */
	int			nslots;
	Stats		slots[];		/* servers x threads */
} Shared;

/* One point: a strategy at a client count. */
typedef struct Point
{
	const StrategyDef *strategy;
	int			clients;		/* over all processes */
	int64_t		initial;		/* stock at start */
} Point;

/* One line of the report. */
typedef struct Row
{
	const StrategyDef *strategy;
	int			clients;
	int64_t		initial;
	int64_t		granted;
	int64_t		ledger_rows;
	bool		has_counter;
	int64_t		counter;
	int64_t		oversold;
	int64_t		lost_updates;	/* ledger rows the stock never counted */
	int64_t		leaked;			/* stock taken that no ledger row holds */
	bool		correct;
	double		claims_per_s;
	double		attempts_per_s;
	double		p50_ms;
	double		p95_ms;
	double		p99_ms;
	double		max_ms;
	int64_t		retries;
	int64_t		errors;
	/* holds (--hold); available is counter */
	bool		holds;
	int64_t		confirms;		/* seen by the clients */
	int64_t		confirms_late;
	int64_t		confirmed;		/* ledger: live rows without expiry */
	int64_t		expired;		/* ledger: holds returned (expired) */
	int64_t		held;			/* ledger: live holds left, 0 if settled */
} Row;

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

/* coupon-stress.c */
extern const char *progname;
extern int64_t now_ns(void);
extern void set_first_error(Stats *st, const char *fmt,...) CS_PRINTF(2, 3);

/* strategy.c */
extern const StrategyDef *strategy_by_name(const char *name);
extern const StrategyDef *strategy_for(const Options *opt, int s);
extern const char *strategy_pool(const StrategyDef *s);
extern bool strategy_in_pool(const StrategyDef *s);
extern bool strategy_has_lock(const StrategyDef *s);
extern int	strategies_redis(const Options *opt);
extern bool program_build(Program *prog, const StrategyDef *s,
						  const char *extschema, const Options *opt,
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

/* histogram.c */
extern void hist_add(Histogram *h, int64_t us);
extern void hist_merge(Histogram *into, const Histogram *from);
extern double hist_percentile_ms(const Histogram *h, double p);
extern void stats_merge(Stats *into, const Stats *from);
extern void stat_add(int64_t *counter, int64_t delta);
extern int64_t stat_get(const int64_t *counter);
extern void stat_add_double(double *sum, double delta);
extern double stat_get_double(const double *sum);

/* setup.c */
extern PGconn *admin_connect(const Options *opt, bool quiet_fail);
extern PGconn *client_connect(const Options *opt, char *err, size_t errlen);
extern bool setup_run(PGconn *conn, const Options *opt, Target *tgt);
extern bool setup_point(PGconn *conn, const Target *tgt, const Point *pt,
						int64_t *watermark);
extern bool read_back(PGconn *conn, const Options *opt, const Target *tgt,
					  const Point *pt, int64_t watermark, Row *row);
extern void try_checkpoint(PGconn *conn);

/* redis.c */
extern struct redisContext *redis_open(const Options *opt, int instance,
									   char *err, size_t errlen);
extern void redis_close(struct redisContext **ctx);
extern int	redis_fd(const struct redisContext *ctx);
extern bool redis_send(struct redisContext *ctx, const StepDef *step,
					   const char **values, int nvalues);
extern bool redis_send_command(struct redisContext *ctx, const char *command);
extern bool redis_wants_write(struct redisContext *ctx);
extern bool redis_flush(struct redisContext *ctx);
extern int	redis_read(struct redisContext *ctx, bool *ok, int64_t *value,
					   char *err, size_t errlen);
extern bool redis_setup_run(const Options *opt, Target *tgt, int ninstances);
extern bool redis_setup_point(const Options *opt, const Point *pt);
extern bool redis_read_stock(const Options *opt, int64_t *stock);

/* driver.c */
extern int	run_share(const Options *opt, const Point *pt,
					  const Program *prog, int server, int nclients, int nthreads, Stats *slots,
					  Shared *shared, int ready_fd, int go_fd, int ack_fd);

/* report.c */
extern void report_header(const Options *opt, const Target *tgt, int threads);
extern void report_row(const Row *row);
extern void report_footer(const Row *rows, int nrows, bool aborted);
extern void report_json(const Options *opt, const Target *tgt,
						const Row *rows, int nrows);
extern void report_progress(double elapsed_s, const Point *pt,
							int64_t done, int64_t lat_sum_us, double lat_sum2,
							int64_t errors, int64_t retries,
							double interval_s);

#endif							/* COUPON_STRESS_H */
