/*-------------------------------------------------------------------------
 *
 * due.h
 *		When each database's next hold falls due; see due.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_DUE_H
#define COUPON_DUE_H

#include "datatype/timestamp.h"
#include "storage/latch.h"

/* Shared memory, from semaphore.c's hooks. */
extern void coupon_due_shmem_request(Size *size);
extern void coupon_due_shmem_startup(void);

/* Told by the commits that make holds or drop databases (escrow.c). */
extern void coupon_due_notify(Oid dboid, TimestampTz due);
extern void coupon_due_forget(Oid dboid);

/* Read and kept by the expiry launcher and its workers (worker.c). */
extern void coupon_due_attach(Latch *launcher);
extern Oid	coupon_due_next(TimestampTz now, TimestampTz *wake, bool *overflow);
extern void coupon_due_reap(Oid dboid, TimestampTz started, bool connectable,
							int retry_ms);
extern void coupon_due_done(Oid dboid, TimestampTz next);

#endif							/* COUPON_DUE_H */
