/*-------------------------------------------------------------------------
 *
 * lifecycle.c
 *		Release, confirm and extend a claim; expire holds.
 *
 * Floor: an SQL entry point, called also by claim.c, bulk.c (the expiry
 * of overdue holds by a claimer) and worker.c.  Calls the escrow, the
 * ledger, locks and the semaphore.
 *
 * A hold is a claim whose ledger row carries an expiry.  "Held" is just
 * "claimed with expires_at set": the capacity, the per-customer limit and
 * the load from the ledger need no other state, and an expired hold that
 * nobody has returned yet is still a live row until someone does.
 *
 *	release		released_at = clock_timestamp(); the coupons return to the pool when
 *				the releasing transaction commits
 *	confirm		expires_at = NULL: the hold becomes a permanent claim
 *	extend		expires_at = clock_timestamp() + ttl
 *	expire		a release done by someone else, of a hold whose time is up:
 *				by the background worker (worker.c), or by a claimer that
 *				finds too few coupons, in its own transaction, which then
 *				uses the coupons it returned (escrow.c)
 *
 * Each first locks the claim's row (a statement of catalog.c, FOR UPDATE)
 * and looks at it again under the lock, so that of a confirm, a release,
 * an extend and any number of expirers racing for one hold, the first to
 * lock it wins and the others find it changed: exactly one of them acts.
 * Expirers skip rows locked by others (SKIP LOCKED) instead of waiting.
 * Whether a hold is overdue is judged by the clock (clock_timestamp()),
 * not by the transaction's start.
 *
 * Note about locking: the row locks of the ledger; see also ledger.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "args.h"
#include "catalog.h"
#include "common.h"
#include "entry.h"
#include "escrow.h"
#include "ledger.h"
#include "lifecycle.h"
#include "locks.h"
#include "semaphore.h"

PG_FUNCTION_INFO_V1(coupon_release);
PG_FUNCTION_INFO_V1(coupon_confirm);
PG_FUNCTION_INFO_V1(coupon_hold_extend);

/* Holds a claimer expires at most per attempt. */
#define COUPON_REFILL_ROWS	32

/* A claim's row, locked. */
typedef struct LockedClaim
{
	ItemPointerData tid;
	char	   *pool;
	int32		qty;
	TimestampTz released_at;	/* 0 if live */
	TimestampTz expires_at;		/* 0 if permanent */
	char	   *customer;
} LockedClaim;

/* A text column of a result row, copied out of SPI's memory. */
static char *
sql_text(uint64 row, int col)
{
	char	   *value = TextDatumGetCString(coupon_sql_value(row, col, NULL));
	char	   *copy = SPI_palloc(strlen(value) + 1);

	strcpy(copy, value);
	return copy;
}

static TimestampTz
sql_timestamp(uint64 row, int col)
{
	bool		isnull;
	Datum		value = coupon_sql_value(row, col, &isnull);

	return isnull ? 0 : DatumGetTimestampTz(value);
}

/*
 * The customer argument of the overloads that take one (argument argno),
 * or NULL for a call without it.
 */
static const char *
customer_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_NARGS() <= argno)
		return NULL;
	coupon_arg_not_null(fcinfo, argno, "customer");
	return TextDatumGetCString(PG_GETARG_DATUM(argno));
}

/*
 * Lock the claim's row.  With a customer (not NULL), a claim that is not
 * that customer's is an error before anything else about it is said: that
 * it does not exist included.
 */
static void
lock_claim(int64 claim_id, const char *customer, LockedClaim *c)
{
	Datum		args[1];
	bool		found;

	coupon_sql_begin();
	args[0] = Int64GetDatum(claim_id);
	found = coupon_sql_run(COUPON_SQL_LOCK_CLAIM, args) == 1;
	if (found)
	{
		c->tid = *(ItemPointer) DatumGetPointer(coupon_sql_value(0, 1, NULL));
		c->pool = sql_text(0, 2);
		c->qty = DatumGetInt32(coupon_sql_value(0, 3, NULL));
		c->released_at = sql_timestamp(0, 4);
		c->expires_at = sql_timestamp(0, 5);
		c->customer = sql_text(0, 6);
	}
	coupon_sql_end();
	if (customer && (!found || strcmp(c->customer, customer) != 0))
		coupon_claim_not_customers(claim_id, customer);
	if (!found)
		coupon_claim_missing(claim_id);
}

/*
 * Return a locked claim's coupons to its pool when this transaction
 * commits.  If the release is undone, a hold is live again and expires at
 * expires_at (escrow.c tells the pool).
 */
static void
release_locked(const char *pool, ItemPointer tid, int32 qty,
			   TimestampTz expires_at)
{
	CouponPoolKey key;

	coupon_make_key(&key, pool);
	(void) coupon_pool_give(&key, COUPON_PENDING_RELEASE, qty, expires_at);
	coupon_ledger_change_claim(tid, COUPON_CHANGE_RELEASE, 0);
}

/*
 * coupon_release(claim_id [, customer]) returns boolean: true if the claim
 * was released now, false if it had been released already.  Its coupons
 * return to the pool when the transaction commits.
 */
Datum
coupon_release(PG_FUNCTION_ARGS)
{
	int64		claim_id;
	LockedClaim c;

	coupon_enter(fcinfo, "coupon_release", COUPON_WRITES);
	coupon_arg_not_null(fcinfo, 0, "claim_id");
	claim_id = PG_GETARG_INT64(0);

	lock_claim(claim_id, customer_arg(fcinfo, 1), &c);
	if (c.released_at != 0)
		PG_RETURN_BOOL(false);
	release_locked(c.pool, &c.tid, c.qty, c.expires_at);
	PG_RETURN_BOOL(true);
}

/*
 * The start of coupon_confirm() and coupon_hold_extend(): the entry checks
 * and the claim id of argument 0.
 */
static int64
hold_call(FunctionCallInfo fcinfo, const char *function)
{
	coupon_enter(fcinfo, function, COUPON_WRITES);
	coupon_require_lifecycle(function);
	coupon_arg_not_null(fcinfo, 0, "claim_id");
	return PG_GETARG_INT64(0);
}

/*
 * Lock the claim (customer's, if not NULL), which must be a hold neither
 * released nor expired, and its customer: a claim of the customer counts
 * its holdings under that lock (ledger.c), and must not see the row
 * between its two versions.
 */
static void
lock_live_hold(int64 claim_id, const char *customer, LockedClaim *c)
{
	CouponPoolKey key;

	lock_claim(claim_id, customer, c);
	coupon_make_key(&key, c->pool);
	(void) coupon_lock_customer(&key, c->customer);
	if (c->released_at != 0 ||
		(c->expires_at != 0 && c->expires_at <= GetCurrentTimestamp()))
		coupon_claim_gone(claim_id, c->released_at, c->expires_at, NULL);
}

/*
 * coupon_confirm(claim_id [, customer]) returns boolean: true if the hold
 * is permanent now, false if the claim was permanent already.  An expired
 * or released hold is an error, and nothing changes.
 */
Datum
coupon_confirm(PG_FUNCTION_ARGS)
{
	int64		claim_id = hold_call(fcinfo, "coupon_confirm");
	LockedClaim c;

	lock_live_hold(claim_id, customer_arg(fcinfo, 1), &c);
	if (c.expires_at == 0)
		PG_RETURN_BOOL(false);
	coupon_ledger_change_claim(&c.tid, COUPON_CHANGE_EXPIRY, 0);
	PG_RETURN_BOOL(true);
}

/*
 * coupon_hold_extend(claim_id, ttl [, customer]) returns timestamptz: the
 * hold's new expiry, clock_timestamp() + ttl.  A permanent, released or
 * expired claim is an error.
 */
Datum
coupon_hold_extend(PG_FUNCTION_ARGS)
{
	int64		claim_id;
	int64		ttl;
	TimestampTz expires_at;
	LockedClaim c;
	CouponPoolKey key;

	claim_id = hold_call(fcinfo, "coupon_hold_extend");
	ttl = coupon_arg_ttl(fcinfo, 1);
	lock_live_hold(claim_id, customer_arg(fcinfo, 2), &c);
	if (c.expires_at == 0)
		ereport(ERROR,
				(errcode(ERRCODE_COUPON_NOT_A_HOLD),
				 errmsg("claim %lld is not a hold", (long long) claim_id),
				 errdetail("It is permanent: it was claimed, or its hold was confirmed.")));
	expires_at = coupon_expiry_after(ttl);
	coupon_ledger_change_claim(&c.tid, COUPON_CHANGE_EXPIRY, expires_at);
	coupon_make_key(&key, c.pool);
	(void) coupon_pool_give(&key, COUPON_PENDING_EXPIRY, 0, expires_at);
	PG_RETURN_TIMESTAMPTZ(expires_at);
}

/*
 * Return the pool's overdue holds in this transaction, oldest first, at
 * most limit of them.  Holds locked by other transactions are skipped;
 * *skipped (if given) says whether the pool has overdue holds that none
 * could be returned of.  Returns the number of holds returned.
 */
int64
coupon_expire_overdue(const CouponPoolKey *key, int limit, bool *skipped)
{
	Datum		args[3];
	uint64		n;
	LockedClaim *rows;

	coupon_require_lifecycle("coupon_expire_overdue");
	coupon_sql_begin();
	args[0] = TimestampTzGetDatum(GetCurrentTimestamp());
	args[1] = Int64GetDatum(limit);
	args[2] = CStringGetTextDatum(key->name);
	n = coupon_sql_run(COUPON_SQL_LOCK_OVERDUE_OF_POOL, args);
	rows = SPI_palloc(sizeof(LockedClaim) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
	{
		rows[i].tid = *(ItemPointer) DatumGetPointer(coupon_sql_value(i, 1, NULL));
		rows[i].qty = DatumGetInt32(coupon_sql_value(i, 3, NULL));
		rows[i].expires_at = sql_timestamp(i, 4);
	}
	for (uint64 i = 0; i < n; i++)
		release_locked(key->name, &rows[i].tid, rows[i].qty, rows[i].expires_at);
	if (skipped)
	{
		args[1] = args[2];
		*skipped = n == 0 &&
			coupon_sql_run(COUPON_SQL_ANY_OVERDUE_OF_POOL, args) > 0;
	}
	coupon_sql_end();
	return (int64) n;
}

/*
 * The names of pools that have overdue holds, at most limit of them, in
 * the caller's memory context.
 */
List *
coupon_overdue_pools(int limit)
{
	MemoryContext caller = CurrentMemoryContext;
	List	   *pools = NIL;
	Datum		args[2];
	uint64		n;

	coupon_require_lifecycle("coupon_overdue_pools");
	coupon_sql_begin();
	args[0] = TimestampTzGetDatum(GetCurrentTimestamp());
	args[1] = Int64GetDatum(limit);
	n = coupon_sql_run(COUPON_SQL_OVERDUE_POOLS, args);
	for (uint64 i = 0; i < n; i++)
	{
		char	   *name = TextDatumGetCString(coupon_sql_value(i, 1, NULL));
		MemoryContext spi = MemoryContextSwitchTo(caller);

		pools = lappend(pools, pstrdup(name));
		MemoryContextSwitchTo(spi);
	}
	coupon_sql_end();
	return pools;
}

/* The earliest expiry that statement id finds; DT_NOEND if none. */
static TimestampTz
min_expiry(CouponStatement id, Datum *args)
{
	TimestampTz next = DT_NOEND;
	bool		isnull;
	Datum		value;

	coupon_sql_begin();
	if (coupon_sql_run(id, args) == 1)
	{
		value = coupon_sql_value(0, 1, &isnull);
		if (!isnull)
			next = DatumGetTimestampTz(value);
	}
	coupon_sql_end();
	return next;
}

/* The earliest expiry of a live hold in this database; DT_NOEND if none. */
TimestampTz
coupon_next_expiry(void)
{
	return min_expiry(COUPON_SQL_NEXT_EXPIRY, NULL);
}

/*
 * A claimer found too few coupons: if the pool has holds whose time is up,
 * return some in this transaction, so that the claim can use them (escrow.c
 * takes from the transaction's own pending releases).  True if it returned
 * any.  Otherwise *waitable says whether overdue holds are locked by other
 * transactions (their coupons may come back), and the pool's next expiry is
 * looked up again, so that claimers do not look before it.  That is a
 * lower bound, never past a hold that may yet be returned: overdue holds
 * locked by others count (they may be let go unchanged), and a hold this
 * transaction returned goes back to the slot's next expiry if the return
 * is undone (escrow.c).  arg is the pool's key.
 */
bool
coupon_expiry_refill(CouponSlotRef ref, uint64 needed, void *arg,
					 bool *waitable)
{
	const CouponPoolKey *key = (const CouponPoolKey *) arg;
	TimestampTz seen = coupon_slot_next_expiry(ref);
	Datum		args[1];

	if (seen > GetCurrentTimestamp())
		return false;
	if (coupon_expire_overdue(key, COUPON_REFILL_ROWS, waitable) > 0)
		return true;

	args[0] = CStringGetTextDatum(key->name);
	coupon_slot_set_next_expiry(ref, seen,
								min_expiry(COUPON_SQL_NEXT_EXPIRY_OF_POOL, args));
	return false;
}
