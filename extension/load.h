/*-------------------------------------------------------------------------
 *
 * load.h
 *		A pool's slot, found in shared memory or loaded from the ledger;
 *		see load.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_LOAD_H
#define COUPON_LOAD_H

#include "common.h"
#include "semaphore.h"

extern bool coupon_pool_find(const CouponPoolKey *key, int64 qty,
							 CouponSlotRef *ref);
extern CouponSlotRef coupon_pool_slot(const CouponPoolKey *key, int64 qty);

#endif							/* COUPON_LOAD_H */
