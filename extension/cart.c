/*-------------------------------------------------------------------------
 *
 * cart.c
 *		coupon_claim_cart(): several pools for one customer, all or nothing.
 *
 * Floor: an SQL entry point.  Calls claim.c for each pool, and below it
 * load, ledger and locks.
 *
 * A cart is a list of lines (pool, qty) for one customer.  Every line is
 * granted, one claim id per line, or none is: nothing is taken.  The lines
 * naming the same pool are added up and checked as one claim of the sum,
 * so two lines of one pool cannot both pass a check that only one fits
 * (capacity, the customer's limit).  The pools are then claimed in a fixed
 * order, by name, so that two carts waiting for each other's coupons never
 * form a cycle; each pool is claimed as coupon_claim() does (claim.c), with
 * the holds' expiry if a ttl is given, and the wait shared by the whole
 * cart.
 *
 * All of it happens in an internal subtransaction.  If a line cannot be
 * granted, the subtransaction is rolled back: the escrow's subtransaction
 * callback gives back the permits of the pools claimed before it, the
 * customer locks taken in it are released, and the answer says which line
 * failed and why.  An error rolls it back too and is raised again.
 *
 * A cart makes one claim per pool, of the sum of its lines; each line
 * answers with the claim of its pool.  With a request id R, the claim of
 * the cart's n-th pool by name is written with request id R and cart claim
 * n (the ledger's column cart_claim, NULL for a single claim), so that R
 * names the cart whatever the order of its lines, and no request id of a
 * single claim, "R/1" included, is ever taken for part of a cart, nor the
 * other way round (ledger.c).  A call whose request id was used already
 * for a cart is a repeat, and answers with the claims that call made, if
 * it is the same cart: the same customer, the same pools and the same sum
 * of each.  Anything else is an error.  The claims of cart R are found by
 * R and their numbers, in whatever pool, so that a cart with other pools
 * is not taken for a new one.
 *
 * Note about locking: the request lock (one per cart request id, whatever
 * its pools) is taken before the subtransaction and kept; the customer
 * locks as in claim.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "args.h"
#include "catalog.h"
#include "claim.h"
#include "common.h"
#include "compat.h"
#include "entry.h"
#include "ledger.h"
#include "load.h"
#include "locks.h"
#include "semaphore.h"

PG_FUNCTION_INFO_V1(coupon_claim_cart);
PG_FUNCTION_INFO_V1(coupon_claim_cart_detailed);

/* Lines a cart may have. */
#define COUPON_CART_MAX_LINES	1000

typedef struct CartLine
{
	char	   *pool;
	int32		qty;
	int			pool_index;		/* in Cart.pools, sorted */
} CartLine;

/* The lines of one pool, added up: one claim. */
typedef struct CartPool
{
	const char *pool;
	int64		qty;
	int			nlines;
	int			first_line;		/* from 0 */
	int64		claim_id;
} CartPool;

typedef struct Cart
{
	CartLine   *lines;
	int			nlines;
	CartPool   *pools;			/* sorted by name */
	int			npools;
	char	   *customer;
	int64		ttl;			/* the holds', microseconds; 0: claims */
	int64		wait;
	char	   *request_id;
	int			failed_line;	/* from 1; 0 if none */
	ClaimStatus status;			/* of cart_claim_all() */
} Cart;

static int
pool_name_cmp(const void *a, const void *b)
{
	return strcmp(((const CartPool *) a)->pool, ((const CartPool *) b)->pool);
}

/* The elements of a one-dimensional array argument, none NULL. */
static int
array_arg(FunctionCallInfo fcinfo, int argno, const char *what, Oid type,
		  Datum **elems)
{
	ArrayType  *array;
	bool	   *nulls;
	int			n;
	int16		typlen;
	bool		typbyval;
	char		typalign;

	coupon_arg_not_null(fcinfo, argno, what);
	array = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", what)));
	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	deconstruct_array(array, type, typlen, typbyval, typalign, elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain nulls", what)));
	}
	return n;
}

/* Read and check every argument, and add up the lines per pool. */
static void
cart_args(FunctionCallInfo fcinfo, const char *function, Cart *cart)
{
	Datum	   *pools;
	Datum	   *qtys;
	int			nqtys;

	coupon_enter(fcinfo, function, COUPON_WRITES);
	coupon_require_lifecycle(function);
	cart->nlines = array_arg(fcinfo, 0, "pools", TEXTOID, &pools);
	nqtys = array_arg(fcinfo, 1, "qtys", INT4OID, &qtys);
	if (cart->nlines == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a cart must have at least one line")));
	if (cart->nlines > COUPON_CART_MAX_LINES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a cart may have at most %d lines", COUPON_CART_MAX_LINES),
				 errdetail("It has %d.", cart->nlines)));
	if (nqtys != cart->nlines)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pools and qtys must have the same number of elements"),
				 errdetail("pools has %d and qtys %d.", cart->nlines, nqtys)));
	cart->customer = coupon_arg_text(fcinfo, 2, "customer", COUPON_CUSTOMER_MAX);
	cart->ttl = PG_ARGISNULL(3) ? 0 : coupon_arg_ttl(fcinfo, 3);
	cart->wait = coupon_arg_duration(fcinfo, 4, "wait");
	cart->request_id = coupon_arg_request_id(fcinfo, 5);

	cart->lines = palloc0(sizeof(CartLine) * cart->nlines);
	cart->pools = palloc0(sizeof(CartPool) * cart->nlines);
	cart->npools = 0;
	for (int i = 0; i < cart->nlines; i++)
	{
		CartLine   *line = &cart->lines[i];
		int			p;

		line->pool = TextDatumGetCString(pools[i]);
		line->qty = DatumGetInt32(qtys[i]);
		if (VARSIZE_ANY_EXHDR(DatumGetTextPP(pools[i])) == 0 ||
			strlen(line->pool) > COUPON_POOL_NAME_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("pool name of line %d must be 1 to %d bytes long",
							i + 1, COUPON_POOL_NAME_MAX)));
		if (line->qty < 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("qty of line %d must be at least 1", i + 1),
					 errdetail("The value given was %d.", line->qty)));
		for (p = 0; p < cart->npools; p++)
		{
			if (strcmp(cart->pools[p].pool, line->pool) == 0)
				break;
		}
		if (p == cart->npools)
		{
			cart->pools[p].pool = line->pool;
			cart->pools[p].first_line = i;
			cart->npools++;
		}
		cart->pools[p].qty += line->qty;
		cart->pools[p].nlines++;
	}
	qsort(cart->pools, cart->npools, sizeof(CartPool), pool_name_cmp);
	for (int i = 0; i < cart->nlines; i++)
	{
		CartPool	key = {.pool = cart->lines[i].pool};
		CartPool   *pool = bsearch(&key, cart->pools, cart->npools,
								   sizeof(CartPool), pool_name_cmp);

		cart->lines[i].pool_index = pool - cart->pools;
	}
}

/*
 * A call with this request id was made already: answer with its claims, in
 * *status (coupon_repeat_status: CLAIM_HELD if a cart of claims finds
 * live holds).  The same request id for another cart is an error, and so
 * is a cart one of whose claims is gone.
 */
static bool
cart_repeated(Cart *cart, ClaimStatus *status)
{
	bool		found = false;
	bool		same = true;
	CouponClaimRow *claims = palloc(sizeof(CouponClaimRow) * cart->npools);

	coupon_lock_request("", cart->request_id);

	/* The claim of each pool, and none after the last. */
	for (int p = 0; p <= cart->npools; p++)
	{
		CouponClaimRow rows[2];
		int			n = coupon_ledger_find_cart_claim(cart->request_id, p + 1,
													  rows, lengthof(rows));

		found |= n > 0;
		if (p == cart->npools)
			same &= n == 0;
		else if (n == 1 && strcmp(rows[0].pool, cart->pools[p].pool) == 0 &&
				 strcmp(rows[0].customer, cart->customer) == 0 &&
				 rows[0].qty == cart->pools[p].qty)
		{
			cart->pools[p].claim_id = rows[0].id;
			claims[p] = rows[0];
		}
		else
			same = false;
	}
	if (!found)
		return false;
	if (!same)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("request id \"%s\" was used for another cart",
						cart->request_id),
				 errdetail("A cart with the same request id has other pools, quantities or customer."),
				 errhint("Use a new request id for a new cart.")));
	*status = CLAIM_REPEAT;
	for (int p = 0; p < cart->npools; p++)
	{
		if (coupon_repeat_status(&claims[p], cart->request_id,
								 cart->ttl != 0) == CLAIM_HELD)
			*status = CLAIM_HELD;
	}
	return true;
}

/*
 * The lines of one pool are claimed as one claim of their sum, a quantity
 * the caller never passed: check it against the pool's limits here, where
 * the error can say so.  (coupon_claim_take() checks the rest.)
 */
static void
cart_check_sum(const CartPool *pool, const CouponPoolKey *key)
{
	CouponSlotRef ref;

	if (pool->nlines == 1 || !coupon_pool_find(key, 0, &ref))
		return;
	if (pool->qty > ref.per_customer ||
		(pool->qty > ref.capacity && ref.capacity > 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the lines of pool \"%s\" add up to %lld, more than a customer may claim of it",
						pool->pool, (long long) pool->qty),
				 errdetail("The lines of one pool are claimed as one claim of their sum.  The pool's capacity is %lld and a customer may hold at most %d.",
						   (long long) ref.capacity, ref.per_customer)));
}

/*
 * Inside the subtransaction: take the permits of every pool, then write
 * the claim of each.  Returns CLAIM_GRANTED, or why the pool of
 * cart->failed_line could not be granted.
 */
static ClaimStatus
cart_claim_all(Cart *cart)
{
	TimestampTz deadline = coupon_deadline(cart->wait);
	CouponPoolKey *keys = palloc(sizeof(CouponPoolKey) * cart->npools);
	TimestampTz expires_at;

	for (int p = 0; p < cart->npools; p++)
	{
		CartPool   *pool = &cart->pools[p];
		CouponSlotRef ref;
		int64		held_id;
		bool		lock_is_new;
		ClaimStatus status;

		coupon_make_key(&keys[p], pool->pool);
		cart_check_sum(pool, &keys[p]);
		lock_is_new = coupon_lock_customer(&keys[p], cart->customer);
		status = coupon_claim_take(&keys[p], cart->customer, pool->qty,
								   coupon_expiry_after(cart->ttl), deadline,
								   lock_is_new,
								   &ref, &held_id);
		if (status != CLAIM_GRANTED)
		{
			cart->failed_line = pool->first_line + 1;
			/* The customer's claim of one pool is not the cart's. */
			return coupon_status_has_claim(status) ? CLAIM_LIMIT_REACHED :
				status;
		}
	}

	/* One expiry for the whole cart, ttl from now, after any wait. */
	expires_at = coupon_expiry_after(cart->ttl);
	for (int p = 0; p < cart->npools; p++)
	{
		CartPool   *pool = &cart->pools[p];
		CouponNewClaim row;

		row.customer = cart->customer;
		row.qty = (int32) pool->qty;	/* at most the per-customer limit */
		row.expires_at = expires_at;
		row.request_id = cart->request_id;
		row.cart_claim = cart->request_id ? p + 1 : 0;
		coupon_ledger_insert_claims(pool->pool, &row, 1);
		pool->claim_id = row.id;
	}
	return CLAIM_GRANTED;
}

/* The subtransaction's body: kept only if every line is granted. */
static bool
cart_claim_body(void *arg)
{
	Cart	   *cart = (Cart *) arg;

	cart->status = cart_claim_all(cart);
	return cart->status == CLAIM_GRANTED;
}

/*
 * The whole cart, in a subtransaction that is rolled back unless every
 * line is granted.
 */
static ClaimStatus
cart_claim(Cart *cart)
{
	ClaimStatus status = CLAIM_GRANTED;

	cart->failed_line = 0;
	if (cart->request_id && cart_repeated(cart, &status))
		return status;
	(void) coupon_subtransaction(cart_claim_body, cart);
	return cart->status;
}

static Datum
cart_ids(const Cart *cart)
{
	Datum	   *ids = palloc(sizeof(Datum) * cart->nlines);

	for (int i = 0; i < cart->nlines; i++)
		ids[i] = Int64GetDatum(cart->pools[cart->lines[i].pool_index].claim_id);
	return PointerGetDatum(construct_array(ids, cart->nlines, INT8OID, 8,
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * coupon_claim_cart(pools, qtys, customer, ttl, wait, request_id) returns
 * bigint[]: a claim id per line, or NULL when the cart was not granted.
 */
Datum
coupon_claim_cart(PG_FUNCTION_ARGS)
{
	Cart		cart;
	ClaimStatus status;

	cart_args(fcinfo, "coupon_claim_cart", &cart);
	status = cart_claim(&cart);
	if (status != CLAIM_GRANTED && status != CLAIM_REPEAT)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(cart_ids(&cart));
}

/*
 * coupon_claim_cart_detailed(pools, qtys, customer, ttl, wait, request_id)
 * returns (claim_ids bigint[], status text, line integer): the status of
 * the cart, and the first line that could not be granted.
 */
Datum
coupon_claim_cart_detailed(PG_FUNCTION_ARGS)
{
	Cart		cart;
	ClaimStatus status;
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	cart_args(fcinfo, "coupon_claim_cart_detailed", &cart);
	status = cart_claim(&cart);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);

	nulls[0] = !coupon_status_has_claim(status);
	if (!nulls[0])
		values[0] = cart_ids(&cart);
	values[1] = CStringGetTextDatum(coupon_claim_status_names[status]);
	values[2] = Int32GetDatum(cart.failed_line);
	nulls[2] = cart.failed_line == 0;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
