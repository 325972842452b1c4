/*-------------------------------------------------------------------------
 *
 * ledger.c
 *		Writing the durable truth: the claim ledger and the pool table.
 *
 * Floor: under the escrow, beside load.c.  Calls only the catalog.
 *
 * Every row the extension writes is written here, the way logical
 * replication applies a row (ExecSimpleRelationInsert and its siblings):
 * constraints checked, indexes and AFTER triggers maintained, the claim id
 * drawn from the ledger's sequence and claimed_at set to the transaction's
 * start, as the column defaults would.  That skips planning and executor
 * start-up, which would cost more than the work itself on the claim path.
 *
 * The writes run as the caller, not as the tables' owner, and they check
 * no table privilege: the functions are the gatekeepers (an application
 * role has EXECUTE on them and no privilege on the tables).  Whatever a DBA
 * attaches to the tables (an audit trigger, a constraint, an index
 * expression) therefore runs with the caller's rights, as it would for the
 * caller's own INSERT: a caller can never get code of its choosing run
 * with the owner's rights.  BEFORE ROW triggers are refused, since they
 * could change or suppress the rows that the semaphore counts.  Rows to
 * change are found and locked first by a statement of catalog.c (as the
 * owner, read only), which hands over their ctid.
 *
 * The two reads on every claim do not go through SPI either: the
 * per-customer check and the request-id lookup scan an index directly,
 * with SnapshotSelf, which sees every committed row and the transaction's
 * own, as of now.  The caller holds the customer's (or the request's)
 * lock, so no other transaction can be adding such a row, nor (a confirm,
 * an extend: lifecycle.c takes the customer's lock too) replacing one with
 * a new version that the scan could miss along with the old; a release in
 * progress elsewhere still counts as held until it commits, which errs on
 * the safe side.  A hold whose time is up counts as not held, by the
 * clock, as for confirm and extend: once expired it can never come back.
 * An earlier claim on a heap page that the visibility map marks
 * all-visible is counted from the index entry alone, without a heap
 * access: an upper bound of what the customer holds (an expired hold may
 * be among them), enough to grant; the callers ask again, exactly, before
 * they refuse.
 *
 * Note about locking: the writes take RowExclusiveLock on their table, as
 * an INSERT, UPDATE or DELETE would.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/visibilitymap.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "storage/bufmgr.h"
#include "utils/varlena.h"

#include "catalog.h"
#include "common.h"
#include "compat.h"
#include "ledger.h"

/* Columns of coupon_claims, in the order of the install scripts. */
#define Anum_claims_id			1
#define Anum_claims_pool		2
#define Anum_claims_customer	3
#define Anum_claims_qty			4
#define Anum_claims_claimed_at	5
#define Anum_claims_released_at 6
#define Anum_claims_expires_at	7	/* 1.1 */
#define Anum_claims_request_id	8	/* 1.1 */
#define Anum_claims_cart_claim	9	/* 1.3 */

/* Columns of coupon_pool. */
#define Anum_pool_name			1
#define Anum_pool_capacity		2
#define Anum_pool_per_customer	3
#define Anum_pool_created_at	4

/*
 * One write: the executor state around a table and its indexes.  Only a
 * change or a delete (of a row found by its tid) needs old and epq.
 */
typedef struct LedgerWrite
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;		/* the new row */
	TupleTableSlot *old;		/* the row changed or deleted */
	EPQState	epq;
} LedgerWrite;

/* A pool's key in shared memory: this database, this pool table, the name. */
void
coupon_make_key(CouponPoolKey *key, const char *pool)
{
	Assert(OidIsValid(coupon_catalog.pool_relid));
	memset(key, 0, sizeof(CouponPoolKey));
	key->dboid = MyDatabaseId;
	key->pool_relid = coupon_catalog.pool_relid;
	strlcpy(key->name, pool, sizeof(key->name));
}

static void
write_begin(LedgerWrite *w, Oid relid, ItemPointer old_tid)
{
	RangeTblEntry *rte;
	TriggerDesc *triggers;

	w->rel = table_open(relid, RowExclusiveLock);
	triggers = w->rel->trigdesc;
	if (triggers && (triggers->trig_insert_before_row ||
					 triggers->trig_update_before_row ||
					 triggers->trig_delete_before_row))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" of extension coupon has a BEFORE ROW trigger",
						RelationGetRelationName(w->rel)),
				 errdetail("A BEFORE trigger could change or suppress the rows that the coupons are counted from."),
				 errhint("Audit the table with AFTER triggers.")));

	w->estate = CreateExecutorState();
	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = relid;
	rte->relkind = RELKIND_RELATION;
	rte->rellockmode = RowExclusiveLock;
	coupon_exec_init_range_table(w->estate, rte);
	w->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(w->rri, w->rel, 1, NULL, 0);
	/* So that AFTER triggers find it, instead of opening the table again. */
	w->estate->es_opened_result_relations =
		lappend(w->estate->es_opened_result_relations, w->rri);
	w->estate->es_output_cid = GetCurrentCommandId(true);
	w->estate->es_snapshot = GetActiveSnapshot();
	ExecOpenIndices(w->rri, false);
	w->slot = ExecInitExtraTupleSlot(w->estate, RelationGetDescr(w->rel),
									 &TTSOpsVirtual);
	w->old = NULL;
	if (old_tid)
	{
		coupon_epq_init(&w->epq, w->estate);
		w->old = table_slot_create(w->rel, &w->estate->es_tupleTable);
		if (!table_tuple_fetch_row_version(w->rel, old_tid, SnapshotAny, w->old))
			elog(ERROR, "could not fetch row (%u,%u) of \"%s\"",
				 ItemPointerGetBlockNumber(old_tid),
				 ItemPointerGetOffsetNumber(old_tid),
				 RelationGetRelationName(w->rel));
		slot_getallattrs(w->old);
		ExecClearTuple(w->slot);
		memcpy(w->slot->tts_values, w->old->tts_values,
			   sizeof(Datum) * w->old->tts_nvalid);
		memcpy(w->slot->tts_isnull, w->old->tts_isnull,
			   sizeof(bool) * w->old->tts_nvalid);
	}
	AfterTriggerBeginQuery();
}

/* Fire the AFTER triggers and close everything write_begin() opened. */
static void
write_end(LedgerWrite *w)
{
	AfterTriggerEndQuery(w->estate);
	if (w->old)
		EvalPlanQualEnd(&w->epq);
	/* Closes the indexes, and the tables AFTER triggers opened. */
	ExecCloseResultRelations(w->estate);
	ExecResetTupleTable(w->estate->es_tupleTable, false);
	FreeExecutorState(w->estate);
	table_close(w->rel, NoLock);
}

static inline void
set_column(TupleTableSlot *slot, AttrNumber attnum, Datum value, bool isnull)
{
	slot->tts_values[attnum - 1] = value;
	slot->tts_isnull[attnum - 1] = isnull;
}

/*
 * The request id column of a claim made with request_id, the cart_claim-th
 * claim of a cart (0: a single claim).  A ledger of 1.1 or 1.2, not yet
 * updated, has no column cart_claim: there the claims of cart R carry the
 * request ids "R/1", "R/2", ..., as 1.2 wrote them, so that a repeat made
 * before the update is answered as 1.2 would.
 */
static const char *
ledger_request_id(const char *request_id, int32 cart_claim)
{
	if (request_id == NULL || cart_claim == 0 || coupon_catalog.cart_claims)
		return request_id;
	return psprintf("%s/%d", request_id, cart_claim);
}

/* Fill a slot with the ledger row of a new claim. */
static void
claim_row(TupleTableSlot *slot, int natts, Datum pool, Datum claimed_at,
		  CouponNewClaim *c)
{
	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, natts * sizeof(bool));
	c->id = nextval_internal(coupon_catalog.id_seq, false);
	set_column(slot, Anum_claims_id, Int64GetDatum(c->id), false);
	set_column(slot, Anum_claims_pool, pool, false);
	set_column(slot, Anum_claims_customer, CStringGetTextDatum(c->customer),
			   false);
	set_column(slot, Anum_claims_qty, Int32GetDatum(c->qty), false);
	set_column(slot, Anum_claims_claimed_at, claimed_at, false);
	if (coupon_catalog.lifecycle)
	{
		const char *request_id = ledger_request_id(c->request_id, c->cart_claim);

		set_column(slot, Anum_claims_expires_at,
				   TimestampTzGetDatum(c->expires_at), c->expires_at == 0);
		set_column(slot, Anum_claims_request_id,
				   request_id ? CStringGetTextDatum(request_id) : (Datum) 0,
				   request_id == NULL);
	}
	if (coupon_catalog.cart_claims)
		set_column(slot, Anum_claims_cart_claim, Int32GetDatum(c->cart_claim),
				   c->cart_claim == 0);
	ExecStoreVirtualTuple(slot);
}

/*
 * Write many rows the way COPY does: one multi-insert into the heap, which
 * logs a page at a time, then each row's index entries and AFTER triggers.
 * (BEFORE ROW triggers, which COPY would fire first, are refused.)
 */
static void
insert_many(LedgerWrite *w, TupleTableSlot **slots, int n)
{
	if (RelationGetDescr(w->rel)->constr)
	{
		for (int i = 0; i < n; i++)
			ExecConstraints(w->rri, slots[i], w->estate);
	}
	table_multi_insert(w->rel, slots, n, w->estate->es_output_cid, 0, NULL);
	for (int i = 0; i < n; i++)
	{
		List	   *recheck = NIL;

		if (w->rri->ri_NumIndices > 0)
			recheck = coupon_insert_index_tuples(w->rri, slots[i], w->estate);
		ExecARInsertTriggers(w->estate, w->rri, slots[i], recheck, NULL);
		list_free(recheck);
	}
}

/*
 * Insert the claims of a pool: one row per element of rows, whose ids are
 * set.  All in the caller's transaction.
 */
void
coupon_ledger_insert_claims(const char *pool, CouponNewClaim *rows, int n)
{
	LedgerWrite w;
	int			natts = coupon_catalog.claims_natts;
	Datum		pool_datum = CStringGetTextDatum(pool);
	Datum		claimed_at =
		TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());

	if (n == 0)
		return;
	write_begin(&w, coupon_catalog.claims_relid, NULL);
	coupon_catalog_check_ledger(w.rel);
	if (n == 1)
	{
		claim_row(w.slot, natts, pool_datum, claimed_at, &rows[0]);
		ExecSimpleRelationInsert(w.rri, w.estate, w.slot);
	}
	else
	{
		TupleTableSlot **slots = palloc(sizeof(TupleTableSlot *) * n);

		for (int i = 0; i < n; i++)
		{
			slots[i] = table_slot_create(w.rel, &w.estate->es_tupleTable);
			claim_row(slots[i], natts, pool_datum, claimed_at, &rows[i]);
		}
		insert_many(&w, slots, n);
	}
	write_end(&w);
}

/* Release the claim at tid (locked by the caller), or set its expiry. */
void
coupon_ledger_change_claim(ItemPointer tid, CouponClaimChange change,
						   TimestampTz value)
{
	LedgerWrite w;

	write_begin(&w, coupon_catalog.claims_relid, tid);
	/* By the clock: an expiry is never recorded before the hold expired. */
	if (change == COUPON_CHANGE_RELEASE)
		set_column(w.slot, Anum_claims_released_at,
				   TimestampTzGetDatum(GetCurrentTimestamp()), false);
	else
		set_column(w.slot, Anum_claims_expires_at, TimestampTzGetDatum(value),
				   value == 0);
	ExecStoreVirtualTuple(w.slot);
	ExecSimpleRelationUpdate(w.rri, w.estate, &w.epq, w.old, w.slot);
	write_end(&w);
}

/* Delete the row at tid (locked by the caller) of the ledger or pool table. */
void
coupon_ledger_delete(Oid relid, ItemPointer tid)
{
	LedgerWrite w;

	write_begin(&w, relid, tid);
	ExecSimpleRelationDelete(w.rri, w.estate, &w.epq, w.old);
	write_end(&w);
}

void
coupon_ledger_insert_pool(const char *pool, int64 capacity, int32 per_customer)
{
	LedgerWrite w;

	write_begin(&w, coupon_catalog.pool_relid, NULL);
	ExecClearTuple(w.slot);
	set_column(w.slot, Anum_pool_name, CStringGetTextDatum(pool), false);
	set_column(w.slot, Anum_pool_capacity, Int64GetDatum(capacity), false);
	set_column(w.slot, Anum_pool_per_customer, Int32GetDatum(per_customer),
			   false);
	set_column(w.slot, Anum_pool_created_at,
			   TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()), false);
	ExecStoreVirtualTuple(w.slot);
	ExecSimpleRelationInsert(w.rri, w.estate, w.slot);
	write_end(&w);
}

/* Set the capacity of the pool row at tid (locked by the caller). */
void
coupon_ledger_resize_pool(ItemPointer tid, int64 capacity)
{
	LedgerWrite w;

	write_begin(&w, coupon_catalog.pool_relid, tid);
	set_column(w.slot, Anum_pool_capacity, Int64GetDatum(capacity), false);
	ExecStoreVirtualTuple(w.slot);
	ExecSimpleRelationUpdate(w.rri, w.estate, &w.epq, w.old, w.slot);
	write_end(&w);
}

/*
 * A scan of an index of unreleased claims (the holders' or the live
 * claims', catalog.c checks their shapes), returning its index tuples,
 * with what it reads the heap and the visibility map through; qty is
 * column qty_attno of its entries.
 */
typedef struct UnreleasedScan
{
	Relation	claims;
	Relation	index;
	AttrNumber	qty_attno;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	Buffer		vmbuffer;
} UnreleasedScan;

/*
 * live: the index of live claims if it can be read (catalog.c), else, as
 * without live, the holders' index.  The table is locked before the
 * index, as DROP INDEX locks them.
 */
static void
unreleased_scan_begin(UnreleasedScan *hs, bool live, Snapshot snapshot,
					  int nkeys)
{
	hs->claims = table_open(coupon_catalog.claims_relid, AccessShareLock);
	hs->index = live ? coupon_catalog_open_live_index() : NULL;
	hs->qty_attno = 2;			/* (pool, qty) */
	if (hs->index == NULL)
	{
		hs->index = index_open(coupon_catalog.holder_index, AccessShareLock);
		hs->qty_attno = 3;		/* (pool, customer) INCLUDE (qty) */
	}
	hs->slot = table_slot_create(hs->claims, NULL);
	hs->scan = coupon_index_beginscan(hs->claims, hs->index, snapshot, nkeys);
	hs->scan->xs_want_itup = true;
	hs->vmbuffer = InvalidBuffer;
}

/* A scan of the holders' index, (pool, customer) INCLUDE (qty). */
static void
holder_scan_begin(UnreleasedScan *hs, Snapshot snapshot, int nkeys)
{
	unreleased_scan_begin(hs, false, snapshot, nkeys);
}

static void
unreleased_scan_end(UnreleasedScan *hs)
{
	if (BufferIsValid(hs->vmbuffer))
		ReleaseBuffer(hs->vmbuffer);
	index_endscan(hs->scan);
	ExecDropSingleTupleTableSlot(hs->slot);
	index_close(hs->index, NoLock);
	table_close(hs->claims, NoLock);
}

/*
 * The qty of the index entry the scan is on if the visibility map marks
 * its heap page all-visible, as an index-only scan would take it: its row
 * is visible to every transaction and unchanged since, so unreleased (the
 * index is partial).  -1 if the heap must be asked.
 */
static int32
visible_entry_qty(UnreleasedScan *hs)
{
	bool		isnull;

	if (!VM_ALL_VISIBLE(hs->claims,
						ItemPointerGetBlockNumber(&hs->scan->xs_heaptid),
						&hs->vmbuffer))
		return -1;
	return DatumGetInt32(index_getattr(hs->scan->xs_itup, hs->qty_attno,
									   hs->scan->xs_itupdesc, &isnull));
}

/* The customers of coupon_ledger_holdings_many(), for a bsearch. */
static int
customer_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * Whose holdings the index entry the scan is on counts for: NULL if its
 * customer is not in the array.  With one customer, the scan's range
 * holds only that customer's entries.
 */
static CouponHoldings *
entry_holdings(IndexScanDesc scan, char *const *customers, int n,
			   CouponHoldings *holdings)
{
	bool		isnull;
	char	   *name;
	char	   *const *found;

	if (n == 1)
		return &holdings[0];
	name = TextDatumGetCString(index_getattr(scan->xs_itup, 2,
											 scan->xs_itupdesc, &isnull));
	found = bsearch(&name, customers, n, sizeof(char *), customer_cmp);
	pfree(name);
	return found ? &holdings[found - customers] : NULL;
}

/*
 * Add up the holdings found by an index scan of the pool's entries whose
 * customer is in [lo, hi] (in the index's order): of every customer of
 * the array, none of the others.  Gives up (false) once it has passed more
 * than budget entries of other customers, which cost a comparison each
 * but no heap access (the scan returns the index tuple: pool, customer,
 * qty); the holdings are then incomplete.
 *
 * Unless exact, an entry on an all-visible heap page is counted from the
 * index tuple alone (visible_entry_qty).  Only whether it is a hold whose
 * time is up, and its id, would take the heap: such a customer's held is
 * an upper bound (CouponHoldings.bound).
 */
static bool
holdings_in_range(UnreleasedScan *hs, ScanKey keys, bool exact, const char *lo,
				  const char *hi, char *const *customers, int n,
				  CouponHoldings *holdings, int budget)
{
	IndexScanDesc scan = hs->scan;
	TupleTableSlot *slot = hs->slot;
	CouponHoldings *h = NULL;
	TimestampTz now = GetCurrentTimestamp();

	keys[1].sk_argument = CStringGetTextDatum(lo);
	keys[2].sk_argument = CStringGetTextDatum(hi);
	index_rescan(scan, keys, 3, NULL, 0);
	for (;;)
	{
		bool		isnull;
		int64		id;

		if (!scan->xs_heap_continue)
		{
			if (index_getnext_tid(scan, ForwardScanDirection) == NULL)
				return true;
			h = entry_holdings(scan, customers, n, holdings);
			if (h == NULL)
			{
				if (--budget < 0)
					return false;
				continue;
			}
		}
		if (!exact && !scan->xs_heap_continue)
		{
			int32		qty = visible_entry_qty(hs);

			if (qty >= 0)
			{
				h->held += qty;
				h->bound = true;
				continue;
			}
		}
		/* SnapshotSelf: a HOT chain may hold more than one visible version. */
		if (!index_fetch_heap(scan, slot))
			continue;
		/* A version released since the index entry was made. */
		(void) slot_getattr(slot, Anum_claims_released_at, &isnull);
		if (!isnull)
			continue;
		/* A hold whose time is up is no longer held, returned or not. */
		if (coupon_catalog.lifecycle)
		{
			Datum		expires_at = slot_getattr(slot, Anum_claims_expires_at,
												  &isnull);

			if (!isnull && DatumGetTimestampTz(expires_at) <= now)
				continue;
		}
		h->held += DatumGetInt32(slot_getattr(slot, Anum_claims_qty, &isnull));
		id = DatumGetInt64(slot_getattr(slot, Anum_claims_id, &isnull));
		if (h->first_claim == 0 || id < h->first_claim)
		{
			h->first_claim = id;
			h->first_is_hold = coupon_catalog.lifecycle &&
				!slot_attisnull(slot, Anum_claims_expires_at);
		}
	}
}

/*
 * What each customer holds in the pool now: the sum of qty of its
 * unreleased claims, and the lowest claim id among them (0 if none) and
 * whether that claim is a live hold, in holdings[i] for customers[i]
 * (distinct, in strcmp() order; none at all is no work).
 *
 * A bulk claim's customers are often close together in the index (new
 * customers with sequential names, campaign ranges): then one scan from
 * the lowest to the highest of them, passing few others' entries, costs
 * one descent of the index instead of one per customer.  If it passes too
 * many (customers spread over a large ledger), each customer is looked up
 * on its own, at the cost of a probe per customer, as for a single claim.
 *
 * Unless exact, entries on all-visible heap pages are counted from the
 * index alone (holdings_in_range): a customer's held may then be an upper
 * bound, and its first_claim unknown (bound set).  That spares a heap
 * access per earlier claim, and an upper bound is enough to grant; a
 * caller that would refuse on a bound asks again, exactly.
 */
void
coupon_ledger_holdings_many(const char *pool, char *const *customers, int n,
							CouponHoldings *holdings, bool exact)
{
	UnreleasedScan hs;
	Relation	claims;
	ScanKeyData keys[3];
	Oid			collation;
	const char *lo;
	const char *hi;

	if (n == 0)
		return;
	lo = hi = customers[0];
	holder_scan_begin(&hs, SnapshotSelf, 3);
	claims = hs.claims;

	/* The index is on (pool, customer): index columns 1 and 2. */
	collation = TupleDescAttr(RelationGetDescr(claims), Anum_claims_customer - 1)->attcollation;
	coupon_catalog_text_key(&keys[0], claims, Anum_claims_pool, 1,
							BTEqualStrategyNumber, F_TEXTEQ, pool);
	coupon_catalog_text_key(&keys[1], claims, Anum_claims_customer, 2,
							BTGreaterEqualStrategyNumber, F_TEXT_GE, NULL);
	coupon_catalog_text_key(&keys[2], claims, Anum_claims_customer, 2,
							BTLessEqualStrategyNumber, F_TEXT_LE, NULL);

	for (int i = 1; i < n; i++)
	{
		if (varstr_cmp(customers[i], strlen(customers[i]), lo, strlen(lo),
					   collation) < 0)
			lo = customers[i];
		if (varstr_cmp(customers[i], strlen(customers[i]), hi, strlen(hi),
					   collation) > 0)
			hi = customers[i];
	}
	memset(holdings, 0, sizeof(CouponHoldings) * n);
	if (!holdings_in_range(&hs, keys, exact, lo, hi, customers, n,
						   holdings, 4 * n))
	{
		memset(holdings, 0, sizeof(CouponHoldings) * n);
		for (int i = 0; i < n; i++)
			(void) holdings_in_range(&hs, keys, exact, customers[i],
									 customers[i], &customers[i], 1,
									 &holdings[i], PG_INT32_MAX);
	}
	unreleased_scan_end(&hs);
}

/*
 * What the pool has claimed as the committed ledger says (the snapshot of
 * coupon_committed_snapshot): the sum of qty of its unreleased claims,
 * holds whose time is up included until they are returned.  What loading
 * a pool counts.
 *
 * An index-only scan of the index of live claims, (pool, qty) WHERE
 * released_at IS NULL (1.5; without it, the holders' index), read here rather
 * than planned and run: an entry on an all-visible heap page is counted
 * from its qty alone (visible_entry_qty), others from the version the
 * snapshot sees.  Its keys are deduplicated, so a pool of a million live
 * claims of one coupon each is one key with a list of a million rows, a
 * few megabytes to read (README "The first claim after a restart").
 */
int64
coupon_ledger_claimed(const char *pool)
{
	UnreleasedScan hs;
	ScanKeyData key;
	Snapshot	snapshot = coupon_committed_snapshot();
	int64		claimed = 0;

	unreleased_scan_begin(&hs, true, snapshot, 1);
	coupon_catalog_text_key(&key, hs.claims, Anum_claims_pool, 1,
							BTEqualStrategyNumber, F_TEXTEQ, pool);
	index_rescan(hs.scan, &key, 1, NULL, 0);
	while (index_getnext_tid(hs.scan, ForwardScanDirection) != NULL)
	{
		int32		qty;
		bool		isnull;

		CHECK_FOR_INTERRUPTS();
		qty = visible_entry_qty(&hs);
		if (qty >= 0)
		{
			claimed += qty;
			continue;
		}
		/* An MVCC snapshot sees at most one version of the row. */
		if (!index_fetch_heap(hs.scan, hs.slot))
			continue;
		(void) slot_getattr(hs.slot, Anum_claims_released_at, &isnull);
		if (isnull)
			claimed += DatumGetInt32(slot_getattr(hs.slot, Anum_claims_qty,
												  &isnull));
	}
	unreleased_scan_end(&hs);
	UnregisterSnapshot(snapshot);
	return claimed;
}

/* A timestamptz column of a ledger row; 0 if it is null. */
static TimestampTz
timestamp_column(HeapTuple tuple, AttrNumber attnum, TupleDesc desc)
{
	bool		isnull;
	Datum		value = heap_getattr(tuple, attnum, desc, &isnull);

	return isnull ? 0 : DatumGetTimestampTz(value);
}

/*
 * The claims made with this request id, released or not: with cart_claim
 * 0, the single claim of pool; else the cart_claim-th claim of cart
 * request_id, in any pool.  Fills in at most max rows; returns how many it
 * filled in.
 *
 * The index is on (request_id, cart_claim, pool), the nulls of cart_claim
 * (single claims) not distinct: a single claim's request id is unique in
 * its pool, a cart's claim's in its cart, and neither can be the other.
 * (On a ledger of 1.1 or 1.2, on (request_id, pool), with the request ids
 * of a cart's claims made by ledger_request_id().)
 */
static int
find_requests(const char *pool, const char *request_id, int32 cart_claim,
			  CouponClaimRow *rows, int max)
{
	Relation	claims;
	TupleDesc	desc;
	SysScanDesc scan;
	ScanKeyData keys[3];
	int			nkeys = 0;
	HeapTuple	tuple;
	int			n = 0;

	claims = table_open(coupon_catalog.claims_relid, AccessShareLock);
	/* An update that committed meanwhile may have dropped the index. */
	coupon_catalog_check_ledger(claims);
	desc = RelationGetDescr(claims);
	/* The keys in the order of the index's columns. */
	coupon_catalog_text_key(&keys[nkeys++], claims, Anum_claims_request_id,
							Anum_claims_request_id, BTEqualStrategyNumber,
							F_TEXTEQ, ledger_request_id(request_id, cart_claim));
	if (coupon_catalog.cart_claims && cart_claim != 0)
		ScanKeyInit(&keys[nkeys++], Anum_claims_cart_claim,
					BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(cart_claim));
	else if (coupon_catalog.cart_claims)
		ScanKeyEntryInitialize(&keys[nkeys++], SK_ISNULL | SK_SEARCHNULL,
							   Anum_claims_cart_claim, InvalidStrategy,
							   InvalidOid, InvalidOid, InvalidOid, (Datum) 0);
	if (cart_claim == 0)
		coupon_catalog_text_key(&keys[nkeys++], claims, Anum_claims_pool,
								Anum_claims_pool, BTEqualStrategyNumber,
								F_TEXTEQ, pool);
	scan = systable_beginscan(claims, coupon_catalog.request_index, true,
							  SnapshotSelf, nkeys, keys);
	while (n < max && HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		isnull;
		int64		id = DatumGetInt64(heap_getattr(tuple, Anum_claims_id, desc,
													&isnull));

		/* SnapshotSelf may show two versions of a row changed meanwhile. */
		if (n > 0 && rows[n - 1].id == id)
			continue;
		rows[n].id = id;
		rows[n].pool = TextDatumGetCString(heap_getattr(tuple, Anum_claims_pool,
														desc, &isnull));
		rows[n].customer = TextDatumGetCString(heap_getattr(tuple, Anum_claims_customer,
															desc, &isnull));
		rows[n].qty = DatumGetInt32(heap_getattr(tuple, Anum_claims_qty, desc,
												 &isnull));
		rows[n].released_at = timestamp_column(tuple, Anum_claims_released_at,
											   desc);
		rows[n].expires_at = timestamp_column(tuple, Anum_claims_expires_at,
											  desc);
		n++;
	}
	systable_endscan(scan);
	table_close(claims, NoLock);
	return n;
}

/*
 * The single claim made with this request id for the pool, released or
 * not; false if there is none.
 */
bool
coupon_ledger_find_request(const char *pool, const char *request_id,
						   CouponClaimRow *row)
{
	return find_requests(pool, request_id, 0, row, 1) == 1;
}

/*
 * The cart_claim-th claim (from 1) of the cart with this request id, in
 * whatever pool, at most max of them (there is one, unless the ledger was
 * changed by hand); returns how many it found.
 */
int
coupon_ledger_find_cart_claim(const char *request_id, int32 cart_claim,
							  CouponClaimRow *rows, int max)
{
	Assert(cart_claim > 0);
	return find_requests(NULL, request_id, cart_claim, rows, max);
}
