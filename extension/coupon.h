/*-------------------------------------------------------------------------
 *
 * coupon.h
 *		Declarations shared by the files of the coupon extension.
 *
 * The extension hands out a limited stock exactly once each, under heavy
 * concurrency, without queueing every caller on one hot row.  It is the
 * escrow design the README describes under "How it works":
 *
 *	semaphore.c	the counting semaphore: one slot per pool in use, in shared
 *				memory, with an atomic count of available permits, the permits
 *				in flight and a condition variable as the wait queue; idle
 *				slots are evicted when the table is full
 *	escrow.c	the transactional part: what a transaction did to the
 *				semaphore, given back if it aborts and applied when it commits
 *	load.c		a pool's slot, found in shared memory or loaded from the
 *				committed ledger
 *	catalog.c	the extension's tables and indexes, and the read-only
 *				statements run on them as their owner
 *	ledger.c	writing the ledger and the pool table, as the caller
 *	locks.c		the customer and request-id locks, keyed by a secret
 *	claim.c		coupon_claim(), coupon_claim_detailed(), coupon_hold()
 *	lifecycle.c	release, confirm, extend, and the expiry of holds
 *	cart.c		coupon_claim_cart(): several pools, all or nothing
 *	bulk.c		coupon_claim_many(): one pool, many customers
 *	pool.c		pool administration and the statistics behind coupon_pools
 *	worker.c	the background workers that expire holds
 *	occ.c		coupon_occ_version(), the optimistic-concurrency trigger
 *	args.c		entry checks, argument checks and errors shared by the SQL
 *				functions
 *	compat.h	differences between PostgreSQL majors, in one place
 *	coupon.c	module entry point: GUCs and every hook
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_H
#define COUPON_H

#include "access/xact.h"
#include "catalog/objectaccess.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "storage/itemptr.h"

#include "compat.h"

/* Longest names accepted, in bytes. */
#define COUPON_POOL_NAME_MAX	127
#define COUPON_CUSTOMER_MAX		1024
#define COUPON_REQUEST_ID_MAX	255

/* The last timestamp PostgreSQL can store (END_TIMESTAMP is past it). */
#define COUPON_LAST_TIMESTAMP	(END_TIMESTAMP - 1)

/* SQLSTATEs of the hold lifecycle, class UC ("coupon"). */
#define ERRCODE_COUPON_HOLD_EXPIRED		MAKE_SQLSTATE('U','C','0','0','1')
#define ERRCODE_COUPON_CLAIM_RELEASED	MAKE_SQLSTATE('U','C','0','0','2')
#define ERRCODE_COUPON_NOT_A_HOLD		MAKE_SQLSTATE('U','C','0','0','3')

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

/* coupon.c */
extern int	coupon_max_pools;
extern bool coupon_expiry_workers;

/* semaphore.c */
extern void coupon_shmem_request(void);
extern void coupon_shmem_startup(void);
extern bool coupon_preloaded(void);
extern void coupon_require_preload(void);
extern const uint8 *coupon_secret(void);
extern bool coupon_slot_find(const CouponPoolKey *key, CouponSlotRef *ref,
							 uint64 *epoch, bool *dropped_here);
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

/* escrow.c */
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

/* catalog.c */
typedef enum CouponStatement
{
	COUPON_SQL_LOAD,
	COUPON_SQL_POOL_VISIBLE,
	COUPON_SQL_LOCK_POOL,
	COUPON_SQL_LOCK_CLAIM,
	COUPON_SQL_LOCK_POOL_CLAIMS,
	COUPON_SQL_OVERDUE_POOLS,
	COUPON_SQL_LOCK_OVERDUE_OF_POOL,
	COUPON_SQL_ANY_OVERDUE_OF_POOL,
	COUPON_SQL_NEXT_EXPIRY,
	COUPON_SQL_NEXT_EXPIRY_OF_POOL,
	COUPON_SQL_COUNT
} CouponStatement;

/* The extension's catalog entries, as this backend knows them. */
typedef struct CouponCatalog
{
	Oid			schema;
	Oid			pool_relid;
	Oid			pool_pkey;		/* coupon_pool_pkey */
	Oid			claims_relid;
	Oid			claims_pkey;	/* coupon_claims_pkey */
	Oid			holder_index;	/* coupon_claims_holder */
	Oid			request_index;	/* coupon_claims_request; 1.1 */
	Oid			id_seq;			/* coupon_claims_id_seq */
	Oid			owner;			/* of the ledger: runs the statements */
	bool		lifecycle;		/* the ledger has the columns of 1.1 */
} CouponCatalog;

extern CouponCatalog coupon_catalog;

extern void coupon_catalog_invalidate(Datum arg, Oid relid);
extern void coupon_catalog_schema_invalidate(Datum arg, int cacheid,
											 uint32 hashvalue);
extern void coupon_catalog_check_analyzed(struct ParseState *pstate,
										  struct Query *query);
extern Oid	coupon_extension_schema(void);
extern void coupon_catalog_bind(Oid schema);
pg_noreturn extern void coupon_catalog_ledger_changed(int natts, int expected);
extern void coupon_require_lifecycle(const char *function);
extern void coupon_sql_begin(void);
extern void coupon_sql_end(void);
extern uint64 coupon_sql_run(CouponStatement id, Datum *values);
extern Datum coupon_sql_value(uint64 row, int col, bool *isnull);

/* ledger.c */
typedef struct CouponNewClaim
{
	const char *customer;
	int32		qty;
	TimestampTz expires_at;		/* 0: a permanent claim */
	const char *request_id;		/* NULL: none */
	int64		id;				/* set by the insert */
} CouponNewClaim;

typedef struct CouponClaimRow
{
	int64		id;
	char	   *pool;
	char	   *customer;
	int32		qty;
	TimestampTz released_at;	/* 0 if not released */
	TimestampTz expires_at;		/* 0 if permanent */
} CouponClaimRow;

/* What a customer holds in a pool (coupon_ledger_holdings_many). */
typedef struct CouponHoldings
{
	int64		held;			/* sum of qty of its unreleased claims */
	int64		first_claim;	/* the lowest id among them, 0 if none */
	bool		first_is_hold;	/* that claim is a live hold */
} CouponHoldings;

typedef enum CouponClaimChange
{
	COUPON_CHANGE_RELEASE,		/* released_at = now() */
	COUPON_CHANGE_EXPIRY		/* expires_at = the value given */
} CouponClaimChange;

extern void coupon_make_key(CouponPoolKey *key, const char *pool);
extern void coupon_ledger_holdings_many(const char *pool,
										char *const *customers, int n,
										CouponHoldings *holdings);
extern bool coupon_ledger_find_request(const char *pool, const char *request_id,
									   CouponClaimRow *row);
extern int	coupon_ledger_find_requests(const char *request_id,
										CouponClaimRow *rows, int max);
extern void coupon_ledger_insert_claims(const char *pool, CouponNewClaim *rows,
										int n);
extern void coupon_ledger_change_claim(ItemPointer tid, CouponClaimChange change,
									   TimestampTz value);
extern void coupon_ledger_delete(Oid relid, ItemPointer tid);
extern void coupon_ledger_insert_pool(const char *pool, int64 capacity,
									  int32 per_customer);
extern void coupon_ledger_resize_pool(ItemPointer tid, int64 capacity);

/* load.c */
extern bool coupon_pool_find(const CouponPoolKey *key, int64 qty,
							 CouponSlotRef *ref);
extern CouponSlotRef coupon_pool_slot(const CouponPoolKey *key, int64 qty);
extern CouponSlotRef coupon_pool_give(const CouponPoolKey *key,
									  CouponPending kind, uint64 qty,
									  TimestampTz expiry);

/* locks.c */
extern bool coupon_lock_customer(const CouponPoolKey *key, const char *customer);
extern void coupon_unlock_customer(const CouponPoolKey *key,
								   const char *customer);
extern void coupon_lock_request(const char *scope, const char *request_id);

/* lifecycle.c */
extern int64 coupon_expire_overdue(const CouponPoolKey *key, int limit,
								   bool *skipped);
extern bool coupon_expiry_refill(CouponSlotRef ref, uint64 needed, void *arg,
								 bool *waitable);
extern List *coupon_overdue_pools(int limit);
extern TimestampTz coupon_next_expiry(void);

/* claim.c */
typedef enum ClaimStatus
{
	CLAIM_GRANTED,				/* a new claim */
	CLAIM_REPEAT,				/* the customer's or the request's claim */
	CLAIM_SOLD_OUT,				/* too few permits, none coming back */
	CLAIM_TIMED_OUT,			/* permits in flight did not come back */
	CLAIM_LIMIT_REACHED,		/* the customer holds the pool's limit */
	CLAIM_HELD					/* a claim asked for what a live hold holds */
} ClaimStatus;

extern const char *const coupon_claim_status_names[];
extern bool coupon_status_has_claim(ClaimStatus status);
extern ClaimStatus coupon_claim_take(const CouponPoolKey *key,
									 const char *customer, int64 qty,
									 TimestampTz expires_at,
									 TimestampTz deadline, bool lock_is_new,
									 CouponSlotRef *ref, int64 *claim_id);
extern void coupon_check_qty(const char *pool, int64 qty, int64 capacity,
							 int32 per_customer);
extern ClaimStatus coupon_limit_status(const CouponHoldings *holdings,
									   int32 per_customer, bool hold);
extern ClaimStatus coupon_repeat_status(const CouponClaimRow *row,
										const char *request_id, bool hold);

/* cart.c */
extern bool coupon_subtransaction(bool (*body) (void *arg), void *arg);

/* worker.c */
extern void coupon_worker_shmem_request(Size *size);
extern void coupon_worker_shmem_startup(void);
extern void coupon_worker_register(void);
extern void coupon_worker_notify(Oid dboid, TimestampTz due);
extern void coupon_worker_forget(Oid dboid);

/* args.c */
typedef enum CouponAccess
{
	COUPON_READS,				/* reads the semaphore */
	COUPON_WRITES,				/* changes the ledger, needs the semaphore */
	COUPON_WRITES_TABLES		/* changes the pool table only */
} CouponAccess;

extern void coupon_enter(FunctionCallInfo fcinfo, const char *function,
						 CouponAccess access);
pg_noreturn extern void coupon_pool_missing(const char *pool);
pg_noreturn extern void coupon_pool_uncommitted(const char *pool);
pg_noreturn extern void coupon_claim_missing(int64 claim_id);
pg_noreturn extern void coupon_claim_gone(int64 claim_id,
										  TimestampTz released_at,
										  TimestampTz expires_at,
										  const char *request_id);
extern void coupon_arg_not_null(FunctionCallInfo fcinfo, int argno,
								const char *what);
extern char *coupon_arg_text(FunctionCallInfo fcinfo, int argno,
							 const char *what, int maxlen);
extern char *coupon_arg_pool(FunctionCallInfo fcinfo, int argno);
extern char *coupon_arg_request_id(FunctionCallInfo fcinfo, int argno);
extern int64 coupon_arg_int64(FunctionCallInfo fcinfo, int argno,
							  const char *what, int64 min);
extern int32 coupon_arg_int32(FunctionCallInfo fcinfo, int argno,
							  const char *what, int32 min);
extern int64 coupon_arg_duration(FunctionCallInfo fcinfo, int argno,
								 const char *what);
extern int64 coupon_arg_ttl(FunctionCallInfo fcinfo, int argno);
extern TimestampTz coupon_expiry_after(int64 ttl);
extern TimestampTz coupon_deadline(int64 wait);

#endif							/* COUPON_H */
