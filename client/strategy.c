/*-------------------------------------------------------------------------
 *
 * strategy.c
 *		The strategies, as a table.
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
 * Holds (--hold) are such an entry, hold_strategy, outside the table: it
 * replaces claim (strategy_for()).  A hold of --hold seconds (coupon_hold),
 * then, for the calls drawn to confirm (--confirm of them), the race
 * window, the buyer at the checkout, and coupon_confirm; the others
 * abandon their hold to the expiry.
 *
 * Redlock (Redis's distributed lock, the seed's answer for three servers):
 * SET key value NX PX lease on each of three independent instances, sent
 * at once; the lock is held when at least two answered yes and the time
 * spent is less than the lease minus the clock drift (1% of the lease plus
 * 2 ms).  Otherwise, and after the work, it is released everywhere with a
 * compare-and-delete script, so a holder whose lease expired never deletes
 * its successor's lock.  The value is 16 random bytes per try.  (The
 * interpreter, program.c, takes the lock's verdict: lock_verdict().)
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
 * Floor: the strategies, beside the interpreter that runs them
 * (program.c).  The command line (options.c) and the run (run.c) read the
 * table; it calls nothing.
 *
 *-------------------------------------------------------------------------
 */
#include <string.h>

#include "strategy.h"

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
		{.kind = STEP_SQL,
			.text = "SELECT @extschema@.coupon_confirm($1::bigint, $2::text)",
			.args = {ARG_GRANT_ID, ARG_CUSTOMER}, .reply = REPLY_CONFIRM,
		.drawn = true}
	}
};

_Static_assert(sizeof(builtin_strategies) / sizeof(builtin_strategies[0]) <=
			   CS_MAX_STRATEGIES, "raise CS_MAX_STRATEGIES");

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

/* Does a strategy chosen need the coupon extension? */
bool
strategies_need_extension(const Options *opt)
{
	int			s;

	for (s = 0; s < n_builtin_strategies; s++)
		if (opt->strategies[s] && builtin_strategies[s].needs_extension)
			return true;
	return false;
}

/* The first strategy chosen that does not claim from the pool, or NULL. */
const char *
strategy_outside_pool(const Options *opt)
{
	int			s;

	for (s = 0; s < n_builtin_strategies; s++)
		if (opt->strategies[s] && !strategy_in_pool(&builtin_strategies[s]))
			return builtin_strategies[s].name;
	return NULL;
}
