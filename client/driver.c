/*-------------------------------------------------------------------------
 *
 * driver.c
 *		One process's share of a point: its threads and their event loop.
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
 *	   reconnect backoff); each client whose socket is ready reads its
 *	   answer and goes on (client.c).
 *
 * Burst mode: each client makes one call.  Throughput mode: each client
 * makes calls back to back until -T seconds after the release; calls in
 * flight at the deadline are completed and counted.  The thread's
 * statistics live in the shared mapping the parent reads.
 *
 * What a client does, its connections, its calls, reconnecting and the
 * faults, is in client.c; this file keeps the threads and the loop.
 *
 * Floor: the driver, under the run (run.c, which calls run_share() in
 * each forked process) and above a client (client.c); it also reads the
 * Redis connections' sockets (redis.c) and keeps the statistics
 * (histogram.c).
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

#include "client.h"
#include "driver.h"
#include "histogram.h"
#include "redis.h"

#define MAX_IDLE_WAIT_NS	(100 * 1000 * 1000LL)	/* checks the abort flag */

/* A worker thread: its clients, and what they share. */
typedef struct Thread
{
	pthread_t	tid;
	Worker		w;
	Client	   *clients;
	int			nclients;
	pthread_barrier_t *connected;
	pthread_barrier_t *go;
} Thread;

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
		set_first_error(t->w.stats, "out of memory");
		t->w.stats->aborted = 1;
		*t->w.abort = 1;
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

		if (*t->w.abort)
			break;
		for (i = 0; i < t->nclients; i++)
		{
			Client	   *c = &t->clients[i];

			if (c->phase == PH_SLEEP && c->wake_ns <= now)
				client_wake(&t->w, c);
			else if (c->phase == PH_RECONNECT && c->wake_ns <= now)
			{
				client_reconnect(&t->w, c);
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
			set_first_error(t->w.stats, "poll failed: %s", strerror(errno));
			t->w.stats->aborted = 1;
			*t->w.abort = 1;
			break;
		}
		for (i = 0; i < npfd; i++)
		{
			Client	   *c = waiters[i].client;
			int			inst = waiters[i].instance;

			if (pfds[i].revents == 0 || c->phase != PH_BUSY)
				continue;
			if (inst < 0 && c->inflight->kind == STEP_SQL)
				client_postgres_ready(&t->w, c);
			else if (inst >= 0 && (c->redis_waiting & (1u << inst)))
				client_redis_ready(&t->w, c, inst, pfds[i].revents);
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

	for (i = 0; i < t->nclients && !t->w.stats->setup_failed; i++)
	{
		if (!client_open(&t->w, &t->clients[i], err, sizeof(err)))
		{
			set_first_error(t->w.stats, "could not connect client %d: %s",
							t->clients[i].id, err);
			t->w.stats->setup_failed = 1;
		}
	}
	pthread_barrier_wait(t->connected);
	pthread_barrier_wait(t->go);

	if (!*t->w.abort)
	{
		int64_t		start = now_ns();

		t->w.stats->start_ns = start;
		t->w.stats->end_ns = start;
		t->w.deadline_ns = t->w.opt->throughput ?
			start + (int64_t) (t->w.opt->duration * 1e9) : 0;
		for (i = 0; i < t->nclients && !*t->w.abort; i++)
			client_start(&t->w, &t->clients[i]);
		event_loop(t);
	}
	for (i = 0; i < t->nclients; i++)
		client_close(&t->clients[i]);
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

/* What every thread of this process gives its clients during the point. */
static Worker
worker_for(const Options *opt, const Point *pt, const Program *prog,
		   int server, Shared *shared, int ack_fd)
{
	Worker		w;

	memset(&w, 0, sizeof(w));
	w.opt = opt;
	w.pt = pt;
	w.ctx.prog = prog;
	w.ctx.lease_ms = opt->lease_ms;
	w.ctx.lock_wait_ms = opt->lock_wait_ms;
	w.ctx.max_tries = opt->max_tries;
	w.ctx.nlock = pt->strategy->redis;
	w.ctx.pool = strategy_pool(pt->strategy);
	w.ctx.hold_us = opt->hold_us;
	w.ctx.share = opt->confirm;
	w.abort = &shared->abort;
	w.server = server;
	w.ack_fd = ack_fd;
	return w;
}

/* The clients first .. first + t->nclients - 1 of the process. */
static void
init_clients(Thread *t, int first)
{
	int			j;

	for (j = 0; j < t->nclients; j++)
	{
		Client	   *c = &t->clients[j];

		c->id = first + j;
		c->stats = t->w.stats;
		c->rng[0] = (unsigned short) (getpid() ^ 0x330e);
		c->rng[1] = (unsigned short) (first + j);
		c->rng[2] = (unsigned short) (now_ns() >> 10);
	}
}

/*
 * The barrier across processes, this process's side: once every thread
 * has its connections open, tell the parent "ready" (or "failed"), then
 * wait until it closes the "go" pipe.
 */
static void
meet_parent(pthread_barrier_t *connected, const Stats *slots, int nthreads,
			Shared *shared, int ready_fd, int go_fd)
{
	bool		failed = false;
	char		byte;
	int			i;

	pthread_barrier_wait(connected);
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
}

/*
 * Run this process's share of a point: nclients clients on nthreads
 * threads running prog, statistics into slots[0 .. nthreads - 1].  Returns
 * the exit status of the process: 0, or 2 when a connection failed or
 * broke.
 */
int
run_share(const Options *opt, const Point *pt, const Program *prog,
		  int server, int nclients, int nthreads, Stats *slots,
		  Shared *shared, int ready_fd, int go_fd, int ack_fd)
{
	Worker		w = worker_for(opt, pt, prog, server, shared, ack_fd);
	Thread	   *threads;
	Client	   *clients;
	pthread_barrier_t connected;
	pthread_barrier_t go;
	int			i;
	int			next = 0;
	int			rc = 0;

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

		t->w = w;
		t->w.stats = &slots[i];
		t->clients = clients + next;
		t->nclients = nclients / nthreads + (i < nclients % nthreads);
		t->connected = &connected;
		t->go = &go;
		init_clients(t, next);
		next += t->nclients;
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

	meet_parent(&connected, slots, nthreads, shared, ready_fd, go_fd);
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
