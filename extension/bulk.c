/*-------------------------------------------------------------------------
 *
 * bulk.c
 *		coupon_claim_many(): one pool, many customers, one call.
 *
 * Floor: an SQL entry point.  Calls claim.c's statuses and lifecycle.c's
 * expiry of holds, and below them the escrow, load, ledger and locks.
 *
 * Campaign issuance, or a front end that gathers requests for a few
 * milliseconds, claims qty coupons for each of many customers at once.
 * Each customer is on its own: one may be granted, the next be at its
 * limit; all of it in the caller's transaction, like as many calls of
 * coupon_claim() (without a wait), but cheaper:
 *
 *	1.	the customers' locks are taken in a fixed order (by name), so two
 *		bulk calls never wait for each other in a cycle;
 *	2.	each customer's holdings are read (ledger.c, one index scan for
 *		all) and checked in the order of the array, a customer named twice
 *		counting what its first mention asks for;
 *	3.	the permits for every grant are taken at once (escrow.c); if there
 *		are too few, as many whole grants as there are permits for, to the
 *		customers first in the array;
 *	4.	the rows are written in one executor state (ledger.c).
 *
 * The answer is a row per element of the array, in its order: the
 * customer, its claim id (the one it holds on a repeat) and the status of
 * coupon_claim_detailed().
 *
 * Note about locking: the customer locks as in claim.c, one per customer,
 * up to a bound per transaction past which the pool's lock stands for all
 * its customers (locks.c): a statement may claim for any number of
 * customers without filling the server's lock table.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "args.h"
#include "claim.h"
#include "common.h"
#include "compat.h"
#include "entry.h"
#include "escrow.h"
#include "ledger.h"
#include "lifecycle.h"
#include "load.h"
#include "locks.h"
#include "semaphore.h"

PG_FUNCTION_INFO_V1(coupon_claim_many);

/* Customers a call may name. */
#define COUPON_MANY_MAX		100000

typedef struct BulkEntry
{
	char	   *customer;
	int			index;			/* in the array */
	ClaimStatus status;
	int64		claim_id;
	struct BulkEntry *repeats;	/* an earlier mention whose grant this is */
	bool		wanted;			/* to be granted if there are permits */
} BulkEntry;

static int
entry_cmp(const void *a, const void *b)
{
	const BulkEntry *x = *(BulkEntry *const *) a;
	const BulkEntry *y = *(BulkEntry *const *) b;
	int			c = strcmp(x->customer, y->customer);

	return c != 0 ? c : x->index - y->index;
}

/* The customers argument, checked. */
static BulkEntry *
customers_arg(FunctionCallInfo fcinfo, int argno, int *n)
{
	ArrayType  *array;
	Datum	   *elems;
	bool	   *nulls;
	BulkEntry  *entries;

	coupon_arg_not_null(fcinfo, argno, "customers");
	array = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("customers must be a one-dimensional array")));
	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, n);
	if (*n > COUPON_MANY_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a call may name at most %d customers", COUPON_MANY_MAX),
				 errdetail("It names %d.", *n)));
	entries = palloc0(sizeof(BulkEntry) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
	{
		int			len;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("customers must not contain nulls")));
		len = VARSIZE_ANY_EXHDR(DatumGetTextPP(elems[i]));
		if (len == 0 || len > COUPON_CUSTOMER_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("customer %d must be 1 to %d bytes long",
							i + 1, COUPON_CUSTOMER_MAX),
					 errdetail("It is %d bytes long.", len)));
		entries[i].customer = TextDatumGetCString(elems[i]);
		entries[i].index = i;
	}
	return entries;
}

/*
 * The holdings of the customers whose holdings are an upper bound
 * (CouponHoldings.bound) and would refuse one of their entries of qty,
 * made exact: a bound is enough to grant, not to refuse.
 */
static void
exact_where_refused(const CouponPoolKey *key, char **distinct,
					const int *entries, int ndistinct, int32 qty,
					int32 per_customer, CouponHoldings *holdings)
{
	for (int d = 0; d < ndistinct; d++)
	{
		if (holdings[d].bound &&
			holdings[d].held + (int64) entries[d] * qty > per_customer)
			coupon_ledger_holdings_many(key->name, &distinct[d], 1,
										&holdings[d], true);
	}
}

/*
 * Lock every customer (in sorted order) and decide, against the pool's
 * limit, who is to be granted.  Returns the number to grant.
 */
static int
bulk_check(const CouponPoolKey *key, BulkEntry **sorted, int n, int32 qty,
		   int32 per_customer)
{
	char	  **distinct = palloc(sizeof(char *) * Max(n, 1));
	int		   *entries = palloc0(sizeof(int) * Max(n, 1));
	CouponHoldings *holdings;
	int			ndistinct = 0;
	int			wanted = 0;

	/* All the locks first, then every customer's holdings in one scan. */
	for (int i = 0; i < n; i++)
	{
		if (ndistinct == 0 ||
			strcmp(distinct[ndistinct - 1], sorted[i]->customer) != 0)
		{
			distinct[ndistinct++] = sorted[i]->customer;
			(void) coupon_lock_customer(key, sorted[i]->customer);
		}
		entries[ndistinct - 1]++;
	}
	holdings = palloc(sizeof(CouponHoldings) * Max(ndistinct, 1));
	coupon_ledger_holdings_many(key->name, distinct, ndistinct, holdings,
								false);
	exact_where_refused(key, distinct, entries, ndistinct, qty, per_customer,
						holdings);

	for (int i = 0, d = 0; i < n; d++)
	{
		int64		held = holdings[d].held;
		int64		first_id = holdings[d].first_claim;
		BulkEntry  *granted = NULL;

		for (; i < n && strcmp(sorted[i]->customer, distinct[d]) == 0; i++)
		{
			BulkEntry  *e = sorted[i];

			e->wanted = false;
			e->repeats = NULL;
			if (held + qty <= per_customer)
			{
				e->wanted = true;
				held += qty;
				granted = granted ? granted : e;
				wanted++;
			}
			else if (per_customer == 1 && first_id != 0)
			{
				e->status = coupon_limit_status(&holdings[d], per_customer,
												false);
				e->claim_id = first_id;
			}
			else if (per_customer == 1 && granted)
				e->repeats = granted;
			else
				e->status = CLAIM_LIMIT_REACHED;
		}
	}
	return wanted;
}

/*
 * Take the permits of as many of the wanted grants as possible, all of
 * them first.  Returns how many were taken; *failed how the rest are
 * answered.  COUPON_STALE in *failed (with 0) if the pool changed hands.
 */
static int
bulk_take(CouponSlotRef *ref, const CouponPoolKey *key, int wanted, int32 qty,
		  CouponTake *failed)
{
	int			k = wanted;

	*failed = COUPON_SOLD_OUT;
	while (k > 0)
	{
		CouponTake	take = coupon_escrow_take(ref, COUPON_PENDING_CLAIM,
											  (uint64) k * qty, k, 0, 0,
											  coupon_expiry_refill,
											  (void *) key);

		if (take == COUPON_TAKEN)
			break;
		*failed = take;
		if (take == COUPON_STALE)
			return 0;
		k = Min(k - 1, (int) Min(coupon_escrow_available(*ref) / qty,
								 (uint64) PG_INT32_MAX));
	}
	return k;
}

/*
 * coupon_claim_many(pool, customers, qty) returns table (customer text,
 * claim_id bigint, status text): a row per element of customers.
 */
Datum
coupon_claim_many(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *pool;
	int32		qty;
	int			n;
	BulkEntry  *entries;
	BulkEntry **sorted;
	CouponPoolKey key;
	CouponSlotRef ref;
	int			granted;
	CouponTake	failed;
	CouponNewClaim *rows;
	int			nrows = 0;

	coupon_enter(fcinfo, "coupon_claim_many", COUPON_WRITES);
	pool = coupon_arg_pool(fcinfo, 0);
	entries = customers_arg(fcinfo, 1, &n);
	qty = coupon_arg_int32(fcinfo, 2, "qty", 1);
	InitMaterializedSRF(fcinfo, 0);
	coupon_make_key(&key, pool);

	sorted = palloc(sizeof(BulkEntry *) * Max(n, 1));
	for (int i = 0; i < n; i++)
		sorted[i] = &entries[i];
	qsort(sorted, n, sizeof(BulkEntry *), entry_cmp);

	do
	{
		int			wanted;

		ref = coupon_pool_slot(&key, qty);
		wanted = bulk_check(&key, sorted, n, qty, ref.per_customer);
		granted = bulk_take(&ref, &key, wanted, qty, &failed);
	} while (granted == 0 && failed == COUPON_STALE);

	rows = palloc(sizeof(CouponNewClaim) * Max(granted, 1));
	for (int i = 0; i < n; i++)
	{
		BulkEntry  *e = &entries[i];

		if (!e->wanted)
			continue;
		if (nrows == granted)
		{
			e->status = failed == COUPON_TIMED_OUT ? CLAIM_TIMED_OUT : CLAIM_SOLD_OUT;
			coupon_slot_count(ref, COUPON_STAT_SOLD_OUT);
			continue;
		}
		e->status = CLAIM_GRANTED;
		rows[nrows].customer = e->customer;
		rows[nrows].qty = qty;
		rows[nrows].expires_at = 0;
		rows[nrows].request_id = NULL;
		rows[nrows].cart_claim = 0;
		nrows++;
	}
	if (nrows > 0)
		coupon_ledger_insert_claims(key.name, rows, nrows);

	nrows = 0;
	for (int i = 0; i < n; i++)
	{
		BulkEntry  *e = &entries[i];
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		if (e->wanted && e->status == CLAIM_GRANTED)
			e->claim_id = rows[nrows++].id;
		else if (e->repeats)
		{
			e->status = e->repeats->status == CLAIM_GRANTED ? CLAIM_REPEAT :
				e->repeats->status;
			e->claim_id = e->repeats->claim_id;
		}
		values[0] = CStringGetTextDatum(e->customer);
		values[1] = Int64GetDatum(e->claim_id);
		nulls[1] = !coupon_status_has_claim(e->status);
		values[2] = CStringGetTextDatum(coupon_claim_status_names[e->status]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
