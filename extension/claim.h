/*-------------------------------------------------------------------------
 *
 * claim.h
 *		Claims and holds of one pool, shared with carts and bulk claims;
 *		see claim.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_CLAIM_H
#define COUPON_CLAIM_H

#include "datatype/timestamp.h"

#include "common.h"
#include "ledger.h"
#include "semaphore.h"

typedef enum ClaimStatus
{
	CLAIM_GRANTED,				/* a new claim */
	CLAIM_REPEAT,				/* the customer's or the request's claim */
	CLAIM_SOLD_OUT,				/* too few permits, none coming back */
	CLAIM_TIMED_OUT,			/* permits in flight did not come back */
	CLAIM_LIMIT_REACHED,		/* the customer holds the pool's limit */
	CLAIM_HELD					/* a claim asked for what a live hold holds */
} ClaimStatus;

extern const char *const coupon_claim_status_names[];
extern bool coupon_status_has_claim(ClaimStatus status);
extern ClaimStatus coupon_claim_take(const CouponPoolKey *key,
									 const char *customer, int64 qty,
									 TimestampTz expires_at,
									 TimestampTz deadline, bool lock_is_new,
									 CouponSlotRef *ref, int64 *claim_id);
extern ClaimStatus coupon_limit_status(const CouponHoldings *holdings,
									   int32 per_customer, bool hold);
extern ClaimStatus coupon_repeat_status(const CouponClaimRow *row,
										const char *request_id, bool hold);

#endif							/* COUPON_CLAIM_H */
