/*-------------------------------------------------------------------------
 *
 * strategy.c
 *		The SQL of each strategy and what a client does after each result.
 *
 * A strategy is a small state machine over a few prepared statements
 * (steps).  The driver sends a step, waits for its result without blocking
 * its thread, and asks this file what comes next: send another step, sleep
 * (the race window, or the backoff before an occ retry), or finish the
 * call as granted, refused (sold out) or failed.  Keeping the decisions
 * here and the I/O in driver.c lets one event loop drive every strategy
 * the same way, so the comparison is fair: every hot statement is prepared
 * once per connection and sent with PQsendQueryPrepared, like pgbench's
 * -M prepared.
 *
 * One call, per strategy (qty is 1; grant = INSERT INTO coupon_stress.grants
 * (pool, customer, qty) ... RETURNING id, pool being the strategy's name):
 *
 *	naive		SELECT remaining; if > 0: [race window]; BEGIN; UPDATE
 *				remaining = <value read - 1>; grant; COMMIT.  The seed's race.
 *	occ			SELECT remaining, version; if > 0: [race window]; BEGIN;
 *				UPDATE remaining = remaining - 1, version = <version read>;
 *				grant; COMMIT.  The table carries the extension's
 *				coupon_occ_version('version') trigger, which raises SQLSTATE
 *				40001 when the version carried is stale and bumps it
 *				otherwise.  On 40001: ROLLBACK, sleep a random time in
 *				[0, min(100 ms, 1 ms * 2^(tries-1))] (exponential backoff with
 *				full jitter) and start again from the read, at most
 *				--max-tries tries; each retry is counted.
 *	for-update	BEGIN; SELECT remaining ... FOR UPDATE; if > 0: [race window];
 *				UPDATE remaining = remaining - 1; grant; COMMIT.
 *	atomic		BEGIN; UPDATE remaining = remaining - qty WHERE remaining >=
 *				qty RETURNING remaining; if it returned the row: grant; COMMIT.
 *				The textbook fix: one conditional UPDATE, then the grant, the
 *				way an application writes it.  (client/pgbench-compare.sh also
 *				measures the one-statement form, WITH d AS (UPDATE ...) INSERT.)
 *	claim		SELECT <extschema>.coupon_claim(pool, customer, qty); a
 *				non-NULL id is a grant.
 *	insert-only	the grant alone, no check: the ceiling for a durable claim,
 *				not a correct strategy.
 *
 * The race window is spent in the client, between the read and the write,
 * with the connection idle (inside the transaction for for-update, where
 * it holds the row lock, as an application would).
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "coupon-stress.h"

#define QTY			"1"
#define BACKOFF_BASE_US		1000
#define BACKOFF_CAP_US		100000

const char *strategy_names[S_COUNT] = {
	"naive", "occ", "for-update", "atomic", "claim", "insert-only"
};

#define GRANT_SQL \
	"INSERT INTO coupon_stress.grants (pool, customer, qty) " \
	"VALUES ($1::text, $2::text, $3::int) RETURNING id"

/* The pool column of the grant rows; the claim strategy's pool name. */
const char *
strategy_pool(Strategy s)
{
	return s == S_CLAIM ? "stress_claim" : strategy_names[s];
}

bool
strategy_uses_step(Strategy s, Step step)
{
	switch (s)
	{
		case S_NAIVE:
		case S_OCC:
		case S_FOR_UPDATE:
			return step != ST_ONE;
		case S_ATOMIC:
			return step != ST_ONE && step != ST_READ;
		default:
			return step == ST_ONE;
	}
}

/* Can the statement of this step commit a grant? */
bool
strategy_may_commit(Strategy s, Step step)
{
	(void) s;
	return step == ST_COMMIT || step == ST_ONE;
}

/*
 * The SQL text of a step, into buf.  Returns 0, or -1 when the step is not
 * part of the strategy or the text does not fit.
 */
int
strategy_sql(Strategy s, const char *ext, Step step, char *buf, size_t len)
{
	const char *sql = NULL;
	int			n;

	if (!strategy_uses_step(s, step))
		return -1;
	switch (step)
	{
		case ST_BEGIN:
			sql = "BEGIN";
			break;
		case ST_COMMIT:
			sql = "COMMIT";
			break;
		case ST_ROLLBACK:
			sql = "ROLLBACK";
			break;
		case ST_GRANT:
			sql = GRANT_SQL;
			break;
		case ST_READ:
			if (s == S_NAIVE)
				sql = "SELECT remaining FROM coupon_stress.counter WHERE id = 1";
			else if (s == S_OCC)
				sql = "SELECT remaining, version FROM coupon_stress.occ_counter "
					"WHERE id = 1";
			else
				sql = "SELECT remaining FROM coupon_stress.counter WHERE id = 1 "
					"FOR UPDATE";
			break;
		case ST_WRITE:
			if (s == S_NAIVE)
				sql = "UPDATE coupon_stress.counter SET remaining = $1::bigint "
					"WHERE id = 1";
			else if (s == S_OCC)
				sql = "UPDATE coupon_stress.occ_counter "
					"SET remaining = remaining - $1::int, version = $2::bigint "
					"WHERE id = 1";
			else if (s == S_ATOMIC)
				sql = "UPDATE coupon_stress.counter "
					"SET remaining = remaining - $1::int "
					"WHERE id = 1 AND remaining >= $1::int RETURNING remaining";
			else
				sql = "UPDATE coupon_stress.counter "
					"SET remaining = remaining - $1::int WHERE id = 1";
			break;
		case ST_ONE:
			if (s == S_INSERT_ONLY)
				sql = GRANT_SQL;
			else if (s == S_CLAIM)
			{
				if (ext == NULL)
					return -1;
				n = snprintf(buf, len,
							 "SELECT %s.coupon_claim($1::text, $2::text, $3::int)",
							 ext);
				return n > 0 && (size_t) n < len ? 0 : -1;
			}
			break;
		default:
			break;
	}
	if (sql == NULL)
		return -1;
	n = snprintf(buf, len, "%s", sql);
	return n > 0 && (size_t) n < len ? 0 : -1;
}

/* The parameters of a step, pointing into the client. */
void
strategy_params(const StrategyCtx *ctx, Client *c, Step step,
				const char **values, int *nparams)
{
	*nparams = 0;
	switch (step)
	{
		case ST_GRANT:
		case ST_ONE:
			values[0] = ctx->pool;
			values[1] = c->customer;
			values[2] = QTY;
			*nparams = 3;
			break;
		case ST_WRITE:
			if (ctx->strategy == S_NAIVE)
			{
				values[0] = c->arg;		/* remaining read - 1 */
				*nparams = 1;
			}
			else if (ctx->strategy == S_OCC)
			{
				values[0] = QTY;
				values[1] = c->arg2;	/* version read */
				*nparams = 2;
			}
			else
			{
				values[0] = QTY;
				*nparams = 1;
			}
			break;
		default:
			break;
	}
}

static Action
send(Step step)
{
	Action		a = {ACT_SEND, step, OUT_NONE, 0};

	return a;
}

static Action
finish(Outcome outcome)
{
	Action		a = {ACT_FINISH, ST_COUNT, outcome, 0};

	return a;
}

static Action
sleep_then(Step step, int64_t us)
{
	Action		a = {ACT_SLEEP, step, OUT_NONE, us};

	if (us <= 0)
		return send(step);
	return a;
}

/* Full jitter: uniform in [0, min(cap, base * 2^(tries - 1))]. */
static int64_t
backoff_us(Client *c)
{
	int64_t		ceiling = BACKOFF_BASE_US;
	int			i;

	for (i = 1; i < c->tries && ceiling < BACKOFF_CAP_US; i++)
		ceiling *= 2;
	if (ceiling > BACKOFF_CAP_US)
		ceiling = BACKOFF_CAP_US;
	return (int64_t) (erand48(c->rng) * (double) ceiling);
}

Action
strategy_begin(const StrategyCtx *ctx, Client *c)
{
	c->tries = 1;
	c->after = OUT_NONE;
	c->grant_id = 0;
	switch (ctx->strategy)
	{
		case S_NAIVE:
		case S_OCC:
			return send(ST_READ);
		case S_FOR_UPDATE:
		case S_ATOMIC:
			return send(ST_BEGIN);
		default:
			return send(ST_ONE);
	}
}

static int64_t
int_value(PGresult *res, int col)
{
	if (PQntuples(res) < 1 || PQnfields(res) <= col ||
		PQgetisnull(res, 0, col))
		return 0;
	return strtoll(PQgetvalue(res, 0, col), NULL, 10);
}

/* A statement of the call succeeded; res is its result. */
Action
strategy_result(const StrategyCtx *ctx, Client *c, PGresult *res)
{
	Strategy	s = ctx->strategy;

	switch (c->step)
	{
		case ST_READ:
			if (PQntuples(res) != 1)
			{
				/* the counter row is gone: nothing to grant */
				if (s == S_FOR_UPDATE)
				{
					c->after = OUT_REFUSED;
					return send(ST_COMMIT);
				}
				return finish(OUT_REFUSED);
			}
			c->remaining = int_value(res, 0);
			if (c->remaining < 1)
			{
				if (s == S_FOR_UPDATE)
				{
					c->after = OUT_REFUSED;
					return send(ST_COMMIT);
				}
				return finish(OUT_REFUSED);
			}
			if (s == S_NAIVE)
				snprintf(c->arg, sizeof(c->arg), "%lld",
						 (long long) (c->remaining - 1));
			else if (s == S_OCC)
			{
				c->version = int_value(res, 1);
				snprintf(c->arg2, sizeof(c->arg2), "%lld",
						 (long long) c->version);
			}
			return sleep_then(s == S_FOR_UPDATE ? ST_WRITE : ST_BEGIN,
							  ctx->race_window_us);
		case ST_BEGIN:
			return send(s == S_FOR_UPDATE ? ST_READ : ST_WRITE);
		case ST_WRITE:
			if (s == S_ATOMIC && PQntuples(res) != 1)
			{
				/* the conditional UPDATE found too few: sold out */
				c->after = OUT_REFUSED;
				return send(ST_COMMIT);
			}
			return send(ST_GRANT);
		case ST_GRANT:
			c->grant_id = int_value(res, 0);
			c->after = OUT_GRANTED;
			return send(ST_COMMIT);
		case ST_COMMIT:
			return finish(c->after);
		case ST_ROLLBACK:
			if (c->after == OUT_RETRY)
			{
				c->tries++;
				return sleep_then(ST_READ, backoff_us(c));
			}
			return finish(c->after);
		case ST_ONE:
			if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
			{
				c->grant_id = int_value(res, 0);
				return finish(OUT_GRANTED);
			}
			return finish(OUT_REFUSED);
		default:
			return finish(OUT_FAILED);
	}
}

/*
 * A statement of the call failed with an error (the connection is still
 * good).  occ retries serialization failures; everything else fails the
 * call, rolling back first when a transaction is open.
 */
Action
strategy_error(const StrategyCtx *ctx, Client *c, const char *sqlstate,
			   bool in_transaction)
{
	if (c->step == ST_ROLLBACK)
		return finish(OUT_FAILED);
	if (ctx->strategy == S_OCC && sqlstate != NULL &&
		strcmp(sqlstate, "40001") == 0 && c->tries < ctx->max_tries)
	{
		stat_add(&c->stats->retries, 1);
		if (in_transaction)
		{
			c->after = OUT_RETRY;
			return send(ST_ROLLBACK);
		}
		c->tries++;
		return sleep_then(ST_READ, backoff_us(c));
	}
	if (in_transaction)
	{
		c->after = OUT_FAILED;
		return send(ST_ROLLBACK);
	}
	return finish(OUT_FAILED);
}

/* A sleep ended: send the step it was waiting for. */
Action
strategy_wake(const StrategyCtx *ctx, Client *c)
{
	(void) ctx;
	return send(c->step);
}
