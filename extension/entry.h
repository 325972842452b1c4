/*-------------------------------------------------------------------------
 *
 * entry.h
 *		The start of every SQL function; see entry.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_ENTRY_H
#define COUPON_ENTRY_H

#include "fmgr.h"

typedef enum CouponAccess
{
	COUPON_READS,				/* reads the semaphore */
	COUPON_WRITES,				/* changes the ledger, needs the semaphore */
	COUPON_WRITES_TABLES		/* changes the pool table only */
} CouponAccess;

extern void coupon_enter(FunctionCallInfo fcinfo, const char *function,
						 CouponAccess access);

#endif							/* COUPON_ENTRY_H */
