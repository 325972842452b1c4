/*-------------------------------------------------------------------------
 *
 * ledger.c
 *		The durable truth: the pool table and the claim ledger.
 *
 * Every SQL statement the extension runs is listed once below, prepared on
 * first use and kept (SPI_keepplan).  The texts qualify every table,
 * function and operator with its schema, so neither the caller's
 * search_path nor objects of the same name elsewhere can change what they
 * do.  They, and the two direct steps below, run as the owner of the ledger,
 * the way referential-integrity triggers do
 * (src/backend/utils/adt/ri_triggers.c): an application role needs EXECUTE
 * on the functions, never access to the tables.
 *
 * Each statement says which data it sees: the transaction's snapshot, the
 * latest committed data (so that a REPEATABLE READ or SERIALIZABLE caller
 * acts on a pool or a claim as it is now), or the committed data only,
 * without the transaction's own uncommitted changes (to load a pool).
 *
 * The two steps of every claim do not go through SPI, whose planning and
 * executor start-up would cost more than the work itself:
 *
 *	- the per-customer check scans the index coupon_claims_holder directly,
 *	  with SnapshotSelf, which sees every committed row and the
 *	  transaction's own, as of now.  The caller holds the customer's lock,
 *	  so no other transaction can be adding a claim for the customer; a
 *	  release in progress elsewhere still counts as held until it commits,
 *	  which errs on the safe side;
 *	- the ledger row is inserted the way logical replication applies a row
 *	  (ExecSimpleRelationInsert): constraints checked, indexes and triggers
 *	  maintained, the id drawn from the ledger's sequence and claimed_at set
 *	  to the transaction's start, as the column defaults would.
 *
 * Loading.  A pool is loaded into shared memory on first use
 * (coupon_pool_slot), from its committed row and committed ledger:
 * available = capacity - claimed.  This is exact because every transaction
 * that changes a pool's ledger or capacity (claim, release, resize) loads
 * the pool first, so while a pool has no slot nothing of it is in flight
 * anywhere; a drop needs no slot, as it locks the row against loaders until
 * it ends.  Loading first locks the pool row FOR KEY SHARE, so that a
 * concurrent resize or drop, which lock it FOR UPDATE, is either finished
 * (and counted) or waits until the loader's transaction ends.  It then
 * counts with a snapshot of the committed data only.  If the row it locked
 * is not the committed one, the pool was created (or dropped and created
 * again) by the loading transaction itself: nothing may be loaded from
 * data that could still roll back, so the caller is told.
 *
 * Note about locking: the cache of catalog OIDs and plans is backend-local;
 * a relcache callback discards it when the extension's tables change.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "coupon.h"

/* Which data a statement sees. */
typedef enum CouponSees
{
	SEES_LATEST,				/* the latest committed data, and our own */
	SEES_COMMITTED				/* the latest committed data only */
} CouponSees;

typedef struct CouponStatementDef
{
	const char *sql;			/* %1$s stands for the extension's schema */
	int			nargs;
	Oid			argtypes[4];
	CouponSees	sees;
	int			expect;			/* SPI_OK_* on success */
} CouponStatementDef;

#define EQ " OPERATOR(pg_catalog.=) "

/* Columns of coupon_claims, in the order of the install script. */
#define Anum_coupon_claims_id			1
#define Anum_coupon_claims_pool			2
#define Anum_coupon_claims_customer		3
#define Anum_coupon_claims_qty			4
#define Anum_coupon_claims_claimed_at	5
#define Anum_coupon_claims_released_at	6
#define Natts_coupon_claims				6

static const CouponStatementDef statements[COUPON_SQL_COUNT] = {
	[COUPON_SQL_LOAD_LOCK] = {
		"SELECT xmin, tableoid FROM %1$s.coupon_pool"
		" WHERE name" EQ "$1 FOR KEY SHARE",
		1, {TEXTOID}, SEES_LATEST, SPI_OK_SELECT
	},
	[COUPON_SQL_LOAD_COUNT] = {
		"SELECT p.xmin, p.capacity, p.per_customer,"
		" COALESCE((SELECT pg_catalog.sum(c.qty) FROM %1$s.coupon_claims c"
		"           WHERE c.pool" EQ "p.name AND c.released_at IS NULL), 0)"
		" FROM %1$s.coupon_pool p WHERE p.name" EQ "$1",
		1, {TEXTOID}, SEES_COMMITTED, SPI_OK_SELECT
	},
	[COUPON_SQL_LOCK_POOL] = {
		"SELECT capacity, per_customer FROM %1$s.coupon_pool"
		" WHERE name" EQ "$1 FOR UPDATE",
		1, {TEXTOID}, SEES_LATEST, SPI_OK_SELECT
	},
	[COUPON_SQL_LOCK_POOL_TABLE] = {
		"LOCK TABLE %1$s.coupon_pool IN SHARE ROW EXCLUSIVE MODE",
		0, {0}, SEES_LATEST, SPI_OK_UTILITY
	},
	[COUPON_SQL_COUNT_POOLS] = {
		"SELECT pg_catalog.count(*) FROM %1$s.coupon_pool",
		0, {0}, SEES_LATEST, SPI_OK_SELECT
	},
	[COUPON_SQL_GET_POOL] = {
		"SELECT capacity, per_customer FROM %1$s.coupon_pool WHERE name" EQ "$1",
		1, {TEXTOID}, SEES_LATEST, SPI_OK_SELECT
	},
	[COUPON_SQL_INSERT_POOL] = {
		"INSERT INTO %1$s.coupon_pool (name, capacity, per_customer)"
		" VALUES ($1, $2, $3)",
		3, {TEXTOID, INT8OID, INT4OID}, SEES_LATEST, SPI_OK_INSERT
	},
	[COUPON_SQL_RESIZE_POOL] = {
		"UPDATE %1$s.coupon_pool SET capacity = $2 WHERE name" EQ "$1",
		2, {TEXTOID, INT8OID}, SEES_LATEST, SPI_OK_UPDATE
	},
	[COUPON_SQL_DELETE_POOL] = {
		"WITH claims AS (DELETE FROM %1$s.coupon_claims WHERE pool" EQ "$1)"
		" DELETE FROM %1$s.coupon_pool WHERE name" EQ "$1",
		1, {TEXTOID}, SEES_LATEST, SPI_OK_DELETE
	},
	[COUPON_SQL_FIND_CLAIM] = {
		"SELECT pool, released_at IS NOT NULL FROM %1$s.coupon_claims"
		" WHERE id" EQ "$1",
		1, {INT8OID}, SEES_LATEST, SPI_OK_SELECT
	},
	[COUPON_SQL_RELEASE_CLAIM] = {
		"UPDATE %1$s.coupon_claims SET released_at = pg_catalog.now()"
		" WHERE id" EQ "$1 AND released_at IS NULL RETURNING qty",
		1, {INT8OID}, SEES_LATEST, SPI_OK_UPDATE_RETURNING
	},
};

/* What this backend knows about the extension's catalog entries. */
static struct
{
	bool		valid;			/* cleared by relcache invalidation; the
								 * OIDs stay usable until the next call
								 * binds again */
	Oid			schema;
	Oid			pool_relid;
	Oid			claims_relid;
	Oid			holder_indexid; /* coupon_claims_holder */
	Oid			id_seqid;		/* coupon_claims_id_seq */
	Oid			owner;			/* runs the statements */
	SPIPlanPtr	plans[COUPON_SQL_COUNT];	/* for this schema */
	Oid			plans_schema;
} catalog;

static void
catalog_invalidate(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == catalog.pool_relid ||
		relid == catalog.claims_relid)
		catalog.valid = false;
}

/* Called from _PG_init. */
void
coupon_ledger_init(void)
{
	CacheRegisterRelcacheCallback(catalog_invalidate, (Datum) 0);
}

/* A relation of the extension's schema, which must be of the kind given. */
static Oid
catalog_relation(const char *name, char relkind)
{
	Oid			relid = get_relname_relid(name, catalog.schema);

	if (!OidIsValid(relid) || get_rel_relkind(relid) != relkind)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s\" of extension coupon not found in schema \"%s\"",
						name, get_namespace_name(catalog.schema)),
				 errhint("Recreate the extension with DROP EXTENSION coupon and CREATE EXTENSION coupon.")));
	return relid;
}

/*
 * Find the extension's tables, in the schema of the SQL function being
 * called (the extension is not relocatable, so that is its schema).
 */
void
coupon_ledger_bind(FunctionCallInfo fcinfo)
{
	HeapTuple	tuple;
	Oid			indexed;

	/*
	 * A transaction that has not locked the tables yet may not have heard
	 * of their being dropped and made anew; listen first.
	 */
	AcceptInvalidationMessages();
	if (catalog.valid)
		return;

	catalog.schema = get_func_namespace(fcinfo->flinfo->fn_oid);
	catalog.pool_relid = catalog_relation("coupon_pool", RELKIND_RELATION);
	catalog.claims_relid = catalog_relation("coupon_claims", RELKIND_RELATION);
	catalog.holder_indexid = catalog_relation("coupon_claims_holder",
											  RELKIND_INDEX);
	catalog.id_seqid = catalog_relation("coupon_claims_id_seq",
										RELKIND_SEQUENCE);

	tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(catalog.holder_indexid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for index %u", catalog.holder_indexid);
	indexed = ((Form_pg_index) GETSTRUCT(tuple))->indrelid;
	ReleaseSysCache(tuple);
	if (indexed != catalog.claims_relid)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("index \"coupon_claims_holder\" does not belong to table \"coupon_claims\""),
				 errhint("Recreate the extension with DROP EXTENSION coupon and CREATE EXTENSION coupon.")));

	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(catalog.claims_relid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", catalog.claims_relid);
	catalog.owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);

	if (catalog.plans_schema != catalog.schema)
	{
		for (int i = 0; i < COUPON_SQL_COUNT; i++)
		{
			if (catalog.plans[i])
				SPI_freeplan(catalog.plans[i]);
			catalog.plans[i] = NULL;
		}
		catalog.plans_schema = catalog.schema;
	}
	catalog.valid = true;
}

/* A pool's key in shared memory: this database, this pool table, the name. */
void
coupon_make_key(CouponPoolKey *key, const char *pool)
{
	Assert(OidIsValid(catalog.pool_relid));
	memset(key, 0, sizeof(CouponPoolKey));
	key->dboid = MyDatabaseId;
	key->pool_relid = catalog.pool_relid;
	strlcpy(key->name, pool, sizeof(key->name));
}

Oid
coupon_ledger_pool_relid(void)
{
	return catalog.pool_relid;
}

/*
 * Act as the owner of the ledger until owner_end(), restricted as a
 * SECURITY DEFINER function is.  An error on the way restores the caller:
 * transaction and subtransaction abort reset the user id.
 */
static void
owner_begin(Oid *save_userid, int *save_sec_context)
{
	GetUserIdAndSecContext(save_userid, save_sec_context);
	SetUserIdAndSecContext(catalog.owner,
						   *save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_NOFORCE_RLS);
}

static void
owner_end(Oid save_userid, int save_sec_context)
{
	SetUserIdAndSecContext(save_userid, save_sec_context);
}

void
coupon_sql_begin(void)
{
	int			rc = SPI_connect();

	if (rc != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
}

void
coupon_sql_end(void)
{
	int			rc = SPI_finish();

	if (rc != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed: %s", SPI_result_code_string(rc));
}

static SPIPlanPtr
statement_plan(CouponStatement id)
{
	const CouponStatementDef *def = &statements[id];

	if (catalog.plans[id] == NULL)
	{
		char	   *sql;
		SPIPlanPtr	plan;

		sql = psprintf(def->sql,
					   quote_identifier(get_namespace_name(catalog.schema)));
		plan = SPI_prepare(sql, def->nargs, (Oid *) def->argtypes);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s",
				 sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed for \"%s\"", sql);
		catalog.plans[id] = plan;
	}
	return catalog.plans[id];
}

/*
 * Run one statement as the owner of the ledger; returns the number of rows
 * it returned or changed, which are in SPI_tuptable.  Between
 * coupon_sql_begin() and coupon_sql_end().
 */
uint64
coupon_sql_run(CouponStatement id, Datum *values)
{
	const CouponStatementDef *def = &statements[id];
	SPIPlanPtr	plan;
	Snapshot	snapshot;
	Oid			save_userid;
	int			save_sec_context;
	int			rc;

	Assert(OidIsValid(catalog.claims_relid));
	plan = statement_plan(id);

	owner_begin(&save_userid, &save_sec_context);
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	if (def->sees == SEES_COMMITTED)
	{
		/*
		 * Our own changes are visible from the command that made them on;
		 * seen from the first command, there are none.  Read-only, so SPI
		 * uses the snapshot as it is.
		 */
		snapshot->curcid = FirstCommandId;
		rc = SPI_execute_snapshot(plan, values, NULL, snapshot,
								  InvalidSnapshot, true, false, 0);
	}
	else
		rc = SPI_execute_snapshot(plan, values, NULL, snapshot,
								  InvalidSnapshot, false, true, 0);
	UnregisterSnapshot(snapshot);
	owner_end(save_userid, save_sec_context);

	if (rc != def->expect)
		elog(ERROR, "SPI_execute_snapshot failed executing \"%s\": %s",
			 def->sql, SPI_result_code_string(rc));
	return SPI_processed;
}

/* Column col (from 1) of the first result row, which must not be NULL. */
Datum
coupon_sql_value(int col)
{
	bool		isnull;
	Datum		value;

	value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col,
						  &isnull);
	if (isnull)
		elog(ERROR, "unexpected NULL in column %d of a coupon query", col);
	return value;
}

/*
 * What the customer holds in the pool now: the sum of qty of its unreleased
 * claims, and the lowest claim id among them (0 if none).
 */
int64
coupon_ledger_holdings(const char *pool, const char *customer,
					   int64 *first_claim)
{
	Relation	claims;
	SysScanDesc scan;
	ScanKeyData keys[2];
	HeapTuple	tuple;
	int64		held = 0;
	Oid			save_userid;
	int			save_sec_context;

	Assert(OidIsValid(catalog.claims_relid));
	owner_begin(&save_userid, &save_sec_context);
	claims = table_open(catalog.claims_relid, RowExclusiveLock);
	ScanKeyEntryInitialize(&keys[0], 0, Anum_coupon_claims_pool,
						   BTEqualStrategyNumber, InvalidOid,
						   TupleDescAttr(RelationGetDescr(claims),
										 Anum_coupon_claims_pool - 1)->attcollation,
						   F_TEXTEQ, CStringGetTextDatum(pool));
	ScanKeyEntryInitialize(&keys[1], 0, Anum_coupon_claims_customer,
						   BTEqualStrategyNumber, InvalidOid,
						   TupleDescAttr(RelationGetDescr(claims),
										 Anum_coupon_claims_customer - 1)->attcollation,
						   F_TEXTEQ, CStringGetTextDatum(customer));
	scan = systable_beginscan(claims, catalog.holder_indexid, true,
							  SnapshotSelf, 2, keys);
	*first_claim = 0;
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		TupleDesc	desc = RelationGetDescr(claims);
		bool		isnull;
		int64		id;

		/* A version released since the index entry was made. */
		(void) heap_getattr(tuple, Anum_coupon_claims_released_at, desc,
							&isnull);
		if (!isnull)
			continue;
		held += DatumGetInt32(heap_getattr(tuple, Anum_coupon_claims_qty,
										   desc, &isnull));
		id = DatumGetInt64(heap_getattr(tuple, Anum_coupon_claims_id, desc,
										&isnull));
		if (*first_claim == 0 || id < *first_claim)
			*first_claim = id;
	}
	systable_endscan(scan);
	table_close(claims, NoLock);
	owner_end(save_userid, save_sec_context);
	return held;
}

/* Write a ledger row; returns its claim id. */
int64
coupon_ledger_insert_claim(const char *pool, const char *customer, int32 qty)
{
	Relation	claims;
	RangeTblEntry *rte;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	int64		claim_id;
	Oid			save_userid;
	int			save_sec_context;

	Assert(OidIsValid(catalog.claims_relid));
	owner_begin(&save_userid, &save_sec_context);
	claims = table_open(catalog.claims_relid, RowExclusiveLock);
	if (RelationGetDescr(claims)->natts != Natts_coupon_claims)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"coupon_claims\" has been altered"),
				 errdetail("It has %d columns; the extension writes %d.",
						   RelationGetDescr(claims)->natts, Natts_coupon_claims),
				 errhint("Recreate the extension with DROP EXTENSION coupon and CREATE EXTENSION coupon.")));

	estate = CreateExecutorState();
	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = catalog.claims_relid;
	rte->relkind = RELKIND_RELATION;
	rte->rellockmode = RowExclusiveLock;
	coupon_exec_init_range_table(estate, rte);
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, claims, 1, NULL, 0);
	estate->es_output_cid = GetCurrentCommandId(true);
	ExecOpenIndices(rri, false);

	claim_id = nextval_internal(catalog.id_seqid, false);
	slot = ExecInitExtraTupleSlot(estate, RelationGetDescr(claims),
								  &TTSOpsVirtual);
	ExecClearTuple(slot);
	slot->tts_values[Anum_coupon_claims_id - 1] = Int64GetDatum(claim_id);
	slot->tts_values[Anum_coupon_claims_pool - 1] = CStringGetTextDatum(pool);
	slot->tts_values[Anum_coupon_claims_customer - 1] =
		CStringGetTextDatum(customer);
	slot->tts_values[Anum_coupon_claims_qty - 1] = Int32GetDatum(qty);
	slot->tts_values[Anum_coupon_claims_claimed_at - 1] =
		TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	memset(slot->tts_isnull, false, Natts_coupon_claims * sizeof(bool));
	slot->tts_isnull[Anum_coupon_claims_released_at - 1] = true;
	ExecStoreVirtualTuple(slot);

	/* AFTER triggers, should a DBA add one, fire at the end of the insert. */
	AfterTriggerBeginQuery();
	ExecSimpleRelationInsert(rri, estate, slot);
	AfterTriggerEndQuery(estate);

	ExecCloseIndices(rri);
	ExecResetTupleTable(estate->es_tupleTable, false);
	FreeExecutorState(estate);
	table_close(claims, NoLock);
	owner_end(save_userid, save_sec_context);
	return claim_id;
}

/*
 * Find the pool's slot in shared memory, loading it from the committed
 * ledger if it has none yet (see the header comment).  Fails if the pool
 * does not exist; returns false if it exists only in this transaction, which
 * created it: then it has no slot and may not get one before it commits.
 */
bool
coupon_pool_slot(const CouponPoolKey *key, CouponSlotRef *ref)
{
	CouponPoolRow row;
	Datum		args[1];
	TransactionId locked_xmin;
	bool		found;
	bool		dropped_here;
	bool		committed;

	/*
	 * A slot stands for the pool as it was loaded.  If this transaction is
	 * dropping that pool, a pool of the same name it sees now is one it
	 * created since: see whether there is one.
	 */
	found = coupon_slot_find(key, ref);
	dropped_here = found && coupon_escrow_dropping(*ref);
	if (found && !dropped_here)
		return true;

	coupon_sql_begin();
	args[0] = CStringGetTextDatum(key->name);
	if (coupon_sql_run(COUPON_SQL_LOAD_LOCK, args) == 0)
		coupon_pool_missing(key->name);
	locked_xmin = DatumGetTransactionId(coupon_sql_value(1));
	if (DatumGetObjectId(coupon_sql_value(2)) != key->pool_relid)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension coupon was dropped and created again during the call"),
				 errhint("Retry the call.")));
	committed = !dropped_here &&
		coupon_sql_run(COUPON_SQL_LOAD_COUNT, args) == 1 &&
		TransactionIdEquals(DatumGetTransactionId(coupon_sql_value(1)),
							locked_xmin);
	if (committed)
	{
		row.capacity = DatumGetInt64(coupon_sql_value(2));
		row.per_customer = DatumGetInt32(coupon_sql_value(3));
		row.claimed = DatumGetInt64(coupon_sql_value(4));
	}
	coupon_sql_end();

	if (!committed)
		return false;
	if (row.claimed > row.capacity)
		ereport(WARNING,
				(errmsg("pool \"%s\" has more coupons claimed than its capacity",
						key->name),
				 errdetail("%lld are claimed and the capacity is %lld; none is available.",
						   (long long) row.claimed, (long long) row.capacity),
				 errhint("The ledger or the pool table was changed other than through the extension's functions.")));
	*ref = coupon_slot_install(key, &row);
	return true;
}
