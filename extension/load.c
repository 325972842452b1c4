/*-------------------------------------------------------------------------
 *
 * load.c
 *		A pool's slot: found in shared memory, or loaded from the ledger.
 *
 * Floor: under the escrow.  Calls the semaphore, the catalog's statements
 * and args.c's errors.
 *
 * A pool is loaded into shared memory when it is used and has no slot:
 * from its committed pool row and committed ledger, available = capacity -
 * claimed.  That is exact because every transaction that changes a pool's
 * ledger or capacity (claim, hold, release, expiry, resize, drop) takes its
 * slot and pins it (escrow.c) before it changes anything, and keeps the pin
 * until its commit or abort has been applied to the slot: while a pool has
 * no slot, nothing of it is pending anywhere, and the committed data is the
 * whole truth.
 *
 * Loading reads with a snapshot of the committed data only (not the
 * transaction's own changes, which could still roll back), then installs
 * what it read.  From the read to the install it holds the pool row FOR
 * KEY SHARE, in a subtransaction that lets go of it right after: a drop
 * of a pool that has no slot takes none (pool.c) but locks the row FOR
 * UPDATE, so a load waits for the drop to end, and a drop that starts
 * during a load waits for it and finds the slot.  If another backend loaded, used and evicted
 * the pool in between, the install notices (semaphore.c's epochs) and the
 * load is done again.  A pool that exists only in the calling transaction
 * (it created it, or dropped and created it again) is never loaded: nothing
 * may be loaded from data that could still roll back; the caller is told.
 *
 * A claim's quantity is checked against the pool's limits before the pool
 * is loaded, so that a bad call takes no slot.
 *
 * Note about locking: the pool row's, as above; see semaphore.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "args.h"
#include "catalog.h"
#include "common.h"
#include "ledger.h"
#include "load.h"
#include "semaphore.h"

/*
 * A quantity must fit the pool: at most its capacity (a pool of capacity
 * 0 is sold out, whatever is asked of it) and its per-customer limit.
 */
static void
coupon_check_qty(const char *pool, int64 qty, int64 capacity,
				 int32 per_customer)
{
	if (qty > capacity && capacity > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("qty %lld exceeds the capacity of pool \"%s\"",
						(long long) qty, pool),
				 errdetail("The pool's capacity is %lld.", (long long) capacity)));
	if (qty > per_customer)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("qty %lld exceeds the per-customer limit of pool \"%s\"",
						(long long) qty, pool),
				 errdetail("A customer may hold at most %d.", per_customer)));
}

/*
 * Read the committed pool; false if the pool exists only in this
 * transaction (which created it, or is dropping the committed one).  Fails
 * if the pool does not exist.  The pool row is locked first (FOR KEY
 * SHARE), which waits for a drop of the pool by another transaction to
 * end.
 *
 * A pool row that this transaction wrote is one it created, or created
 * again after dropping the committed pool (whether or not that had a
 * slot, pool.c): the committed row is then another pool's.  A
 * resize writes the row too, but only after the pool found its slot, which
 * the resize's escrow entry pins until the transaction ends; so a resized
 * pool never comes here.
 */
static bool
load_row(const CouponPoolKey *key, CouponPoolRow *row)
{
	Datum		args[1];
	bool		written_here;
	bool		committed;
	bool		isnull;

	coupon_sql_begin();
	args[0] = CStringGetTextDatum(key->name);
	if (coupon_sql_run(COUPON_SQL_POOL_VISIBLE, args) == 0)
		coupon_pool_missing(key->name);
	written_here = TransactionIdIsCurrentTransactionId(
		DatumGetTransactionId(coupon_sql_value(0, 1, NULL)));
	committed = !written_here && coupon_sql_run(COUPON_SQL_LOAD, args) == 1;
	if (committed)
	{
		Datum		expiry;

		row->capacity = DatumGetInt64(coupon_sql_value(0, 1, NULL));
		row->per_customer = DatumGetInt32(coupon_sql_value(0, 2, NULL));
		expiry = coupon_sql_value(0, 3, &isnull);
		row->next_expiry = isnull ? DT_NOEND : DatumGetTimestampTz(expiry);
	}
	coupon_sql_end();
	if (committed)
		row->claimed = coupon_ledger_claimed(key->name);
	return committed;
}

/* What load_locked() is asked, and its answer. */
typedef struct LoadArgs
{
	const CouponPoolKey *key;
	int64		qty;
	uint64		epoch;
	CouponSlotRef *ref;
	int			result;
} LoadArgs;

/*
 * Load the pool into a slot, in an internal subtransaction that keeps the
 * pool row locked from the read to the install (load_row) and lets go of
 * it then (returns false: the subtransaction is rolled back): a drop that
 * starts meanwhile waits, and finds the slot.  a->result is 1 if the pool
 * was installed, 0 if the read must be done again (see
 * coupon_slot_install), -1 if the pool exists only in this transaction.
 */
static bool
load_locked(void *arg)
{
	LoadArgs   *a = (LoadArgs *) arg;
	const CouponPoolKey *key = a->key;
	CouponPoolRow row;

	a->result = -1;
	if (!load_row(key, &row))
		return false;
	if (a->qty > 0)
		coupon_check_qty(key->name, a->qty, row.capacity, row.per_customer);
	if (row.claimed > row.capacity)
		ereport(WARNING,
				(errmsg("pool \"%s\" has more coupons claimed than its capacity",
						key->name),
				 errdetail("%lld are claimed and the capacity is %lld; none is available.",
						   (long long) row.claimed, (long long) row.capacity),
				 errhint("The ledger or the pool table was changed other than through the extension's functions.")));
	a->result = coupon_slot_install(key, &row, a->epoch, a->ref) ? 1 : 0;
	return false;
}

/*
 * Find the pool's slot, loading the pool if it has none.  A qty above 0 is
 * checked against the pool's limits first (coupon_check_qty).  Returns
 * false, loading nothing and with ref->slot NULL, if the pool exists only
 * in this transaction; fails if it does not exist.
 */
bool
coupon_pool_find(const CouponPoolKey *key, int64 qty, CouponSlotRef *ref)
{
	for (;;)
	{
		LoadArgs	load = {key, qty, 0, ref, 0};

		if (coupon_slot_find(key, ref, &load.epoch))
		{
			if (qty > 0)
				coupon_check_qty(key->name, qty, ref->capacity,
								 ref->per_customer);
			return true;
		}
		(void) coupon_subtransaction(load_locked, &load);
		if (load.result == 1)
			return true;
		if (load.result == -1)
		{
			ref->slot = NULL;
			return false;
		}
	}
}

/* The same, failing if the pool exists only in this transaction. */
CouponSlotRef
coupon_pool_slot(const CouponPoolKey *key, int64 qty)
{
	CouponSlotRef ref;

	if (!coupon_pool_find(key, qty, &ref))
		coupon_pool_uncommitted(key->name);
	return ref;
}
