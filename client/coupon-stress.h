/*-------------------------------------------------------------------------
 *
 * coupon-stress.h
 *		Declarations shared by the files of the coupon-stress client.
 *
 * coupon-stress replays the seed's story: many users race for a few
 * coupons, first with the read-check-write code that oversells, then with
 * each fix, and prints correctness and cost side by side.  It follows
 * pgbench's model (src/bin/pgbench/pgbench.c in postgres/postgres): worker
 * threads own slices of connections and drive them asynchronously, all
 * connections are opened before a common barrier, and per-thread
 * statistics are merged at the end.  The files are:
 *
 *	coupon-stress.c	options, the run plan (strategies x client counts),
 *					forking the "application server" processes, the barrier
 *					across them, progress and the exit status
 *	setup.c			the admin connection: schema reset, pool creation and
 *					reading the truth back from the database after a point
 *	driver.c		one process's share of a point: threads, connections,
 *					the asynchronous event loop, reconnects, the ack log
 *	strategy.c		the SQL of each strategy and the decision of what a
 *					client sends next after each result
 *	histogram.c		mergeable log-bucket latency histogram and statistics
 *	report.c		the result table, the JSON output and progress lines
 *
 * A "point" is one strategy at one client count.  For every point the
 * parent process resets the database, forks --servers children that share
 * the clients, releases them together and, once they have exited, merges
 * their statistics (kept in a shared anonymous mapping) and reads back the
 * ledger and the counter.
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_STRESS_H
#define COUPON_STRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "libpq-fe.h"

#define CS_VERSION			"1.0"
#define CS_MAX_POINTS		64		/* entries of a -c list */
#define CS_ERRMSG_LEN		256

#define CS_PRINTF(f, a)		__attribute__((format(printf, f, a)))

/* Strategies, in the order they run. */
typedef enum Strategy
{
	S_NAIVE,
	S_OCC,
	S_FOR_UPDATE,
	S_ATOMIC,
	S_CLAIM,
	S_INSERT_ONLY,
	S_COUNT
} Strategy;

/* Command line options; filled once by the parser, then read only. */
typedef struct Options
{
	bool		strategies[S_COUNT];
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
	int			max_tries;
	double		progress;		/* -P seconds, 0 = off */
	bool		json;
	const char *ack_log;
	bool		reconnect;
	const char *dsn;
	const char *host;
	const char *port;
	const char *user;
	const char *dbname;
} Options;

/* What the setup found on the server; read only during a point. */
typedef struct Target
{
	char	   *extschema;		/* quoted identifier, NULL without extension */
	char		extschema_name[64];	/* the same, as a name */
	char		server_version[64];
	char		ext_version[64];
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
	int64_t		errors;			/* failed calls */
	int64_t		in_doubt;		/* failed while a commit may have been in
								 * flight (broken connection) */
	int64_t		retries;		/* occ: conflicts retried */
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
	Strategy	strategy;
	int			clients;		/* over all processes */
	int64_t		initial;		/* counter or pool capacity at start */
} Point;

/* One line of the report. */
typedef struct Row
{
	Strategy	strategy;
	int			clients;
	int64_t		initial;
	int64_t		granted;
	int64_t		ledger_rows;
	bool		has_counter;
	int64_t		counter;
	int64_t		oversold;
	bool		has_lost;
	int64_t		lost_updates;
	bool		correct;
	double		claims_per_s;
	double		attempts_per_s;
	double		p50_ms;
	double		p95_ms;
	double		p99_ms;
	double		max_ms;
	int64_t		retries;
	int64_t		errors;
} Row;

/* Steps: the statement a client has in flight or sends next. */
typedef enum Step
{
	ST_READ,					/* read the counter (FOR UPDATE for for-update) */
	ST_BEGIN,
	ST_WRITE,					/* write the counter */
	ST_GRANT,					/* insert the grant row */
	ST_COMMIT,
	ST_ROLLBACK,
	ST_ONE,						/* the whole call in one autocommit statement */
	ST_COUNT
} Step;

/* What a call concludes. */
typedef enum Outcome
{
	OUT_NONE,
	OUT_GRANTED,
	OUT_REFUSED,
	OUT_FAILED,
	OUT_RETRY
} Outcome;

typedef enum Phase
{
	PH_IDLE,					/* between calls */
	PH_BUSY,					/* a statement is in flight */
	PH_SLEEP,					/* race window or retry backoff */
	PH_RECONNECT,				/* waiting to reconnect */
	PH_DONE
} Phase;

/* One simulated user (burst) or client (throughput): one connection. */
typedef struct Client
{
	PGconn	   *conn;
	int			id;				/* index within its process */
	Phase		phase;
	Step		step;			/* in flight, or to send when the sleep ends */
	Outcome		after;			/* what the COMMIT or ROLLBACK in flight means */
	int			tries;			/* occ: tries of this call so far */
	int64_t		seq;			/* calls made, for unique customer names */
	int64_t		call_start_ns;
	int64_t		wake_ns;
	int			reconnect_ms;
	int64_t		remaining;		/* read by ST_READ */
	int64_t		version;
	int64_t		grant_id;		/* returned by the grant, for the ack log */
	PGresult   *res;			/* first result of the statement in flight */
	unsigned short rng[3];
	Stats	   *stats;
	char		customer[64];
	char		arg[24];
	char		arg2[24];
} Client;

/* What the strategy asks the driver to do next. */
typedef enum ActionKind
{
	ACT_SEND,
	ACT_SLEEP,
	ACT_FINISH
} ActionKind;

typedef struct Action
{
	ActionKind	kind;
	Step		step;			/* ACT_SEND, or the step after ACT_SLEEP */
	Outcome		outcome;		/* ACT_FINISH */
	int64_t		sleep_us;		/* ACT_SLEEP */
} Action;

/* Fixed context of a strategy during one point. */
typedef struct StrategyCtx
{
	Strategy	strategy;
	int64_t		race_window_us;
	int			max_tries;
	const char *pool;			/* value of the grant rows' pool column */
} StrategyCtx;

/* coupon-stress.c */
extern const char *progname;
extern int64_t now_ns(void);
extern void set_first_error(Stats *st, const char *fmt,...) CS_PRINTF(2, 3);

/* strategy.c */
extern const char *strategy_names[S_COUNT];
extern const char *strategy_pool(Strategy s);
extern int	strategy_sql(Strategy s, const char *extschema, Step step,
						 char *buf, size_t len);
extern bool strategy_uses_step(Strategy s, Step step);
extern bool strategy_may_commit(Strategy s, Step step);
extern void strategy_params(const StrategyCtx *ctx, Client *c, Step step,
							const char **values, int *nparams);
extern Action strategy_begin(const StrategyCtx *ctx, Client *c);
extern Action strategy_result(const StrategyCtx *ctx, Client *c,
							  PGresult *res);
extern Action strategy_error(const StrategyCtx *ctx, Client *c,
							 const char *sqlstate, bool in_transaction);
extern Action strategy_wake(const StrategyCtx *ctx, Client *c);

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
extern bool read_back(PGconn *conn, const Target *tgt, const Point *pt,
					  int64_t watermark, Row *row);
extern void try_checkpoint(PGconn *conn);

/* driver.c */
extern int	run_share(const Options *opt, const Target *tgt, const Point *pt,
					  int server, int nclients, int nthreads, Stats *slots,
					  Shared *shared, int ready_fd, int go_fd, int ack_fd);

/* report.c */
extern void report_header(const Options *opt, const Target *tgt, int threads);
extern void report_row(const Row *row);
extern void report_footer(const Row *rows, int nrows, bool aborted);
extern void report_json(const Row *rows, int nrows);
extern void report_progress(double elapsed_s, const Point *pt,
							int64_t done, int64_t lat_sum_us, double lat_sum2,
							int64_t errors, int64_t retries,
							double interval_s);
extern bool strategy_is_exact(Strategy s);

#endif							/* COUPON_STRESS_H */
