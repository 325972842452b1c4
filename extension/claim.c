/*-------------------------------------------------------------------------
 *
 * claim.c
 *		coupon_claim(), coupon_claim_detailed() and coupon_hold(), and
 *		coupon_routed_claim() and coupon_routed_hold(), the same claim and
 *		hold sent by a cluster's proxy, with coupon_routed_here(), where a
 *		routed call is served.
 *
 * Floor: an SQL entry point, called also by cart.c and bulk.c.  Calls
 * lifecycle.c (a claimer expires overdue holds), then route.c (the routed
 * claim), the escrow, load, ledger, locks and the semaphore.
 *
 * A claim is, in this order:
 *
 *	1.	check every argument (args.c);
 *	2.	with a request id, take the request's lock (locks.c) and look for
 *		the claim made with it: if there is one, it is the answer;
 *	3.	take the customer's lock, so that the same customer claiming from
 *		several sessions at once is served one at a time;
 *	4.	find the pool's slot in shared memory, loading it from the ledger
 *		if it has none (load.c), and check qty against the pool's limits;
 *	5.	look at what the customer holds (ledger.c): if qty more would pass
 *		the pool's per-customer limit, the customer's existing claim is the
 *		answer.  With a limit of one, a repeated call (a double click, a
 *		retry after a lost connection) returns the claim the customer
 *		already holds, even when the pool is sold out;
 *	6.	take qty permits from that slot with a compare-and-swap and record
 *		them in the transaction's escrow, which gives them back if the
 *		transaction or savepoint aborts (escrow.c).  With too few permits,
 *		overdue holds of the pool are expired first, in this transaction,
 *		and their permits used (lifecycle.c); with a wait, the claimer then
 *		sleeps on the pool's wait queue while permits in flight in other
 *		transactions could still come back, or a hold of the pool expires
 *		before the wait ends.  It lets go of the customer's
 *		lock while it sleeps and checks the holdings again once it has the
 *		permits;
 *	7.	insert the ledger row.
 *
 * The take is bound to the slot found in step 4 (its generation): if the
 * pool was dropped, or dropped and made anew with other limits, while the
 * claim waited for a lock or slept, the take is refused and the claim goes
 * back to step 4, so every limit is checked against the pool it takes from.
 *
 * A hold is a claim whose ledger row carries an expiry (expires_at), ttl
 * after the grant by the clock; it counts against the capacity like any
 * claim until it is confirmed (then it is permanent), released, or
 * returned after its expiry (lifecycle.c), and against the customer's
 * limit until its time is up.
 *
 * The claim id comes from a sequence with no cache, so ids increase in the
 * order claims are made and can serve as fencing tokens.
 *
 * Note about locking: the customer and request locks are held to the end
 * of the transaction, like row locks, except that the customer's lock is
 * let go while the claim sleeps on the wait queue; the semaphore is
 * lock-free apart from the shared-mode table lock described in
 * semaphore.c.  A sleep on the wait queue is invisible to the deadlock
 * detector: if the transaction holding the awaited permits waits for a
 * lock the sleeper's transaction took earlier, the sleeper's wait time ends
 * it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "args.h"
#include "catalog.h"
#include "claim.h"
#include "common.h"
#include "compat.h"
#include "entry.h"
#include "escrow.h"
#include "ledger.h"
#include "lifecycle.h"
#include "load.h"
#include "locks.h"
#include "route.h"
#include "semaphore.h"

PG_FUNCTION_INFO_V1(coupon_claim);
PG_FUNCTION_INFO_V1(coupon_claim_detailed);
PG_FUNCTION_INFO_V1(coupon_hold);
PG_FUNCTION_INFO_V1(coupon_routed_claim);
PG_FUNCTION_INFO_V1(coupon_routed_hold);
PG_FUNCTION_INFO_V1(coupon_routed_here);

const char *const coupon_claim_status_names[] = {
	[CLAIM_GRANTED] = "granted",
	[CLAIM_REPEAT] = "repeat",
	[CLAIM_SOLD_OUT] = "sold_out",
	[CLAIM_TIMED_OUT] = "timed_out",
	[CLAIM_LIMIT_REACHED] = "limit_reached",
	[CLAIM_HELD] = "held",
};

/* Whether an answer of this status names a claim (its claim id). */
bool
coupon_status_has_claim(ClaimStatus status)
{
	return status == CLAIM_GRANTED || status == CLAIM_REPEAT ||
		status == CLAIM_HELD;
}

/* What a claim asks for. */
typedef struct ClaimRequest
{
	char	   *pool;
	char	   *customer;
	int32		qty;
	int64		wait;			/* microseconds */
	int64		ttl;			/* a hold's, microseconds; 0 for a claim */
	char	   *request_id;		/* NULL if none */
} ClaimRequest;

/*
 * The answer to a customer who holds too much of the pool for qty more:
 * under a limit of one, the claim it holds (a repeat: a double click, a
 * retry after a lost connection), unless that is a live hold and a
 * permanent claim was asked for, which is not what a hold is (CLAIM_HELD:
 * confirm the hold instead); else the limit is reached.
 */
ClaimStatus
coupon_limit_status(const CouponHoldings *holdings, int32 per_customer,
					bool hold)
{
	if (per_customer != 1 || holdings->first_claim == 0)
		return CLAIM_LIMIT_REACHED;
	return holdings->first_is_hold && !hold ? CLAIM_HELD : CLAIM_REPEAT;
}

/*
 * Would qty more exceed the customer's limit?  If so, the answer is in
 * *status and *claim_id (coupon_limit_status).
 */
static bool
customer_at_limit(const CouponPoolKey *key, const char *customer, int64 qty,
				  int32 per_customer, bool hold, int64 *claim_id,
				  ClaimStatus *status)
{
	CouponHoldings holdings;
	char	   *one = unconstify(char *, customer);

	coupon_ledger_holdings_many(key->name, &one, 1, &holdings, false);
	if (holdings.held + qty <= per_customer)
		return false;
	if (holdings.bound)
	{
		coupon_ledger_holdings_many(key->name, &one, 1, &holdings, true);
		if (holdings.held + qty <= per_customer)
			return false;
	}
	*claim_id = holdings.first_claim;
	*status = coupon_limit_status(&holdings, per_customer, hold);
	return true;
}

/*
 * The answer to a repeat of a request whose claim is row: a claim that is
 * gone (released, or a hold whose time is up) is never handed back, and is
 * an error (UC002, UC001); a live hold answers a request for a permanent
 * claim with CLAIM_HELD; anything else is a repeat.
 */
ClaimStatus
coupon_repeat_status(const CouponClaimRow *row, const char *request_id,
					 bool hold)
{
	if (row->released_at != 0 ||
		(row->expires_at != 0 && row->expires_at <= GetCurrentTimestamp()))
		coupon_claim_gone(row->id, row->released_at, row->expires_at,
						  request_id);
	return row->expires_at != 0 && !hold ? CLAIM_HELD : CLAIM_REPEAT;
}

/*
 * The claim made with the request id, if any: then it is the answer, in
 * *status (coupon_repeat_status).  The same request id for another
 * customer or quantity is an error.
 */
static bool
request_repeated(const CouponPoolKey *key, const ClaimRequest *req,
				 int64 *claim_id, ClaimStatus *status)
{
	CouponClaimRow row;

	coupon_lock_request(key->name, req->request_id);
	if (!coupon_ledger_find_request(key->name, req->request_id, &row))
		return false;
	if (strcmp(row.customer, req->customer) != 0 || row.qty != req->qty)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("request id \"%s\" of pool \"%s\" was used for another claim",
						req->request_id, key->name),
				 errdetail("A claim was made with it for another customer or quantity."),
				 errhint("Use a new request id for a new claim.")));
	*status = coupon_repeat_status(&row, req->request_id, req->ttl != 0);
	*claim_id = row.id;
	return true;
}

/*
 * Take qty permits of the pool for the customer, whose lock the caller
 * holds (lock_is_new if the caller's call took it), after checking what the
 * customer holds: steps 4 to 6 of the header comment.  CLAIM_GRANTED means
 * the permits are taken and *ref names the slot; else the status says why
 * not, with the claim held on a repeat.  A claim that slept and got
 * nothing returns without the customer's lock.
 */
ClaimStatus
coupon_claim_take(const CouponPoolKey *key, const char *customer, int64 qty,
				  TimestampTz expires_at, TimestampTz deadline,
				  bool lock_is_new, CouponSlotRef *ref, int64 *claim_id)
{
	ClaimStatus status;
	CouponTake	take;

	for (;;)
	{
		*ref = coupon_pool_slot(key, qty);
		if (customer_at_limit(key, customer, qty, ref->per_customer,
							  expires_at != 0, claim_id, &status))
			return status;

		take = coupon_escrow_take(ref, COUPON_PENDING_CLAIM, qty, 1,
								  expires_at, 0, coupon_expiry_refill,
								  (void *) key);
		/* A hold that expires before the deadline is worth waiting for. */
		if (take == COUPON_SOLD_OUT && coupon_slot_expires_by(*ref, deadline))
			take = COUPON_TIMED_OUT;
		if (take == COUPON_TIMED_OUT && deadline != 0 && lock_is_new)
		{
			/*
			 * Sleep without the customer's lock: the transaction whose
			 * permits we wait for might claim for this customer too, and the
			 * deadlock detector does not see a sleep on the wait queue.  (If
			 * this transaction held the lock already, from an earlier claim
			 * for the customer, it cannot let go of it and does not sleep at
			 * all.)  With the lock back, look at the customer's holdings
			 * again: another session may have claimed for it meanwhile.
			 */
			coupon_unlock_customer(key, customer);
			take = coupon_escrow_take(ref, COUPON_PENDING_CLAIM, qty, 1,
									  expires_at, deadline,
									  coupon_expiry_refill, (void *) key);
			if (take != COUPON_TAKEN && take != COUPON_STALE)
				break;
			(void) coupon_lock_customer(key, customer);
			if (take == COUPON_TAKEN &&
				customer_at_limit(key, customer, qty, ref->per_customer,
								  expires_at != 0, claim_id, &status))
			{
				coupon_escrow_cancel_last();
				return status;
			}
		}
		if (take != COUPON_STALE)
			break;
	}
	if (take == COUPON_TAKEN)
		return CLAIM_GRANTED;
	coupon_slot_count(*ref, COUPON_STAT_SOLD_OUT);
	return take == COUPON_SOLD_OUT ? CLAIM_SOLD_OUT : CLAIM_TIMED_OUT;
}

/*
 * The claim itself.  On return *ref names the pool's slot, if it is loaded
 * (for what remains), and *claim_id is set unless the status says no.
 */
static ClaimStatus
claim(const ClaimRequest *req, int64 *claim_id, CouponSlotRef *ref)
{
	CouponPoolKey key;
	ClaimStatus status;
	bool		lock_is_new;
	CouponNewClaim row;

	coupon_make_key(&key, req->pool);
	if (req->request_id && request_repeated(&key, req, claim_id, &status))
	{
		(void) coupon_pool_find(&key, 0, ref);
		return status;
	}

	/* From here to the end of the transaction the customer is ours. */
	lock_is_new = coupon_lock_customer(&key, req->customer);
	status = coupon_claim_take(&key, req->customer, req->qty,
							   coupon_expiry_after(req->ttl),
							   coupon_deadline(req->wait), lock_is_new, ref,
							   claim_id);
	if (status != CLAIM_GRANTED)
		return status;

	row.customer = req->customer;
	row.qty = req->qty;
	/* ttl from now, after any wait: no earlier than the take's expiry */
	row.expires_at = coupon_expiry_after(req->ttl);
	row.request_id = req->request_id;
	row.cart_claim = 0;
	coupon_ledger_insert_claims(key.name, &row, 1);
	*claim_id = row.id;
	return CLAIM_GRANTED;
}

/*
 * The arguments of coupon_claim() and coupon_claim_detailed(), from
 * argument first on: pool, customer, qty, wait and (from 1.1) request_id.
 * coupon_routed_claim() has them after its partition.
 */
static void
claim_args(FunctionCallInfo fcinfo, int first, ClaimRequest *req)
{
	req->pool = coupon_arg_pool(fcinfo, first);
	req->customer = coupon_arg_text(fcinfo, first + 1, "customer", COUPON_CUSTOMER_MAX);
	req->qty = coupon_arg_int32(fcinfo, first + 2, "qty", 1);
	req->wait = coupon_arg_duration(fcinfo, first + 3, "wait");
	req->ttl = 0;
	req->request_id = PG_NARGS() > first + 4 ?
		coupon_arg_request_id(fcinfo, first + 4) : NULL;
}

/*
 * The arguments of coupon_hold(), from argument first on: pool, customer,
 * ttl, qty, wait and request_id.  coupon_routed_hold() has them after its
 * partition.
 */
static void
hold_args(FunctionCallInfo fcinfo, int first, ClaimRequest *req)
{
	req->pool = coupon_arg_pool(fcinfo, first);
	req->customer = coupon_arg_text(fcinfo, first + 1, "customer", COUPON_CUSTOMER_MAX);
	req->ttl = coupon_arg_ttl(fcinfo, first + 2);
	req->qty = coupon_arg_int32(fcinfo, first + 3, "qty", 1);
	req->wait = coupon_arg_duration(fcinfo, first + 4, "wait");
	req->request_id = coupon_arg_request_id(fcinfo, first + 5);
}

/* The row of a function that returns a record, from values and nulls. */
static Datum
row_result(FunctionCallInfo fcinfo, Datum *values, bool *nulls)
{
	TupleDesc	tupdesc;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}

static Datum
claim_id_result(FunctionCallInfo fcinfo, ClaimStatus status, int64 claim_id)
{
	if (status != CLAIM_GRANTED && status != CLAIM_REPEAT)
		PG_RETURN_NULL();
	PG_RETURN_INT64(claim_id);
}

/*
 * coupon_claim(pool, customer, qty, wait, request_id) returns bigint: the
 * claim id, the existing one on a repeat, or NULL when nothing was granted.
 */
Datum
coupon_claim(PG_FUNCTION_ARGS)
{
	ClaimRequest req;
	int64		claim_id = 0;
	CouponSlotRef ref;

	ClaimStatus status;

	coupon_enter(fcinfo, "coupon_claim", COUPON_WRITES);
	claim_args(fcinfo, 0, &req);
	status = claim(&req, &claim_id, &ref);
	return claim_id_result(fcinfo, status, claim_id);
}

/*
 * coupon_claim_detailed(pool, customer, qty, wait, request_id) returns
 * (claim_id bigint, status text, available bigint).
 */
Datum
coupon_claim_detailed(PG_FUNCTION_ARGS)
{
	ClaimRequest req;
	int64		claim_id = 0;
	CouponSlotRef ref;
	ClaimStatus status;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	CouponSlotStats stats;

	coupon_enter(fcinfo, "coupon_claim_detailed", COUPON_WRITES);
	claim_args(fcinfo, 0, &req);
	status = claim(&req, &claim_id, &ref);
	values[0] = Int64GetDatum(claim_id);
	nulls[0] = !coupon_status_has_claim(status);
	values[1] = CStringGetTextDatum(coupon_claim_status_names[status]);
	memset(&stats, 0, sizeof(stats));
	if (ref.slot)
		coupon_slot_stats(ref, &stats);
	values[2] = Int64GetDatum(stats.available);
	return row_result(fcinfo, values, nulls);
}

/*
 * coupon_hold(pool, customer, ttl, qty, wait, request_id) returns bigint: a
 * claim that expires ttl after it is granted unless confirmed; NULL when
 * nothing was granted.
 */
Datum
coupon_hold(PG_FUNCTION_ARGS)
{
	ClaimRequest req;
	int64		claim_id = 0;
	CouponSlotRef ref;
	ClaimStatus status;

	coupon_enter(fcinfo, "coupon_hold", COUPON_WRITES);
	coupon_require_lifecycle("coupon_hold");
	hold_args(fcinfo, 0, &req);
	status = claim(&req, &claim_id, &ref);
	return claim_id_result(fcinfo, status, claim_id);
}

/* The argument types of the functions the routed calls stand for. */
static const Oid claim_argtypes[] = {TEXTOID, TEXTOID, INT4OID, INTERVALOID, TEXTOID};
static const Oid hold_argtypes[] = {TEXTOID, TEXTOID, INTERVALOID, INT4OID, INTERVALOID, TEXTOID};

/*
 * A routed call claims as the function it stands for (name, with nargs
 * arguments of argtypes) would, and so needs the caller's grant of that
 * function, as on a lone server (README, "Grants").
 */
static void
check_wrapped_grant(const char *name, int nargs, const Oid *argtypes)
{
	Oid			funcoid;
	AclResult	result;

	funcoid = LookupFuncName(list_make2(makeString(get_namespace_name(coupon_catalog.schema)),
										makeString(pstrdup(name))),
							 nargs, argtypes, false);
	result = coupon_function_aclcheck(funcoid, GetUserId());
	if (result != ACLCHECK_OK)
		aclcheck_error(result, OBJECT_FUNCTION, name);
}

/* What a spread pool's share has available, loading the pool if it must. */
static int64
share_available(const char *pool, CouponSlotRef ref)
{
	CouponSlotStats stats;

	if (ref.slot == NULL)
	{
		CouponPoolKey key;

		coupon_make_key(&key, pool);
		ref = coupon_pool_slot(&key, 0);
	}
	coupon_slot_stats(ref, &stats);
	return stats.available;
}

/*
 * Is qty more than a spread pool's share here could ever grant, though
 * within the per-customer limit?  Then the answer is sold out before any
 * claim, with what the share has, so that the proxy refills it first: a
 * share's capacity is a part of the pool's that moves with transfers.
 */
static bool
share_too_small(const CouponRoute *route, const ClaimRequest *req)
{
	return route->shared && req->qty > 1 && req->qty > route->capacity &&
		req->qty <= route->per_customer;
}

/*
 * coupon_routed_claim(partition, pool, customer, qty, wait, request_id,
 * detailed) returns (claim_id bigint, status text, available bigint,
 * serve_partition integer, shared boolean): the claim a cluster's proxy
 * sends to the node it believes serves the customer (route.c).  If
 * another partition serves it: nothing claimed, status 'elsewhere' and
 * that partition.  Else the claim, with the status of
 * coupon_claim_detailed() if detailed, otherwise 'granted' for a claim id
 * (coupon_claim's answer) or NULL; when nothing was granted, shared says
 * whether the pool is a spread pool's share, which a refill could help,
 * and available what it has (with detailed, available is always
 * coupon_claim_detailed's).  A qty above a share's capacity but within
 * the per-customer limit is 'sold_out' before any claim: a share's
 * capacity is a part of the pool's that moves with transfers.
 */
Datum
coupon_routed_claim(PG_FUNCTION_ARGS)
{
	ClaimRequest req;
	CouponRoute route;
	int32		partition;
	bool		detailed;
	int64		claim_id = 0;
	CouponSlotRef ref = {0};
	ClaimStatus status;
	const char *status_name = NULL;
	Datum		values[5] = {0};
	bool		nulls[5] = {true, true, true, false, true};

	coupon_enter(fcinfo, "coupon_routed_claim", COUPON_WRITES);
	partition = coupon_arg_int32(fcinfo, 0, "partition", 0);
	claim_args(fcinfo, 1, &req);
	coupon_arg_not_null(fcinfo, 6, "detailed");
	detailed = PG_GETARG_BOOL(6);
	check_wrapped_grant(detailed ? "coupon_claim_detailed" : "coupon_claim",
						lengthof(claim_argtypes), claim_argtypes);

	coupon_route(partition, req.pool, req.customer, &route);
	values[3] = Int32GetDatum(route.serve);
	if (route.serve != route.here)
		status_name = "elsewhere";
	else if (share_too_small(&route, &req))
	{
		status_name = coupon_claim_status_names[CLAIM_SOLD_OUT];
		values[2] = Int64GetDatum(share_available(req.pool, ref));
		nulls[2] = false;
		values[4] = BoolGetDatum(true);
		nulls[4] = false;
	}
	else
	{
		status = claim(&req, &claim_id, &ref);
		if (coupon_status_has_claim(status) &&
			(detailed || status != CLAIM_HELD))
		{
			values[0] = Int64GetDatum(claim_id);
			nulls[0] = false;
		}
		else
		{
			values[4] = BoolGetDatum(route.shared);
			nulls[4] = false;
		}
		if (detailed)
		{
			status_name = coupon_claim_status_names[status];
			values[2] = Int64GetDatum(ref.slot ? share_available(req.pool, ref) : 0);
			nulls[2] = false;
		}
		else if (!nulls[0])
			status_name = coupon_claim_status_names[CLAIM_GRANTED];
		else if (route.shared)
		{
			values[2] = Int64GetDatum(share_available(req.pool, ref));
			nulls[2] = false;
		}
	}
	if (status_name)
	{
		values[1] = CStringGetTextDatum(status_name);
		nulls[1] = false;
	}

	return row_result(fcinfo, values, nulls);
}

/*
 * coupon_routed_hold(partition, pool, customer, ttl, qty, wait, request_id)
 * returns (claim_id bigint, available bigint, serve_partition integer):
 * the hold a cluster's proxy sends to the node it believes serves the
 * customer.  If another partition serves it: nothing held, and that
 * partition.  Else coupon_hold()'s claim id, or, when nothing was held
 * (or the qty is more than the share could grant, share_too_small), what
 * a spread pool's share here has available (NULL for a pool not spread
 * here).
 */
Datum
coupon_routed_hold(PG_FUNCTION_ARGS)
{
	ClaimRequest req;
	CouponRoute route;
	int32		partition;
	int64		claim_id = 0;
	CouponSlotRef ref = {0};
	ClaimStatus status;
	Datum		values[3] = {0};
	bool		nulls[3] = {true, true, false};

	coupon_enter(fcinfo, "coupon_routed_hold", COUPON_WRITES);
	coupon_require_lifecycle("coupon_routed_hold");
	partition = coupon_arg_int32(fcinfo, 0, "partition", 0);
	hold_args(fcinfo, 1, &req);
	check_wrapped_grant("coupon_hold", lengthof(hold_argtypes), hold_argtypes);

	coupon_route(partition, req.pool, req.customer, &route);
	values[2] = Int32GetDatum(route.serve);
	if (route.serve == route.here)
	{
		status = share_too_small(&route, &req) ? CLAIM_SOLD_OUT :
			claim(&req, &claim_id, &ref);
		if (status == CLAIM_GRANTED || status == CLAIM_REPEAT)
		{
			values[0] = Int64GetDatum(claim_id);
			nulls[0] = false;
		}
		else if (route.shared)
		{
			values[1] = Int64GetDatum(share_available(req.pool, ref));
			nulls[1] = false;
		}
	}

	return row_result(fcinfo, values, nulls);
}

/*
 * coupon_routed_here(partition, pool, customer) returns the partition that
 * serves customer in pool (route.c), after checking that this node is
 * partition (UC005): this node's, unless the pool is a spread pool's share
 * here and the customer's hash picks another share.  A NULL pool or
 * customer is served here.  The node's routed bulk claim, cart and
 * transfers call it; the routed claim and hold ask route.c themselves.
 */
Datum
coupon_routed_here(PG_FUNCTION_ARGS)
{
	CouponRoute route;
	int32		partition;

	coupon_enter(fcinfo, "coupon_routed_here", COUPON_READS);
	partition = coupon_arg_int32(fcinfo, 0, "partition", 0);
	coupon_route(partition,
				 PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)),
				 PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)),
				 &route);
	PG_RETURN_INT32(route.serve);
}
