/*-------------------------------------------------------------------------
 *
 * escrow.c
 *		Tie the semaphore to transactions: O'Neil's escrow method.
 *
 * Floor: under the SQL entry points, which take and give permits through
 * it, one call per operation.  Calls load.c (coupon_pool_give loads the
 * pool first), the semaphore, and due.c to announce holds at commit.
 *
 * Pending decrements count against the bound at once, pending increments
 * only once they commit.  Concretely, each backend keeps a list of what its
 * open transaction did to the semaphore, each entry a settlement
 * (semaphore.h) of one slot:
 *
 *	claim, shrink	permits taken from "available" now and in flight; commit
 *					makes them claimed (or removes them from the capacity),
 *					abort (of the transaction or of the savepoint that took
 *					them) gives them back at once and wakes the waiters
 *	release, grow	permits to add to "available" (and to the capacity) when
 *					the transaction commits; abort forgets them (and a hold
 *					released is live again: its expiry goes back to the
 *					slot, so that claimers look for it)
 *	drop			the pool refuses claims; commit frees its slot, abort
 *					lets it take claims again
 *	forget			DROP EXTENSION (of the pool table) or DROP DATABASE:
 *					commit frees the slots of its pools
 *	expiry			a hold's new expiry, announced at commit to the slot
 *					(pinned, so that a load in between cannot miss it) and
 *					to the expiry worker
 *
 * A transaction may take from its own pending increments: a claim after a
 * release of the same pool, or a shrink after a growth, takes the permits
 * that its commit would publish, not ones from "available" (the entry's
 * "available" delta is then negative).  Both commit or abort together, so
 * the semaphore never sees the permit twice.  That is what lets a claimer
 * use a hold it expired itself (lifecycle.c), and a shrink follow a growth
 * in one transaction.
 *
 * Every entry of a slot pins it (semaphore.c): an entry is made before the
 * ledger changes and settled after the transaction ended, so while a pool
 * has no slot, nothing of it is pending anywhere.  coupon_escrow_take() is
 * the one call that takes permits, after the pattern of core's
 * LockAcquireExtended: room for the entry is made first, so that once the
 * permits are taken, recording them cannot fail and lose them.
 *
 * The list lives in TopTransactionContext, newest entry first.  Entries
 * record the subtransaction that made them; a subtransaction commit hands
 * them to its parent, a subtransaction abort undoes them.  What a
 * subtransaction and its committed children recorded is always a prefix of
 * the list, so the callbacks stop at the first older entry; and an entry
 * that takes from pending increments always belongs to the subtransaction
 * of those increments or to a descendant, so it never outlives them.  At
 * commit the entries of a slot are added up and applied at once (a claim's
 * negative delta must never reach "available" before the release it came
 * from).  The callbacks run after the commit record is flushed, or during
 * abort, and only do atomic arithmetic and a wake-up, so they cannot fail.
 *
 * PREPARE TRANSACTION is refused after any coupon function that changes or
 * locks coupons: a prepared transaction outlives the backend whose list
 * holds its permits, and would keep customer locks no one can release.
 *
 * Note about locking: the list is backend-local; the semaphore functions
 * called from here do their own locking (semaphore.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "common.h"
#include "due.h"
#include "escrow.h"
#include "load.h"
#include "semaphore.h"

typedef struct CouponEscrowEntry
{
	struct CouponEscrowEntry *next;
	CouponPending kind;
	SubTransactionId subid;
	CouponSlotRef ref;			/* none for forget */
	CouponSettlement s;
	TransactionId drop_xid;		/* drop */
	Oid			dboid;			/* forget */
	Oid			pool_relid;		/* forget; invalid for a whole database */
} CouponEscrowEntry;

/* One attempt of coupon_escrow_take(), as the wait loop repeats it. */
typedef struct TakeAttempt
{
	CouponPending kind;
	uint64		qty;
	uint64		from_own;		/* out: taken from own pending increments */
	TimestampTz deadline;		/* 0 if the take may not wait */
	CouponRefill refill;
	void	   *refill_arg;
} TakeAttempt;

static CouponEscrowEntry *escrow_list = NULL;

/* Did this transaction call a coupon function that changes or locks? */
static bool escrow_touched = false;

/* The transaction called a coupon function that changes or locks coupons. */
void
coupon_escrow_touch(void)
{
	escrow_touched = true;
}

static CouponEscrowEntry *
entry_alloc(CouponPending kind)
{
	CouponEscrowEntry *entry = MemoryContextAllocZero(TopTransactionContext,
													  sizeof(CouponEscrowEntry));

	entry->kind = kind;
	return entry;
}

static void
entry_link(CouponEscrowEntry *entry)
{
	entry->subid = GetCurrentSubTransactionId();
	entry->next = escrow_list;
	escrow_list = entry;
}

static inline bool
same_slot(CouponSlotRef a, CouponSlotRef b)
{
	return a.slot == b.slot && a.generation == b.generation;
}

/*
 * This transaction's pending increments of the slot that are not taken
 * yet, and its permits of the slot in flight.
 */
static uint64
own_pending(CouponSlotRef ref, uint64 *in_flight)
{
	int64		available = 0;

	*in_flight = 0;
	for (CouponEscrowEntry *entry = escrow_list; entry; entry = entry->next)
	{
		if (entry->ref.slot == NULL || !same_slot(entry->ref, ref))
			continue;
		available += entry->s.available;
		*in_flight += entry->s.in_flight;
	}
	Assert(available >= 0);
	return (uint64) Max(available, 0);
}

/*
 * The permits this transaction could take of the slot now: those
 * available, and its own pending increments (holds it expired, say).
 */
uint64
coupon_escrow_available(CouponSlotRef ref)
{
	CouponSlotStats stats;
	uint64		in_flight;

	coupon_slot_stats(ref, &stats);
	return stats.available + own_pending(ref, &in_flight);
}

/*
 * Take a->qty permits: first from the transaction's own pending increments
 * of the pool, the rest from the semaphore.  If that fails, let the refill
 * add increments (expired holds) and try again.
 */
static CouponTake
take_attempt(CouponSlotRef *ref, void *arg)
{
	TakeAttempt *a = (TakeAttempt *) arg;

	for (;;)
	{
		uint64		in_flight;
		uint64		own = Min(a->qty, own_pending(*ref, &in_flight));
		CouponTake	take;
		bool		waitable = false;

		if (own == a->qty)
			take = coupon_slot_pin(*ref) ? COUPON_TAKEN : COUPON_STALE;
		else
			take = coupon_slot_take(ref, a->qty - own, in_flight);
		if (take == COUPON_TAKEN)
		{
			a->from_own = own;
			return take;
		}
		if (take == COUPON_STALE || a->refill == NULL)
			return take;
		if (!a->refill(*ref, a->qty - own, a->refill_arg, &waitable))
			return waitable || coupon_slot_expires_by(*ref, a->deadline) ?
				COUPON_TIMED_OUT : take;
	}
}

/*
 * Take qty permits of the referenced pool for this transaction, as a claim
 * (claims of them, with the holds' expiry, or 0) or a shrink, and remember
 * them.  With a
 * deadline in the future, sleep on the pool's wait queue while permits in
 * flight elsewhere could still come back.  refill, if given, may add
 * increments of the pool to the transaction when there are too few
 * permits.  Returns COUPON_TAKEN, COUPON_SOLD_OUT, COUPON_TIMED_OUT, or
 * COUPON_STALE when the slot no longer holds the pool (find it again).
 */
CouponTake
coupon_escrow_take(CouponSlotRef *ref, CouponPending kind, uint64 qty,
				   uint32 claims, TimestampTz expires_at, TimestampTz deadline,
				   CouponRefill refill, void *refill_arg)
{
	CouponEscrowEntry *entry = entry_alloc(kind);
	TakeAttempt attempt = {kind, qty, 0, deadline, refill, refill_arg};
	CouponTake	take;

	Assert(kind == COUPON_PENDING_CLAIM || kind == COUPON_PENDING_SHRINK);
	take = take_attempt(ref, &attempt);
	if (take == COUPON_TIMED_OUT && deadline != 0 &&
		GetCurrentTimestamp() < deadline)
		take = coupon_slot_wait(ref, deadline, take_attempt, &attempt);
	if (take != COUPON_TAKEN)
	{
		pfree(entry);
		return take;
	}

	entry->ref = *ref;
	entry->s.in_flight = qty - attempt.from_own;
	entry->s.available = -(int64) attempt.from_own;
	entry->s.pins = 1;
	if (kind == COUPON_PENDING_SHRINK)
		entry->s.capacity = -(int64) qty;
	else
	{
		entry->s.grants = claims;
		entry->s.expiry = expires_at;
	}
	entry_link(entry);
	return COUPON_TAKEN;
}

/*
 * Remember what the transaction gives the pool when it commits: qty
 * permits of a release (of a hold expiring at expiry, or 0: if the release
 * is undone, the hold is live again), qty permits and capacity of a
 * capacity increase, or a hold's new expiry (kind expiry, qty 0).  False
 * if the slot no longer holds the pool (find it again).
 */
bool
coupon_escrow_give(CouponSlotRef ref, CouponPending kind, uint64 qty,
				   TimestampTz expiry)
{
	CouponEscrowEntry *entry = entry_alloc(kind);

	Assert(kind == COUPON_PENDING_RELEASE || kind == COUPON_PENDING_GROW ||
		   kind == COUPON_PENDING_EXPIRY);
	if (!coupon_slot_pin(ref))
	{
		pfree(entry);
		return false;
	}
	entry->ref = ref;
	entry->s.available = (int64) qty;
	if (kind == COUPON_PENDING_GROW)
		entry->s.capacity = (int64) qty;
	else if (kind == COUPON_PENDING_RELEASE)
		entry->s.undo_expiry = expiry;
	else
		entry->s.expiry = expiry;
	entry->s.pins = 1;
	entry_link(entry);
	return true;
}

/*
 * coupon_escrow_give() to the pool, loading it first: a release, a
 * capacity increase or a hold's new expiry.
 */
CouponSlotRef
coupon_pool_give(const CouponPoolKey *key, CouponPending kind, uint64 qty,
				 TimestampTz expiry)
{
	for (;;)
	{
		CouponSlotRef ref = coupon_pool_slot(key, 0);

		if (coupon_escrow_give(ref, kind, qty, expiry))
			return ref;
	}
}

/* Undo one entry, as an abort would. */
static void
entry_undo(CouponEscrowEntry *entry)
{
	switch (entry->kind)
	{
		case COUPON_PENDING_CLAIM:
		case COUPON_PENDING_SHRINK:
		case COUPON_PENDING_RELEASE:
		case COUPON_PENDING_GROW:
		case COUPON_PENDING_EXPIRY:
			coupon_slot_settle(entry->ref, &entry->s, false);
			break;
		case COUPON_PENDING_DROP:
			coupon_slot_end_drop(entry->ref, entry->drop_xid, false);
			break;
		case COUPON_PENDING_FORGET:
			break;
	}
}

/*
 * Give back the permits recorded last, before the transaction ends: the
 * claim that took them turned out not to be needed.
 */
void
coupon_escrow_cancel_last(void)
{
	CouponEscrowEntry *entry = escrow_list;

	Assert(entry != NULL && entry->kind == COUPON_PENDING_CLAIM);
	escrow_list = entry->next;
	entry_undo(entry);
	pfree(entry);
}

/*
 * Start dropping the referenced pool: the slot refuses claims until this
 * transaction ends.  Reports the permits in flight (the drop must fail if
 * there are any).  False if the slot no longer holds the pool.
 */
bool
coupon_escrow_begin_drop(CouponSlotRef ref, uint64 *in_flight)
{
	CouponEscrowEntry *entry = entry_alloc(COUPON_PENDING_DROP);
	TransactionId xid = GetTopTransactionId();

	if (!coupon_slot_begin_drop(ref, xid, in_flight))
	{
		pfree(entry);
		return false;
	}
	entry->ref = ref;
	entry->drop_xid = xid;
	entry_link(entry);
	return true;
}

/*
 * The pools of a pool table (or, with pool_relid invalid, of a database)
 * are dropped: forget their slots when the transaction commits.
 */
void
coupon_escrow_forget(Oid dboid, Oid pool_relid)
{
	CouponEscrowEntry *entry = entry_alloc(COUPON_PENDING_FORGET);

	entry->dboid = dboid;
	entry->pool_relid = pool_relid;
	entry_link(entry);
}

/* Add an entry's settlement to a slot's total. */
static void
settlement_add(CouponSettlement *total, const CouponSettlement *s)
{
	total->in_flight += s->in_flight;
	total->available += s->available;
	total->capacity += s->capacity;
	total->grants += s->grants;
	total->pins += s->pins;
	if (s->expiry != 0 && (total->expiry == 0 || s->expiry < total->expiry))
		total->expiry = s->expiry;
}

/*
 * Carry out the list at commit.  The settlements of each slot are added up
 * into the oldest entry of the slot and applied at once; then drops and
 * forgets, oldest first (they come after the changes that preceded them).
 */
static void
escrow_commit_all(void)
{
	CouponEscrowEntry *oldest_first = NULL;
	TimestampTz due = 0;

	while (escrow_list != NULL)
	{
		CouponEscrowEntry *entry = escrow_list;

		escrow_list = entry->next;
		entry->next = oldest_first;
		oldest_first = entry;
	}

	for (CouponEscrowEntry *entry = oldest_first; entry; entry = entry->next)
	{
		if (entry->s.expiry != 0 && (due == 0 || entry->s.expiry < due))
			due = entry->s.expiry;
		if (entry->ref.slot == NULL || entry->kind == COUPON_PENDING_DROP)
			continue;
		for (CouponEscrowEntry *later = entry->next; later; later = later->next)
		{
			if (later->kind == COUPON_PENDING_DROP ||
				!same_slot(later->ref, entry->ref))
				continue;
			settlement_add(&entry->s, &later->s);
			later->ref.slot = NULL;
		}
		coupon_slot_settle(entry->ref, &entry->s, true);
	}

	for (CouponEscrowEntry *entry = oldest_first; entry; entry = entry->next)
	{
		if (entry->kind == COUPON_PENDING_DROP)
			coupon_slot_end_drop(entry->ref, entry->drop_xid, true);
		else if (entry->kind == COUPON_PENDING_FORGET)
		{
			coupon_slot_forget(entry->dboid, entry->pool_relid);
			if (!OidIsValid(entry->pool_relid))
				coupon_due_forget(entry->dboid);
		}
	}

	if (due != 0)
		coupon_due_notify(MyDatabaseId, due);
}

static void
escrow_abort_all(void)
{
	for (CouponEscrowEntry *entry = escrow_list; entry; entry = entry->next)
		entry_undo(entry);
	escrow_list = NULL;
}

void
coupon_escrow_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			if (escrow_list != NULL || escrow_touched)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that has called coupon functions"),
						 errdetail("The permits and customer locks it holds belong to this session and would outlive it."),
						 errhint("Commit or roll back the transaction instead.")));
			break;
		case XACT_EVENT_COMMIT:
			escrow_commit_all();
			escrow_touched = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			escrow_abort_all();
			escrow_touched = false;
			break;
		default:
			break;
	}
}

void
coupon_escrow_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (CouponEscrowEntry *entry = escrow_list;
			 entry != NULL && entry->subid == mySubid; entry = entry->next)
			entry->subid = parentSubid;
	}
	else if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		while (escrow_list != NULL && escrow_list->subid == mySubid)
		{
			CouponEscrowEntry *entry = escrow_list;

			escrow_list = entry->next;
			entry_undo(entry);
			pfree(entry);
		}
	}
}

/*
 * Could the relation be an extension's pool table?  A cheap look at its
 * name (its catalog row is still there) before the slots are searched, as
 * the hook sees every relation dropped anywhere.
 */
static bool
is_pool_table(Oid relid)
{
	char	   *name = get_rel_name(relid);

	return name != NULL && strcmp(name, "coupon_pool") == 0;
}

/*
 * DROP EXTENSION coupon and DROP DATABASE remove pools without going
 * through coupon_pool_drop(); forget their slots when the drop commits.  A
 * pool made anew after DROP and CREATE EXTENSION has a new pool table, so
 * it never meets an old slot, even before the drop's commit is carried out.
 */
void
coupon_escrow_object_access(ObjectAccessType access, Oid classId,
							Oid objectId, int subId, void *arg)
{
	if (access != OAT_DROP || subId != 0)
		return;
	if (classId == DatabaseRelationId)
		coupon_escrow_forget(objectId, InvalidOid);
	else if (classId == RelationRelationId && is_pool_table(objectId) &&
			 coupon_slot_holds_relation(MyDatabaseId, objectId))
		coupon_escrow_forget(MyDatabaseId, objectId);
}
