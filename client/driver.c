/*-------------------------------------------------------------------------
 *
 * driver.c
 *		One process's share of a point: threads, connections, event loop.
 *
 * This is pgbench's threading model.  A process (one simulated application
 * server) gets a number of clients and -j worker threads; each thread owns
 * a contiguous slice of the clients and drives all of them with one event
 * loop, so 500 users need 2 threads, not 500:
 *
 *	1. every thread opens its clients' connections (PostgreSQL, with the
 *	   strategy's statements prepared on it, and the Redis instances the
 *	   strategy uses), so connection time stays out of the rates;
 *	2. the threads meet the process's main thread at a barrier; the main
 *	   thread tells the parent "ready" (or "failed") through a pipe and
 *	   blocks until the parent closes the "go" pipe, which releases every
 *	   process at the same instant; a second barrier then releases the
 *	   threads;
 *	3. each thread starts a call on every client, then loops: ppoll() on
 *	   the sockets the clients wait on (the PostgreSQL connection, or the
 *	   Redis instances a script was sent to), with a timeout that ends at
 *	   the earliest sleeping client's wake time (pause, retry backoff,
 *	   reconnect backoff); answers are collected without blocking and
 *	   strategy.c says what each client does next.
 *
 * Burst mode: each client makes one call.  Throughput mode: each client
 * makes calls back to back until -T seconds after the release; calls in
 * flight at the deadline are completed and counted.  The thread's
 * statistics live in the shared mapping the parent reads.
 *
 * A connection that breaks (server crash, restart, termination) aborts
 * the run (every thread of every process stops, exit status 2) unless
 * --reconnect is given: then the call fails (counted as an error, and as
 * "in doubt" when its statement could have committed a grant, since the
 * commit may have happened without its acknowledgement), its cleanups run
 * on what is still connected, and the client opens what is missing with a
 * backoff of 50 ms doubling to 1 s before its next call.
 *
 * The faults strike at the fault point that program_build() puts right
 * after the step that takes the coupon, in the first process only, when
 * the process's count of takes reaches the option's value:
 * --kill-server=N sends SIGKILL to the process itself, the application
 * server dying between its take and its commit with every call it has in
 * flight; --restart-redis=N has that client send DEBUG CRASH-AND-RECOVER
 * to the first Redis instance (a hard crash, restarted at once from its
 * append-only file; the instance must allow DEBUG) and go on with its call.
 *
 * With --ack-log, every grant id acknowledged to a strategy that writes the
 * extension's ledger (claim: its statement returned OK, so it committed) is
 * appended to the file as one line, with one write(2) on a file opened with
 * O_APPEND, so lines of concurrent threads and processes never mix and
 * nothing waits in a buffer if the client itself is killed.
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"
#include "histogram.h"
#include "redis.h"
#include "program.h"
#include "setup.h"

#define RECONNECT_FIRST_MS	50
#define RECONNECT_MAX_MS	1000
#define MAX_IDLE_WAIT_NS	(100 * 1000 * 1000LL)	/* checks the abort flag */
#define REDIS_RESTART_CMD	"DEBUG CRASH-AND-RECOVER 100"

typedef struct Thread
{
	pthread_t	tid;
	const Options *opt;
	const Point *pt;
	StrategyCtx ctx;
	Client	   *clients;
	int			nclients;
	Stats	   *stats;
	Shared	   *shared;
	int			server;
	int			ack_fd;
	int64_t		deadline_ns;	/* throughput mode; 0 in burst mode */
	pthread_barrier_t *connected;
	pthread_barrier_t *go;
} Thread;

/* Takes that reached the fault point in this process; calls it started. */
static int64_t takes_here;
static int64_t calls_here;

static void start_call(Thread *t, Client *c);
static void apply(Thread *t, Client *c, Action a);

static void
statement_name(char *buf, size_t len, int index)
{
	snprintf(buf, len, "cs_%d", index);
}

/* The first line of a message, into buf. */
static const char *
first_line(char *buf, size_t len, const char *msg)
{
	snprintf(buf, len, "%s", msg ? msg : "");
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

/* Open the PostgreSQL connection and prepare every statement. */
static bool
open_postgres(Thread *t, Client *c, char *err, size_t len)
{
	const Program *prog = t->ctx.prog;
	int			i;

	c->conn = client_connect(t->opt, err, len);
	if (c->conn == NULL)
		return false;
	for (i = 0; i <= prog->rollback; i++)
	{
		PGresult   *res;
		char		name[16];

		if (i < prog->nsteps && prog->steps[i]->kind != STEP_SQL)
			continue;
		statement_name(name, sizeof(name), i);
		res = PQprepare(c->conn, name, prog->sql[i], 0, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			snprintf(err, len, "could not prepare \"%s\": %s", prog->sql[i],
					 PQerrorMessage(c->conn));
			err[strcspn(err, "\n")] = '\0';
			PQclear(res);
			PQfinish(c->conn);
			c->conn = NULL;
			return false;
		}
		PQclear(res);
	}
	return true;
}

/* Open whatever of the client's connections is missing. */
static bool
open_connections(Thread *t, Client *c, char *err, size_t len)
{
	int			i;

	if (c->conn == NULL && !open_postgres(t, c, err, len))
		return false;
	for (i = 0; i < t->ctx.nlock; i++)
		if (c->redis[i] == NULL &&
			(c->redis[i] = redis_open(t->opt, i, err, len)) == NULL)
			return false;
	return true;
}

static bool
all_connected(Thread *t, Client *c)
{
	int			i;

	for (i = 0; i < t->ctx.nlock; i++)
		if (c->redis[i] == NULL)
			return false;
	return c->conn != NULL;
}

static void
close_client(Client *c)
{
	int			i;

	if (c->res)
	{
		PQclear(c->res);
		c->res = NULL;
	}
	if (c->conn)
	{
		PQfinish(c->conn);
		c->conn = NULL;
	}
	for (i = 0; i < CS_LOCK_INSTANCES; i++)
		redis_close(&c->redis[i]);
}

static bool
past_deadline(Thread *t, int64_t now)
{
	return t->shared->abort || t->deadline_ns == 0 || now >= t->deadline_ns;
}

static void
log_ack(Thread *t, Client *c)
{
	char		line[32];
	int			n = snprintf(line, sizeof(line), "%lld\n",
							 (long long) c->grant_id);

	if (write(t->ack_fd, line, n) != n)
		set_first_error(t->stats, "could not write to the ack log: %s",
						strerror(errno));
}

/* Record the end of a call and start the next one, if any. */
static void
finish_call(Thread *t, Client *c, Outcome outcome)
{
	int64_t		now = now_ns();
	int64_t		us = (now - c->call_start_ns) / 1000;
	Stats	   *st = t->stats;

	stat_add(&st->calls, 1);
	if (outcome == OUT_GRANTED || outcome == OUT_REFUSED)
	{
		stat_add(outcome == OUT_GRANTED ? &st->granted : &st->refused, 1);
		hist_add(&st->hist, us);
		stat_add(&st->lat_sum_us, us);
		stat_add_double(&st->lat_sum2, (double) us * (double) us);
		if (outcome == OUT_GRANTED && t->ack_fd >= 0 &&
			strategy_in_pool(t->pt->strategy))
			log_ack(t, c);
	}
	else
		stat_add(&st->errors, 1);
	st->end_ns = now;

	c->phase = PH_IDLE;
	if (past_deadline(t, now))
		c->phase = PH_DONE;
	else
		start_call(t, c);
}

/* Stop every thread of every process: a connection broke. */
static void
abort_run(Thread *t, Client *c, const char *what, const char *line)
{
	if (!t->shared->abort)
		fprintf(stderr, "%s: client %d aborted: %s lost: %s\n",
				progname, c->id, what, line);
	t->stats->aborted = 1;
	t->shared->abort = 1;
	c->phase = PH_DONE;
}

/* The PostgreSQL connection is gone: abort, or fail the call. */
static void
postgres_lost(Thread *t, Client *c, const char *msg)
{
	bool		busy = c->phase == PH_BUSY && c->stage == STAGE_RUN;
	bool		may_commit = busy && t->ctx.prog->commits_grant[c->pc];
	bool		may_confirm = busy && t->ctx.prog->commits_confirm[c->pc];
	char		line[CS_ERRMSG_LEN];

	first_line(line, sizeof(line), msg);
	set_first_error(t->stats, "connection lost: %s", line);
	if (c->res)
	{
		PQclear(c->res);
		c->res = NULL;
	}
	PQfinish(c->conn);
	c->conn = NULL;
	if (!t->opt->reconnect)
	{
		abort_run(t, c, "connection", line);
		return;
	}
	if (may_commit)
		stat_add(&t->stats->in_doubt, 1);
	if (may_confirm)
		stat_add(&t->stats->confirms_in_doubt, 1);
	c->phase = PH_IDLE;
	apply(t, c, strategy_abandon(&t->ctx, c, OUT_FAILED));
}

/* Instance i answered (or failed, ok = false): tell the strategy. */
static void
redis_answer(Thread *t, Client *c, int i, bool ok, int64_t value,
			 const char *err)
{
	c->redis_waiting &= ~(1u << i);
	apply(t, c, strategy_redis_reply(&t->ctx, c, i, ok, value, err));
}

/* The connection to Redis instance i is gone: abort, or fail its answer. */
static void
redis_lost(Thread *t, Client *c, int i, const char *msg)
{
	redis_close(&c->redis[i]);
	set_first_error(t->stats, "Redis %d %s", i + 1, msg);
	if (!t->opt->reconnect)
	{
		abort_run(t, c, "Redis connection", msg);
		return;
	}
	redis_answer(t, c, i, false, 0, msg);
}

static void
send_sql(Thread *t, Client *c, const Action *a)
{
	const char *values[CS_MAX_ARGS];
	int			nvalues;
	char		name[16];

	strategy_args(&t->ctx, c, a->step, values, &nvalues);
	statement_name(name, sizeof(name), a->prepared);
	if (c->conn == NULL ||
		!PQsendQueryPrepared(c->conn, name, nvalues, values, NULL, NULL, 0))
	{
		/* nothing was sent, so nothing can have committed */
		c->phase = PH_IDLE;
		postgres_lost(t, c, c->conn ? PQerrorMessage(c->conn) :
					  "not connected");
		return;
	}
	c->phase = PH_BUSY;
}

/*
 * Send a script to the first instance, or to every lock instance.  An
 * instance that is not connected or fails at once answers "failed" after
 * the others were sent theirs.
 */
static void
send_redis(Thread *t, Client *c, const Action *a)
{
	const char *values[CS_MAX_ARGS];
	int			nvalues;
	int			n = a->step->kind == STEP_REDIS_ALL ? t->ctx.nlock : 1;
	uint32_t	failed = 0;
	int			i;

	strategy_args(&t->ctx, c, a->step, values, &nvalues);
	c->phase = PH_BUSY;
	c->redis_waiting = (1u << n) - 1;
	for (i = 0; i < n; i++)
		if (c->redis[i] == NULL ||
			!redis_send(c->redis[i], a->step, values, nvalues))
			failed |= 1u << i;
	for (i = 0; i < n; i++)
	{
		if (!(failed & (1u << i)))
			continue;
		if (c->redis[i] == NULL)
			redis_answer(t, c, i, false, 0, "not connected");
		else
			redis_lost(t, c, i, "connection lost while sending");
	}
}

/* The fault point: strike if this is the process's chosen take. */
static void
strike(Thread *t, Client *c)
{
	if (t->server == 0)
	{
		int64_t		n = __atomic_add_fetch(&takes_here, 1, __ATOMIC_RELAXED);

		if (n == t->opt->kill_server_at)
			kill(getpid(), SIGKILL);
		if (n == t->opt->restart_redis_at && c->redis[0] != NULL)
		{
			/* no answer comes: the instance is gone until it restarts */
			redis_send_command(c->redis[0], REDIS_RESTART_CMD);
			redis_close(&c->redis[0]);
		}
	}
	apply(t, c, strategy_next(&t->ctx, c));
}

static void
apply(Thread *t, Client *c, Action a)
{
	switch (a.kind)
	{
		case ACT_SEND:
			c->inflight = a.step;
			if (a.step->kind == STEP_SQL)
				send_sql(t, c, &a);
			else
				send_redis(t, c, &a);
			break;
		case ACT_SLEEP:
			c->phase = PH_SLEEP;
			c->wake_ns = now_ns() + a.sleep_us * 1000;
			break;
		case ACT_FAULT:
			strike(t, c);
			break;
		case ACT_WAIT:
			break;
		case ACT_FINISH:
			finish_call(t, c, a.outcome);
			break;
	}
}

static void
schedule_reconnect(Client *c)
{
	c->reconnect_ms = c->reconnect_ms == 0 ? RECONNECT_FIRST_MS :
		(c->reconnect_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS :
		 c->reconnect_ms * 2);
	c->phase = PH_RECONNECT;
	c->wake_ns = now_ns() + (int64_t) c->reconnect_ms * 1000000;
}

static void
start_call(Thread *t, Client *c)
{
	if (!all_connected(t, c))
	{
		schedule_reconnect(c);
		return;
	}
	c->seq++;
	snprintf(c->customer, sizeof(c->customer), "u%d-%d-%lld",
			 (int) getpid(), c->id, (long long) c->seq);
	c->gc_pause = t->opt->pause_ms > 0 &&
		__atomic_fetch_add(&calls_here, 1, __ATOMIC_RELAXED) %
		t->opt->pause_every == 0;
	c->call_start_ns = now_ns();
	apply(t, c, strategy_begin(&t->ctx, c));
}

static void
try_reconnect(Thread *t, Client *c)
{
	char		err[CS_ERRMSG_LEN];

	if (past_deadline(t, now_ns()))
	{
		c->phase = PH_DONE;
		return;
	}
	if (open_connections(t, c, err, sizeof(err)))
	{
		c->reconnect_ms = 0;
		start_call(t, c);
		return;
	}
	schedule_reconnect(c);
}

/* Does this error mean the session is gone? */
static bool
fatal_error(PGconn *conn, PGresult *res)
{
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	if (PQstatus(conn) != CONNECTION_OK)
		return true;
	if (sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0))
		return true;
	if (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0))
		return true;
	return state == NULL;		/* an error made up by libpq */
}

/* The statement in flight has completed with result res. */
static void
statement_done(Thread *t, Client *c, PGresult *res)
{
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	char		line[CS_ERRMSG_LEN];
	Action		a;

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		a = strategy_result(&t->ctx, c, res);
	else if (res == NULL || fatal_error(c->conn, res))
	{
		first_line(line, sizeof(line),
				   res ? PQresultErrorMessage(res) : PQerrorMessage(c->conn));
		if (res)
			PQclear(res);
		postgres_lost(t, c, line);
		return;
	}
	else
		a = strategy_error(&t->ctx, c,
						   PQresultErrorField(res, PG_DIAG_SQLSTATE),
						   first_line(line, sizeof(line),
									  PQresultErrorMessage(res)));
	if (res)
		PQclear(res);
	apply(t, c, a);
}

/* Input arrived on a busy client's PostgreSQL socket. */
static void
consume_postgres(Thread *t, Client *c)
{
	if (!PQconsumeInput(c->conn))
	{
		postgres_lost(t, c, PQerrorMessage(c->conn));
		return;
	}
	while (!PQisBusy(c->conn))
	{
		PGresult   *r = PQgetResult(c->conn);

		if (r == NULL)
		{
			PGresult   *res = c->res;

			c->res = NULL;
			statement_done(t, c, res);
			return;
		}
		if (c->res == NULL)
			c->res = r;
		else
			PQclear(r);
	}
}

/* Redis instance i's socket is ready: write the rest, read an answer. */
static void
consume_redis(Thread *t, Client *c, int i, short revents)
{
	char		err[CS_ERRMSG_LEN];
	bool		ok;
	int64_t		value;
	int			got;

	if ((revents & POLLOUT) && !redis_flush(c->redis[i]))
	{
		redis_lost(t, c, i, "connection lost while sending");
		return;
	}
	if (!(revents & (POLLIN | POLLHUP | POLLERR)))
		return;
	got = redis_read(c->redis[i], &ok, &value, err, sizeof(err));
	if (got < 0)
		redis_lost(t, c, i, err);
	else if (got > 0)
		redis_answer(t, c, i, ok, value, err);
}

/* Where a client waits: its PostgreSQL socket (-1) or a Redis instance. */
typedef struct Waiter
{
	Client	   *client;
	int			instance;
} Waiter;

/* Add the sockets client c waits on; returns how many. */
static int
add_waits(Client *c, struct pollfd *pfds, Waiter *waiters)
{
	int			n = 0;
	int			i;

	if (c->inflight->kind == STEP_SQL)
	{
		pfds[0].fd = PQsocket(c->conn);
		pfds[0].events = POLLIN;
		pfds[0].revents = 0;
		waiters[0].client = c;
		waiters[0].instance = -1;
		return 1;
	}
	for (i = 0; i < CS_LOCK_INSTANCES; i++)
	{
		if (!(c->redis_waiting & (1u << i)))
			continue;
		pfds[n].fd = redis_fd(c->redis[i]);
		pfds[n].events = POLLIN |
			(redis_wants_write(c->redis[i]) ? POLLOUT : 0);
		pfds[n].revents = 0;
		waiters[n].client = c;
		waiters[n].instance = i;
		n++;
	}
	return n;
}

static void
event_loop(Thread *t)
{
	int			maxfd = t->nclients * CS_LOCK_INSTANCES;
	struct pollfd *pfds = calloc(maxfd, sizeof(struct pollfd));
	Waiter	   *waiters = calloc(maxfd, sizeof(Waiter));

	if (pfds == NULL || waiters == NULL)
	{
		set_first_error(t->stats, "out of memory");
		t->stats->aborted = 1;
		t->shared->abort = 1;
		free(pfds);
		free(waiters);
		return;
	}

	for (;;)
	{
		int64_t		now = now_ns();
		int64_t		next_wake = now + MAX_IDLE_WAIT_NS;
		int			npfd = 0;
		int			active = 0;
		int			i;
		struct timespec ts;

		if (t->shared->abort)
			break;
		for (i = 0; i < t->nclients; i++)
		{
			Client	   *c = &t->clients[i];

			if (c->phase == PH_SLEEP && c->wake_ns <= now)
				apply(t, c, strategy_wake(&t->ctx, c));
			else if (c->phase == PH_RECONNECT && c->wake_ns <= now)
			{
				try_reconnect(t, c);
				now = now_ns();
			}
			if ((c->phase == PH_SLEEP || c->phase == PH_RECONNECT) &&
				c->wake_ns < next_wake)
				next_wake = c->wake_ns;
			if (c->phase == PH_BUSY)
				npfd += add_waits(c, pfds + npfd, waiters + npfd);
			if (c->phase != PH_DONE)
				active++;
		}
		if (active == 0)
			break;

		now = now_ns();
		if (next_wake < now)
			next_wake = now;
		ts.tv_sec = (next_wake - now) / 1000000000;
		ts.tv_nsec = (next_wake - now) % 1000000000;
		if (ppoll(pfds, npfd, &ts, NULL) < 0 && errno != EINTR)
		{
			set_first_error(t->stats, "poll failed: %s", strerror(errno));
			t->stats->aborted = 1;
			t->shared->abort = 1;
			break;
		}
		for (i = 0; i < npfd; i++)
		{
			Client	   *c = waiters[i].client;
			int			inst = waiters[i].instance;

			if (pfds[i].revents == 0 || c->phase != PH_BUSY)
				continue;
			if (inst < 0 && c->inflight->kind == STEP_SQL)
				consume_postgres(t, c);
			else if (inst >= 0 && (c->redis_waiting & (1u << inst)))
				consume_redis(t, c, inst, pfds[i].revents);
		}
	}
	free(pfds);
	free(waiters);
}

static void *
thread_main(void *arg)
{
	Thread	   *t = arg;
	int			i;
	char		err[CS_ERRMSG_LEN];

	for (i = 0; i < t->nclients && !t->stats->setup_failed; i++)
	{
		if (!open_connections(t, &t->clients[i], err, sizeof(err)))
		{
			set_first_error(t->stats, "could not connect client %d: %s",
							t->clients[i].id, err);
			t->stats->setup_failed = 1;
		}
	}
	pthread_barrier_wait(t->connected);
	pthread_barrier_wait(t->go);

	if (!t->shared->abort)
	{
		int64_t		start = now_ns();

		t->stats->start_ns = start;
		t->stats->end_ns = start;
		t->deadline_ns = t->opt->throughput ?
			start + (int64_t) (t->opt->duration * 1e9) : 0;
		for (i = 0; i < t->nclients && !t->shared->abort; i++)
			start_call(t, &t->clients[i]);
		event_loop(t);
	}
	for (i = 0; i < t->nclients; i++)
		close_client(&t->clients[i]);
	return NULL;
}

/* Tell the parent "failed" before any thread started. */
static int
fail_share(Stats *slot, int ready_fd, const char *msg)
{
	char		byte = 'F';

	set_first_error(slot, "%s", msg);
	slot->setup_failed = 1;
	(void) !write(ready_fd, &byte, 1);
	return 2;
}

/*
 * Run this process's share of a point: nclients clients on nthreads
 * threads running prog, statistics into slots[0 .. nthreads - 1].  Returns the exit
 * status of the process: 0, or 2 when a connection failed or broke.
 */
int
run_share(const Options *opt, const Point *pt, const Program *prog,
		  int server, int nclients, int nthreads, Stats *slots,
		  Shared *shared, int ready_fd, int go_fd, int ack_fd)
{
	Thread	   *threads;
	Client	   *clients;
	pthread_barrier_t connected;
	pthread_barrier_t go;
	int			i;
	int			next = 0;
	int			rc = 0;
	bool		failed = false;
	char		byte;

	if (nthreads > nclients)
		nthreads = nclients;
	if (nthreads < 1)
		nthreads = 1;
	threads = calloc(nthreads, sizeof(Thread));
	clients = calloc(nclients > 0 ? nclients : 1, sizeof(Client));
	if (threads == NULL || clients == NULL)
		return fail_share(&slots[0], ready_fd, "out of memory");
	pthread_barrier_init(&connected, NULL, nthreads + 1);
	pthread_barrier_init(&go, NULL, nthreads + 1);

	for (i = 0; i < nthreads; i++)
	{
		Thread	   *t = &threads[i];
		int			share = nclients / nthreads + (i < nclients % nthreads);
		int			j;

		t->opt = opt;
		t->pt = pt;
		t->ctx.prog = prog;
		t->ctx.lease_ms = opt->lease_ms;
		t->ctx.lock_wait_ms = opt->lock_wait_ms;
		t->ctx.max_tries = opt->max_tries;
		t->ctx.nlock = pt->strategy->redis;
		t->ctx.pool = strategy_pool(pt->strategy);
		t->ctx.hold_us = opt->hold_us;
		t->ctx.share = opt->confirm;
		t->clients = clients + next;
		t->nclients = share;
		t->stats = &slots[i];
		t->shared = shared;
		t->server = server;
		t->ack_fd = ack_fd;
		t->connected = &connected;
		t->go = &go;
		for (j = 0; j < share; j++)
		{
			Client	   *c = &t->clients[j];

			c->id = next + j;
			c->stats = t->stats;
			c->rng[0] = (unsigned short) (getpid() ^ 0x330e);
			c->rng[1] = (unsigned short) (next + j);
			c->rng[2] = (unsigned short) (now_ns() >> 10);
		}
		next += share;
	}
	for (i = 0; i < nthreads; i++)
	{
		if (pthread_create(&threads[i].tid, NULL, thread_main, &threads[i]) != 0)
		{
			fprintf(stderr, "%s: could not create thread: %s\n",
					progname, strerror(errno));
			_exit(2);
		}
	}

	pthread_barrier_wait(&connected);
	for (i = 0; i < nthreads; i++)
		failed |= slots[i].setup_failed;
	byte = failed ? 'F' : 'R';
	if (write(ready_fd, &byte, 1) != 1)
		shared->abort = 1;
	/* so the parent sees end-of-file, not a hang, if a process dies early */
	close(ready_fd);
	/* the parent closes the pipe to release every process at once */
	for (;;)
	{
		ssize_t		r = read(go_fd, &byte, 1);

		if (r > 0 || (r < 0 && errno == EINTR))
			continue;
		break;
	}
	pthread_barrier_wait(&go);
	for (i = 0; i < nthreads; i++)
		pthread_join(threads[i].tid, NULL);

	for (i = 0; i < nthreads; i++)
		if (slots[i].aborted || slots[i].setup_failed)
			rc = 2;
	free(threads);
	free(clients);
	return rc;
}
