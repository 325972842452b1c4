/*-------------------------------------------------------------------------
 *
 * common.h
 *		The types and constants that every floor of coupon-stress reads.
 *
 * What a strategy is (its steps and where it keeps its stock), what the
 * command line asked for (Options), what the servers are (Target), a point
 * of the run and its row of the report: the words the files speak to each
 * other in.  A type that one file owns lives in that file's header
 * instead (Stats in histogram.h, Client and Program in program.h, ...).
 *
 * Floor: the bottom (see the map in coupon-stress.c).  It includes nothing
 * of the client's, and every file includes it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_STRESS_COMMON_H
#define COUPON_STRESS_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define CS_VERSION			"1.1"
#define CS_MAX_POINTS		64		/* entries of a -c list */
#define CS_MAX_STRATEGIES	16
#define CS_MAX_STEPS		12		/* steps of one strategy */
#define CS_MAX_ARGS			4		/* parameters of one step */
#define CS_MAX_REDIS		8		/* --redis addresses */
#define CS_MAX_NODES		64		/* nodes of a cluster behind a proxy */
#define CS_LOCK_INSTANCES	3		/* Redlock's independent instances */
#define CS_ERRMSG_LEN		256

/* The Redis keys of the redis and redlock strategies. */
#define CS_STOCK_KEY		"coupon_stress:stock"
#define CS_LOCK_KEY			"coupon_stress:lock"
#define CS_FENCE_KEY		"coupon_stress:fence"

/* The extension's pool that claim takes from. */
#define CS_CLAIM_POOL		"stress_claim"

#define CS_PRINTF(f, a)		__attribute__((format(printf, f, a)))

/* The name every message starts with. */
static const char progname[] = "coupon-stress";

static inline int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * Strategies are data (strategy.c, builtin_strategies[]): a strategy is a
 * list of steps, and a step is one statement, one Redis script or one
 * pause, with what its answer means.  The interpreter in program.c walks
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

/* Does s take from the extension's pool and write its ledger? */
static inline bool
strategy_in_pool(const StrategyDef *s)
{
	return s->stock == STOCK_POOL || s->stock == STOCK_HOLDS;
}

/* The pool column of the grant rows; the name of claim's pool. */
static inline const char *
strategy_pool(const StrategyDef *s)
{
	return strategy_in_pool(s) ? CS_CLAIM_POOL : s->name;
}

/* Does s take Redlock's lock? */
static inline bool
strategy_has_lock(const StrategyDef *s)
{
	return s->redis >= CS_LOCK_INSTANCES;
}

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
	int			spread;			/* --spread: nodes of claim's pool */
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
	const char *skipped[CS_MAX_STRATEGIES]; /* left out by default for want
											 * of --redis, in table order */
	int			nskipped;
} Options;

/* What the setup found on the servers; read only during a point. */
typedef struct Target
{
	char	   *extschema;		/* quoted identifier, NULL without extension */
	char		extschema_name[64];	/* the same, as a name */
	bool		proxy;			/* extschema is coupon_proxy's: a cluster */
	char		cluster[64];	/* the cluster's name */
	int			nnodes;			/* the cluster's nodes, in partition order */
	char	   *node_conninfo[CS_MAX_NODES];	/* malloc'd */
	char		node_user[64];	/* the user mapping's, or empty */
	char	   *node_password;	/* the user mapping's (malloc'd), or NULL */
	char		server_version[64];
	char		ext_version[64];
	char		synchronous_commit[16];
	char		fsync[16];
	int			nredis;			/* Redis instances the run uses */
	char		redis_version[CS_MAX_REDIS][32];
	char		redis_appendonly[CS_MAX_REDIS][16];
	char		redis_appendfsync[CS_MAX_REDIS][16];
} Target;

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

#endif							/* COUPON_STRESS_COMMON_H */
