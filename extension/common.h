/*-------------------------------------------------------------------------
 *
 * common.h
 *		The few definitions every floor of the extension shares.
 *
 * The extension hands out a limited stock exactly once each, under heavy
 * concurrency, without queueing every caller on one hot row.  It is the
 * escrow design the README describes under "How it works".  Its files
 * stand in floors, top to bottom; a file calls only files below it (on its
 * own floor, those named after it), and "make check-floors" reads that
 * graph from the built objects and fails on a cycle:
 *
 *	coupon.c, worker.c	_PG_init: the settings and every hook; the expiry
 *						launcher and its workers (a background worker is an
 *						entry of its own)
 *	cart.c, bulk.c, claim.c, lifecycle.c, pool.c, occ.c
 *						the SQL functions: carts and bulk claims (which call
 *						claim.c), claims and holds (which call lifecycle.c to
 *						expire holds), release, confirm, extend and expiry,
 *						pool administration, the optimistic-concurrency trigger
 *	entry.c				coupon_enter(), the start of every SQL function
 *	escrow.c			what open transactions did to the semaphore: one call
 *						per operation, given back on abort, applied at commit
 *	load.c, ledger.c, locks.c
 *						a pool's slot, found or loaded from the ledger;
 *						writing the ledger and the pool table; the customer
 *						and request-id locks
 *	semaphore.c, due.c	the counting semaphore, a slot per pool in shared
 *						memory; when each database's next hold falls due, the
 *						one way the expiry worker is told of holds
 *	args.c, catalog.c, settings.c, compat.h, common.h
 *						argument checks and errors; the extension's tables and
 *						the read-only statements on them; the GUCs;
 *						differences between majors; this file
 *
 * Each file's declarations are in its own header; this one holds only what
 * every floor shares (the limits on names, the SQLSTATEs of a claim's
 * lifecycle, a pool's key) and includes nothing of the extension's.
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_COMMON_H
#define COUPON_COMMON_H

#include "datatype/timestamp.h"

/* Longest names accepted, in bytes. */
#define COUPON_POOL_NAME_MAX	127
#define COUPON_CUSTOMER_MAX		1024
#define COUPON_REQUEST_ID_MAX	255

/* The last timestamp PostgreSQL can store (END_TIMESTAMP is past it). */
#define COUPON_LAST_TIMESTAMP	(END_TIMESTAMP - 1)

/* SQLSTATEs of a claim's lifecycle, class UC ("coupon"). */
#define ERRCODE_COUPON_HOLD_EXPIRED		MAKE_SQLSTATE('U','C','0','0','1')
#define ERRCODE_COUPON_CLAIM_RELEASED	MAKE_SQLSTATE('U','C','0','0','2')
#define ERRCODE_COUPON_NOT_A_HOLD		MAKE_SQLSTATE('U','C','0','0','3')
#define ERRCODE_COUPON_NOT_CUSTOMERS	MAKE_SQLSTATE('U','C','0','0','4')
#define ERRCODE_COUPON_WRONG_PARTITION	MAKE_SQLSTATE('U','C','0','0','5')

/*
 * Identifies a pool in shared memory: its database, the extension's pool
 * table (a new one after DROP and CREATE EXTENSION) and its name.
 */
typedef struct CouponPoolKey
{
	Oid			dboid;
	Oid			pool_relid;
	char		name[COUPON_POOL_NAME_MAX + 1]; /* zero padded */
} CouponPoolKey;

#endif							/* COUPON_COMMON_H */
