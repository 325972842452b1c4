/*-------------------------------------------------------------------------
 *
 * locks.h
 *		The customer and request-id locks; see locks.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_LOCKS_H
#define COUPON_LOCKS_H

#include "common.h"

extern bool coupon_lock_customer(const CouponPoolKey *key, const char *customer);
extern void coupon_unlock_customer(const CouponPoolKey *key,
								   const char *customer);
extern void coupon_lock_request(const char *scope, const char *request_id);

#endif							/* COUPON_LOCKS_H */
