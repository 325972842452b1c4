/*-------------------------------------------------------------------------
 *
 * pool.c
 *		Pool administration and the shared-memory half of coupon_pools.
 *
 * Floor: an SQL entry point.  Calls the escrow, load, the ledger and the
 * semaphore.
 *
 * coupon_pool_create() only writes the pool table; the pool is loaded into
 * shared memory when it is first used.  coupon_pool_resize() and
 * coupon_pool_drop() lock the pool row (FOR UPDATE), which serializes them
 * with each other, and take the pool's slot before they change anything
 * (load.c).
 *
 * Capacity growth is escrowed like a release: the new permits appear when
 * the transaction commits.  A decrease takes permits like a claim, first
 * from the transaction's own pending growth or releases, so it fails at
 * once if the pool cannot spare them (they are claimed or in flight), and
 * gives them back if the transaction aborts.  A drop refuses new claims as
 * soon as it starts and fails if any permit is in flight; its commit frees
 * the slot and deletes the pool and its ledger rows.  A drop of a pool
 * that has no slot takes none: its lock on the pool row keeps others from
 * loading the pool meanwhile (load.c).  A pool that exists
 * only in the calling transaction has no slot: its rows are all there is
 * to change.
 *
 * Note about locking: creation takes SHARE ROW EXCLUSIVE on the pool
 * table, so that two sessions cannot create the same pool with different
 * settings.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"

#include "args.h"
#include "catalog.h"
#include "common.h"
#include "compat.h"
#include "entry.h"
#include "escrow.h"
#include "ledger.h"
#include "load.h"
#include "semaphore.h"

PG_FUNCTION_INFO_V1(coupon_pool_create);
PG_FUNCTION_INFO_V1(coupon_pool_resize);
PG_FUNCTION_INFO_V1(coupon_pool_drop);
PG_FUNCTION_INFO_V1(coupon_pool_memory);

/* The pool row, locked: where it is and its settings as we see them. */
typedef struct LockedPool
{
	ItemPointerData tid;
	int64		capacity;
	int32		per_customer;
} LockedPool;

/* Lock the pool row; false if there is no such pool. */
static bool
lock_pool(const char *pool, LockedPool *p)
{
	Datum		args[1];
	bool		found;

	coupon_sql_begin();
	args[0] = CStringGetTextDatum(pool);
	found = coupon_sql_run(COUPON_SQL_LOCK_POOL, args) == 1;
	if (found)
	{
		p->tid = *(ItemPointer) DatumGetPointer(coupon_sql_value(0, 1, NULL));
		p->capacity = DatumGetInt64(coupon_sql_value(0, 2, NULL));
		p->per_customer = DatumGetInt32(coupon_sql_value(0, 3, NULL));
	}
	coupon_sql_end();
	return found;
}

/*
 * coupon_pool_create(pool, capacity, per_customer) returns boolean: true if
 * the pool was created, false if it existed already with these settings.
 */
Datum
coupon_pool_create(PG_FUNCTION_ARGS)
{
	char	   *pool;
	int64		capacity;
	int32		per_customer;
	LockedPool	existing;

	coupon_enter(fcinfo, "coupon_pool_create", COUPON_WRITES_TABLES);
	pool = coupon_arg_pool(fcinfo, 0);
	capacity = coupon_arg_int64(fcinfo, 1, "capacity", 0);
	per_customer = coupon_arg_int32(fcinfo, 2, "per_customer", 1);

	LockRelationOid(coupon_catalog.pool_relid, ShareRowExclusiveLock);
	if (lock_pool(pool, &existing))
	{
		if (existing.capacity != capacity || existing.per_customer != per_customer)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("pool \"%s\" already exists with different settings",
							pool),
					 errdetail("It has capacity %lld and per_customer %d.",
							   (long long) existing.capacity, existing.per_customer),
					 errhint("Use coupon_pool_resize() to change its capacity.")));
		PG_RETURN_BOOL(false);
	}
	coupon_ledger_insert_pool(pool, capacity, per_customer);
	PG_RETURN_BOOL(true);
}

pg_noreturn static void cannot_shrink(const char *pool, int64 capacity,
									  CouponSlotRef ref);

static void
cannot_shrink(const char *pool, int64 capacity, CouponSlotRef ref)
{
	CouponSlotStats stats;
	uint64		unclaimed;

	coupon_slot_stats(ref, &stats);
	/* (the counters are read one after another, so clamp) */
	unclaimed = Min(stats.capacity, stats.available + stats.in_flight);
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("cannot shrink pool \"%s\" to capacity %lld",
					pool, (long long) capacity),
			 errdetail("Capacity cannot go below what is claimed or in flight: %llu claimed, %llu in flight.",
					   (unsigned long long) (stats.capacity - unclaimed),
					   (unsigned long long) stats.in_flight)));
}

/* coupon_pool_resize(pool, capacity): grow or shrink a pool. */
Datum
coupon_pool_resize(PG_FUNCTION_ARGS)
{
	char	   *pool;
	int64		capacity;
	CouponPoolKey key;
	CouponSlotRef ref;
	LockedPool	p;

	coupon_enter(fcinfo, "coupon_pool_resize", COUPON_WRITES);
	pool = coupon_arg_pool(fcinfo, 0);
	capacity = coupon_arg_int64(fcinfo, 1, "capacity", 0);
	coupon_make_key(&key, pool);

	if (!lock_pool(pool, &p))
		coupon_pool_missing(pool);
	while (capacity != p.capacity && coupon_pool_find(&key, 0, &ref))
	{
		bool		done;

		if (capacity > p.capacity)
			done = coupon_escrow_give(ref, COUPON_PENDING_GROW,
									  capacity - p.capacity, 0);
		else
		{
			CouponTake	take = coupon_escrow_take(&ref, COUPON_PENDING_SHRINK,
												  p.capacity - capacity, 0, 0,
												  0, NULL, NULL);

			if (take == COUPON_SOLD_OUT || take == COUPON_TIMED_OUT)
				cannot_shrink(pool, capacity, ref);
			done = take == COUPON_TAKEN;
		}
		if (done)
			break;
	}
	/* Unchanged, the row is left alone (load.c relies on that). */
	if (capacity != p.capacity)
		coupon_ledger_resize_pool(&p.tid, capacity);
	PG_RETURN_VOID();
}

/* Delete the pool's ledger rows and its row. */
static void
delete_pool(const char *pool, ItemPointer pool_tid)
{
	Datum		args[1];
	uint64		n;

	args[0] = CStringGetTextDatum(pool);
	do
	{
		ItemPointerData *tids;

		coupon_sql_begin();
		n = coupon_sql_run(COUPON_SQL_LOCK_POOL_CLAIMS, args);
		tids = palloc(sizeof(ItemPointerData) * Max(n, 1));
		for (uint64 i = 0; i < n; i++)
			tids[i] = *(ItemPointer) DatumGetPointer(coupon_sql_value(i, 1, NULL));
		for (uint64 i = 0; i < n; i++)
			coupon_ledger_delete(coupon_catalog.claims_relid, &tids[i]);
		coupon_sql_end();
	} while (n > 0);
	coupon_ledger_delete(coupon_catalog.pool_relid, pool_tid);
}

/* coupon_pool_drop(pool): drop a pool and its ledger rows. */
Datum
coupon_pool_drop(PG_FUNCTION_ARGS)
{
	char	   *pool;
	CouponPoolKey key;
	CouponSlotRef ref;
	LockedPool	p;
	uint64		epoch;

	coupon_enter(fcinfo, "coupon_pool_drop", COUPON_WRITES);
	pool = coupon_arg_pool(fcinfo, 0);
	coupon_make_key(&key, pool);

	if (!lock_pool(pool, &p))
		coupon_pool_missing(pool);

	/*
	 * Only a pool that has a slot is marked: nothing of a pool without one
	 * is in flight, and the row lock keeps others from loading it until
	 * this transaction ends (load.c).  So any number of pools can be
	 * dropped in one transaction.
	 */
	while (coupon_slot_find(&key, &ref, &epoch))
	{
		uint64		in_flight;

		if (!coupon_escrow_begin_drop(ref, &in_flight))
			continue;
		if (in_flight > 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("pool \"%s\" has claims in flight", pool),
					 errdetail_plural("%llu coupon is held by a transaction that has not ended yet.",
									  "%llu coupons are held by transactions that have not ended yet.",
									  in_flight, (unsigned long long) in_flight),
					 errhint("Try again once they have committed or rolled back.")));
		break;
	}
	delete_pool(pool, &p.tid);
	PG_RETURN_VOID();
}

/*
 * coupon_pool_memory() returns the semaphores of this database's loaded
 * pools: (pool, available, in_flight, grants, sold_out, waits).  The view
 * coupon_pools joins it with the pool table and the ledger.
 */
Datum
coupon_pool_memory(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CouponSlotStats stats;
	bool		found;

	coupon_enter(fcinfo, "coupon_pool_memory", COUPON_READS);
	InitMaterializedSRF(fcinfo, 0);

	for (int i = 0; coupon_slot_read(i, coupon_catalog.pool_relid, &stats,
									 &found); i++)
	{
		Datum		values[6];
		bool		nulls[6] = {false};

		if (!found)
			continue;
		values[0] = CStringGetTextDatum(stats.pool);
		values[1] = Int64GetDatum(stats.available);
		values[2] = Int64GetDatum(stats.in_flight);
		values[3] = Int64GetDatum(stats.grants);
		values[4] = Int64GetDatum(stats.sold_out);
		values[5] = Int64GetDatum(stats.waits);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
