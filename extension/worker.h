/*-------------------------------------------------------------------------
 *
 * worker.h
 *		The expiry launcher's registration; see worker.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_WORKER_H
#define COUPON_WORKER_H

extern void coupon_worker_register(void);

#endif							/* COUPON_WORKER_H */
