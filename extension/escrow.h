/*-------------------------------------------------------------------------
 *
 * escrow.h
 *		The permits of open transactions: the escrow; see escrow.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_ESCROW_H
#define COUPON_ESCROW_H

#include "access/xact.h"
#include "catalog/objectaccess.h"
#include "datatype/timestamp.h"

#include "common.h"
#include "semaphore.h"

typedef enum CouponPending
{
	COUPON_PENDING_CLAIM,		/* permits taken by a claim or a hold */
	COUPON_PENDING_SHRINK,		/* permits taken by a capacity decrease */
	COUPON_PENDING_RELEASE,		/* permits a release gives back */
	COUPON_PENDING_GROW,		/* permits a capacity increase adds */
	COUPON_PENDING_DROP,		/* the pool is being dropped */
	COUPON_PENDING_FORGET,		/* its pool table or database is dropped */
	COUPON_PENDING_EXPIRY		/* a hold's expiry to announce */
} CouponPending;

/* Makes a transaction's own pending releases available to it; claim.c. */
typedef bool (*CouponRefill) (CouponSlotRef ref, uint64 needed, void *arg,
							  bool *waitable);

extern void coupon_escrow_touch(void);
extern CouponTake coupon_escrow_take(CouponSlotRef *ref, CouponPending kind,
									 uint64 qty, uint32 claims,
									 TimestampTz expires_at,
									 TimestampTz deadline,
									 CouponRefill refill, void *refill_arg);
extern bool coupon_escrow_give(CouponSlotRef ref, CouponPending kind,
							   uint64 qty, TimestampTz expiry);
extern uint64 coupon_escrow_available(CouponSlotRef ref);
extern void coupon_escrow_cancel_last(void);
extern bool coupon_escrow_begin_drop(CouponSlotRef ref, uint64 *in_flight);
extern void coupon_escrow_forget(Oid dboid, Oid pool_relid);
extern void coupon_escrow_xact_callback(XactEvent event, void *arg);
extern void coupon_escrow_subxact_callback(SubXactEvent event,
										   SubTransactionId mySubid,
										   SubTransactionId parentSubid,
										   void *arg);
extern void coupon_escrow_object_access(ObjectAccessType access,
										Oid classId, Oid objectId,
										int subId, void *arg);
extern CouponSlotRef coupon_pool_give(const CouponPoolKey *key,
									  CouponPending kind, uint64 qty,
									  TimestampTz expiry);

#endif							/* COUPON_ESCROW_H */
