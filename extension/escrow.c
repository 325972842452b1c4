/*-------------------------------------------------------------------------
 *
 * escrow.c
 *		Tie the semaphore to transactions: O'Neil's escrow method.
 *
 * Pending decrements count against the bound at once, pending increments
 * only once they commit.  Concretely, each backend keeps a list of what its
 * open transaction did to the semaphore:
 *
 *	claim, shrink	permits already taken from "available" and counted in
 *					"in_flight"; commit settles them, abort (of the
 *					transaction or of the savepoint that took them) gives them
 *					back at once and wakes the waiters
 *	release, grow	permits to add to "available"; commit publishes them and
 *					wakes the waiters, abort forgets them
 *	drop			the pool refuses claims; commit frees its slot, abort
 *					lets it take claims again
 *	forget			DROP EXTENSION (of the pool table) or DROP DATABASE:
 *					commit frees the slots of its pools
 *
 * The list lives in TopTransactionContext, newest entry first.  Entries
 * record the subtransaction that made them; a subtransaction commit hands
 * them to its parent, a subtransaction abort undoes them.  What a
 * subtransaction and its committed children recorded is always a prefix of
 * the list, so the callbacks stop at the first older entry.  The callbacks
 * run after the commit record is flushed, or during abort, and only do
 * atomic arithmetic and a wake-up, so they cannot fail.
 *
 * PREPARE TRANSACTION is refused when the list is not empty: a prepared
 * transaction outlives the backend whose list holds its permits, and the
 * semaphore could not be rebuilt from the ledger while it is pending.
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

#include "coupon.h"

typedef struct CouponEscrowEntry
{
	struct CouponEscrowEntry *next;
	CouponPending kind;
	SubTransactionId subid;
	CouponSlotRef ref;
	uint64		qty;
	Oid			dboid;			/* for COUPON_PENDING_FORGET */
	Oid			pool_relid;		/* ditto; invalid for a whole database */
} CouponEscrowEntry;

static CouponEscrowEntry *escrow_list = NULL;

static object_access_hook_type prev_object_access_hook = NULL;

/*
 * Allocate an entry ahead of time, so that recording it right after taking
 * permits cannot fail for lack of memory and lose them.
 */
void *
coupon_escrow_reserve(void)
{
	return MemoryContextAllocZero(TopTransactionContext,
								  sizeof(CouponEscrowEntry));
}

void
coupon_escrow_record(void *reserved, CouponPending kind, CouponSlotRef ref,
					 uint64 qty)
{
	CouponEscrowEntry *entry = reserved;

	entry->kind = kind;
	entry->subid = GetCurrentSubTransactionId();
	entry->ref = ref;
	entry->qty = qty;
	entry->next = escrow_list;
	escrow_list = entry;
}

/* Undo one entry, as an abort would. */
static void
escrow_undo(CouponEscrowEntry *entry)
{
	switch (entry->kind)
	{
		case COUPON_PENDING_CLAIM:
		case COUPON_PENDING_SHRINK:
			coupon_slot_settle(entry->ref, entry->qty, COUPON_SETTLE_GIVE_BACK);
			break;
		case COUPON_PENDING_DROP:
			coupon_slot_end_drop(entry->ref, false);
			break;
		case COUPON_PENDING_RELEASE:
		case COUPON_PENDING_GROW:
		case COUPON_PENDING_FORGET:
			break;
	}
}

/* Carry out one entry at commit. */
static void
escrow_commit(CouponEscrowEntry *entry)
{
	switch (entry->kind)
	{
		case COUPON_PENDING_CLAIM:
			coupon_slot_settle(entry->ref, entry->qty, COUPON_SETTLE_CLAIMED);
			break;
		case COUPON_PENDING_SHRINK:
			coupon_slot_settle(entry->ref, entry->qty, COUPON_SETTLE_SHRUNK);
			break;
		case COUPON_PENDING_RELEASE:
			coupon_slot_publish(entry->ref, entry->qty, false);
			break;
		case COUPON_PENDING_GROW:
			coupon_slot_publish(entry->ref, entry->qty, true);
			break;
		case COUPON_PENDING_DROP:
			coupon_slot_end_drop(entry->ref, true);
			break;
		case COUPON_PENDING_FORGET:
			coupon_slot_forget(entry->dboid, entry->pool_relid);
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
	escrow_undo(entry);
	pfree(entry);
}

/*
 * Is this transaction dropping the pool of this slot?  Then a pool of the
 * same name that it sees now is one it created since.
 */
bool
coupon_escrow_dropping(CouponSlotRef ref)
{
	if (!ref.dropping)
		return false;
	for (CouponEscrowEntry *entry = escrow_list; entry; entry = entry->next)
	{
		if (entry->kind == COUPON_PENDING_DROP &&
			entry->ref.slot == ref.slot &&
			entry->ref.generation == ref.generation)
			return true;
	}
	return false;
}

/* How many of the pool's permits does this transaction hold in flight? */
uint64
coupon_escrow_in_flight(CouponSlotRef ref)
{
	uint64		held = 0;

	for (CouponEscrowEntry *entry = escrow_list; entry; entry = entry->next)
	{
		if ((entry->kind == COUPON_PENDING_CLAIM ||
			 entry->kind == COUPON_PENDING_SHRINK) &&
			entry->ref.slot == ref.slot &&
			entry->ref.generation == ref.generation)
			held += entry->qty;
	}
	return held;
}

/*
 * Carry out the list at commit, oldest entry first (it is kept newest
 * first), so that a drop comes after the releases that preceded it.
 */
static void
escrow_commit_all(void)
{
	CouponEscrowEntry *oldest_first = NULL;

	while (escrow_list != NULL)
	{
		CouponEscrowEntry *entry = escrow_list;

		escrow_list = entry->next;
		entry->next = oldest_first;
		oldest_first = entry;
	}
	for (; oldest_first != NULL; oldest_first = oldest_first->next)
		escrow_commit(oldest_first);
}

static void
escrow_xact_callback(XactEvent event, void *arg)
{
	CouponEscrowEntry *entry;

	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			if (escrow_list != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that has claimed, released or changed coupons"),
						 errdetail("The permits it holds live in this session's memory and would outlive it."),
						 errhint("Commit or roll back the transaction instead.")));
			break;
		case XACT_EVENT_COMMIT:
			escrow_commit_all();
			break;
		case XACT_EVENT_ABORT:
			for (entry = escrow_list; entry != NULL; entry = entry->next)
				escrow_undo(entry);
			escrow_list = NULL;
			break;
		default:
			break;
	}
}

static void
escrow_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
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
			escrow_undo(entry);
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
static void
escrow_object_access(ObjectAccessType access, Oid classId, Oid objectId,
					 int subId, void *arg)
{
	Oid			dboid = InvalidOid;
	Oid			pool_relid = InvalidOid;

	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);

	if (access != OAT_DROP || subId != 0)
		return;
	if (classId == DatabaseRelationId)
		dboid = objectId;
	else if (classId == RelationRelationId && is_pool_table(objectId) &&
			 coupon_slot_holds_relation(MyDatabaseId, objectId))
	{
		dboid = MyDatabaseId;
		pool_relid = objectId;
	}

	if (OidIsValid(dboid))
	{
		CouponEscrowEntry *entry = coupon_escrow_reserve();
		CouponSlotRef none = {0};

		coupon_escrow_record(entry, COUPON_PENDING_FORGET, none, 0);
		entry->dboid = dboid;
		entry->pool_relid = pool_relid;
	}
}

/* Called from _PG_init when the library is preloaded. */
void
coupon_escrow_init(void)
{
	RegisterXactCallback(escrow_xact_callback, NULL);
	RegisterSubXactCallback(escrow_subxact_callback, NULL);
	prev_object_access_hook = object_access_hook;
	object_access_hook = escrow_object_access;
}
