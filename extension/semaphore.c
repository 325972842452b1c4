/*-------------------------------------------------------------------------
 *
 * semaphore.c
 *		The counting semaphore: one slot per pool in shared memory.
 *
 * This is the operating system's counting semaphore, with PostgreSQL's
 * shared memory as the kernel.  Each pool that has been used since the
 * server started owns a slot: an atomic count of available permits (the
 * semaphore's value), a count of permits taken by transactions that have
 * not ended yet (in flight), and a condition variable that is the
 * semaphore's wait queue.  The committed ledger is the durable truth;
 * shared memory starts empty and a slot is filled from the ledger on first
 * use (ledger.c), so a restart or a crash, which aborts every transaction
 * that was in flight, rebuilds the semaphore exactly.
 *
 * Taking permits (P) is a compare-and-swap loop on "available", which never
 * goes below zero: no process ever holds a lock across I/O, a sleep or a
 * context switch, so no claimer can stall another one (no priority
 * inversion).  Giving permits back (V) is an atomic add followed by a
 * broadcast on the wait queue when somebody sleeps on it.
 *
 * Note about locking: a shared hash maps a pool's key (database, pool
 * table, pool name) to a slot
 * index; it and the descriptive fields of the slots (key, generation,
 * per_customer, in_use) are protected by one LWLock.  Every operation on a
 * slot's counters is done with that lock held in shared mode, which is cheap
 * and keeps the slot from being freed and reused by another pool under our
 * feet; installing and freeing slots take it exclusively.  A slot is freed
 * only when its pool is dropped (and no permit is in flight, see
 * coupon_slot_begin_drop) or its database or extension is dropped.  Freeing
 * bumps the slot's generation, so a late reference to a reused slot (say
 * from a transaction aborting after DROP EXTENSION) is recognised and
 * ignored.  The condition variable and the waiters count are initialised
 * once at server start and never reset, because a sleeper may still be
 * registered on them while the slot changes hands; a sleeper re-finds its
 * pool by key after every wake-up.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "coupon.h"

/*
 * One pool's counting semaphore.  The atomics change without the lock (but
 * with it held in shared mode, see above); the other fields change only
 * with it held exclusively.
 */
struct CouponSlot
{
	pg_atomic_uint64 available; /* permits that can be taken now */
	pg_atomic_uint64 in_flight; /* taken by transactions still open */
	pg_atomic_uint64 capacity;	/* committed capacity */
	pg_atomic_uint32 waiters;	/* claimers sleeping on wait_queue */
	pg_atomic_uint32 dropping;	/* a transaction is dropping the pool */
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
	CouponPaddedSlot *slots;	/* max_pools of them, cache-line aligned */
} CouponShared;

typedef struct CouponHashEntry
{
	CouponPoolKey key;
	int			slot_index;
} CouponHashEntry;

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
	return add_size(size, hash_estimate_size(coupon_max_pools,
											 sizeof(CouponHashEntry)));
}

/* shmem_request_hook: reserve our memory and our lock. */
void
coupon_shmem_request(void)
{
	RequestAddinShmemSpace(coupon_shmem_size());
	RequestNamedLWLockTranche("coupon", 1);
}

/*
 * shmem_startup_hook: create the table, empty.  Runs at server start and
 * again after every crash restart, which is what rebuilds the semaphore.
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
		for (int i = 0; i < coupon_max_pools; i++)
		{
			CouponSlot *slot = &coupon_shared->slots[i].slot;

			memset(slot, 0, sizeof(CouponSlot));
			pg_atomic_init_u64(&slot->available, 0);
			pg_atomic_init_u64(&slot->in_flight, 0);
			pg_atomic_init_u64(&slot->capacity, 0);
			pg_atomic_init_u32(&slot->waiters, 0);
			pg_atomic_init_u32(&slot->dropping, 0);
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

	LWLockRelease(AddinShmemInitLock);
}

/*
 * Everything that needs the semaphore starts here: without
 * shared_preload_libraries there is no shared memory to keep it in.
 */
void
coupon_require_preload(void)
{
	if (coupon_shared == NULL || coupon_hash == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("coupon must be loaded via shared_preload_libraries"),
				 errhint("Add coupon to shared_preload_libraries in postgresql.conf and restart the server.")));
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
	ref->capacity = pg_atomic_read_u64(&slot->capacity);
	ref->per_customer = slot->per_customer;
	ref->dropping = pg_atomic_read_u32(&slot->dropping) != 0;
}

static inline void
slot_wake(CouponSlot *slot)
{
	if (pg_atomic_read_u32(&slot->waiters) > 0)
		ConditionVariableBroadcast(&slot->wait_queue);
}

/* Find the pool's slot; false when it has none yet. */
bool
coupon_slot_find(const CouponPoolKey *key, CouponSlotRef *ref)
{
	CouponSlot *slot;

	LWLockAcquire(coupon_shared->lock, LW_SHARED);
	slot = slot_lookup(key);
	if (slot)
		slot_ref_fill(ref, slot);
	LWLockRelease(coupon_shared->lock);
	return slot != NULL;
}

/*
 * Give the pool a slot filled from its ledger row, unless another backend
 * got there first, in which case theirs stands: both were computed while no
 * permit of the pool could be in flight (see ledger.c), so they agree.
 */
CouponSlotRef
coupon_slot_install(const CouponPoolKey *key, const CouponPoolRow *row)
{
	CouponHashEntry *entry;
	CouponSlot *slot = NULL;
	CouponSlotRef ref;
	bool		found;

	LWLockAcquire(coupon_shared->lock, LW_EXCLUSIVE);
	entry = hash_search(coupon_hash, key, HASH_ENTER_NULL, &found);
	if (entry != NULL && !found)
	{
		for (int i = 0; i < coupon_shared->max_pools; i++)
		{
			if (!coupon_shared->slots[i].slot.in_use)
			{
				entry->slot_index = i;
				slot = &coupon_shared->slots[i].slot;
				break;
			}
		}
		if (slot == NULL)
			hash_search(coupon_hash, key, HASH_REMOVE, NULL);
		else
		{
			int64		available = row->capacity - row->claimed;

			slot->key = *key;
			slot->per_customer = row->per_customer;
			slot->in_use = true;
			pg_atomic_write_u64(&slot->capacity, row->capacity);
			pg_atomic_write_u64(&slot->available, Max(available, 0));
			pg_atomic_write_u64(&slot->in_flight, 0);
			pg_atomic_write_u32(&slot->dropping, 0);
			pg_atomic_write_u64(&slot->grants, 0);
			pg_atomic_write_u64(&slot->sold_out, 0);
			pg_atomic_write_u64(&slot->waits, 0);
		}
	}
	else if (entry != NULL)
		slot = &coupon_shared->slots[entry->slot_index].slot;

	if (slot == NULL)
	{
		LWLockRelease(coupon_shared->lock);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many coupon pools in use"),
				 errdetail("All %d slots of shared memory are taken by pools of this server's databases.",
						   coupon_shared->max_pools),
				 errhint("Drop unused pools or increase coupon.max_pools and restart the server.")));
	}
	slot_ref_fill(&ref, slot);
	LWLockRelease(coupon_shared->lock);
	return ref;
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
slot_confirm_waitable(CouponSlotRef ref, uint64 qty,
					  CouponOwnInFlight own_in_flight)
{
	uint64		mine = own_in_flight ? own_in_flight(ref) : 0;
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
	in_flight -= Min(in_flight, mine);
	return available + in_flight >= qty;
}

pg_noreturn static void slot_dropping(const CouponPoolKey *key);

static void
slot_dropping(const CouponPoolKey *key)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_IN_USE),
			 errmsg("pool \"%s\" is being dropped", key->name)));
}

/*
 * P(): take qty permits from the pool named by key, if it has that many
 * available now.  On success *ref names the slot, and the permits are in
 * flight until the caller's transaction ends (escrow.c gives them back on
 * abort).  Otherwise *waitable says whether permits in flight in other
 * transactions could still make up qty; own_in_flight, if given, tells how
 * many of the pool's permits in flight are the caller's own.  Fails with an
 * error if the pool does not exist or is being dropped.
 */
static bool
slot_try_take(const CouponPoolKey *key, uint64 qty,
			  CouponOwnInFlight own_in_flight, CouponSlotRef *ref,
			  bool *waitable)
{
	CouponSlot *slot;
	uint64		available;
	bool		dropping;

	LWLockAcquire(coupon_shared->lock, LW_SHARED);
	slot = slot_lookup(key);
	if (slot == NULL)
	{
		LWLockRelease(coupon_shared->lock);
		coupon_pool_missing(key->name);
	}
	slot_ref_fill(ref, slot);
	if (pg_atomic_read_u32(&slot->dropping) != 0)
	{
		LWLockRelease(coupon_shared->lock);
		slot_dropping(key);
	}

	available = pg_atomic_read_u64(&slot->available);
	for (;;)
	{
		if (available < qty)
		{
			*waitable = available + pg_atomic_read_u64(&slot->in_flight) >= qty;
			LWLockRelease(coupon_shared->lock);
			if (!*waitable || own_in_flight)
				*waitable = slot_confirm_waitable(*ref, qty, own_in_flight);
			return false;
		}
		if (pg_atomic_compare_exchange_u64(&slot->available, &available,
										   available - qty))
			break;
	}
	pg_atomic_fetch_add_u64(&slot->in_flight, qty);

	/*
	 * A drop checks in_flight after raising "dropping"; we check "dropping"
	 * after raising in_flight.  Both are full barriers, so one of us sees
	 * the other.
	 */
	dropping = pg_atomic_read_u32(&slot->dropping) != 0;
	if (dropping)
	{
		pg_atomic_fetch_add_u64(&slot->available, qty);
		pg_atomic_fetch_sub_u64(&slot->in_flight, qty);
		slot_wake(slot);
	}
	LWLockRelease(coupon_shared->lock);

	if (dropping)
		slot_dropping(key);
	return true;
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
 * Take qty permits, sleeping on the pool's wait queue until deadline while
 * permits in flight in other transactions could still come back.  With
 * deadline 0 it never sleeps.  Returns COUPON_TAKEN, COUPON_SOLD_OUT (not
 * enough permits even if every one in flight came back) or
 * COUPON_TIMED_OUT.  If the pool is dropped while the caller sleeps, it
 * fails as for an unknown pool.
 *
 * The sleep is invisible to the deadlock detector: a transaction that
 * waits for permits which the transaction holding them cannot return until
 * it gets a lock the waiter holds is freed by its deadline only.  Callers
 * give up locks of their own making before sleeping (see claim.c).
 */
CouponTake
coupon_slot_take(const CouponPoolKey *key, uint64 qty, TimestampTz deadline,
				 CouponOwnInFlight own_in_flight, CouponSlotRef *ref)
{
	volatile CouponTake result = COUPON_TIMED_OUT;
	CouponSlotRef sleeper;
	bool		waitable;

	if (slot_try_take(key, qty, own_in_flight, ref, &waitable))
		return COUPON_TAKEN;
	if (!waitable)
		return COUPON_SOLD_OUT;
	if (deadline == 0 || GetCurrentTimestamp() >= deadline)
		return COUPON_TIMED_OUT;

	/*
	 * Announce ourselves before each re-check, so that whoever gives permits
	 * back after it sees us and broadcasts.  The waiters count is kept right
	 * even if we leave by an error or a FATAL exit.
	 */
	sleeper = *ref;
	coupon_slot_count(sleeper, COUPON_STAT_WAITS);
	pg_atomic_fetch_add_u32(&sleeper.slot->waiters, 1);
	PG_ENSURE_ERROR_CLEANUP(slot_stop_waiting, PointerGetDatum(sleeper.slot));
	{
		ConditionVariablePrepareToSleep(&sleeper.slot->wait_queue);
		for (;;)
		{
			long		timeout_ms;

			if (slot_try_take(key, qty, own_in_flight, ref, &waitable))
			{
				result = COUPON_TAKEN;
				break;
			}
			if (ref->slot != sleeper.slot || ref->generation != sleeper.generation)
				coupon_pool_missing(key->name); /* dropped, and made anew */
			if (!waitable)
			{
				result = COUPON_SOLD_OUT;
				break;
			}
			timeout_ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
														 deadline);
			if (timeout_ms <= 0)
			{
				result = COUPON_TIMED_OUT;
				break;
			}
			ConditionVariableTimedSleep(&sleeper.slot->wait_queue, timeout_ms,
										PG_WAIT_EXTENSION);
		}
	}
	PG_END_ENSURE_ERROR_CLEANUP(slot_stop_waiting, PointerGetDatum(sleeper.slot));
	slot_stop_waiting(0, PointerGetDatum(sleeper.slot));
	return result;
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

/*
 * The transaction that took qty permits ended.  If it aborted (or gave up
 * the permits), they become available again; if it committed, a claim's
 * permits are now claimed and a shrink's are gone from the capacity.
 */
void
coupon_slot_settle(CouponSlotRef ref, uint64 qty, CouponSettle how)
{
	LWLockAcquire(coupon_shared->lock, LW_SHARED);
	if (slot_ref_valid(ref))
	{
		CouponSlot *slot = ref.slot;

		switch (how)
		{
			case COUPON_SETTLE_GIVE_BACK:
				pg_atomic_fetch_add_u64(&slot->available, qty);
				break;
			case COUPON_SETTLE_CLAIMED:
				pg_atomic_fetch_add_u64(&slot->grants, 1);
				break;
			case COUPON_SETTLE_SHRUNK:
				pg_atomic_fetch_sub_u64(&slot->capacity, qty);
				break;
		}
		pg_atomic_fetch_sub_u64(&slot->in_flight, qty);
		slot_wake(slot);
	}
	LWLockRelease(coupon_shared->lock);
}

/*
 * V() at commit: a release returns qty permits, a capacity increase adds
 * them.
 */
void
coupon_slot_publish(CouponSlotRef ref, uint64 qty, bool grow)
{
	LWLockAcquire(coupon_shared->lock, LW_SHARED);
	if (slot_ref_valid(ref))
	{
		if (grow)
			pg_atomic_fetch_add_u64(&ref.slot->capacity, qty);
		pg_atomic_fetch_add_u64(&ref.slot->available, qty);
		slot_wake(ref.slot);
	}
	LWLockRelease(coupon_shared->lock);
}

/*
 * A transaction wants to drop the pool.  Refuse new claims from now on and
 * report whether any permit is still in flight; if one is, the drop must
 * fail and the caller calls coupon_slot_end_drop(ref, false).
 */
bool
coupon_slot_begin_drop(CouponSlotRef ref, uint64 *in_flight)
{
	bool		valid;

	LWLockAcquire(coupon_shared->lock, LW_SHARED);
	valid = slot_ref_valid(ref);
	if (valid)
	{
		pg_atomic_exchange_u32(&ref.slot->dropping, 1);
		*in_flight = pg_atomic_read_u64(&ref.slot->in_flight);
	}
	LWLockRelease(coupon_shared->lock);
	return valid;
}

/* Free a slot; caller holds the lock exclusively. */
static void
slot_free(CouponSlot *slot)
{
	hash_search(coupon_hash, &slot->key, HASH_REMOVE, NULL);
	slot->in_use = false;
	slot->generation++;
	pg_atomic_write_u32(&slot->dropping, 0);
	ConditionVariableBroadcast(&slot->wait_queue);
}

/* The dropping transaction ended: free the slot, or take claims again. */
void
coupon_slot_end_drop(CouponSlotRef ref, bool committed)
{
	LWLockAcquire(coupon_shared->lock, committed ? LW_EXCLUSIVE : LW_SHARED);
	if (slot_ref_valid(ref))
	{
		if (committed)
			slot_free(ref.slot);
		else
		{
			pg_atomic_write_u32(&ref.slot->dropping, 0);
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

	if (coupon_shared == NULL)
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
