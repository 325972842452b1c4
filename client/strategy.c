/*-------------------------------------------------------------------------
 *
 * strategy.c
 *		The strategies, as data, and the interpreter that runs them.
 *
 * As pgbench's builtin_script[] holds its built-in scripts, the table
 * builtin_strategies[] below holds every strategy: its name, its help
 * line, whether it claims to be correct, where its stock lives (which
 * decides the setup and the read-back) and its steps.  A step is one
 * prepared SQL statement, one Lua script on Redis (on the first instance,
 * or on every Redlock instance at once), or the pause between a read and
 * its write; the step says which values it sends and what its answer
 * means (REPLY_STOCK: a row with the stock, sold out below qty; REPLY_GRANT:
 * the grant id; ...).  A Redis step may carry a cleanup that runs when the
 * call ends: a lock's release always, a compensation only when the call
 * failed.  Adding a strategy, or a workload such as a hold that is claimed
 * and confirmed later, is one more entry.
 *
 * Steps may follow the grant.  A step can be "drawn": only a share of the
 * calls, drawn when the call begins, run it, and the others skip it.  A
 * confirm (REPLY_CONFIRM) that comes too late (the hold expired: UC001,
 * or was returned: UC002) is a legal end, counted apart, not an error.
 * Once a call's grant has committed, the call is granted whatever the
 * steps after it do: a step after it that fails is counted as an error,
 * never retried, and no compensation runs.
 *
 * Holds (--hold) are such an entry, hold_strategy, outside the table: it
 * replaces claim (strategy_for()).  A hold of --hold seconds (coupon_hold),
 * then, for the calls drawn to confirm (--confirm of them), the race
 * window, the buyer at the checkout, and coupon_confirm; the others
 * abandon their hold to the expiry.
 *
 * The driver (driver.c) does the I/O; the functions here only decide.
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
 * program_build() prepares a strategy for a point: it fills the extension's
 * schema into the SQL, notes which steps run inside BEGIN ... COMMIT and
 * which can commit a grant (for the "in doubt" count of broken
 * connections), and, when a fault is asked for, puts the fault point right
 * after the step that takes the coupon.  A strategy whose take commits by
 * itself (claim, insert-only) then runs in an explicit transaction, so
 * that "taken but not committed" exists for it too.
 *
 * Redlock (Redis's distributed lock, the seed's answer for three servers):
 * SET key value NX PX lease on each of three independent instances, sent
 * at once; the lock is held when at least two answered yes and the time
 * spent is less than the lease minus the clock drift (1% of the lease plus
 * 2 ms).  Otherwise, and after the work, it is released everywhere with a
 * compare-and-delete script, so a holder whose lease expired never deletes
 * its successor's lock.  The value is 16 random bytes per try.
 *
 * Fencing (redlock-fenced, Kleppmann's fix): the lock script also
 * increments a counter on each instance that grants it; the token is the
 * largest counter * 3 + instance among the granting ones, so two
 * acquisitions never share a token.  PostgreSQL judges: the read is an
 * UPDATE that records the token in the counter row if it is newer than
 * the one there (a stale token is refused before it reads anything), and
 * the write changes the stock only if the row still carries the same
 * token.  Between a try's read and its write no other holder can have
 * written, since its read would have replaced the token: a holder whose
 * lease ran out mid-write finds its token replaced and retries.  Fencing
 * the write alone would not do: a stale holder's write that lands before
 * its successor's (its token older than the successor's, but newer than
 * any the row has seen) would pass, and the successor, who read the same
 * stock, would sell the same coupon again.
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "strategy.h"

#define QTY					1
#define SQLSTATE_HOLD_EXPIRED	"UC001"
#define SQLSTATE_CLAIM_RELEASED "UC002"
#define BACKOFF_BASE_US		1000
#define BACKOFF_CAP_US		100000
#define LOCK_QUORUM			(CS_LOCK_INSTANCES / 2 + 1)

#define GRANT_SQL \
	"INSERT INTO coupon_stress.grants (pool, customer, qty) " \
	"VALUES ($1::text, $2::text, $3::int) RETURNING id"
#define READ_SQL	"SELECT remaining FROM coupon_stress.counter WHERE id = 1"
#define NAIVE_WRITE_SQL \
	"UPDATE coupon_stress.counter SET remaining = $1::bigint WHERE id = 1"

/* Decrement the stock if enough is left: the new stock, or -1. */
#define TAKE_LUA \
	"local n = tonumber(redis.call('GET', KEYS[1]) or '-1') " \
	"if n >= tonumber(ARGV[1]) then " \
	"return redis.call('DECRBY', KEYS[1], ARGV[1]) end return -1"
#define GIVE_BACK_LUA	"return redis.call('INCRBY', KEYS[1], ARGV[1])"
#define LOCK_LUA \
	"if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then " \
	"return 1 end return 0"
#define FENCED_LOCK_LUA \
	"if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then " \
	"return redis.call('INCR', KEYS[2]) end return 0"
#define UNLOCK_LUA \
	"if redis.call('GET', KEYS[1]) == ARGV[1] then " \
	"return redis.call('DEL', KEYS[1]) end return 0"

#define SQL(t)		{.kind = STEP_SQL, .text = (t)}
#define PAUSE		{.kind = STEP_PAUSE}
#define GRANT		{.kind = STEP_SQL, .text = GRANT_SQL, \
					 .args = {ARG_POOL, ARG_CUSTOMER, ARG_QTY}, \
					 .reply = REPLY_GRANT}
#define READ_STOCK(t) {.kind = STEP_SQL, .text = (t), .reply = REPLY_STOCK}
/* The seed's read-check-write: read, check, write back the read - 1. */
#define NAIVE_STEPS \
	READ_STOCK(READ_SQL), \
	PAUSE, \
	SQL("BEGIN"), \
	{.kind = STEP_SQL, .text = NAIVE_WRITE_SQL, \
	 .args = {ARG_READ_LESS_QTY}, .takes = true}, \
	GRANT, \
	SQL("COMMIT")
#define LOCK(lua, fence) {.kind = STEP_REDIS_ALL, .text = (lua), \
					 .keys = {CS_LOCK_KEY, (fence)}, \
					 .args = {ARG_LOCK_VALUE, ARG_LEASE_MS}, \
					 .reply = REPLY_QUORUM, .cleanup = &unlock, \
					 .cleanup_always = true}

static const StepDef give_back = {
	.kind = STEP_REDIS, .text = GIVE_BACK_LUA, .keys = {CS_STOCK_KEY},
	.args = {ARG_QTY}
};

static const StepDef unlock = {
	.kind = STEP_REDIS_ALL, .text = UNLOCK_LUA, .keys = {CS_LOCK_KEY},
	.args = {ARG_LOCK_VALUE}
};

const StrategyDef builtin_strategies[] = {
	{
		"naive", "read, check, write back read - 1", false,
		STOCK_COUNTER, "coupon_stress.counter", false, 0,
		{NAIVE_STEPS}
	},
	{
		"occ", "version column + trigger, retries", true,
		STOCK_COUNTER, "coupon_stress.occ_counter", true, 0,
		{
			READ_STOCK("SELECT remaining, version FROM coupon_stress.occ_counter "
					   "WHERE id = 1"),
			PAUSE,
			SQL("BEGIN"),
			{.kind = STEP_SQL,
				.text = "UPDATE coupon_stress.occ_counter "
				"SET remaining = remaining - $1::int, version = $2::bigint "
				"WHERE id = 1",
			.args = {ARG_QTY, ARG_VERSION}, .takes = true},
			GRANT,
			SQL("COMMIT")
		}
	},
	{
		"for-update", "SELECT ... FOR UPDATE, then write", true,
		STOCK_COUNTER, "coupon_stress.counter", false, 0,
		{
			SQL("BEGIN"),
			READ_STOCK(READ_SQL " FOR UPDATE"),
			PAUSE,
			{.kind = STEP_SQL,
				.text = "UPDATE coupon_stress.counter "
				"SET remaining = remaining - $1::int WHERE id = 1",
			.args = {ARG_QTY}, .takes = true},
			GRANT,
			SQL("COMMIT")
		}
	},
	{
		"atomic", "one conditional UPDATE, then INSERT", true,
		STOCK_COUNTER, "coupon_stress.counter", false, 0,
		{
			SQL("BEGIN"),
			{.kind = STEP_SQL,
				.text = "UPDATE coupon_stress.counter "
				"SET remaining = remaining - $1::int "
				"WHERE id = 1 AND remaining >= $1::int RETURNING remaining",
			.args = {ARG_QTY}, .reply = REPLY_ROW, .takes = true},
			GRANT,
			SQL("COMMIT")
		}
	},
	{
		"claim", "SELECT coupon_claim(...)", true,
		STOCK_POOL, NULL, true, 0,
		{
			{.kind = STEP_SQL,
				.text = "SELECT @extschema@.coupon_claim($1::text, $2::text, $3::int)",
				.args = {ARG_POOL, ARG_CUSTOMER, ARG_QTY},
			.reply = REPLY_GRANT, .takes = true}
		}
	},
	{
		"insert-only", "the grant row alone: the ceiling", false,
		STOCK_NONE, NULL, false, 0,
		{
			{.kind = STEP_SQL, .text = GRANT_SQL,
				.args = {ARG_POOL, ARG_CUSTOMER, ARG_QTY},
			.reply = REPLY_GRANT, .takes = true}
		}
	},
	{
		"redis", "Redis decrement, INSERT, give back", true,
		STOCK_REDIS, NULL, false, 1,
		{
			{.kind = STEP_REDIS, .text = TAKE_LUA, .keys = {CS_STOCK_KEY},
				.args = {ARG_QTY}, .reply = REPLY_TAKEN, .takes = true,
			.cleanup = &give_back},
			GRANT
		}
	},
	{
		"redlock", "Redlock (3 Redis) around naive", true,
		STOCK_COUNTER, "coupon_stress.counter", false, CS_LOCK_INSTANCES,
		{
			LOCK(LOCK_LUA, NULL),
			NAIVE_STEPS
		}
	},
	{
		"redlock-fenced", "redlock, its token fences the write", true,
		STOCK_COUNTER, "coupon_stress.counter", false, CS_LOCK_INSTANCES,
		{
			LOCK(FENCED_LOCK_LUA, CS_FENCE_KEY),
			{.kind = STEP_SQL,
				.text = "UPDATE coupon_stress.counter SET fence = $1::bigint "
				"WHERE id = 1 AND fence < $1::bigint RETURNING remaining",
				.args = {ARG_TOKEN}, .reply = REPLY_STOCK,
			.no_row = OUT_RETRY},
			PAUSE,
			SQL("BEGIN"),
			{.kind = STEP_SQL,
				.text = "UPDATE coupon_stress.counter SET remaining = $1::bigint "
				"WHERE id = 1 AND fence = $2::bigint RETURNING remaining",
				.args = {ARG_READ_LESS_QTY, ARG_TOKEN}, .reply = REPLY_ROW,
			.no_row = OUT_RETRY, .takes = true},
			GRANT,
			SQL("COMMIT")
		}
	},
};

const int	n_builtin_strategies =
	sizeof(builtin_strategies) / sizeof(builtin_strategies[0]);

/* claim under --hold: hold, then, for the calls drawn, think and confirm. */
static const StrategyDef hold_strategy = {
	.name = "claim",
	.description = "SELECT coupon_hold(...), coupon_confirm(...)",
	.exact = true,
	.stock = STOCK_HOLDS,
	.needs_extension = true,
	.steps = {
		{.kind = STEP_SQL,
			.text = "SELECT @extschema@.coupon_hold($1::text, $2::text, "
			"$3::bigint * interval '1 microsecond', $4::int)",
			.args = {ARG_POOL, ARG_CUSTOMER, ARG_TTL, ARG_QTY},
		.reply = REPLY_GRANT, .takes = true},
		{.kind = STEP_PAUSE, .drawn = true},
		{.kind = STEP_SQL, .text = "SELECT @extschema@.coupon_confirm($1::bigint)",
			.args = {ARG_GRANT_ID}, .reply = REPLY_CONFIRM, .drawn = true}
	}
};

_Static_assert(sizeof(builtin_strategies) / sizeof(builtin_strategies[0]) <=
			   CS_MAX_STRATEGIES, "raise CS_MAX_STRATEGIES");

static const StepDef begin_step = SQL("BEGIN");
static const StepDef commit_step = SQL("COMMIT");
static const StepDef rollback_step = SQL("ROLLBACK");
static const StepDef fault_step = {.kind = STEP_FAULT};

const StrategyDef *
strategy_by_name(const char *name)
{
	int			i;

	for (i = 0; i < n_builtin_strategies; i++)
		if (strcmp(builtin_strategies[i].name, name) == 0)
			return &builtin_strategies[i];
	return NULL;
}

/* What a point of table entry s runs: claim's holds under --hold. */
const StrategyDef *
strategy_for(const Options *opt, int s)
{
	if (opt->hold_us > 0 && builtin_strategies[s].stock == STOCK_POOL)
		return &hold_strategy;
	return &builtin_strategies[s];
}

/* The Redis instances the chosen strategies use. */
int
strategies_redis(const Options *opt)
{
	int			n = 0;
	int			s;

	for (s = 0; s < n_builtin_strategies; s++)
		if (opt->strategies[s] && builtin_strategies[s].redis > n)
			n = builtin_strategies[s].redis;
	return n;
}

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
program_build(Program *prog, const StrategyDef *s, const char *extschema,
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
			!fill_schema(prog->sql[i], CS_SQL_LEN, step->text, extschema))
		{
			snprintf(err, errlen,
					 "strategy %s needs the coupon extension, which is not installed",
					 s->name);
			return false;
		}
	}
	prog->rollback = prog->nsteps;
	snprintf(prog->sql[prog->rollback], CS_SQL_LEN, "ROLLBACK");
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
