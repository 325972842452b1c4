/*-------------------------------------------------------------------------
 *
 * semaphore.c
 *		The counting semaphore: one slot per pool in use, in shared memory.
 *
 * Floor: under load.c, the escrow and locks.c.  Calls only due.c (its
 * shared memory is reserved with the semaphore's) and the settings.
 *
 * This is the operating system's counting semaphore, with PostgreSQL's
 * shared memory as the kernel.  Each pool in use owns a slot: an atomic
 * count of available permits (the semaphore's value), a count of permits
 * taken by transactions that have not ended yet (in flight), and a
 * condition variable that is the semaphore's wait queue.  The committed
 * ledger is the durable truth; shared memory starts empty and a slot is
 * filled from the ledger when its pool is used (load.c), so a restart or a
 * crash, which aborts every transaction that was in flight, rebuilds the
 * semaphore exactly.
 *
 * Taking permits (P) is a compare-and-swap loop on "available", which never
 * goes below zero: no process ever holds a lock across I/O, a sleep or a
 * context switch, so no claimer can stall another one (no priority
 * inversion).  Giving permits back (V) is an atomic add followed by a
 * broadcast on the wait queue when somebody sleeps on it.
 *
 * A take lowers "available" before it raises "in flight", and whatever
 * ends permits in flight (a give-back, a commit) lowers "in flight" before
 * it raises "available" or lowers the capacity.  So at every instant
 * available + in flight is at most the capacity, and neither counter read
 * alone ever exceeds it; a reader may only miss permits between two steps
 * (see slot_confirm_waitable).
 *
 * The table is a cache.  A slot is "pinned" while any transaction has a
 * change of its pool pending (escrow.c holds one pin per change) and busy
 * while claimers sleep on it; a slot that is neither may be evicted, by
 * clock sweep, to make room for another pool, and its pool is loaded again
 * from the ledger on its next use.  That is exact because nothing of an
 * unpinned pool is in flight.  Loading reads the ledger without any lock
 * held, so a pool could be loaded, used and evicted by others between the
 * moment a loader found no slot and the moment it installs what it read;
 * every free bumps an epoch of the key's partition, and an install whose
 * epoch moved is refused and done again.
 *
 * A pool being dropped keeps the id of the dropping transaction in its
 * slot, and only that transaction's end clears it.  Claims on the slot are
 * refused meanwhile; once that transaction has committed (its commit is
 * visible a moment before its callback frees the slot), whoever finds the
 * slot frees it.
 *
 * Note about locking: a shared hash maps a pool's key (database, pool
 * table, pool name) to a slot index; it and the descriptive fields of the
 * slots (key, generation, per_customer, in_use) are protected by one
 * LWLock.  Every operation on a slot's counters is done with that lock held
 * in shared mode, which is cheap and keeps the slot from being freed and
 * reused by another pool under our feet; installing, evicting and freeing
 * slots take it exclusively.  Freeing bumps the slot's generation, so a
 * late reference to a reused slot is recognised and refused.  The condition
 * variable and the waiters count are initialised once at server start and
 * never reset, because a sleeper may still be registered on them while the
 * slot changes hands.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "common.h"
#include "compat.h"
#include "due.h"
#include "semaphore.h"
#include "settings.h"

/* Partitions of the load epochs; a power of two. */
#define COUPON_EPOCHS			64
#define COUPON_SECRET_LEN		16	

/*
 * One pool's counting semaphore.  The atomics change with the lock held in
 * shared mode (see above); the other fields change only with it held
 * exclusively.
 */
struct CouponSlot
{
	pg_atomic_uint64 available; /* permits that can be taken now */
	pg_atomic_uint64 in_flight; /* taken by transactions still open */
	pg_atomic_uint64 capacity;	/* committed capacity */
	pg_atomic_uint64 next_expiry;	/* earliest expiry of a live hold */
	pg_atomic_uint32 pins;		/* pending changes of open transactions */
	pg_atomic_uint32 waiters;	/* claimers sleeping on wait_queue */
	pg_atomic_uint32 drop_xid;	/* transaction dropping the pool, or 0 */
	pg_atomic_uint32 used;		/* clock sweep's reference bit */
	pg_atomic_uint64 grants;	/* committed claims since the slot filled */
	pg_atomic_uint64 sold_out;	/* claims answered with nothing */
	pg_atomic_uint64 waits;		/* claims that slept on wait_queue */
	ConditionVariable wait_queue;
	uint64		generation;		/* bumped whenever the slot is freed */
	int32		per_customer;
	bool		in_use;
	CouponPoolKey key;
};

/* A slot padded to a whole number of cache lines, so pools do not share. */
typedef union CouponPaddedSlot
{
	CouponSlot	slot;
	char		pad[TYPEALIGN(PG_CACHE_LINE_SIZE, sizeof(CouponSlot))];
} CouponPaddedSlot;

typedef struct CouponShared
{
	LWLock	   *lock;			/* protects the hash and slot descriptions */
	int			max_pools;
	int			clock_hand;		/* next slot the sweep looks at */
	CouponPaddedSlot *slots;	/* max_pools of them, cache-line aligned */
	pg_atomic_uint64 epochs[COUPON_EPOCHS]; /* frees per key partition */
	uint8		secret[COUPON_SECRET_LEN];	/* SipHash key of the lock tags */
} CouponShared;

typedef struct CouponHashEntry
{
	CouponPoolKey key;
	int			slot_index;
} CouponHashEntry;

/* What a look at a slot's dropping transaction found. */
typedef enum DropperState
{
	DROPPER_NONE,				/* nobody is dropping the pool */
	DROPPER_RUNNING,			/* another transaction, still open */
	DROPPER_HERE,				/* this transaction */
	DROPPER_GONE				/* it ended; the slot was dealt with, retry */
} DropperState;

static CouponShared *coupon_shared = NULL;
static HTAB *coupon_hash = NULL;

static Size
coupon_slots_size(void)
{
	return mul_size(coupon_max_pools, sizeof(CouponPaddedSlot));
}

static Size
coupon_shmem_size(void)
{
	Size		size = CACHELINEALIGN(sizeof(CouponShared));

	size = add_size(size, CACHELINEALIGN(coupon_slots_size()));
	size = add_size(size, hash_estimate_size(coupon_max_pools,
											 sizeof(CouponHashEntry)));
	coupon_due_shmem_request(&size);
	return size;
}

/*
 * shmem_request_hook: reserve our memory and our locks (the second one is
 * due.c's).
 */
void
coupon_shmem_request(void)
{
	RequestAddinShmemSpace(coupon_shmem_size());
	RequestNamedLWLockTranche("coupon", 2);
}

/*
 * shmem_startup_hook: create the table, empty, with a new secret.  Runs at
 * server start and again after every crash restart, which is what rebuilds
 * the semaphore.
 */
void
coupon_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);

	coupon_shared = ShmemInitStruct("coupon", sizeof(CouponShared), &found);
	/* A separate allocation, which shared memory aligns to a cache line. */
	coupon_shared->slots = ShmemInitStruct("coupon slots", coupon_slots_size(),
										   &found);
	if (!found)
	{
		coupon_shared->lock = &(GetNamedLWLockTranche("coupon"))->lock;
		coupon_shared->max_pools = coupon_max_pools;
		coupon_shared->clock_hand = 0;
		for (int i = 0; i < COUPON_EPOCHS; i++)
			pg_atomic_init_u64(&coupon_shared->epochs[i], 0);
		if (!pg_strong_random(coupon_shared->secret, COUPON_SECRET_LEN))
			ereport(FATAL,
					(errmsg("could not generate a random secret for coupon's lock tags")));
		for (int i = 0; i < coupon_max_pools; i++)
		{
			CouponSlot *slot = &coupon_shared->slots[i].slot;

			memset(slot, 0, sizeof(CouponSlot));
			pg_atomic_init_u64(&slot->available, 0);
			pg_atomic_init_u64(&slot->in_flight, 0);
			pg_atomic_init_u64(&slot->capacity, 0);
			pg_atomic_init_u64(&slot->next_expiry, (uint64) DT_NOEND);
			pg_atomic_init_u32(&slot->pins, 0);
			pg_atomic_init_u32(&slot->waiters, 0);
			pg_atomic_init_u32(&slot->drop_xid, InvalidTransactionId);
			pg_atomic_init_u32(&slot->used, 0);
			pg_atomic_init_u64(&slot->grants, 0);
			pg_atomic_init_u64(&slot->sold_out, 0);
			pg_atomic_init_u64(&slot->waits, 0);
			ConditionVariableInit(&slot->wait_queue);
		}
	}

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(CouponPoolKey);
	info.entrysize = sizeof(CouponHashEntry);
	coupon_hash = ShmemInitHash("coupon pools", coupon_max_pools,
								coupon_max_pools, &info,
								HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	coupon_due_shmem_startup();

	LWLockRelease(AddinShmemInitLock);
}

bool
coupon_preloaded(void)
{
	return coupon_shared != NULL && coupon_hash != NULL;
}

/*
 * Everything that needs the semaphore starts here: without
 * shared_preload_libraries there is no shared memory to keep it in.
 */
void
coupon_require_preload(void)
{
	if (!coupon_preloaded())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("coupon must be loaded via shared_preload_libraries"),
				 errhint("Add coupon to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/* The server's 16-byte secret, random at every start; see locks.c. */
const uint8 *
coupon_secret(void)
{
	coupon_require_preload();
	return coupon_shared->secret;
}

static inline pg_atomic_uint64 *
key_epoch(const CouponPoolKey *key)
{
	uint32		hash = get_hash_value(coupon_hash, key);

	return &coupon_shared->epochs[hash & (COUPON_EPOCHS - 1)];
}

/* Caller holds the lock.  Returns NULL when the pool has no slot. */
static CouponSlot *
slot_lookup(const CouponPoolKey *key)
{
	CouponHashEntry *entry;

	entry = hash_search(coupon_hash, key, HASH_FIND, NULL);
	return entry ? &coupon_shared->slots[entry->slot_index].slot : NULL;
}

/* Caller holds the lock.  Is the reference still to the same pool? */
static inline bool
slot_ref_valid(CouponSlotRef ref)
{
	return ref.slot->in_use && ref.slot->generation == ref.generation;
}

/* Caller holds the lock. */
static inline void
slot_ref_fill(CouponSlotRef *ref, CouponSlot *slot)
{
	ref->slot = slot;
	ref->generation = slot->generation;
	ref->capacity = (int64) pg_atomic_read_u64(&slot->capacity);
	ref->per_customer = slot->per_customer;
}

static inline void
slot_wake(CouponSlot *slot)
{
	if (pg_atomic_read_u32(&slot->waiters) > 0)
		ConditionVariableBroadcast(&slot->wait_queue);
}

/* Free a slot; caller holds the lock exclusively. */
static void
slot_free(CouponSlot *slot)
{
	pg_atomic_fetch_add_u64(key_epoch(&slot->key), 1);
	hash_search(coupon_hash, &slot->key, HASH_REMOVE, NULL);
	slot->in_use = false;
	slot->generation++;
	pg_atomic_write_u32(&slot->drop_xid, InvalidTransactionId);
	ConditionVariableBroadcast(&slot->wait_queue);
}

/*
 * Who is dropping the referenced pool?  A dropper that ended is dealt with
 * here: after a commit the slot belongs to a dropped pool and is freed;
 * after an abort (or a crash of its backend) the mark is cleared.  Then the
 * caller looks again (DROPPER_GONE).
 */
static DropperState
slot_dropper(CouponSlotRef ref)
{
	TransactionId xid;

	LWLockAcquire(coupon_shared->lock, LW_SHARED);
	xid = slot_ref_valid(ref) ?
		pg_atomic_read_u32(&ref.slot->drop_xid) : InvalidTransactionId;
	LWLockRelease(coupon_shared->lock);

	if (!TransactionIdIsValid(xid))
		return DROPPER_NONE;
	if (TransactionIdIsCurrentTransactionId(xid))
		return DROPPER_HERE;
	if (TransactionIdIsInProgress(xid))
		return DROPPER_RUNNING;
	if (TransactionIdDidCommit(xid))
	{
		LWLockAcquire(coupon_shared->lock, LW_EXCLUSIVE);
		if (slot_ref_valid(ref) &&
			pg_atomic_read_u32(&ref.slot->drop_xid) == xid)
			slot_free(ref.slot);
		LWLockRelease(coupon_shared->lock);
	}
	else
	{
		uint32		expected = xid;

		LWLockAcquire(coupon_shared->lock, LW_SHARED);
		if (slot_ref_valid(ref) &&
			pg_atomic_compare_exchange_u32(&ref.slot->drop_xid, &expected,
										   InvalidTransactionId))
			slot_wake(ref.slot);
		LWLockRelease(coupon_shared->lock);
	}
	return DROPPER_GONE;
}

/*
 * Find the pool's slot.  Returns false when it has none, with *epoch the
 * epoch to hand to coupon_slot_install() after loading, and also when this
 * transaction is dropping the pool's slot (then a pool of the same name
 * that it sees was created by it since, and load.c does not load it before
 * it commits).  A slot that another open transaction is dropping is
 * returned: taking from it is refused.
 */
bool
coupon_slot_find(const CouponPoolKey *key, CouponSlotRef *ref, uint64 *epoch)
{
	for (;;)
	{
		CouponSlot *slot;
		bool		dropping = false;

		LWLockAcquire(coupon_shared->lock, LW_SHARED);
		slot = slot_lookup(key);
		*epoch = pg_atomic_read_u64(key_epoch(key));
		if (slot)
		{
			slot_ref_fill(ref, slot);
			dropping = pg_atomic_read_u32(&slot->drop_xid) != InvalidTransactionId;
		}
		LWLockRelease(coupon_shared->lock);
		if (slot == NULL)
			return false;
		if (!dropping)
			return true;

		switch (slot_dropper(*ref))
		{
			case DROPPER_NONE:
			case DROPPER_RUNNING:
				return true;
			case DROPPER_HERE:
				return false;
			case DROPPER_GONE:
				break;
		}
	}
}

/*
 * The slot for a new pool: a free one, or the least recently used of those
 * that are neither pinned, nor slept on, nor being dropped (clock sweep:
 * a slot used since the hand last passed gets one more round).  Caller
 * holds the lock exclusively.  NULL when every slot is busy.
 */
static CouponSlot *
slot_allocate(void)
{
	int			n = coupon_shared->max_pools;

	for (int i = 0; i < n; i++)
	{
		if (!coupon_shared->slots[i].slot.in_use)
			return &coupon_shared->slots[i].slot;
	}
	for (int i = 0; i < 2 * n; i++)
	{
		CouponSlot *slot = &coupon_shared->slots[coupon_shared->clock_hand].slot;

		coupon_shared->clock_hand = (coupon_shared->clock_hand + 1) % n;
		if (pg_atomic_read_u32(&slot->pins) != 0 ||
			pg_atomic_read_u32(&slot->waiters) != 0 ||
			pg_atomic_read_u32(&slot->drop_xid) != InvalidTransactionId)
			continue;
		if (pg_atomic_exchange_u32(&slot->used, 0) != 0)
			continue;
		slot_free(slot);
		return slot;
	}
	return NULL;
}

/*
 * Give the pool a slot filled from its committed ledger row, read after
 * coupon_slot_find() returned false with *epoch.  If another backend
 * installed the pool meanwhile, theirs stands.  Returns false if a slot of
 * the key's partition was freed since (the row may predate changes made
 * through it): the caller reads the ledger again.  Fails when every slot
 * is busy.
 */
bool
coupon_slot_install(const CouponPoolKey *key, const CouponPoolRow *row,
					uint64 epoch, CouponSlotRef *ref)
{
	CouponHashEntry *entry;
	CouponSlot *slot;
	bool		found;

	LWLockAcquire(coupon_shared->lock, LW_EXCLUSIVE);
	slot = slot_lookup(key);
	if (slot == NULL && pg_atomic_read_u64(key_epoch(key)) != epoch)
	{
		LWLockRelease(coupon_shared->lock);
		return false;
	}
	if (slot == NULL && (slot = slot_allocate()) == NULL)
	{
		LWLockRelease(coupon_shared->lock);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many coupon pools in use at once"),
				 errdetail("All %d slots of shared memory are held by pools with changes in flight or claimers waiting.",
						   coupon_shared->max_pools),
				 errhint("Increase coupon.max_pools and restart the server, or retry when fewer transactions are open.")));
	}
	if (!slot->in_use)
	{
		int64		available = row->capacity - row->claimed;

		entry = hash_search(coupon_hash, key, HASH_ENTER, &found);
		Assert(!found);
		entry->slot_index = (CouponPaddedSlot *) slot - coupon_shared->slots;
		slot->key = *key;
		slot->per_customer = row->per_customer;
		slot->in_use = true;
		pg_atomic_write_u64(&slot->capacity, row->capacity);
		pg_atomic_write_u64(&slot->available, Max(available, 0));
		pg_atomic_write_u64(&slot->in_flight, 0);
		pg_atomic_write_u64(&slot->next_expiry, (uint64) row->next_expiry);
		pg_atomic_write_u32(&slot->pins, 0);
		pg_atomic_write_u32(&slot->drop_xid, InvalidTransactionId);
		pg_atomic_write_u32(&slot->used, 1);
		pg_atomic_write_u64(&slot->grants, 0);
		pg_atomic_write_u64(&slot->sold_out, 0);
		pg_atomic_write_u64(&slot->waits, 0);
	}
	slot_ref_fill(ref, slot);
	LWLockRelease(coupon_shared->lock);
	return true;
}

/*
 * Could permits in flight in other transactions still make up qty?  A read
 * under the shared lock said no; make sure.  A take moves permits from
 * available to in_flight and a give-back moves them back, each in two
 * steps, so a read between the steps can miss them; every change is made
 * with the lock held shared, so a read with it held exclusively sees none
 * half done.  This runs only on the way to a "sold out" answer.
 */
static bool
slot_confirm_waitable(CouponSlotRef ref, uint64 qty, uint64 own_in_flight)
{
	uint64		available = 0;
	uint64		in_flight = 0;

	LWLockAcquire(coupon_shared->lock, LW_EXCLUSIVE);
	if (slot_ref_valid(ref))
	{
		available = pg_atomic_read_u64(&ref.slot->available);
		in_flight = pg_atomic_read_u64(&ref.slot->in_flight);
	}
	LWLockRelease(coupon_shared->lock);

	/* The caller's own permits come back only when its transaction ends. */
	in_flight -= Min(in_flight, own_in_flight);
	return available + in_flight >= qty;
}

pg_noreturn static void slot_dropping(CouponSlotRef ref);

static void
slot_dropping(CouponSlotRef ref)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_IN_USE),
			 errmsg("pool \"%s\" is being dropped", ref.slot->key.name)));
}

/*
 * P(): take qty permits from the referenced slot, if it has that many
 * available now.  On success they are in flight, and the slot is pinned,
 * until the caller settles them (escrow.c).  Otherwise the answer says
 * whether permits in flight in other transactions could still make up qty
 * (own_in_flight of them are the caller's own, which come back only when
 * its transaction ends).  COUPON_STALE when the slot no longer holds the
 * referenced pool.  Fails if the pool is being dropped.
 */
CouponTake
coupon_slot_take(CouponSlotRef *ref, uint64 qty, uint64 own_in_flight)
{
	CouponSlot *slot = ref->slot;
	uint64		available;
	bool		dropping;
	bool		waitable;

	for (;;)
	{
		LWLockAcquire(coupon_shared->lock, LW_SHARED);
		if (!slot_ref_valid(*ref))
		{
			LWLockRelease(coupon_shared->lock);
			return COUPON_STALE;
		}
		if (pg_atomic_read_u32(&slot->drop_xid) == InvalidTransactionId)
			break;
		LWLockRelease(coupon_shared->lock);
		switch (slot_dropper(*ref))
		{
			case DROPPER_RUNNING:
			case DROPPER_HERE:
				slot_dropping(*ref);
			case DROPPER_NONE:
			case DROPPER_GONE:
				break;
		}
	}
	ref->capacity = (int64) pg_atomic_read_u64(&slot->capacity);

	available = pg_atomic_read_u64(&slot->available);
	for (;;)
	{
		if (available < qty)
		{
			waitable = available + pg_atomic_read_u64(&slot->in_flight) -
				Min(own_in_flight, pg_atomic_read_u64(&slot->in_flight)) >= qty;
			LWLockRelease(coupon_shared->lock);
			if (!waitable || own_in_flight > 0)
				waitable = slot_confirm_waitable(*ref, qty, own_in_flight);
			return waitable ? COUPON_TIMED_OUT : COUPON_SOLD_OUT;
		}
		if (pg_atomic_compare_exchange_u64(&slot->available, &available,
										   available - qty))
			break;
	}
	pg_atomic_fetch_add_u64(&slot->in_flight, qty);
	pg_atomic_fetch_add_u32(&slot->pins, 1);
	if (pg_atomic_read_u32(&slot->used) == 0)
		pg_atomic_write_u32(&slot->used, 1);

	/*
	 * A drop checks in_flight after marking the slot; we check the mark
	 * after raising in_flight.  Both are full barriers, so one of us sees
	 * the other.
	 */
	dropping = pg_atomic_read_u32(&slot->drop_xid) != InvalidTransactionId;
	if (dropping)
	{
		pg_atomic_fetch_sub_u64(&slot->in_flight, qty);
		pg_atomic_fetch_add_u64(&slot->available, qty);
		pg_atomic_fetch_sub_u32(&slot->pins, 1);
		slot_wake(slot);
	}
	LWLockRelease(coupon_shared->lock);

	if (dropping)
		slot_dropping(*ref);
	return COUPON_TAKEN;
}

/*
 * Keep the slot loaded for a change that will be settled when the
 * transaction ends; false if the slot no longer holds the pool.
 */
bool
coupon_slot_pin(CouponSlotRef ref)
{
	bool		valid;

	LWLockAcquire(coupon_shared->lock, LW_SHARED);
	valid = slot_ref_valid(ref);
	if (valid)
		pg_atomic_fetch_add_u32(&ref.slot->pins, 1);
	LWLockRelease(coupon_shared->lock);
	return valid;
}

/* Lower the slot's earliest expiry to ts. */
static void
slot_note_expiry(CouponSlot *slot, TimestampTz ts)
{
	uint64		current = pg_atomic_read_u64(&slot->next_expiry);

	while ((TimestampTz) current > ts &&
		   !pg_atomic_compare_exchange_u64(&slot->next_expiry, &current,
										   (uint64) ts))
		;
}

/*
 * A transaction that changed the pool ended.  If it aborted, the permits
 * it took are available again, and holds it released are live again; if
 * it committed, the deltas are applied:
 * its claims are claimed now, its releases and growth available, its
 * capacity changes made.  Either way its pins are dropped and sleepers
 * woken.  A stale reference (the pool was dropped meanwhile) is ignored.
 */
void
coupon_slot_settle(CouponSlotRef ref, const CouponSettlement *s,
				   bool committed)
{
	LWLockAcquire(coupon_shared->lock, LW_SHARED);
	if (slot_ref_valid(ref))
	{
		CouponSlot *slot = ref.slot;

		/* In flight first: see "available + in flight" above. */
		pg_atomic_fetch_sub_u64(&slot->in_flight, s->in_flight);
		if (committed)
		{
			pg_atomic_fetch_add_u64(&slot->capacity, (uint64) s->capacity);
			pg_atomic_fetch_add_u64(&slot->available, (uint64) s->available);
			pg_atomic_fetch_add_u64(&slot->grants, s->grants);
			if (s->expiry != 0)
				slot_note_expiry(slot, s->expiry);
		}
		else
		{
			pg_atomic_fetch_add_u64(&slot->available, s->in_flight);
			if (s->undo_expiry != 0)
				slot_note_expiry(slot, s->undo_expiry);
		}
		pg_atomic_fetch_sub_u32(&slot->pins, s->pins);
		slot_wake(slot);
	}
	LWLockRelease(coupon_shared->lock);
}

/* A sleeper leaves the wait queue: on its way out, or at error or exit. */
static void
slot_stop_waiting(int code, Datum arg)
{
	CouponSlot *slot = (CouponSlot *) DatumGetPointer(arg);

	ConditionVariableCancelSleep();
	pg_atomic_fetch_sub_u32(&slot->waiters, 1);
}

/*
 * Sleep on the pool's wait queue until attempt() gets an answer other than
 * COUPON_TIMED_OUT or deadline passes.  attempt() runs first right away and
 * again whenever somebody gives permits back, and at the pool's next
 * expiry of a hold (it may expire holds itself).  The sleep uses no CPU;
 * query cancel and statement_timeout end it with an error.
 *
 * The sleep is invisible to the deadlock detector: a transaction that
 * waits for permits which the transaction holding them cannot return until
 * it gets a lock the waiter holds is freed by its deadline only.  Callers
 * give up locks of their own making before sleeping (see claim.c).
 */
CouponTake
coupon_slot_wait(CouponSlotRef *ref, TimestampTz deadline,
				 CouponAttempt attempt, void *arg)
{
	volatile CouponTake result = COUPON_TIMED_OUT;
	CouponSlot *slot = ref->slot;
	bool		valid;

	/*
	 * Announce ourselves before each attempt, so that whoever gives permits
	 * back after it sees us and broadcasts.  The waiters count is kept right
	 * even if we leave by an error or a FATAL exit.
	 */
	LWLockAcquire(coupon_shared->lock, LW_SHARED);
	valid = slot_ref_valid(*ref);
	if (valid)
	{
		pg_atomic_fetch_add_u32(&slot->waiters, 1);
		pg_atomic_fetch_add_u64(&slot->waits, 1);
	}
	LWLockRelease(coupon_shared->lock);
	if (!valid)
		return COUPON_STALE;

	PG_ENSURE_ERROR_CLEANUP(slot_stop_waiting, PointerGetDatum(slot));
	{
		ConditionVariablePrepareToSleep(&slot->wait_queue);
		for (;;)
		{
			TimestampTz now;
			TimestampTz wake = deadline;
			TimestampTz expiry;

			result = attempt(ref, arg);
			if (result != COUPON_TIMED_OUT)
				break;
			now = GetCurrentTimestamp();
			if (now >= deadline)
				break;
			/* Wake for the next hold to expire, if it comes first. */
			expiry = coupon_slot_next_expiry(*ref);
			if (expiry > now && expiry < wake)
				wake = expiry;
			ConditionVariableTimedSleep(&slot->wait_queue,
										Max(TimestampDifferenceMilliseconds(now, wake), 1),
										PG_WAIT_EXTENSION);
		}
	}
	PG_END_ENSURE_ERROR_CLEANUP(slot_stop_waiting, PointerGetDatum(slot));
	slot_stop_waiting(0, PointerGetDatum(slot));
	return result;
}

/*
 * A transaction wants to drop the pool: mark the slot with its id, so
 * that claims are refused from now on, pin it, and report the permits in
 * flight; if there are any, the drop must fail (its abort clears the mark).
 * False if the slot no longer holds the pool.
 */
bool
coupon_slot_begin_drop(CouponSlotRef ref, TransactionId xid, uint64 *in_flight)
{
	bool		valid;

	LWLockAcquire(coupon_shared->lock, LW_SHARED);
	valid = slot_ref_valid(ref);
	if (valid)
	{
		pg_atomic_exchange_u32(&ref.slot->drop_xid, xid);
		pg_atomic_fetch_add_u32(&ref.slot->pins, 1);
		*in_flight = pg_atomic_read_u64(&ref.slot->in_flight);
	}
	LWLockRelease(coupon_shared->lock);
	return valid;
}

/* The dropping transaction ended: free the slot, or take claims again. */
void
coupon_slot_end_drop(CouponSlotRef ref, TransactionId xid, bool committed)
{
	uint32		expected = xid;

	LWLockAcquire(coupon_shared->lock, committed ? LW_EXCLUSIVE : LW_SHARED);
	if (slot_ref_valid(ref))
	{
		if (committed)
			slot_free(ref.slot);
		else
		{
			pg_atomic_compare_exchange_u32(&ref.slot->drop_xid, &expected,
										   InvalidTransactionId);
			pg_atomic_fetch_sub_u32(&ref.slot->pins, 1);
			slot_wake(ref.slot);
		}
	}
	LWLockRelease(coupon_shared->lock);
}

/*
 * Forget the pools of a pool table (DROP EXTENSION) or, with pool_relid
 * invalid, of a whole database (DROP DATABASE).
 */
void
coupon_slot_forget(Oid dboid, Oid pool_relid)
{
	LWLockAcquire(coupon_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < coupon_shared->max_pools; i++)
	{
		CouponSlot *slot = &coupon_shared->slots[i].slot;

		if (slot->in_use && slot->key.dboid == dboid &&
			(!OidIsValid(pool_relid) || slot->key.pool_relid == pool_relid))
			slot_free(slot);
	}
	LWLockRelease(coupon_shared->lock);
}

/* Does some slot hold a pool of this pool table? */
bool
coupon_slot_holds_relation(Oid dboid, Oid pool_relid)
{
	bool		found = false;

	if (!coupon_preloaded())
		return false;
	LWLockAcquire(coupon_shared->lock, LW_SHARED);
	for (int i = 0; i < coupon_shared->max_pools && !found; i++)
	{
		CouponSlot *slot = &coupon_shared->slots[i].slot;

		found = slot->in_use && slot->key.dboid == dboid &&
			slot->key.pool_relid == pool_relid;
	}
	LWLockRelease(coupon_shared->lock);
	return found;
}

/* Count an event in the pool's statistics. */
void
coupon_slot_count(CouponSlotRef ref, CouponStat stat)
{
	LWLockAcquire(coupon_shared->lock, LW_SHARED);
	if (slot_ref_valid(ref))
		pg_atomic_fetch_add_u64(stat == COUPON_STAT_WAITS ?
								&ref.slot->waits : &ref.slot->sold_out, 1);
	LWLockRelease(coupon_shared->lock);
}

/* The earliest expiry of a live hold of the pool; DT_NOEND if none. */
TimestampTz
coupon_slot_next_expiry(CouponSlotRef ref)
{
	TimestampTz ts = DT_NOEND;

	LWLockAcquire(coupon_shared->lock, LW_SHARED);
	if (slot_ref_valid(ref))
		ts = (TimestampTz) pg_atomic_read_u64(&ref.slot->next_expiry);
	LWLockRelease(coupon_shared->lock);
	return ts;
}

/*
 * Will a hold of the pool expire by deadline (0: never), so that a claim
 * that found too few permits may wait for its coupons?
 */
bool
coupon_slot_expires_by(CouponSlotRef ref, TimestampTz deadline)
{
	TimestampTz next;

	if (deadline == 0)
		return false;
	next = coupon_slot_next_expiry(ref);
	return next != DT_NOEND && next <= deadline;
}

/*
 * Set the earliest expiry to next, found by a look at the ledger that
 * started when it was seen; unless it moved meanwhile (a hold made since).
 */
void
coupon_slot_set_next_expiry(CouponSlotRef ref, TimestampTz seen,
							TimestampTz next)
{
	uint64		expected = (uint64) seen;

	LWLockAcquire(coupon_shared->lock, LW_SHARED);
	if (slot_ref_valid(ref))
		pg_atomic_compare_exchange_u64(&ref.slot->next_expiry, &expected,
									   (uint64) next);
	LWLockRelease(coupon_shared->lock);
}

/* Caller holds the lock. */
static void
slot_read_stats(CouponSlot *slot, CouponSlotStats *stats)
{
	strlcpy(stats->pool, slot->key.name, sizeof(stats->pool));
	stats->capacity = pg_atomic_read_u64(&slot->capacity);
	stats->available = pg_atomic_read_u64(&slot->available);
	stats->in_flight = pg_atomic_read_u64(&slot->in_flight);
	stats->grants = pg_atomic_read_u64(&slot->grants);
	stats->sold_out = pg_atomic_read_u64(&slot->sold_out);
	stats->waits = pg_atomic_read_u64(&slot->waits);
}

/* The counters of a referenced pool; all zero if it is gone. */
void
coupon_slot_stats(CouponSlotRef ref, CouponSlotStats *stats)
{
	memset(stats, 0, sizeof(CouponSlotStats));
	LWLockAcquire(coupon_shared->lock, LW_SHARED);
	if (slot_ref_valid(ref))
		slot_read_stats(ref.slot, stats);
	LWLockRelease(coupon_shared->lock);
}

/*
 * The counters of slot i, for the statistics view.  Returns false past the
 * last slot; *found says whether slot i holds a pool of this database's pool
 * table.
 */
bool
coupon_slot_read(int i, Oid pool_relid, CouponSlotStats *stats, bool *found)
{
	CouponSlot *slot;

	if (i >= coupon_shared->max_pools)
		return false;
	slot = &coupon_shared->slots[i].slot;
	LWLockAcquire(coupon_shared->lock, LW_SHARED);
	*found = slot->in_use && slot->key.dboid == MyDatabaseId &&
		slot->key.pool_relid == pool_relid;
	if (*found)
		slot_read_stats(slot, stats);
	LWLockRelease(coupon_shared->lock);
	return true;
}
