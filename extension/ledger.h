/*-------------------------------------------------------------------------
 *
 * ledger.h
 *		Writing the ledger and the pool table; see ledger.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_LEDGER_H
#define COUPON_LEDGER_H

#include "datatype/timestamp.h"
#include "storage/itemptr.h"

#include "common.h"

typedef struct CouponNewClaim
{
	const char *customer;
	int32		qty;
	TimestampTz expires_at;		/* 0: a permanent claim */
	const char *request_id;		/* NULL: none */
	int32		cart_claim;		/* from 1: the claim's number in cart
								 * request_id; 0: a single claim */
	int64		id;				/* set by the insert */
} CouponNewClaim;

typedef struct CouponClaimRow
{
	int64		id;
	char	   *pool;
	char	   *customer;
	int32		qty;
	TimestampTz released_at;	/* 0 if not released */
	TimestampTz expires_at;		/* 0 if permanent */
} CouponClaimRow;

/* What a customer holds in a pool (coupon_ledger_holdings_many). */
typedef struct CouponHoldings
{
	int64		held;			/* sum of qty of its unreleased claims */
	int64		first_claim;	/* the lowest id among them, 0 if none */
	bool		first_is_hold;	/* that claim is a live hold */
	bool		bound;			/* held is an upper bound, first_claim not
								 * known (not exact: see ledger.c) */
} CouponHoldings;

typedef enum CouponClaimChange
{
	COUPON_CHANGE_RELEASE,		/* released_at = now() */
	COUPON_CHANGE_EXPIRY		/* expires_at = the value given */
} CouponClaimChange;

extern void coupon_make_key(CouponPoolKey *key, const char *pool);
extern int64 coupon_ledger_claimed(const char *pool);
extern void coupon_ledger_holdings_many(const char *pool,
										char *const *customers, int n,
										CouponHoldings *holdings, bool exact);
extern bool coupon_ledger_find_request(const char *pool, const char *request_id,
									   CouponClaimRow *row);
extern int	coupon_ledger_find_cart_claim(const char *request_id,
										  int32 cart_claim,
										  CouponClaimRow *rows, int max);
extern void coupon_ledger_insert_claims(const char *pool, CouponNewClaim *rows,
										int n);
extern void coupon_ledger_change_claim(ItemPointer tid, CouponClaimChange change,
									   TimestampTz value);
extern void coupon_ledger_delete(Oid relid, ItemPointer tid);
extern void coupon_ledger_insert_pool(const char *pool, int64 capacity,
									  int32 per_customer);
extern void coupon_ledger_resize_pool(ItemPointer tid, int64 capacity);

#endif							/* COUPON_LEDGER_H */
