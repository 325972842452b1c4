/*-------------------------------------------------------------------------
 *
 * pool.c
 *		Pool administration and the shared-memory half of coupon_pools.
 *
 * coupon_pool_create() only writes the pool table; the pool is loaded into
 * shared memory by its first claim.  coupon_pool_resize() and
 * coupon_pool_drop() lock the pool row (FOR UPDATE), which serializes them
 * with each other and with loading (FOR KEY SHARE, ledger.c).
 *
 * Capacity growth is escrowed like a release: the new permits appear when
 * the transaction commits.  A decrease takes permits like a claim, so it
 * fails at once if the pool cannot spare them (they are claimed or in
 * flight), and gives them back if the transaction aborts.  A drop refuses
 * new claims as soon as it starts and fails if any permit is in flight; its
 * commit frees the slot and deletes the pool and its ledger rows.
 *
 * Note about locking: creation takes SHARE ROW EXCLUSIVE on the pool
 * table, so that two sessions cannot both pass the coupon.max_pools check
 * or create the same pool with different settings.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "utils/builtins.h"

#include "coupon.h"

PG_FUNCTION_INFO_V1(coupon_pool_create);
PG_FUNCTION_INFO_V1(coupon_pool_resize);
PG_FUNCTION_INFO_V1(coupon_pool_drop);
PG_FUNCTION_INFO_V1(coupon_pool_memory);

/*
 * coupon_pool_create(pool, capacity, per_customer) returns boolean: true if
 * the pool was created, false if it existed already with these settings.
 */
Datum
coupon_pool_create(PG_FUNCTION_ARGS)
{
	char	   *pool = coupon_arg_pool(fcinfo, 0);
	int64		capacity = coupon_arg_int64(fcinfo, 1, "capacity", 0);
	int32		per_customer = coupon_arg_int32(fcinfo, 2, "per_customer", 1);
	Datum		args[3];
	int64		pools;

	coupon_ledger_bind(fcinfo);
	coupon_sql_begin();
	coupon_sql_run(COUPON_SQL_LOCK_POOL_TABLE, NULL);

	args[0] = CStringGetTextDatum(pool);
	args[1] = Int64GetDatum(capacity);
	args[2] = Int32GetDatum(per_customer);
	if (coupon_sql_run(COUPON_SQL_GET_POOL, args) > 0)
	{
		int64		old_capacity = DatumGetInt64(coupon_sql_value(1));
		int32		old_per_customer = DatumGetInt32(coupon_sql_value(2));

		if (old_capacity != capacity || old_per_customer != per_customer)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("pool \"%s\" already exists with different settings",
							pool),
					 errdetail("It has capacity %lld and per_customer %d.",
							   (long long) old_capacity, old_per_customer),
					 errhint("Use coupon_pool_resize() to change its capacity.")));
		coupon_sql_end();
		PG_RETURN_BOOL(false);
	}

	coupon_sql_run(COUPON_SQL_COUNT_POOLS, NULL);
	pools = DatumGetInt64(coupon_sql_value(1));
	if (pools >= coupon_max_pools)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many coupon pools"),
				 errdetail("This database has %lld pools and coupon.max_pools is %d.",
						   (long long) pools, coupon_max_pools),
				 errhint("Drop unused pools or increase coupon.max_pools and restart the server.")));

	coupon_sql_run(COUPON_SQL_INSERT_POOL, args);
	coupon_sql_end();
	PG_RETURN_BOOL(true);
}

/*
 * Lock the pool row; returns its capacity, as this transaction sees it (its
 * own resizes included).
 */
static int64
lock_pool(const CouponPoolKey *key)
{
	Datum		args[1];

	args[0] = CStringGetTextDatum(key->name);
	if (coupon_sql_run(COUPON_SQL_LOCK_POOL, args) == 0)
		coupon_pool_missing(key->name);
	return DatumGetInt64(coupon_sql_value(1));
}

/* coupon_pool_resize(pool, capacity): grow or shrink a pool. */
Datum
coupon_pool_resize(PG_FUNCTION_ARGS)
{
	char	   *pool = coupon_arg_pool(fcinfo, 0);
	int64		capacity = coupon_arg_int64(fcinfo, 1, "capacity", 0);
	int64		old_capacity;
	CouponPoolKey key;
	CouponSlotRef ref;
	Datum		args[2];

	coupon_require_preload();
	coupon_ledger_bind(fcinfo);
	coupon_make_key(&key, pool);

	coupon_sql_begin();
	old_capacity = lock_pool(&key);

	/*
	 * Load the pool before changing it (see ledger.c).  A pool created in
	 * this transaction has no slot and gets none before it commits: its row
	 * is all there is to change.
	 */
	if (coupon_pool_slot(&key, &ref) && capacity != old_capacity)
	{
		void	   *escrow = coupon_escrow_reserve();

		if (capacity > old_capacity)
			coupon_escrow_record(escrow, COUPON_PENDING_GROW, ref,
								 capacity - old_capacity);
		else
		{
			uint64		shrink = old_capacity - capacity;

			if (coupon_slot_take(&key, shrink, 0, NULL, &ref) != COUPON_TAKEN)
			{
				CouponSlotStats stats;

				coupon_slot_stats(ref, &stats);
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("cannot shrink pool \"%s\" to capacity %lld",
								pool, (long long) capacity),
						 errdetail("Capacity cannot go below what is claimed or in flight: %llu claimed, %llu in flight.",
								   (unsigned long long) (stats.capacity - stats.available - stats.in_flight),
								   (unsigned long long) stats.in_flight)));
			}
			coupon_escrow_record(escrow, COUPON_PENDING_SHRINK, ref, shrink);
		}
	}

	args[0] = CStringGetTextDatum(pool);
	args[1] = Int64GetDatum(capacity);
	coupon_sql_run(COUPON_SQL_RESIZE_POOL, args);
	coupon_sql_end();
	PG_RETURN_VOID();
}

/* coupon_pool_drop(pool): drop a pool and its ledger rows. */
Datum
coupon_pool_drop(PG_FUNCTION_ARGS)
{
	char	   *pool = coupon_arg_pool(fcinfo, 0);
	CouponPoolKey key;
	CouponSlotRef ref;
	Datum		args[1];

	coupon_require_preload();
	coupon_ledger_bind(fcinfo);
	coupon_make_key(&key, pool);

	coupon_sql_begin();
	lock_pool(&key);

	/*
	 * With the row locked, nobody can load the pool until we end (see
	 * ledger.c).  If it is loaded, it refuses claims from now on; if this
	 * transaction is dropping its slot already, the pool being dropped now
	 * is one the transaction created since, which has no slot.
	 */
	if (coupon_slot_find(&key, &ref) && !coupon_escrow_dropping(ref))
	{
		void	   *escrow = coupon_escrow_reserve();
		uint64		in_flight;

		if (coupon_slot_begin_drop(ref, &in_flight))
		{
			coupon_escrow_record(escrow, COUPON_PENDING_DROP, ref, 0);
			if (in_flight > 0)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_IN_USE),
						 errmsg("pool \"%s\" has claims in flight", pool),
						 errdetail_plural("%llu coupon is held by a transaction that has not ended yet.",
										  "%llu coupons are held by transactions that have not ended yet.",
										  in_flight, (unsigned long long) in_flight),
						 errhint("Try again once they have committed or rolled back.")));
		}
	}

	args[0] = CStringGetTextDatum(pool);
	coupon_sql_run(COUPON_SQL_DELETE_POOL, args);
	coupon_sql_end();
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

	coupon_require_preload();
	coupon_ledger_bind(fcinfo);
	InitMaterializedSRF(fcinfo, 0);

	for (int i = 0; coupon_slot_read(i, coupon_ledger_pool_relid(), &stats,
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
