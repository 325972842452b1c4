/*-------------------------------------------------------------------------
 *
 * driver.c
 *		One process's share of a point: threads, connections, event loop.
 *
 * This is pgbench's threading model.  A process (one simulated application
 * server) gets a number of clients and -j worker threads; each thread owns
 * a contiguous slice of the clients and drives all of them with one event
 * loop, so 500 connections need 2 threads, not 500:
 *
 *	1. every thread opens its connections and prepares the strategy's
 *	   statements on each (connection time stays out of the rates);
 *	2. the threads meet the process's main thread at a barrier; the main
 *	   thread tells the parent "ready" (or "failed") through a pipe and
 *	   blocks until the parent closes the "go" pipe, which releases every
 *	   process at the same instant; a second barrier then releases the
 *	   threads;
 *	3. each thread starts a call on every client, then loops: ppoll() on
 *	   the sockets of the clients with a statement in flight, with a
 *	   timeout that ends at the earliest sleeping client's wake time (race
 *	   window, retry backoff, reconnect backoff); PQconsumeInput and
 *	   PQisBusy/PQgetResult collect results without blocking, and
 *	   strategy.c says what each client sends next.
 *
 * Burst mode: each client makes one call.  Throughput mode: each client
 * makes calls back to back until -T seconds after the release; calls in
 * flight at the deadline are completed and counted.  The thread's
 * statistics live in the shared mapping the parent reads.
 *
 * A connection that breaks (server crash, restart, termination) aborts
 * the run (every thread of every process stops, exit status 2) unless
 * --reconnect is given: then the call counts as an error, and as "in
 * doubt" when its statement could have committed (COMMIT, or an autocommit
 * write) since the commit may have happened without its acknowledgement;
 * the client reconnects with a backoff of 50 ms doubling to 1 s and goes
 * on.  With --ack-log, every claim id acknowledged to the claim strategy
 * (its statement returned OK, so it committed) is appended to the file as
 * one line, with one write(2) on a file opened with O_APPEND, so lines of
 * concurrent threads and processes never mix and nothing waits in a
 * buffer if the client itself is killed.
 *
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "coupon-stress.h"

#define RECONNECT_FIRST_MS	50
#define RECONNECT_MAX_MS	1000
#define MAX_IDLE_WAIT_NS	(100 * 1000 * 1000LL)	/* checks the abort flag */

static const char *const step_names[ST_COUNT] = {
	"cs_read", "cs_begin", "cs_write", "cs_grant", "cs_commit",
	"cs_rollback", "cs_one"
};

typedef struct Thread
{
	pthread_t	tid;
	const Options *opt;
	const Target *tgt;
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
	char		sql[ST_COUNT][512];
	bool		uses[ST_COUNT];
} Thread;

static void start_call(Thread *t, Client *c);
static void apply(Thread *t, Client *c, Action a);

/* Open a client's connection and prepare the strategy's statements. */
static bool
open_client(Thread *t, Client *c, char *err, size_t len)
{
	int			step;

	c->conn = client_connect(t->opt, err, len);
	if (c->conn == NULL)
		return false;
	for (step = 0; step < ST_COUNT; step++)
	{
		PGresult   *res;

		if (!t->uses[step])
			continue;
		res = PQprepare(c->conn, step_names[step], t->sql[step], 0, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			snprintf(err, len, "could not prepare \"%s\": %s", t->sql[step],
					 PQerrorMessage(c->conn));
			PQclear(res);
			PQfinish(c->conn);
			c->conn = NULL;
			return false;
		}
		PQclear(res);
	}
	return true;
}

static void
close_client(Client *c)
{
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
}

static bool
past_deadline(Thread *t, int64_t now)
{
	return t->shared->abort || t->deadline_ns == 0 || now >= t->deadline_ns;
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
			t->pt->strategy == S_CLAIM)
		{
			char		line[32];
			int			n = snprintf(line, sizeof(line), "%lld\n",
									 (long long) c->grant_id);

			if (write(t->ack_fd, line, n) != n)
				set_first_error(st, "could not write to the ack log: %s",
								strerror(errno));
		}
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

/* The connection is gone: abort, or count the call and reconnect later. */
static void
connection_lost(Thread *t, Client *c, const char *msg)
{
	bool		may_commit = c->phase == PH_BUSY &&
		strategy_may_commit(t->pt->strategy, c->step);
	char		line[CS_ERRMSG_LEN];
	size_t		n;

	snprintf(line, sizeof(line), "%s", msg ? msg : "");
	n = strcspn(line, "\n");
	line[n] = '\0';
	set_first_error(t->stats, "connection lost: %s", line);
	close_client(c);

	if (!t->opt->reconnect)
	{
		if (!t->shared->abort)
			fprintf(stderr, "%s: client %d aborted: connection lost: %s\n",
					progname, c->id, line);
		t->stats->aborted = 1;
		t->shared->abort = 1;
		c->phase = PH_DONE;
		return;
	}

	stat_add(&t->stats->calls, 1);
	stat_add(&t->stats->errors, 1);
	if (may_commit)
		stat_add(&t->stats->in_doubt, 1);
	t->stats->end_ns = now_ns();
	if (t->deadline_ns == 0)
	{
		c->phase = PH_DONE;		/* burst: the user had its one try */
		return;
	}
	c->reconnect_ms = c->reconnect_ms == 0 ? RECONNECT_FIRST_MS :
		(c->reconnect_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS :
		 c->reconnect_ms * 2);
	c->phase = PH_RECONNECT;
	c->wake_ns = now_ns() + (int64_t) c->reconnect_ms * 1000000;
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
	if (open_client(t, c, err, sizeof(err)))
	{
		c->reconnect_ms = 0;
		start_call(t, c);
		return;
	}
	c->reconnect_ms = c->reconnect_ms * 2 > RECONNECT_MAX_MS ?
		RECONNECT_MAX_MS : c->reconnect_ms * 2;
	c->wake_ns = now_ns() + (int64_t) c->reconnect_ms * 1000000;
}

static void
send_step(Thread *t, Client *c, Step step)
{
	const char *values[4];
	int			nparams;

	c->step = step;
	strategy_params(&t->ctx, c, step, values, &nparams);
	if (!PQsendQueryPrepared(c->conn, step_names[step], nparams, values,
							 NULL, NULL, 0))
	{
		/* nothing was sent, so nothing can have committed */
		c->phase = PH_IDLE;
		connection_lost(t, c, PQerrorMessage(c->conn));
		return;
	}
	c->phase = PH_BUSY;
}

static void
apply(Thread *t, Client *c, Action a)
{
	switch (a.kind)
	{
		case ACT_SEND:
			send_step(t, c, a.step);
			break;
		case ACT_SLEEP:
			c->step = a.step;
			c->phase = PH_SLEEP;
			c->wake_ns = now_ns() + a.sleep_us * 1000;
			break;
		case ACT_FINISH:
			finish_call(t, c, a.outcome);
			break;
	}
}

static void
start_call(Thread *t, Client *c)
{
	c->seq++;
	snprintf(c->customer, sizeof(c->customer), "u%d-%d-%lld",
			 (int) getpid(), c->id, (long long) c->seq);
	c->call_start_ns = now_ns();
	apply(t, c, strategy_begin(&t->ctx, c));
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
	Action		a;

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		a = strategy_result(&t->ctx, c, res);
	else if (res == NULL || fatal_error(c->conn, res))
	{
		const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(c->conn);
		char		copy[CS_ERRMSG_LEN];

		snprintf(copy, sizeof(copy), "%s", msg);
		if (res)
			PQclear(res);
		connection_lost(t, c, copy);
		return;
	}
	else
	{
		PGTransactionStatusType ts = PQtransactionStatus(c->conn);

		a = strategy_error(&t->ctx, c,
						   PQresultErrorField(res, PG_DIAG_SQLSTATE),
						   ts == PQTRANS_INERROR || ts == PQTRANS_INTRANS);
		if (c->after == OUT_FAILED || a.kind == ACT_FINISH)
		{
			const char *msg = PQresultErrorMessage(res);
			char		copy[CS_ERRMSG_LEN];
			size_t		n;

			/* the first line: "ERROR:  message" */
			snprintf(copy, sizeof(copy), "%s", msg);
			n = strcspn(copy, "\n");
			copy[n] = '\0';
			if (t->pt->strategy == S_OCC && c->tries >= t->ctx.max_tries)
				set_first_error(t->stats, "gave up after %d tries: %s",
								c->tries, copy);
			else
				set_first_error(t->stats, "%s", copy);
		}
	}
	if (res)
		PQclear(res);
	apply(t, c, a);
}

/* Input arrived on a busy client's socket. */
static void
consume(Thread *t, Client *c)
{
	if (!PQconsumeInput(c->conn))
	{
		connection_lost(t, c, PQerrorMessage(c->conn));
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

static void
event_loop(Thread *t)
{
	struct pollfd *pfds = calloc(t->nclients, sizeof(struct pollfd));
	Client	  **owners = calloc(t->nclients, sizeof(Client *));

	if (pfds == NULL || owners == NULL)
	{
		set_first_error(t->stats, "out of memory");
		t->stats->aborted = 1;
		t->shared->abort = 1;
		free(pfds);
		free(owners);
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
			{
				pfds[npfd].fd = PQsocket(c->conn);
				pfds[npfd].events = POLLIN;
				pfds[npfd].revents = 0;
				owners[npfd++] = c;
			}
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
			if (pfds[i].revents != 0 && owners[i]->phase == PH_BUSY)
				consume(t, owners[i]);
		}
	}
	free(pfds);
	free(owners);
}

static void *
thread_main(void *arg)
{
	Thread	   *t = arg;
	int			i;
	char		err[CS_ERRMSG_LEN];

	for (i = 0; i < t->nclients && !t->stats->setup_failed; i++)
	{
		if (!open_client(t, &t->clients[i], err, sizeof(err)))
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

/*
 * Run this process's share of a point: nclients clients on nthreads
 * threads, statistics into slots[0 .. nthreads - 1].  Returns the exit
 * status of the process: 0, or 2 when a connection failed or broke.
 */
int
run_share(const Options *opt, const Target *tgt, const Point *pt,
		  int server, int nclients, int nthreads, Stats *slots,
		  Shared *shared, int ready_fd, int go_fd, int ack_fd)
{
	Thread	   *threads;
	Client	   *clients;
	pthread_barrier_t connected;
	pthread_barrier_t go;
	int			i;
	int			step;
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
	{
		fprintf(stderr, "%s: out of memory\n", progname);
		byte = 'F';
		(void) !write(ready_fd, &byte, 1);
		return 2;
	}
	pthread_barrier_init(&connected, NULL, nthreads + 1);
	pthread_barrier_init(&go, NULL, nthreads + 1);

	for (i = 0; i < nthreads; i++)
	{
		Thread	   *t = &threads[i];
		int			share = nclients / nthreads + (i < nclients % nthreads);
		int			j;

		t->opt = opt;
		t->tgt = tgt;
		t->pt = pt;
		t->ctx.strategy = pt->strategy;
		t->ctx.race_window_us = opt->race_window_us;
		t->ctx.max_tries = opt->max_tries;
		t->ctx.pool = strategy_pool(pt->strategy);
		t->clients = clients + next;
		t->nclients = share;
		t->stats = &slots[i];
		t->shared = shared;
		t->server = server;
		t->ack_fd = ack_fd;
		t->connected = &connected;
		t->go = &go;
		for (step = 0; step < ST_COUNT; step++)
			t->uses[step] = strategy_sql(pt->strategy, tgt->extschema, step,
										 t->sql[step], sizeof(t->sql[step])) == 0;
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
