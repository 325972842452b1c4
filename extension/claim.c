/*-------------------------------------------------------------------------
 *
 * claim.c
 *		coupon_claim(), coupon_claim_detailed() and coupon_release().
 *
 * A claim is, in this order:
 *
 *	1.	find the pool's slot in shared memory, loading it from the ledger
 *		on first use (ledger.c);
 *	2.	take the customer's lock, a transaction-level advisory lock on a
 *		hash of (pool, customer), so that the same customer claiming from
 *		several sessions at once is served one at a time;
 *	3.	look at what the customer holds (ledger.c): if qty more would pass
 *		the pool's per-customer limit, the customer's existing claim is the
 *		answer.  With a limit of one, a repeated call (a double click, a
 *		retry after a lost connection) returns the claim the customer
 *		already holds, even when the pool is sold out;
 *	4.	take qty permits from the semaphore with a compare-and-swap
 *		(semaphore.c) and record them in the transaction's escrow
 *		(escrow.c), which gives them back if the transaction or savepoint
 *		aborts.  With too few permits and a wait, the claimer sleeps on the
 *		pool's wait queue while permits in flight in other transactions
 *		could still come back; it lets go of the customer's lock while it
 *		sleeps and checks the holdings again once it has the permits;
 *	5.	insert the ledger row.
 *
 * The claim id comes from a sequence with no cache, so ids increase in the
 * order claims are made and can serve as fencing tokens.
 *
 * A release marks the ledger row released; the permits return to the pool
 * when the releasing transaction commits.
 *
 * Note about locking: the customer lock is held to the end of the
 * transaction, like a row lock, except while the claim sleeps on the wait
 * queue; the semaphore is lock-free apart from the shared-mode table lock
 * described in semaphore.c.  A sleep on the wait queue is invisible to the
 * deadlock detector: if the transaction holding the awaited permits waits
 * for a lock the sleeper's transaction took earlier, the sleeper's wait
 * time ends it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "coupon.h"

PG_FUNCTION_INFO_V1(coupon_claim);
PG_FUNCTION_INFO_V1(coupon_claim_detailed);
PG_FUNCTION_INFO_V1(coupon_release);

/* Distinguishes the customer locks from pg_advisory_lock()'s (1 and 2). */
#define COUPON_CUSTOMER_LOCK_CLASS	0x0C0F

typedef enum ClaimStatus
{
	CLAIM_GRANTED,				/* a new claim */
	CLAIM_REPEAT,				/* the customer's existing claim */
	CLAIM_SOLD_OUT,				/* too few permits, none coming back */
	CLAIM_TIMED_OUT,			/* waited, permits in flight did not return */
	CLAIM_LIMIT_REACHED			/* the customer holds the pool's limit */
} ClaimStatus;

static const char *const claim_status_names[] = {
	[CLAIM_GRANTED] = "granted",
	[CLAIM_REPEAT] = "repeat",
	[CLAIM_SOLD_OUT] = "sold_out",
	[CLAIM_TIMED_OUT] = "timed_out",
	[CLAIM_LIMIT_REACHED] = "limit_reached",
};

/*
 * The customer's lock: a transaction-level advisory lock on a hash of
 * (pool, customer), which serializes claims of one customer on one pool.
 */
static void
customer_lock_tag(const CouponPoolKey *key, const char *customer,
				  LOCKTAG *tag)
{
	uint64		hash;

	hash = hash_bytes_extended((const unsigned char *) key->name,
							   strlen(key->name), 0);
	hash = hash_bytes_extended((const unsigned char *) customer,
							   strlen(customer), hash);
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) (hash >> 32),
						 (uint32) hash, COUPON_CUSTOMER_LOCK_CLASS);
}

/*
 * Would qty more exceed the customer's limit?  If so, the answer is a repeat
 * (the claim held, under a limit of one) or "limit reached".
 */
static bool
customer_at_limit(const CouponPoolKey *key, const char *customer, int32 qty,
				  int32 per_customer, int64 *claim_id, ClaimStatus *status)
{
	int64		held = coupon_ledger_holdings(key->name, customer, claim_id);

	if (held + qty <= per_customer)
		return false;
	*status = (per_customer == 1 && *claim_id != 0) ?
		CLAIM_REPEAT : CLAIM_LIMIT_REACHED;
	return true;
}

/*
 * The claim itself, shared by coupon_claim() and coupon_claim_detailed().
 * Arguments: pool, customer, qty, wait.  On return *ref names the pool's
 * slot (for what remains) and *claim_id is set unless the status says no.
 */
static ClaimStatus
claim(FunctionCallInfo fcinfo, int64 *claim_id, CouponSlotRef *ref)
{
	char	   *pool = coupon_arg_pool(fcinfo, 0);
	char	   *customer = coupon_arg_text(fcinfo, 1, "customer",
										   COUPON_CUSTOMER_MAX);
	int32		qty = coupon_arg_int32(fcinfo, 2, "qty", 1);
	int64		wait = coupon_arg_duration(fcinfo, 3, "wait");
	CouponPoolKey key;
	LOCKTAG		customer_lock;
	bool		lock_is_new;
	CouponTake	take;
	ClaimStatus status;
	void	   *escrow;

	coupon_require_preload();
	coupon_ledger_bind(fcinfo);
	coupon_make_key(&key, pool);
	if (!coupon_pool_slot(&key, ref))
		coupon_pool_uncommitted(pool);

	/* A pool of capacity 0 is sold out, whatever is asked of it. */
	if (qty > ref->capacity && ref->capacity > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("qty %d exceeds the capacity of pool \"%s\"", qty, pool),
				 errdetail("The pool's capacity is %lld.",
						   (long long) ref->capacity)));
	if (qty > ref->per_customer)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("qty %d exceeds the per-customer limit of pool \"%s\"",
						qty, pool),
				 errdetail("A customer may hold at most %d.",
						   ref->per_customer)));

	/* From here to the end of the transaction the customer is ours. */
	customer_lock_tag(&key, customer, &customer_lock);
	lock_is_new = LockAcquire(&customer_lock, ExclusiveLock, false, false) ==
		LOCKACQUIRE_OK;
	if (customer_at_limit(&key, customer, qty, ref->per_customer, claim_id,
						  &status))
		return status;

	escrow = coupon_escrow_reserve();
	take = coupon_slot_take(&key, qty, 0, coupon_escrow_in_flight, ref);
	if (take == COUPON_TAKEN)
		coupon_escrow_record(escrow, COUPON_PENDING_CLAIM, *ref, qty);
	else if (take == COUPON_TIMED_OUT && wait > 0 && lock_is_new)
	{
		TimestampTz now = GetCurrentTimestamp();
		TimestampTz deadline = wait > PG_INT64_MAX - now ?
			PG_INT64_MAX : now + wait;

		/*
		 * Sleep without the customer's lock: the transaction whose permits
		 * we wait for might claim for this customer too, and the deadlock
		 * detector does not see a sleep on the wait queue.  (If this
		 * transaction held the lock already, from an earlier claim for the
		 * customer, it cannot let go of it and does not sleep at all.)  With
		 * the lock back, look at the customer's holdings again: another
		 * session may have claimed for it meanwhile.
		 */
		LockRelease(&customer_lock, ExclusiveLock, false);
		take = coupon_slot_take(&key, qty, deadline, coupon_escrow_in_flight,
								ref);
		if (take == COUPON_TAKEN)
		{
			coupon_escrow_record(escrow, COUPON_PENDING_CLAIM, *ref, qty);
			(void) LockAcquire(&customer_lock, ExclusiveLock, false, false);
			if (customer_at_limit(&key, customer, qty, ref->per_customer,
								  claim_id, &status))
			{
				coupon_escrow_cancel_last();
				return status;
			}
		}
	}
	if (take != COUPON_TAKEN)
	{
		pfree(escrow);
		coupon_slot_count(*ref, COUPON_STAT_SOLD_OUT);
		return take == COUPON_SOLD_OUT ? CLAIM_SOLD_OUT : CLAIM_TIMED_OUT;
	}

	*claim_id = coupon_ledger_insert_claim(key.name, customer, qty);
	return CLAIM_GRANTED;
}

/*
 * coupon_claim(pool, customer, qty, wait) returns bigint: the claim id, the
 * existing one on a repeat, or NULL when nothing was granted.
 */
Datum
coupon_claim(PG_FUNCTION_ARGS)
{
	int64		claim_id;
	CouponSlotRef ref;
	ClaimStatus status = claim(fcinfo, &claim_id, &ref);

	if (status != CLAIM_GRANTED && status != CLAIM_REPEAT)
		PG_RETURN_NULL();
	PG_RETURN_INT64(claim_id);
}

/*
 * coupon_claim_detailed(pool, customer, qty, wait) returns
 * (claim_id bigint, status text, available bigint).
 */
Datum
coupon_claim_detailed(PG_FUNCTION_ARGS)
{
	int64		claim_id = 0;
	CouponSlotRef ref;
	ClaimStatus status = claim(fcinfo, &claim_id, &ref);
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	CouponSlotStats stats;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);

	values[0] = Int64GetDatum(claim_id);
	nulls[0] = status != CLAIM_GRANTED && status != CLAIM_REPEAT;
	values[1] = CStringGetTextDatum(claim_status_names[status]);
	coupon_slot_stats(ref, &stats);
	values[2] = Int64GetDatum(stats.available);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

pg_noreturn static void claim_missing(int64 claim_id);

static void
claim_missing(int64 claim_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("claim %lld does not exist", (long long) claim_id)));
}

/* The claim's pool and whether it is released; false if there is no claim. */
static bool
find_claim(int64 claim_id, Datum *args, CouponPoolKey *key, bool *released)
{
	bool		found;

	coupon_sql_begin();
	found = coupon_sql_run(COUPON_SQL_FIND_CLAIM, args) == 1;
	if (found)
	{
		coupon_make_key(key, TextDatumGetCString(coupon_sql_value(1)));
		*released = DatumGetBool(coupon_sql_value(2));
	}
	coupon_sql_end();
	return found;
}

/*
 * coupon_release(claim_id) returns boolean: true if the claim was released
 * now, false if it had been released already.  Its permits return to the
 * pool when the transaction commits.
 */
Datum
coupon_release(PG_FUNCTION_ARGS)
{
	int64		claim_id;
	CouponPoolKey key;
	CouponSlotRef ref;
	Datum		args[1];
	bool		released;
	void	   *escrow;

	coupon_arg_not_null(fcinfo, 0, "claim_id");
	claim_id = PG_GETARG_INT64(0);
	coupon_require_preload();
	coupon_ledger_bind(fcinfo);

	args[0] = Int64GetDatum(claim_id);
	if (!find_claim(claim_id, args, &key, &released))
		claim_missing(claim_id);
	if (released)
		PG_RETURN_BOOL(false);

	/* Load the pool before changing its ledger (see ledger.c). */
	if (!coupon_pool_slot(&key, &ref))
		coupon_pool_uncommitted(key.name);

	escrow = coupon_escrow_reserve();
	coupon_sql_begin();
	released = coupon_sql_run(COUPON_SQL_RELEASE_CLAIM, args) == 1;
	if (released)
		coupon_escrow_record(escrow, COUPON_PENDING_RELEASE, ref,
							 DatumGetInt32(coupon_sql_value(1)));
	coupon_sql_end();

	/* Released by someone else meanwhile, or dropped with its pool? */
	if (!released && !find_claim(claim_id, args, &key, &released))
		claim_missing(claim_id);
	PG_RETURN_BOOL(released);
}
