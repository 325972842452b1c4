/*-------------------------------------------------------------------------
 *
 * client.c
 *		One client: its connections, its calls, the faults, the ack log.
 *
 * A client is one simulated user (burst mode) or one connection that
 * calls back to back (throughput mode): a PostgreSQL connection, with the
 * strategy's statements prepared on it, and a connection to each Redis
 * instance the strategy uses.  The driver's event loop (driver.c) tells a
 * client when its socket is ready or its sleep is over; the functions here
 * read the answer, hand it to the interpreter (program.c), and do what
 * the interpreter decides: send the next statement or script, sleep,
 * strike the fault point, or finish the call, count it and start the
 * next.
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
 * Floor: a client, under the driver (driver.c) and above the strategies
 * (program.c), PostgreSQL (setup.c, for the connection), Redis (redis.c)
 * and the statistics (histogram.c).
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "histogram.h"
#include "program.h"
#include "redis.h"
#include "setup.h"

#define RECONNECT_FIRST_MS	50
#define RECONNECT_MAX_MS	1000
#define REDIS_RESTART_CMD	"DEBUG CRASH-AND-RECOVER 100"

/* Takes that reached the fault point in this process; calls it started. */
static int64_t takes_here;
static int64_t calls_here;

static void apply(Worker *w, Client *c, Action a);

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
open_postgres(Worker *w, Client *c, char *err, size_t len)
{
	const Program *prog = w->ctx.prog;
	int			i;

	c->conn = client_connect(w->opt, err, len);
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
	/* a warm-up that fails (a role without its grant) only warms less */
	if (prog->warm_up[0] != '\0')
		PQclear(PQexec(c->conn, prog->warm_up));
	return true;
}

/* Open whatever of the client's connections is missing. */
bool
client_open(Worker *w, Client *c, char *err, size_t len)
{
	int			i;

	if (c->conn == NULL && !open_postgres(w, c, err, len))
		return false;
	for (i = 0; i < w->ctx.nlock; i++)
		if (c->redis[i] == NULL &&
			(c->redis[i] = redis_open(w->opt, i, err, len)) == NULL)
			return false;
	return true;
}

static bool
all_connected(Worker *w, Client *c)
{
	int			i;

	for (i = 0; i < w->ctx.nlock; i++)
		if (c->redis[i] == NULL)
			return false;
	return c->conn != NULL;
}

void
client_close(Client *c)
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
past_deadline(Worker *w, int64_t now)
{
	return *w->abort || w->deadline_ns == 0 || now >= w->deadline_ns;
}

static void
log_ack(Worker *w, Client *c)
{
	char		line[32];
	int			n = snprintf(line, sizeof(line), "%lld\n",
							 (long long) c->grant_id);

	if (write(w->ack_fd, line, n) != n)
		set_first_error(w->stats, "could not write to the ack log: %s",
						strerror(errno));
}

/* Record the end of a call and start the next one, if any. */
static void
finish_call(Worker *w, Client *c, Outcome outcome)
{
	int64_t		now = now_ns();
	int64_t		us = (now - c->call_start_ns) / 1000;
	Stats	   *st = w->stats;

	stat_add(&st->calls, 1);
	if (outcome == OUT_GRANTED || outcome == OUT_REFUSED)
	{
		stat_add(outcome == OUT_GRANTED ? &st->granted : &st->refused, 1);
		hist_add(&st->hist, us);
		stat_add(&st->lat_sum_us, us);
		stat_add_double(&st->lat_sum2, (double) us * (double) us);
		if (outcome == OUT_GRANTED && w->ack_fd >= 0 &&
			strategy_in_pool(w->pt->strategy))
			log_ack(w, c);
	}
	else
		stat_add(&st->errors, 1);
	st->end_ns = now;

	c->phase = PH_IDLE;
	if (past_deadline(w, now))
		c->phase = PH_DONE;
	else
		client_start(w, c);
}

/* Stop every thread of every process: a connection broke. */
static void
abort_run(Worker *w, Client *c, const char *what, const char *line)
{
	if (!*w->abort)
		fprintf(stderr, "%s: client %d aborted: %s lost: %s\n",
				progname, c->id, what, line);
	w->stats->aborted = 1;
	*w->abort = 1;
	c->phase = PH_DONE;
}

/* The PostgreSQL connection is gone: abort, or fail the call. */
static void
postgres_lost(Worker *w, Client *c, const char *msg)
{
	bool		busy = c->phase == PH_BUSY && c->stage == STAGE_RUN;
	bool		may_commit = busy && w->ctx.prog->commits_grant[c->pc];
	bool		may_confirm = busy && w->ctx.prog->commits_confirm[c->pc];
	char		line[CS_ERRMSG_LEN];

	first_line(line, sizeof(line), msg);
	set_first_error(w->stats, "connection lost: %s", line);
	if (c->res)
	{
		PQclear(c->res);
		c->res = NULL;
	}
	PQfinish(c->conn);
	c->conn = NULL;
	if (!w->opt->reconnect)
	{
		abort_run(w, c, "connection", line);
		return;
	}
	if (may_commit)
		stat_add(&w->stats->in_doubt, 1);
	if (may_confirm)
		stat_add(&w->stats->confirms_in_doubt, 1);
	c->phase = PH_IDLE;
	apply(w, c, strategy_abandon(&w->ctx, c, OUT_FAILED));
}

/* Instance i answered (or failed, ok = false): tell the strategy. */
static void
redis_answer(Worker *w, Client *c, int i, bool ok, int64_t value,
			 const char *err)
{
	c->redis_waiting &= ~(1u << i);
	apply(w, c, strategy_redis_reply(&w->ctx, c, i, ok, value, err));
}

/* The connection to Redis instance i is gone: abort, or fail its answer. */
static void
redis_lost(Worker *w, Client *c, int i, const char *msg)
{
	redis_close(&c->redis[i]);
	set_first_error(w->stats, "Redis %d %s", i + 1, msg);
	if (!w->opt->reconnect)
	{
		abort_run(w, c, "Redis connection", msg);
		return;
	}
	redis_answer(w, c, i, false, 0, msg);
}

static void
send_sql(Worker *w, Client *c, const Action *a)
{
	const char *values[CS_MAX_ARGS];
	int			nvalues;
	char		name[16];

	strategy_args(&w->ctx, c, a->step, values, &nvalues);
	statement_name(name, sizeof(name), a->prepared);
	if (c->conn == NULL ||
		!PQsendQueryPrepared(c->conn, name, nvalues, values, NULL, NULL, 0))
	{
		/* nothing was sent, so nothing can have committed */
		c->phase = PH_IDLE;
		postgres_lost(w, c, c->conn ? PQerrorMessage(c->conn) :
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
send_redis(Worker *w, Client *c, const Action *a)
{
	const char *values[CS_MAX_ARGS];
	int			nvalues;
	int			n = a->step->kind == STEP_REDIS_ALL ? w->ctx.nlock : 1;
	uint32_t	failed = 0;
	int			i;

	strategy_args(&w->ctx, c, a->step, values, &nvalues);
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
			redis_answer(w, c, i, false, 0, "not connected");
		else
			redis_lost(w, c, i, "connection lost while sending");
	}
}

/* The fault point: strike if this is the process's chosen take. */
static void
strike(Worker *w, Client *c)
{
	if (w->server == 0)
	{
		int64_t		n = __atomic_add_fetch(&takes_here, 1, __ATOMIC_RELAXED);

		if (n == w->opt->kill_server_at)
			kill(getpid(), SIGKILL);
		if (n == w->opt->restart_redis_at && c->redis[0] != NULL)
		{
			/* no answer comes: the instance is gone until it restarts */
			redis_send_command(c->redis[0], REDIS_RESTART_CMD);
			redis_close(&c->redis[0]);
		}
	}
	apply(w, c, strategy_next(&w->ctx, c));
}

static void
apply(Worker *w, Client *c, Action a)
{
	switch (a.kind)
	{
		case ACT_SEND:
			c->inflight = a.step;
			if (a.step->kind == STEP_SQL)
				send_sql(w, c, &a);
			else
				send_redis(w, c, &a);
			break;
		case ACT_SLEEP:
			c->phase = PH_SLEEP;
			c->wake_ns = now_ns() + a.sleep_us * 1000;
			break;
		case ACT_FAULT:
			strike(w, c);
			break;
		case ACT_WAIT:
			break;
		case ACT_FINISH:
			finish_call(w, c, a.outcome);
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

void
client_start(Worker *w, Client *c)
{
	if (!all_connected(w, c))
	{
		schedule_reconnect(c);
		return;
	}
	c->seq++;
	snprintf(c->customer, sizeof(c->customer), "u%d-%d-%lld",
			 (int) getpid(), c->id, (long long) c->seq);
	c->gc_pause = w->opt->pause_ms > 0 &&
		__atomic_fetch_add(&calls_here, 1, __ATOMIC_RELAXED) %
		w->opt->pause_every == 0;
	c->call_start_ns = now_ns();
	apply(w, c, strategy_begin(&w->ctx, c));
}

void
client_reconnect(Worker *w, Client *c)
{
	char		err[CS_ERRMSG_LEN];

	if (past_deadline(w, now_ns()))
	{
		c->phase = PH_DONE;
		return;
	}
	if (client_open(w, c, err, sizeof(err)))
	{
		c->reconnect_ms = 0;
		client_start(w, c);
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
statement_done(Worker *w, Client *c, PGresult *res)
{
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	char		line[CS_ERRMSG_LEN];
	Action		a;

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		a = strategy_result(&w->ctx, c, res);
	else if (res == NULL || fatal_error(c->conn, res))
	{
		first_line(line, sizeof(line),
				   res ? PQresultErrorMessage(res) : PQerrorMessage(c->conn));
		if (res)
			PQclear(res);
		postgres_lost(w, c, line);
		return;
	}
	else
		a = strategy_error(&w->ctx, c,
						   PQresultErrorField(res, PG_DIAG_SQLSTATE),
						   first_line(line, sizeof(line),
									  PQresultErrorMessage(res)));
	if (res)
		PQclear(res);
	apply(w, c, a);
}

/* Input arrived on a busy client's PostgreSQL socket. */
void
client_postgres_ready(Worker *w, Client *c)
{
	if (!PQconsumeInput(c->conn))
	{
		postgres_lost(w, c, PQerrorMessage(c->conn));
		return;
	}
	while (!PQisBusy(c->conn))
	{
		PGresult   *r = PQgetResult(c->conn);

		if (r == NULL)
		{
			PGresult   *res = c->res;

			c->res = NULL;
			statement_done(w, c, res);
			return;
		}
		if (c->res == NULL)
			c->res = r;
		else
			PQclear(r);
	}
}

/* Redis instance i's socket is ready: write the rest, read an answer. */
void
client_redis_ready(Worker *w, Client *c, int i, short revents)
{
	char		err[CS_ERRMSG_LEN];
	bool		ok;
	int64_t		value;
	int			got;

	if ((revents & POLLOUT) && !redis_flush(c->redis[i]))
	{
		redis_lost(w, c, i, "connection lost while sending");
		return;
	}
	if (!(revents & (POLLIN | POLLHUP | POLLERR)))
		return;
	got = redis_read(c->redis[i], &ok, &value, err, sizeof(err));
	if (got < 0)
		redis_lost(w, c, i, err);
	else if (got > 0)
		redis_answer(w, c, i, ok, value, err);
}

/* The client's pause or backoff ended: go on with its call. */
void
client_wake(Worker *w, Client *c)
{
	apply(w, c, strategy_wake(&w->ctx, c));
}
