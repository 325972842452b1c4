/*-------------------------------------------------------------------------
 *
 * coupon.h
 *		Declarations shared by the files of the coupon extension.
 *
 * The extension hands out a limited stock exactly once each, under heavy
 * concurrency, without queueing every caller on one hot row.  It is the
 * escrow design the README describes under "How it works":
 *
 *	semaphore.c	the counting semaphore: one slot per pool in shared memory,
 *				with an atomic count of available permits, a count of permits
 *				in flight and a condition variable as the wait queue
 *	escrow.c	the transactional part: permits taken by a transaction are
 *				remembered and given back if it aborts; releases and capacity
 *				growth are published only when it commits
 *	ledger.c	the durable truth: the pool table and the claim ledger,
 *				read and written as their owner; loading a pool's slot
 *				from committed data
 *	claim.c		coupon_claim(), coupon_claim_detailed(), coupon_release()
 *	pool.c		pool administration and the statistics behind coupon_pools
 *	occ.c		coupon_occ_version(), the optimistic-concurrency trigger
 *	args.c		argument checks and errors shared by the SQL functions
 *	compat.h	differences between PostgreSQL majors, in one place
 *	coupon.c	module entry point: GUCs and hooks
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_H
#define COUPON_H

#include "datatype/timestamp.h"
#include "fmgr.h"

#include "compat.h"

/* Longest pool name and customer name accepted, in bytes. */
#define COUPON_POOL_NAME_MAX	127
#define COUPON_CUSTOMER_MAX		1024

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

/* A pool's semaphore in shared memory; see semaphore.c. */
typedef struct CouponSlot CouponSlot;

/*
 * A backend's reference to a pool's slot, with the pool's limits as they
 * were when the reference was made.  A slot is reused by another pool once
 * its own is dropped; the generation tells a stale reference.
 */
typedef struct CouponSlotRef
{
	CouponSlot *slot;
	uint64		generation;
	int64		capacity;
	int32		per_customer;
	bool		dropping;		/* a transaction is dropping the pool */
} CouponSlotRef;

/* A pool as loaded from the ledger. */
typedef struct CouponPoolRow
{
	int64		capacity;
	int32		per_customer;
	int64		claimed;		/* committed, unreleased */
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

typedef enum CouponTake
{
	COUPON_TAKEN,
	COUPON_SOLD_OUT,			/* too few even if all in flight came back */
	COUPON_TIMED_OUT			/* permits in flight did not come back */
} CouponTake;

typedef enum CouponSettle
{
	COUPON_SETTLE_GIVE_BACK,	/* aborted: the permits are available again */
	COUPON_SETTLE_CLAIMED,		/* a claim committed */
	COUPON_SETTLE_SHRUNK		/* a capacity decrease committed */
} CouponSettle;

typedef enum CouponStat
{
	COUPON_STAT_SOLD_OUT,
	COUPON_STAT_WAITS
} CouponStat;

/* How many of a pool's permits in flight are the caller's own? */
typedef uint64 (*CouponOwnInFlight) (CouponSlotRef ref);

/* coupon.c */
extern int	coupon_max_pools;

/* semaphore.c */
extern void coupon_shmem_request(void);
extern void coupon_shmem_startup(void);
extern void coupon_require_preload(void);
extern bool coupon_slot_find(const CouponPoolKey *key, CouponSlotRef *ref);
extern CouponSlotRef coupon_slot_install(const CouponPoolKey *key,
										 const CouponPoolRow *row);
extern CouponTake coupon_slot_take(const CouponPoolKey *key, uint64 qty,
								   TimestampTz deadline,
								   CouponOwnInFlight own_in_flight,
								   CouponSlotRef *ref);
extern void coupon_slot_settle(CouponSlotRef ref, uint64 qty, CouponSettle how);
extern void coupon_slot_publish(CouponSlotRef ref, uint64 qty, bool grow);
extern bool coupon_slot_begin_drop(CouponSlotRef ref, uint64 *in_flight);
extern void coupon_slot_end_drop(CouponSlotRef ref, bool committed);
extern void coupon_slot_forget(Oid dboid, Oid pool_relid);
extern bool coupon_slot_holds_relation(Oid dboid, Oid pool_relid);
extern void coupon_slot_count(CouponSlotRef ref, CouponStat stat);
extern void coupon_slot_stats(CouponSlotRef ref, CouponSlotStats *stats);
extern bool coupon_slot_read(int i, Oid pool_relid, CouponSlotStats *stats,
							 bool *found);

/* escrow.c */
typedef enum CouponPending
{
	COUPON_PENDING_CLAIM,		/* permits taken by a claim */
	COUPON_PENDING_SHRINK,		/* permits taken by a capacity decrease */
	COUPON_PENDING_RELEASE,		/* permits a release gives back */
	COUPON_PENDING_GROW,		/* permits a capacity increase adds */
	COUPON_PENDING_DROP,		/* the pool is being dropped */
	COUPON_PENDING_FORGET		/* its pool table or database is dropped */
} CouponPending;

extern void coupon_escrow_init(void);
extern void *coupon_escrow_reserve(void);
extern void coupon_escrow_record(void *reserved, CouponPending kind,
								 CouponSlotRef ref, uint64 qty);
extern void coupon_escrow_cancel_last(void);
extern bool coupon_escrow_dropping(CouponSlotRef ref);
extern uint64 coupon_escrow_in_flight(CouponSlotRef ref);

/* ledger.c */
typedef enum CouponStatement
{
	COUPON_SQL_LOAD_LOCK,
	COUPON_SQL_LOAD_COUNT,
	COUPON_SQL_LOCK_POOL,
	COUPON_SQL_LOCK_POOL_TABLE,
	COUPON_SQL_COUNT_POOLS,
	COUPON_SQL_GET_POOL,
	COUPON_SQL_INSERT_POOL,
	COUPON_SQL_RESIZE_POOL,
	COUPON_SQL_DELETE_POOL,
	COUPON_SQL_FIND_CLAIM,
	COUPON_SQL_RELEASE_CLAIM,
	COUPON_SQL_COUNT
} CouponStatement;

extern void coupon_ledger_init(void);
extern void coupon_ledger_bind(FunctionCallInfo fcinfo);
extern void coupon_make_key(CouponPoolKey *key, const char *pool);
extern Oid	coupon_ledger_pool_relid(void);
extern void coupon_sql_begin(void);
extern void coupon_sql_end(void);
extern uint64 coupon_sql_run(CouponStatement id, Datum *values);
extern Datum coupon_sql_value(int col);
extern int64 coupon_ledger_holdings(const char *pool, const char *customer,
									int64 *first_claim);
extern int64 coupon_ledger_insert_claim(const char *pool, const char *customer,
										int32 qty);
extern bool coupon_pool_slot(const CouponPoolKey *key, CouponSlotRef *ref);

/* args.c */
pg_noreturn extern void coupon_pool_missing(const char *pool);
pg_noreturn extern void coupon_pool_uncommitted(const char *pool);
extern void coupon_arg_not_null(FunctionCallInfo fcinfo, int argno,
								const char *what);
extern char *coupon_arg_text(FunctionCallInfo fcinfo, int argno,
							 const char *what, int maxlen);
extern char *coupon_arg_pool(FunctionCallInfo fcinfo, int argno);
extern int64 coupon_arg_int64(FunctionCallInfo fcinfo, int argno,
							  const char *what, int64 min);
extern int32 coupon_arg_int32(FunctionCallInfo fcinfo, int argno,
							  const char *what, int32 min);
extern int64 coupon_arg_duration(FunctionCallInfo fcinfo, int argno,
								 const char *what);

#endif							/* COUPON_H */
