/*-------------------------------------------------------------------------
 *
 * program.c
 *		A strategy prepared for a point, and the interpreter that runs it.
 *
 * A client (client.c) does the I/O; the functions here only decide.
 * After every answer they return an Action: send a step, sleep, strike the
 * fault point, wait for more Redis answers, or finish the call as granted,
 * refused (sold out) or failed.  A call runs its steps in order; it is
 * granted when it gets past the last one.  When an answer ends it early,
 * an open transaction is rolled back first, then the due cleanups run, in
 * reverse order.  Serialization failures and deadlocks (40001, 40P01, as
 * pgbench retries them), stale fencing tokens and busy locks end a try
 * with OUT_RETRY: after the cleanups, the call sleeps a random time in
 * [0, min(100 ms, 1 ms * 2^(tries-1))] (exponential backoff with full
 * jitter) and starts again from its first step, at most --max-tries tries,
 * or for a busy lock until --lock-wait-ms has passed since the call began.
 *
 * Steps may follow the grant.  A step can be "drawn": only a share of the
 * calls, drawn when the call begins, run it, and the others skip it.  A
 * confirm (REPLY_CONFIRM) that comes too late (the hold expired: UC001,
 * or was returned: UC002) is a legal end, counted apart, not an error.
 * Once a call's grant has committed, the call is granted whatever the
 * steps after it do: a step after it that fails is counted as an error,
 * never retried, and no compensation runs.
 *
 * program_build() prepares a strategy for a point: it fills the extension's
 * schema into the SQL, notes which steps run inside BEGIN ... COMMIT and
 * which can commit a grant (for the "in doubt" count of broken
 * connections), and, when a fault is asked for, puts the fault point right
 * after the step that takes the coupon.  A strategy whose take commits by
 * itself (claim, insert-only) then runs in an explicit transaction, so
 * that "taken but not committed" exists for it too.  Through a cluster's
 * proxy every connection, once open, reads the proxy's coupon_pools (its
 * warm-up, before the barrier): PL/Proxy opens its connections to every
 * node at a session's first call, and a burst of new sessions would
 * otherwise time their start-up on every node, where a direct connection's
 * start-up comes before the barrier.
 *
 * Floor: the strategies, under a client (client.c, which calls the
 * interpreter after every answer; run.c builds the program) and beside
 * the table (strategy.c).  It calls only the statistics (histogram.c).
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "histogram.h"
#include "program.h"

#define QTY					1
#define SQLSTATE_HOLD_EXPIRED	"UC001"
#define SQLSTATE_CLAIM_RELEASED "UC002"
#define BACKOFF_BASE_US		1000
#define BACKOFF_CAP_US		100000
#define LOCK_QUORUM			(CS_LOCK_INSTANCES / 2 + 1)

static const StepDef begin_step = {.kind = STEP_SQL, .text = "BEGIN"};
static const StepDef commit_step = {.kind = STEP_SQL, .text = "COMMIT"};
static const StepDef rollback_step = {.kind = STEP_SQL, .text = "ROLLBACK"};
static const StepDef fault_step = {.kind = STEP_FAULT};

static bool
is_sql(const StepDef *step, const char *text)
{
	return step->kind == STEP_SQL && strcmp(step->text, text) == 0;
}

/* Copy text into out with every "@extschema@" replaced by schema. */
static bool
fill_schema(char *out, size_t len, const char *text, const char *schema)
{
	static const char marker[] = "@extschema@";
	size_t		n = 0;

	while (*text)
	{
		const char *piece = text;
		size_t		plen = 1;

		if (strncmp(text, marker, sizeof(marker) - 1) == 0)
		{
			if (schema == NULL)
				return false;
			piece = schema;
			plen = strlen(schema);
			text += sizeof(marker) - 1;
		}
		else
			text++;
		if (n + plen >= len)
			return false;
		memcpy(out + n, piece, plen);
		n += plen;
	}
	out[n] = '\0';
	return true;
}

/* Append a step; false when the program is full. */
static bool
add_step(Program *prog, const StepDef *step)
{
	if (prog->nsteps >= CS_MAX_PROGRAM)
		return false;
	prog->steps[prog->nsteps++] = step;
	return true;
}

/*
 * Prepare strategy s for a point.  Returns false, with a message, when a
 * statement needs the extension and it is not there.
 */
bool
program_build(Program *prog, const StrategyDef *s, const Target *tgt,
			  const Options *opt, char *err, size_t errlen)
{
	bool		fault = opt->kill_server_at > 0 ||
		(opt->restart_redis_at > 0 && s->redis > 0);
	bool		in_tx = false;
	bool		grant_in_tx = false;
	int			i;

	memset(prog, 0, sizeof(*prog));
	prog->strategy = s;
	prog->race_window_us = opt->race_window_us;
	prog->gc_pause_us = opt->pause_ms * 1000;
	for (i = 0; i < CS_MAX_STEPS && s->steps[i].kind != STEP_END; i++)
	{
		const StepDef *step = &s->steps[i];
		bool		wrap = fault && step->takes && step->kind == STEP_SQL &&
			!in_tx;

		if (is_sql(step, "BEGIN"))
			in_tx = true;
		else if (is_sql(step, "COMMIT"))
			in_tx = false;
		if ((wrap && !add_step(prog, &begin_step)) ||
			!add_step(prog, step) ||
			(fault && step->takes && !add_step(prog, &fault_step)) ||
			(wrap && !add_step(prog, &commit_step)))
		{
			snprintf(err, errlen, "strategy %s has too many steps", s->name);
			return false;
		}
	}

	/* what is known of each step before it runs */
	in_tx = false;
	for (i = 0; i < prog->nsteps; i++)
	{
		const StepDef *step = prog->steps[i];

		if (is_sql(step, "BEGIN"))
			in_tx = true;
		prog->in_tx[i] = in_tx;
		if (step->reply == REPLY_GRANT)
		{
			grant_in_tx = in_tx;
			prog->commits_grant[i] = !in_tx;
		}
		prog->commits_confirm[i] = step->reply == REPLY_CONFIRM && !in_tx;
		if (is_sql(step, "COMMIT"))
		{
			prog->commits_grant[i] = grant_in_tx;
			in_tx = false;
		}
		if (step->kind == STEP_SQL &&
			!fill_schema(prog->sql[i], CS_SQL_LEN, step->text, tgt->extschema))
		{
			snprintf(err, errlen,
					 "strategy %s needs the coupon extension, which is not installed",
					 s->name);
			return false;
		}
	}
	prog->rollback = prog->nsteps;
	snprintf(prog->sql[prog->rollback], CS_SQL_LEN, "ROLLBACK");
	/* through a proxy: one call on every node opens its connections there */
	if (tgt->proxy)
		fill_schema(prog->warm_up, CS_SQL_LEN,
					"SELECT count(*) FROM @extschema@.coupon_proxy_taken('{}')",
					tgt->extschema);
	return true;
}

/* The value of an integer argument. */
static int64_t
arg_integer(const StrategyCtx *ctx, const Client *c, Arg arg)
{
	switch (arg)
	{
		case ARG_QTY:
			return QTY;
		case ARG_READ_LESS_QTY:
			return c->remaining - QTY;
		case ARG_VERSION:
			return c->version;
		case ARG_LEASE_MS:
			return ctx->lease_ms;
		case ARG_TOKEN:
			return c->token;
		case ARG_TTL:
			return ctx->hold_us;
		case ARG_GRANT_ID:
			return c->grant_id;
		default:
			return 0;
	}
}

/* The values of a step, formatted into the client's buffers. */
void
strategy_args(const StrategyCtx *ctx, Client *c, const StepDef *step,
			  const char **values, int *nvalues)
{
	int			i;

	*nvalues = 0;
	for (i = 0; i < CS_MAX_ARGS && step->args[i] != ARG_NONE; i++)
	{
		switch (step->args[i])
		{
			case ARG_POOL:
				values[i] = ctx->pool;
				break;
			case ARG_CUSTOMER:
				values[i] = c->customer;
				break;
			case ARG_LOCK_VALUE:
				values[i] = c->lock_value;
				break;
			default:
				snprintf(c->argbuf[i], sizeof(c->argbuf[i]), "%lld",
						 (long long) arg_integer(ctx, c, step->args[i]));
				values[i] = c->argbuf[i];
				break;
		}
		(*nvalues)++;
	}
}

static Action
act(ActionKind kind)
{
	Action		a = {kind, NULL, -1, OUT_NONE, 0};

	return a;
}

static Action
send(const StepDef *step, int prepared)
{
	Action		a = act(ACT_SEND);

	a.step = step;
	a.prepared = prepared;
	return a;
}

static Action
finish(Outcome outcome)
{
	Action		a = act(ACT_FINISH);

	a.outcome = outcome;
	return a;
}

static Action
sleep_for(int64_t us)
{
	Action		a = act(ACT_SLEEP);

	a.sleep_us = us;
	return a;
}

/* Full jitter: uniform in [0, min(cap, base * 2^(tries - 1))]. */
static int64_t
backoff_us(Client *c, int tries)
{
	int64_t		ceiling = BACKOFF_BASE_US;
	int			i;

	for (i = 1; i < tries && ceiling < BACKOFF_CAP_US; i++)
		ceiling *= 2;
	if (ceiling > BACKOFF_CAP_US)
		ceiling = BACKOFF_CAP_US;
	return (int64_t) (erand48(c->rng) * (double) ceiling);
}

/* A fresh random Redlock value: 16 bytes, hex. */
static void
new_lock_value(Client *c)
{
	unsigned char bytes[16];
	int			i;

	if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t) sizeof(bytes))
		for (i = 0; i < (int) sizeof(bytes); i++)
			bytes[i] = (unsigned char) (erand48(c->rng) * 256);
	for (i = 0; i < (int) sizeof(bytes); i++)
		snprintf(c->lock_value + 2 * i, 3, "%02x", bytes[i]);
}

static void
start_try(Client *c)
{
	c->pc = 0;
	c->stage = STAGE_RUN;
	c->ending = OUT_NONE;
	c->armed = 0;
	c->lock_busy = false;
	c->granted = false;
	c->grant_id = 0;
	c->token = 0;
	c->lock_acquired = 0;
}

static Action end_call(const StrategyCtx *ctx, Client *c, Outcome outcome);

/* Run the step at c->pc, or conclude the call past the last one. */
static Action
step_action(const StrategyCtx *ctx, Client *c)
{
	const Program *prog = ctx->prog;

	for (;;)
	{
		const StepDef *step;

		if (c->pc >= prog->nsteps)
			return end_call(ctx, c, OUT_GRANTED);
		step = prog->steps[c->pc];
		if (step->drawn && !c->drawn)
		{
			c->pc++;
			continue;
		}
		switch (step->kind)
		{
			case STEP_SQL:
				return send(step, c->pc);
			case STEP_REDIS_ALL:
				/* taking the lock: a new value for each try */
				new_lock_value(c);
				c->lock_start_ns = now_ns();
				/* FALLTHROUGH */
			case STEP_REDIS:
				return send(step, -1);
			case STEP_PAUSE:
				{
					/* a GC pause strikes a call once, not its retries */
					int64_t		us = prog->race_window_us +
						(c->gc_pause ? prog->gc_pause_us : 0);

					c->gc_pause = false;
					c->pc++;
					if (us > 0)
						return sleep_for(us);
					break;
				}
			case STEP_FAULT:
				return act(ACT_FAULT);
			case STEP_END:
				return end_call(ctx, c, OUT_GRANTED);
		}
	}
}

Action
strategy_begin(const StrategyCtx *ctx, Client *c)
{
	c->tries = 1;
	c->busy_tries = 0;
	c->drawn = erand48(c->rng) < ctx->share;
	start_try(c);
	return step_action(ctx, c);
}

/* After a fault point the driver survived. */
Action
strategy_next(const StrategyCtx *ctx, Client *c)
{
	c->pc++;
	return step_action(ctx, c);
}

/* A pause or a backoff ended. */
Action
strategy_wake(const StrategyCtx *ctx, Client *c)
{
	return step_action(ctx, c);
}

/* Can this redis step be sent: is any of its connections open? */
static bool
redis_reachable(const StrategyCtx *ctx, const Client *c, const StepDef *step)
{
	int			n = step->kind == STEP_REDIS_ALL ? ctx->nlock : 1;
	int			i;

	for (i = 0; i < n; i++)
		if (c->redis[i] != NULL)
			return true;
	return false;
}

/*
 * The call's outcome is decided (or this try's, for OUT_RETRY): run the
 * next due cleanup, or conclude.
 */
static Action
next_cleanup(const StrategyCtx *ctx, Client *c)
{
	const Program *prog = ctx->prog;

	c->stage = STAGE_CLEANUP;
	while (c->armed != 0)
	{
		int			pc = 31 - __builtin_clz(c->armed);
		const StepDef *step = prog->steps[pc];

		c->armed &= ~(1u << pc);
		if ((step->cleanup_always || c->ending == OUT_FAILED) &&
			redis_reachable(ctx, c, step->cleanup))
			return send(step->cleanup, -1);
	}

	if (c->ending != OUT_RETRY)
		return finish(c->ending);
	if (c->lock_busy)
	{
		if (now_ns() - c->call_start_ns >= ctx->lock_wait_ms * 1000000)
		{
			set_first_error(c->stats, "could not acquire the lock within %lld ms",
							(long long) ctx->lock_wait_ms);
			return finish(OUT_FAILED);
		}
		c->busy_tries++;
	}
	else if (c->tries >= ctx->max_tries)
	{
		set_first_error(c->stats, "gave up after %d tries", c->tries);
		return finish(OUT_FAILED);
	}
	else
		c->tries++;
	stat_add(&c->stats->retries, 1);
	start_try(c);
	return sleep_for(backoff_us(c, c->tries + c->busy_tries));
}

/*
 * End the call (or the try) early: roll back, then clean up.  After its
 * grant committed, a call that fails is granted all the same, with an
 * error counted for the step that failed.
 */
static Action
end_call(const StrategyCtx *ctx, Client *c, Outcome outcome)
{
	PGTransactionStatusType ts;

	if (c->granted && outcome != OUT_GRANTED)
	{
		stat_add(&c->stats->errors, 1);
		outcome = OUT_GRANTED;
	}
	c->ending = outcome;
	ts = c->conn ? PQtransactionStatus(c->conn) : PQTRANS_UNKNOWN;
	if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
	{
		c->stage = STAGE_ROLLBACK;
		return send(&rollback_step, ctx->prog->rollback);
	}
	return next_cleanup(ctx, c);
}

/* The step at c->pc answered as it should: arm its cleanup, go on. */
static Action
step_done(const StrategyCtx *ctx, Client *c)
{
	if (ctx->prog->steps[c->pc]->cleanup)
		c->armed |= 1u << c->pc;
	if (ctx->prog->commits_grant[c->pc])
		c->granted = true;
	c->pc++;
	return step_action(ctx, c);
}

/*
 * The PostgreSQL connection broke (the driver has closed it): the call has
 * failed, or ends as it was ending; the cleanups that need only Redis run.
 */
Action
strategy_abandon(const StrategyCtx *ctx, Client *c, Outcome outcome)
{
	if (c->stage == STAGE_RUN)
		return end_call(ctx, c, outcome);
	return next_cleanup(ctx, c);
}

static int64_t
int_value(PGresult *res, int col)
{
	if (PQntuples(res) < 1 || PQnfields(res) <= col ||
		PQgetisnull(res, 0, col))
		return 0;
	return strtoll(PQgetvalue(res, 0, col), NULL, 10);
}

static Outcome
no_row(const StepDef *step)
{
	return step->no_row == OUT_NONE ? OUT_REFUSED : step->no_row;
}

/* A statement succeeded; res is its result. */
Action
strategy_result(const StrategyCtx *ctx, Client *c, PGresult *res)
{
	const StepDef *step;

	if (c->stage == STAGE_ROLLBACK)
		return next_cleanup(ctx, c);
	step = ctx->prog->steps[c->pc];
	switch (step->reply)
	{
		case REPLY_STOCK:
			if (PQntuples(res) != 1)
				return end_call(ctx, c, no_row(step));
			c->remaining = int_value(res, 0);
			c->version = int_value(res, 1);
			if (c->remaining < QTY)
				return end_call(ctx, c, OUT_REFUSED);
			break;
		case REPLY_ROW:
			if (PQntuples(res) != 1)
				return end_call(ctx, c, no_row(step));
			break;
		case REPLY_GRANT:
			if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
				return end_call(ctx, c, OUT_REFUSED);
			c->grant_id = int_value(res, 0);
			break;
		case REPLY_CONFIRM:
			if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "t") != 0)
			{
				set_first_error(c->stats, "hold %lld was confirmed already",
								(long long) c->grant_id);
				return end_call(ctx, c, OUT_FAILED);
			}
			stat_add(&c->stats->confirms, 1);
			break;
		default:
			break;
	}
	return step_done(ctx, c);
}

static bool
sqlstate_is(const char *sqlstate, const char *code)
{
	return sqlstate != NULL && strcmp(sqlstate, code) == 0;
}

/*
 * A statement failed with an error (the connection is still good):
 * serialization failures and deadlocks are retried, a confirm too late
 * ends the call, the rest fails, and the first message is kept.
 */
Action
strategy_error(const StrategyCtx *ctx, Client *c, const char *sqlstate,
			   const char *message)
{
	bool		retry = sqlstate_is(sqlstate, "40001") ||
		sqlstate_is(sqlstate, "40P01");

	if (c->stage == STAGE_RUN &&
		ctx->prog->steps[c->pc]->reply == REPLY_CONFIRM &&
		(sqlstate_is(sqlstate, SQLSTATE_HOLD_EXPIRED) ||
		 sqlstate_is(sqlstate, SQLSTATE_CLAIM_RELEASED)))
	{
		stat_add(&c->stats->confirms_late, 1);
		return end_call(ctx, c, OUT_GRANTED);
	}
	if (retry && !c->granted && c->stage == STAGE_RUN)
		return end_call(ctx, c, OUT_RETRY);
	set_first_error(c->stats, "%s", message);
	if (c->stage == STAGE_ROLLBACK)
	{
		c->ending = OUT_FAILED;
		return next_cleanup(ctx, c);
	}
	return end_call(ctx, c, OUT_FAILED);
}

/* The lock step heard from every instance: held, or busy. */
static Action
lock_verdict(const StrategyCtx *ctx, Client *c)
{
	int64_t		elapsed_ms = (now_ns() - c->lock_start_ns) / 1000000;
	int64_t		drift_ms = ctx->lease_ms / 100 + 2;

	c->armed |= 1u << c->pc;	/* release wherever it was set */
	if (c->lock_acquired >= LOCK_QUORUM &&
		ctx->lease_ms - elapsed_ms - drift_ms > 0)
	{
		c->pc++;
		return step_action(ctx, c);
	}
	c->lock_busy = true;
	return end_call(ctx, c, OUT_RETRY);
}

/*
 * One Redis answer arrived for instance (ok: an integer value; not ok: an
 * error reply or a lost connection, described by error).
 */
Action
strategy_redis_reply(const StrategyCtx *ctx, Client *c, int instance,
					 bool ok, int64_t value, const char *error)
{
	const StepDef *step = c->stage == STAGE_RUN ? ctx->prog->steps[c->pc] : NULL;

	if (step && step->reply == REPLY_QUORUM && ok && value >= 1)
	{
		int64_t		token = value * CS_LOCK_INSTANCES + instance;

		c->lock_acquired++;
		if (token > c->token)
			c->token = token;
	}
	if (c->redis_waiting != 0)
		return act(ACT_WAIT);	/* the other instances have not answered */
	if (step == NULL)
		return next_cleanup(ctx, c);
	if (step->reply == REPLY_QUORUM)
		return lock_verdict(ctx, c);
	if (!ok)
	{
		set_first_error(c->stats, "Redis %d: %s", instance + 1, error);
		return end_call(ctx, c, OUT_FAILED);
	}
	if (step->reply == REPLY_TAKEN && value < 0)
		return end_call(ctx, c, OUT_REFUSED);
	return step_done(ctx, c);
}
