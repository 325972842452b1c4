/*-------------------------------------------------------------------------
 *
 * lifecycle.h
 *		Release, confirm, extend, and the expiry of holds; see lifecycle.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_LIFECYCLE_H
#define COUPON_LIFECYCLE_H

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

#include "common.h"
#include "semaphore.h"

extern int64 coupon_expire_overdue(const CouponPoolKey *key, int limit,
								   bool *skipped);
extern bool coupon_expiry_refill(CouponSlotRef ref, uint64 needed, void *arg,
								 bool *waitable);
extern List *coupon_overdue_pools(int limit);
extern TimestampTz coupon_next_expiry(void);

#endif							/* COUPON_LIFECYCLE_H */
