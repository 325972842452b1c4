/*-------------------------------------------------------------------------
 *
 * semaphore.h
 *		The counting semaphore, one slot per pool in shared memory;
 *		see semaphore.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_SEMAPHORE_H
#define COUPON_SEMAPHORE_H

#include "datatype/timestamp.h"

#include "common.h"

/* A pool's semaphore in shared memory; see semaphore.c. */
typedef struct CouponSlot CouponSlot;

/*
 * A backend's reference to a pool's slot, with the pool's limits as they
 * were when the reference was made.  A slot changes hands when its pool is
 * dropped or evicted; the generation tells a stale reference, which every
 * operation on the slot refuses.
 */
typedef struct CouponSlotRef
{
	CouponSlot *slot;
	uint64		generation;
	int64		capacity;		/* committed capacity */
	int32		per_customer;
} CouponSlotRef;

/* A pool as loaded from the committed ledger. */
typedef struct CouponPoolRow
{
	int64		capacity;
	int32		per_customer;
	int64		claimed;		/* committed, unreleased */
	TimestampTz next_expiry;	/* of its live holds; DT_NOEND if none */
} CouponPoolRow;

/* One slot's counters, for statistics and messages. */
typedef struct CouponSlotStats
{
	char		pool[COUPON_POOL_NAME_MAX + 1];
	uint64		capacity;
	uint64		available;
	uint64		in_flight;
	uint64		grants;
	uint64		sold_out;
	uint64		waits;
} CouponSlotStats;

/* The answer of an attempt to take permits. */
typedef enum CouponTake
{
	COUPON_TAKEN,
	COUPON_SOLD_OUT,			/* too few even if all in flight came back */
	COUPON_TIMED_OUT,			/* permits in flight may still come back */
	COUPON_STALE				/* the slot changed hands: find the pool again */
} CouponTake;

/*
 * What a transaction's change does to a slot when the transaction ends.
 * Permits taken now (in_flight) go back to "available" if it aborts; the
 * deltas are applied if it commits.  See escrow.c.
 */
typedef struct CouponSettlement
{
	uint64		in_flight;		/* taken from available, now in flight */
	int64		available;		/* added to available at commit */
	int64		capacity;		/* added to capacity at commit */
	uint64		grants;			/* claims made */
	uint32		pins;			/* references that kept the slot loaded */
	TimestampTz expiry;			/* earliest expiry of holds made, or 0 */
	TimestampTz undo_expiry;	/* a released hold's expiry, if undone */
} CouponSettlement;

typedef enum CouponStat
{
	COUPON_STAT_SOLD_OUT,
	COUPON_STAT_WAITS
} CouponStat;

/* How one attempt inside a wait went; see coupon_slot_wait(). */
typedef CouponTake (*CouponAttempt) (CouponSlotRef *ref, void *arg);

extern void coupon_shmem_request(void);
extern void coupon_shmem_startup(void);
extern bool coupon_preloaded(void);
extern void coupon_require_preload(void);
extern const uint8 *coupon_secret(void);
extern bool coupon_slot_find(const CouponPoolKey *key, CouponSlotRef *ref,
							 uint64 *epoch);
extern bool coupon_slot_install(const CouponPoolKey *key,
								const CouponPoolRow *row, uint64 epoch,
								CouponSlotRef *ref);
extern CouponTake coupon_slot_take(CouponSlotRef *ref, uint64 qty,
								   uint64 own_in_flight);
extern bool coupon_slot_pin(CouponSlotRef ref);
extern void coupon_slot_settle(CouponSlotRef ref, const CouponSettlement *s,
							   bool committed);
extern CouponTake coupon_slot_wait(CouponSlotRef *ref, TimestampTz deadline,
								   CouponAttempt attempt, void *arg);
extern bool coupon_slot_begin_drop(CouponSlotRef ref, TransactionId xid,
								   uint64 *in_flight);
extern void coupon_slot_end_drop(CouponSlotRef ref, TransactionId xid,
								 bool committed);
extern void coupon_slot_forget(Oid dboid, Oid pool_relid);
extern bool coupon_slot_holds_relation(Oid dboid, Oid pool_relid);
extern void coupon_slot_count(CouponSlotRef ref, CouponStat stat);
extern TimestampTz coupon_slot_next_expiry(CouponSlotRef ref);
extern bool coupon_slot_expires_by(CouponSlotRef ref, TimestampTz deadline);
extern void coupon_slot_set_next_expiry(CouponSlotRef ref, TimestampTz seen,
										TimestampTz next);
extern void coupon_slot_stats(CouponSlotRef ref, CouponSlotStats *stats);
extern bool coupon_slot_read(int i, Oid pool_relid, CouponSlotStats *stats,
							 bool *found);

#endif							/* COUPON_SEMAPHORE_H */
