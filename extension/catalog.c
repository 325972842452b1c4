/*-------------------------------------------------------------------------
 *
 * catalog.c
 *		The extension's tables, and the statements that read them.
 *
 * Floor: above settings.c, whose coupon.function_schema it checks.
 *
 * The extension keeps two tables, coupon_pool and the ledger
 * coupon_claims, in the schema it was created in (and, from 1.4 and 1.5,
 * the tables of a cluster, coupon_cluster_member and coupon_spread, which
 * route.c reads).  This file finds them
 * (and their indexes and the claim id sequence) by name in that schema,
 * keeps their OIDs until a relcache invalidation says they changed, and
 * tells the ledger's layout: version 1.0 has six columns, 1.1 adds
 * expires_at and request_id (the lifecycle of holds), 1.3 cart_claim (a
 * cart's claims apart from the request ids of single claims, ledger.c).
 * A database still on 1.0 keeps working with the claims it had; the
 * functions of 1.1 ask for ALTER EXTENSION coupon UPDATE.  A database on
 * 1.1 or 1.2 works as 1.2 did until it is updated.
 *
 * The statements below are the extension's reads (some lock the rows they
 * return).  Each is listed once, prepared on first use and kept
 * (SPI_keepplan).  They run as the owner of the ledger, so that an
 * application role needs EXECUTE on the functions and no privilege on the
 * tables, the way referential-integrity checks run
 * (src/backend/utils/adt/ri_triggers.c), and inside a security-restricted
 * operation.  The texts qualify every table, function and operator with
 * its schema, so neither the caller's search_path nor objects of the same
 * name elsewhere can change what they do; and nothing a DBA may attach to
 * the tables (triggers, constraints) runs on a read.  Writes are not done
 * here: ledger.c does them as the caller.
 *
 * A text names the schema, and a kept plan is analyzed again from it after
 * any invalidation.  Once the schema is renamed, whoever may create a
 * schema could give the old name to views of their own and have them read
 * as the owner.  So the binding remembers the name the texts use, and
 * prepares them anew when the schema's name has changed.  A rename
 * committed while a call runs reaches the call at its next lock of a
 * table, perhaps one a statement's plan takes before it analyzes the text
 * again: with the old name, it would fail (42P01) or read whatever has that
 * name now.  So before each statement the call takes in the invalidations
 * and checks the name again if a schema changed (statement_check_schema).
 * A rename that commits at the very moment a statement looks its names up
 * (which no lock prevents, ALTER SCHEMA RENAME taking none) still makes
 * the statement find nothing: that error is raised as 40001, retry the
 * call (statement_failed).  And a statement of ours that would read
 * anything but the extension's tables is refused with 40001
 * (coupon_catalog_check_analyzed).
 *
 * Each statement says which data it sees: the latest committed data and
 * the transaction's own changes (so that a REPEATABLE READ or SERIALIZABLE
 * caller acts on a pool or a claim as it is now), or the committed data
 * only, without the transaction's own changes (to load a pool).
 *
 * Note about locking: the cache of OIDs and plans is backend-local; a
 * relcache callback discards it when the extension's tables change, a
 * syscache callback when a schema does.  ALTER SCHEMA RENAME takes no lock
 * that a call could hold against it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "parser/parse_node.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/relcache.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "catalog.h"
#include "compat.h"
#include "settings.h"

/* The columns of the ledger. */
typedef enum LedgerLayout
{
	LEDGER_1_0,					/* six, up to released_at */
	LEDGER_1_1,					/* and expires_at, request_id (1.1, 1.2) */
	LEDGER_1_3,					/* and cart_claim */
	LEDGER_UNKNOWN
} LedgerLayout;

/* Which data a statement sees. */
typedef enum CouponSees
{
	SEES_LATEST,				/* the latest committed data, and our own */
	SEES_COMMITTED				/* the latest committed data only */
} CouponSees;

typedef struct CouponStatementDef
{
	const char *sql;			/* %1$s stands for the extension's schema */
	const char *sql_1_0;		/* the same for a 1.0 ledger, if different */
	int			nargs;
	Oid			argtypes[3];
	CouponSees	sees;
	int			expect;			/* SPI_OK_* on success */
	bool		custom_plan;	/* planned for its arguments every time */
} CouponStatementDef;

#define EQ " OPERATOR(pg_catalog.=) "
#define LE " OPERATOR(pg_catalog.<=) "

#define LIVE_HOLD "c.released_at IS NULL AND c.expires_at IS NOT NULL"

static const CouponStatementDef statements[COUPON_SQL_COUNT] = {
	/*
	 * capacity, per_customer, next expiry of the committed pool (what it
	 * has claimed is counted by ledger.c, coupon_ledger_claimed).  Planned
	 * for the pool at hand each time (custom_plan): a generic plan cannot
	 * tell a pool of a few holds from one that fills the ledger.
	 */
	[COUPON_SQL_LOAD] = {
		"SELECT p.capacity, p.per_customer,"
		" (SELECT pg_catalog.min(c.expires_at) FROM %1$s.coupon_claims c"
		"   WHERE c.pool" EQ "$1 AND " LIVE_HOLD ")"
		" FROM %1$s.coupon_pool p WHERE p.name" EQ "$1",
		"SELECT p.capacity, p.per_customer, NULL::pg_catalog.timestamptz"
		" FROM %1$s.coupon_pool p WHERE p.name" EQ "$1",
		1, {TEXTOID}, SEES_COMMITTED, SPI_OK_SELECT, true
	},
	/*
	 * The pool row's xmin, the row locked FOR KEY SHARE: it waits for a drop
	 * of the pool (FOR UPDATE) to end, and a drop waits for it (load.c).
	 */
	[COUPON_SQL_POOL_VISIBLE] = {
		"SELECT xmin FROM %1$s.coupon_pool WHERE name" EQ "$1 FOR KEY SHARE",
		NULL, 1, {TEXTOID}, SEES_LATEST, SPI_OK_SELECT
	},
	[COUPON_SQL_LOCK_POOL] = {
		"SELECT ctid, capacity, per_customer FROM %1$s.coupon_pool"
		" WHERE name" EQ "$1 FOR UPDATE",
		NULL, 1, {TEXTOID}, SEES_LATEST, SPI_OK_SELECT
	},
	/* ctid, pool, qty, released_at, expires_at, customer */
	[COUPON_SQL_LOCK_CLAIM] = {
		"SELECT c.ctid, c.pool, c.qty, c.released_at, c.expires_at, c.customer"
		" FROM %1$s.coupon_claims c WHERE c.id" EQ "$1 FOR UPDATE",
		"SELECT c.ctid, c.pool, c.qty, c.released_at, NULL::pg_catalog.timestamptz,"
		" c.customer FROM %1$s.coupon_claims c WHERE c.id" EQ "$1 FOR UPDATE",
		1, {INT8OID}, SEES_LATEST, SPI_OK_SELECT
	},
	[COUPON_SQL_LOCK_POOL_CLAIMS] = {
		"SELECT ctid FROM %1$s.coupon_claims WHERE pool" EQ "$1"
		" LIMIT 1000 FOR UPDATE",
		NULL, 1, {TEXTOID}, SEES_LATEST, SPI_OK_SELECT
	},
	/* pools with overdue holds */
	[COUPON_SQL_OVERDUE_POOLS] = {
		"SELECT DISTINCT c.pool FROM %1$s.coupon_claims c"
		" WHERE " LIVE_HOLD " AND c.expires_at" LE "$1 LIMIT $2",
		NULL, 2, {TIMESTAMPTZOID, INT8OID}, SEES_LATEST, SPI_OK_SELECT
	},
	/* ctid, pool, qty, expires_at of overdue holds of a pool, oldest first */
	[COUPON_SQL_LOCK_OVERDUE_OF_POOL] = {
		"SELECT c.ctid, c.pool, c.qty, c.expires_at FROM %1$s.coupon_claims c"
		" WHERE " LIVE_HOLD " AND c.expires_at" LE "$1 AND c.pool" EQ "$3"
		" ORDER BY c.expires_at LIMIT $2 FOR UPDATE SKIP LOCKED",
		NULL, 3, {TIMESTAMPTZOID, INT8OID, TEXTOID}, SEES_LATEST, SPI_OK_SELECT
	},
	[COUPON_SQL_ANY_OVERDUE_OF_POOL] = {
		"SELECT 1 FROM %1$s.coupon_claims c"
		" WHERE " LIVE_HOLD " AND c.expires_at" LE "$1 AND c.pool" EQ "$2"
		" LIMIT 1",
		NULL, 2, {TIMESTAMPTZOID, TEXTOID}, SEES_LATEST, SPI_OK_SELECT
	},
	[COUPON_SQL_NEXT_EXPIRY] = {
		"SELECT pg_catalog.min(c.expires_at) FROM %1$s.coupon_claims c"
		" WHERE " LIVE_HOLD,
		NULL, 0, {0}, SEES_LATEST, SPI_OK_SELECT
	},
	/* overdue holds included: those locked by others may come back */
	[COUPON_SQL_NEXT_EXPIRY_OF_POOL] = {
		"SELECT pg_catalog.min(c.expires_at) FROM %1$s.coupon_claims c"
		" WHERE " LIVE_HOLD " AND c.pool" EQ "$1",
		NULL, 1, {TEXTOID}, SEES_LATEST, SPI_OK_SELECT
	},

	/*
	 * This node's partition and partitions; no row if the node is in no
	 * cluster (route.c).  A table of 1.4.
	 */
	[COUPON_SQL_MEMBER] = {
		"SELECT m.partition, m.partitions FROM %1$s.coupon_cluster_member m",
		NULL, 0, {0}, SEES_LATEST, SPI_OK_SELECT
	},

	/*
	 * spread, member, capacity and per_customer of the pool's share here;
	 * no row if the pool is no share here (a share whose pool was created
	 * again counts for nothing): where a customer of the pool is served
	 * (route.c).  A table of 1.5.
	 */
	[COUPON_SQL_SHARE] = {
		"SELECT s.spread, s.member, p.capacity, p.per_customer"
		" FROM %1$s.coupon_spread s JOIN %1$s.coupon_pool p"
		"   ON p.name" EQ "s.pool AND p.created_at" EQ "s.pool_created_at"
		" WHERE s.pool" EQ "$1",
		NULL, 1, {TEXTOID}, SEES_LATEST, SPI_OK_SELECT
	},
};

CouponCatalog coupon_catalog;

/* Is coupon_catalog current?  Cleared by relcache invalidation. */
static bool catalog_valid = false;

/*
 * Do the texts of the statements use the schema's name of now?  Cleared
 * when a schema changes.
 */
static bool schema_name_checked = false;

static struct
{
	SPIPlanPtr	plans[COUPON_SQL_COUNT];
	char	   *texts[COUPON_SQL_COUNT];	/* their SQL, in TopMemoryContext */
	Oid			schema;			/* the plans are for this schema */
	char	   *schema_name;	/* named so in their texts */
	bool		lifecycle;		/* and this layout */
} prepared;

/* The text of the statement being prepared or run; NULL if none. */
static const char *running_text = NULL;

/*
 * The key of coupon_spread that coupon_catalog_open_spread_key() found in
 * the install script's shape, until a change of it or of its table.
 */
static Oid	spread_key_shaped = InvalidOid;

/* Registered from _PG_init. */
void
coupon_catalog_invalidate(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == spread_key_shaped ||
		relid == coupon_catalog.spread_relid)
		spread_key_shaped = InvalidOid;
	if (!OidIsValid(relid) || relid == coupon_catalog.pool_relid ||
		relid == coupon_catalog.claims_relid ||
		relid == coupon_catalog.member_relid ||
		relid == coupon_catalog.spread_relid)
		catalog_valid = false;
}

/*
 * Registered from _PG_init for pg_namespace: a schema changed, perhaps the
 * extension's was renamed.  The next binding checks the name the texts of
 * the statements use.
 */
void
coupon_catalog_schema_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	catalog_valid = false;
	schema_name_checked = false;
}

pg_noreturn static void catalog_damaged(const char *what);

static void
catalog_damaged(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_TABLE),
			 errmsg("%s of extension coupon not found in schema \"%s\"",
					what, get_namespace_name(coupon_catalog.schema)),
			 errhint("Recreate the extension with DROP EXTENSION coupon and CREATE EXTENSION coupon.")));
}

/*
 * Is index a valid, ready btree on table relid, on the given columns (the
 * first nkeyatts of them keys, with the columns' collations and default
 * operator classes, the others INCLUDEd), with no expression?  Its
 * predicate is the caller's to check.
 */
static bool
index_shaped(Relation index, Oid relid, int natts, int nkeyatts,
			 const AttrNumber *columns)
{
	Form_pg_index form = index->rd_index;

	if (index->rd_rel->relkind != RELKIND_INDEX ||
		index->rd_rel->relam != BTREE_AM_OID ||
		form->indrelid != relid ||
		!form->indisvalid || !form->indisready ||
		form->indnatts != natts || form->indnkeyatts != nkeyatts ||
		RelationGetIndexExpressions(index) != NIL)
		return false;
	for (int i = 0; i < natts; i++)
	{
		Oid			type;
		int32		typmod;
		Oid			collation;

		if (form->indkey.values[i] != columns[i])
			return false;
		if (i >= nkeyatts)
			continue;
		get_atttypetypmodcoll(relid, columns[i], &type, &typmod, &collation);
		if (index->rd_indcollation[i] != collation ||
			index->rd_opcintype[i] != type ||
			index->rd_opfamily[i] != get_opclass_family(GetDefaultOpClass(type, BTREE_AM_OID)))
			return false;
	}
	return true;
}

/*
 * Is index an index of unreleased claims in the install script's shape: a
 * btree on coupon_claims as index_shaped() checks it, WHERE released_at IS
 * NULL (column 6)?  ledger.c reads qty from its entries and counts an
 * entry on an all-visible page as an unreleased claim; an index in another
 * shape, or one that is being built or dropped, would make it count wrong.
 */
static bool
unreleased_index_shaped(Relation index, int natts, int nkeyatts,
						const AttrNumber *columns)
{
	List	   *pred;
	NullTest   *test;

	if (!index_shaped(index, coupon_catalog.claims_relid, natts, nkeyatts,
					  columns))
		return false;
	pred = RelationGetIndexPredicate(index);
	test = list_length(pred) == 1 && IsA(linitial(pred), NullTest) ?
		(NullTest *) linitial(pred) : NULL;
	return test != NULL && test->nulltesttype == IS_NULL &&
		IsA(test->arg, Var) && ((Var *) test->arg)->varattno == 6;
}

/*
 * The index of holders is needed by every claim (the per-customer check):
 * one in another shape stops the extension.
 */
static void
check_holder_index(Oid indexoid)
{
	Relation	index = index_open(indexoid, AccessShareLock);

	if (!unreleased_index_shaped(index, 3, 2, (const AttrNumber[]) {2, 3, 4}))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("index \"coupon_claims_holder\" has been altered"),
				 errdetail("The extension reads it as a valid btree index on coupon_claims (pool, customer) INCLUDE (qty) WHERE released_at IS NULL."),
				 errhint("Recreate the extension with DROP EXTENSION coupon and CREATE EXTENSION coupon.")));
	index_close(index, NoLock);
}

/* An index of the extension's schema, opened and locked; NULL if none. */
static Relation
open_schema_index(const char *name)
{
	Oid			indexoid = get_relname_relid(name, coupon_catalog.schema);

	return OidIsValid(indexoid) ?
		try_relation_open(indexoid, AccessShareLock) : NULL;
}

/*
 * May this transaction's snapshots use the index (indcheckxmin, as the
 * planner judges it)?
 */
static bool
index_usable_now(Relation index)
{
	return !index->rd_index->indcheckxmin ||
		TransactionIdPrecedes(HeapTupleHeaderGetXmin(index->rd_indextuple->t_data),
							  TransactionXmin);
}

/*
 * The index of live claims (1.5), opened and locked, if it can be read to
 * count what a pool has claimed; NULL if there is none of that name, or if
 * it is in another shape, being built or dropped, or too new for this
 * transaction's snapshots (indcheckxmin, as the planner judges it):
 * loading then counts the index of holders, as exactly and more slowly.
 * It is looked up again here, under its lock, because a DROP INDEX may
 * have committed since the call was bound.
 */
Relation
coupon_catalog_open_live_index(void)
{
	Relation	index = open_schema_index("coupon_claims_live");

	if (index == NULL)
		return NULL;
	if (unreleased_index_shaped(index, 2, 2, (const AttrNumber[]) {2, 4}) &&
		index_usable_now(index))
		return index;
	relation_close(index, AccessShareLock);
	return NULL;
}

/*
 * The primary key of coupon_spread (1.5), on (pool), opened and locked, if
 * it can be read to tell whether this node has a row of a pool; NULL if
 * there is none of that name, or if it is in another shape (pool no longer
 * text, say), has a predicate, or is too new for this transaction: route.c then runs the
 * statement that reads the share, as without it.  Looked up under its lock,
 * as the index of live claims is.  Its shape is checked once (the look-up
 * of the default operator class costs more than the probe that uses the
 * index) and again after a relcache invalidation of it or of its table;
 * whether it is valid and usable, at every call.
 */
Relation
coupon_catalog_open_spread_key(void)
{
	Relation	index;

	if (!OidIsValid(coupon_catalog.spread_relid))
		return NULL;
	index = open_schema_index("coupon_spread_pkey");
	if (index == NULL)
		return NULL;
	if (RelationGetRelid(index) != spread_key_shaped &&
		index_shaped(index, coupon_catalog.spread_relid, 1, 1,
					 (const AttrNumber[]) {1}) &&
		index->rd_opcintype[0] == TEXTOID &&
		RelationGetIndexPredicate(index) == NIL)
		spread_key_shaped = RelationGetRelid(index);
	if (RelationGetRelid(index) == spread_key_shaped &&
		index->rd_index->indisvalid && index->rd_index->indisready &&
		index_usable_now(index))
		return index;
	relation_close(index, AccessShareLock);
	return NULL;
}

/* A relation of the extension's schema, which must be of the kind given. */
static Oid
catalog_relation(const char *name, char relkind, bool missing_ok)
{
	Oid			relid = get_relname_relid(name, coupon_catalog.schema);

	if (OidIsValid(relid) && get_rel_relkind(relid) == relkind)
		return relid;
	if (!missing_ok)
		catalog_damaged(psprintf("relation \"%s\"", name));
	return InvalidOid;
}

static Oid
relation_owner(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

/*
 * The schema of extension coupon in this database; invalid if none.  One
 * look-up of pg_extension by name: the check of coupon.function_schema
 * makes it at every call of a function written in SQL or PL/pgSQL.
 */
Oid
coupon_extension_schema(void)
{
	Oid			schema = InvalidOid;
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("coupon"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
		schema = ((Form_pg_extension) GETSTRUCT(tuple))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return schema;
}

/*
 * The functions of the extension written in SQL and PL/pgSQL (the
 * cluster's on a node, coupon_ledger_prune) name its schema in their texts
 * as it was when they were created, @extschema@ of the install script: a
 * quoted identifier.  After a rename, that name may be a schema that
 * anyone who may create schemas made, with objects of the names they use,
 * which they would then run with their rights (the owner's, for those
 * that are SECURITY DEFINER).  So each sets coupon.function_schema to that
 * name as it starts, and the setting is refused unless it is the schema's
 * name now; and while it is set, every statement analyzed (a function's
 * statement is analyzed again after any invalidation, as a rename sends)
 * is checked the same way, so that a rename that commits while the
 * function runs stops it before its next statement can find the old name.
 * Nothing is looked up by a name on the way: PostgreSQL applies the SET
 * clause, and these checks read the catalogs by OID.
 *
 * Statements that are utility commands are not checked: they look their
 * names up when they run, not when they are analyzed, so a check then
 * would prove nothing (a LOCK TABLE that met a look-alike only locks it;
 * the next statement, analyzed, stops), and a session whose value is left
 * over (SET by hand, or set_config of a procedure in a transaction block)
 * can still SET, RESET, COMMIT or rename the schema back.  While a
 * function is created (PGC_S_TEST) nothing runs, and a restore by
 * pg_upgrade creates the functions of a renamed schema with the name
 * they had: any value is taken then.
 *
 * Returns the schema's name now if it is not name (a quoted identifier,
 * or a plain one, as quote_all_identifiers makes either); else NULL.  A
 * database without the extension has nothing to compare with.
 */
static const char *
function_schema_renamed(const char *name)
{
	Oid			schema;
	char	   *now;
	List	   *parts;

	if (name[0] == '\0' || !IsTransactionState())
		return NULL;
	schema = coupon_extension_schema();
	if (!OidIsValid(schema) || (now = get_namespace_name(schema)) == NULL)
		return NULL;
	if (SplitIdentifierString(pstrdup(name), '.', &parts) &&
		list_length(parts) == 1 && strcmp(linitial(parts), now) == 0)
		return NULL;
	return now;
}

#define FUNCTION_SCHEMA_RENAMED_MSG \
	"schema %s of extension coupon has been renamed to %s"
#define FUNCTION_SCHEMA_RENAMED_DETAIL \
	"The extension's functions written in SQL and PL/pgSQL name its schema as it was when they were created."
#define FUNCTION_SCHEMA_RENAMED_HINT \
	"Rename it back with ALTER SCHEMA %s RENAME TO %s."

/* Check hook of coupon.function_schema (settings.c): see above. */
bool
coupon_catalog_check_function_schema(char **newval, void **extra,
									 GucSource source)
{
	const char *now;

	if (source == PGC_S_TEST || (now = function_schema_renamed(*newval)) == NULL)
		return true;
	GUC_check_errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE);
	GUC_check_errmsg(FUNCTION_SCHEMA_RENAMED_MSG, *newval, quote_identifier(now));
	GUC_check_errdetail(FUNCTION_SCHEMA_RENAMED_DETAIL);
	GUC_check_errhint(FUNCTION_SCHEMA_RENAMED_HINT, quote_identifier(now), *newval);
	return false;
}

/* From the post_parse_analyze_hook, within such a function: see above. */
static void
check_function_schema_analyzed(struct Query *query)
{
	const char *now;

	if (query->commandType == CMD_UTILITY ||
		(now = function_schema_renamed(coupon_function_schema)) == NULL)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg(FUNCTION_SCHEMA_RENAMED_MSG, coupon_function_schema,
					quote_identifier(now)),
			 errdetail(FUNCTION_SCHEMA_RENAMED_DETAIL),
			 errhint(FUNCTION_SCHEMA_RENAMED_HINT, quote_identifier(now),
					 coupon_function_schema)));
}

/* Is column name attnum of the ledger? */
static bool
claims_column_is(const char *name, AttrNumber attnum)
{
	return get_attnum(coupon_catalog.claims_relid, name) == attnum;
}

/* The number of columns of each layout. */
static const int layout_natts[] = {
	[LEDGER_1_0] = 6,
	[LEDGER_1_1] = 8,
	[LEDGER_1_3] = 9,
};

/* The ledger's layout, by its columns: that of 1.3, 1.1, 1.0, or none. */
static LedgerLayout
claims_layout(void)
{
	if (!claims_column_is("released_at", 6))
		return LEDGER_UNKNOWN;
	if (claims_column_is("expires_at", 7) && claims_column_is("request_id", 8))
	{
		if (claims_column_is("cart_claim", 9))
			return LEDGER_1_3;
		if (get_attnum(coupon_catalog.claims_relid, "cart_claim") == InvalidAttrNumber)
			return LEDGER_1_1;
		return LEDGER_UNKNOWN;
	}
	if (get_attnum(coupon_catalog.claims_relid, "expires_at") == InvalidAttrNumber)
		return LEDGER_1_0;
	return LEDGER_UNKNOWN;
}

pg_noreturn static void schema_changed(const char *detail);

/* A call met a rename (or a drop) of the extension's schema. */
static void
schema_changed(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("the schema of extension coupon changed while this call ran"),
			 errdetail("%s", detail),
			 errhint("Retry the call.")));
}

/*
 * The texts name the schema: once it is renamed, the statements must be
 * prepared anew, or the next invalidation of a plan would look up the old
 * name and find nothing, or whatever has it now.  Checks the name for the
 * schema and layout bound, and forgets the statements if they use
 * another.
 */
static void
statements_follow_schema(void)
{
	Oid			schema = coupon_catalog.schema;
	char	   *schema_name = get_namespace_name(schema);

	if (schema_name == NULL)
		schema_changed("The schema was dropped.");
	if (prepared.schema != schema || prepared.lifecycle != coupon_catalog.lifecycle ||
		prepared.schema_name == NULL || strcmp(prepared.schema_name, schema_name) != 0)
	{
		/* The text of a statement that runs is not to be freed. */
		if (running_text != NULL)
			schema_changed("It was renamed while a statement of the extension ran.");
		for (int i = 0; i < COUPON_SQL_COUNT; i++)
		{
			if (prepared.plans[i])
				SPI_freeplan(prepared.plans[i]);
			prepared.plans[i] = NULL;
			if (prepared.texts[i])
				pfree(prepared.texts[i]);
			prepared.texts[i] = NULL;
		}
		prepared.schema = schema;
		if (prepared.schema_name)
			pfree(prepared.schema_name);
		prepared.schema_name = MemoryContextStrdup(TopMemoryContext, schema_name);
		prepared.lifecycle = coupon_catalog.lifecycle;
	}
	schema_name_checked = true;
}

/*
 * Find the extension's tables in its schema (that of the SQL function
 * being called: the extension is not relocatable).
 */
void
coupon_catalog_bind(Oid schema)
{
	LedgerLayout layout;

	/*
	 * A transaction that has not locked the tables yet may not have heard
	 * of their being dropped and made anew; listen first.
	 */
	AcceptInvalidationMessages();
	if (catalog_valid && coupon_catalog.schema == schema)
		return;

	coupon_catalog.schema = schema;
	coupon_catalog.pool_relid = catalog_relation("coupon_pool", RELKIND_RELATION, false);
	coupon_catalog.pool_pkey = catalog_relation("coupon_pool_pkey", RELKIND_INDEX, false);
	coupon_catalog.claims_relid = catalog_relation("coupon_claims", RELKIND_RELATION, false);
	coupon_catalog.claims_pkey = catalog_relation("coupon_claims_pkey", RELKIND_INDEX, false);
	coupon_catalog.holder_index = catalog_relation("coupon_claims_holder", RELKIND_INDEX, false);
	check_holder_index(coupon_catalog.holder_index);
	coupon_catalog.id_seq = catalog_relation("coupon_claims_id_seq", RELKIND_SEQUENCE, false);
	coupon_catalog.member_relid = catalog_relation("coupon_cluster_member", RELKIND_RELATION, true);
	coupon_catalog.spread_relid = catalog_relation("coupon_spread", RELKIND_RELATION, true);
	coupon_catalog.owner = relation_owner(coupon_catalog.claims_relid);

	layout = claims_layout();
	if (layout == LEDGER_UNKNOWN)
		catalog_damaged("the columns of table \"coupon_claims\"");
	coupon_catalog.lifecycle = layout != LEDGER_1_0;
	coupon_catalog.cart_claims = layout == LEDGER_1_3;
	coupon_catalog.claims_natts = layout_natts[layout];
	coupon_catalog.request_index = coupon_catalog.lifecycle ?
		catalog_relation("coupon_claims_request", RELKIND_INDEX, false) :
		InvalidOid;

	statements_follow_schema();
	coupon_catalog.binding++;
	catalog_valid = true;
}

/*
 * The ledger, opened (and locked) by the caller, must have the columns of
 * the layout bound at the start of the call.  If it has those of another
 * version, ALTER EXTENSION coupon UPDATE committed while the call waited
 * for the ledger's lock (and the indexes bound may be gone): a retry is
 * bound to the new layout.  Anything else was done to the table by hand.
 */
void
coupon_catalog_check_ledger(Relation claims)
{
	int			natts = RelationGetDescr(claims)->natts;
	LedgerLayout layout;

	if (natts == coupon_catalog.claims_natts)
		return;
	layout = claims_layout();
	if (layout != LEDGER_UNKNOWN &&
		layout_natts[layout] != coupon_catalog.claims_natts)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("extension coupon was updated while this call ran"),
				 errdetail("The ledger has the columns of another version of the extension than when the call started."),
				 errhint("Retry the call.")));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("table \"coupon_claims\" has been altered"),
			 errdetail("It has %d columns; the extension writes %d.",
					   natts, coupon_catalog.claims_natts),
			 errhint("Recreate the extension with DROP EXTENSION coupon and CREATE EXTENSION coupon.")));
}

/* The functions of the hold lifecycle need the ledger of version 1.1. */
void
coupon_require_lifecycle(const char *function)
{
	if (!coupon_catalog.lifecycle)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s() needs version 1.1 of extension coupon", function),
				 errhint("Run ALTER EXTENSION coupon UPDATE.")));
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

/* The text of a statement, for the schema and layout bound. */
static const char *
statement_text(CouponStatement id)
{
	const CouponStatementDef *def = &statements[id];

	if (prepared.texts[id] == NULL)
	{
		const char *text = coupon_catalog.lifecycle || def->sql_1_0 == NULL ?
			def->sql : def->sql_1_0;

		prepared.texts[id] =
			MemoryContextStrdup(TopMemoryContext,
								psprintf(text, quote_identifier(prepared.schema_name)));
	}
	return prepared.texts[id];
}

static SPIPlanPtr
statement_plan(CouponStatement id)
{
	const CouponStatementDef *def = &statements[id];

	if (prepared.plans[id] == NULL)
	{
		const char *sql = statement_text(id);
		SPIPlanPtr	plan;

		plan = SPI_prepare_cursor(sql, def->nargs, (Oid *) def->argtypes,
								  def->custom_plan ? CURSOR_OPT_CUSTOM_PLAN : 0);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s",
				 sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed for \"%s\"", sql);
		prepared.plans[id] = plan;
	}
	return prepared.plans[id];
}

/* Is node, or a query in it, reading a relation other than the tables? */
static bool
reads_other_relation(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		*(Oid *) context = rte->relid;
		return rte->rtekind == RTE_RELATION &&
			rte->relid != coupon_catalog.pool_relid &&
			rte->relid != coupon_catalog.claims_relid &&
			rte->relid != coupon_catalog.member_relid &&
			rte->relid != coupon_catalog.spread_relid;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, reads_other_relation, context,
								 QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, reads_other_relation, context);
}

/*
 * From the post_parse_analyze_hook: within a function of the extension
 * written in SQL or PL/pgSQL, the schema it names must still be the
 * extension's (function_schema_renamed).  And a statement of ours, analyzed when it
 * is prepared or again after an invalidation, must read the extension's
 * tables and nothing else.  The binding of the call checked the schema's
 * name, but the schema can be renamed while the call runs (ALTER SCHEMA
 * RENAME takes no lock that the call could hold), and the next lock the
 * statement takes can bring the invalidation: its text would then find
 * whatever has the old name now, and run it as the ledger's owner.
 */
void
coupon_catalog_check_analyzed(struct ParseState *pstate, struct Query *query)
{
	Oid			relid;

	if (coupon_function_schema != NULL && coupon_function_schema[0] != '\0')
		check_function_schema_analyzed(query);
	if (running_text == NULL || pstate->p_sourcetext == NULL ||
		strcmp(pstate->p_sourcetext, running_text) != 0)
		return;
	if (reads_other_relation((Node *) query, &relid))
		schema_changed(psprintf("A statement of the extension would have read relation \"%s.%s\" instead of the extension's tables.",
								get_namespace_name(get_rel_namespace(relid)),
								get_rel_name(relid)));
}

/*
 * Before a statement runs: take in the invalidations sent since the call
 * began, and if a schema changed, check the name the texts use.  A rename
 * committed while the call waited for a lock, say, would otherwise reach
 * the call only when the statement's plan takes its locks, and the plan
 * would be analyzed again from a text with the old name.  A claim whose
 * pool is loaded runs no statement.
 */
static void
statement_check_schema(void)
{
	AcceptInvalidationMessages();
	if (!schema_name_checked)
		statements_follow_schema();
}

/*
 * The statement failed with the error being handled.  If it found no
 * table, schema or function its text names, the schema (or a table) was
 * renamed at the moment the statement looked its names up: the binding of
 * the call found the tables under those names (else catalog_damaged), and
 * statement_check_schema() checked the name, but a rename takes no lock
 * that could keep it from committing in between.  Such an error is raised
 * as 40001; any other returns, for the caller to raise again unchanged.
 */
static void
statement_failed(MemoryContext context)
{
	MemoryContext error_context = MemoryContextSwitchTo(context);
	ErrorData  *error = CopyErrorData();

	MemoryContextSwitchTo(error_context);
	if (error->sqlerrcode != ERRCODE_UNDEFINED_TABLE &&
		error->sqlerrcode != ERRCODE_INVALID_SCHEMA_NAME &&
		error->sqlerrcode != ERRCODE_UNDEFINED_FUNCTION)
		return;
	FlushErrorState();
	schema_changed(psprintf("A statement of the extension failed: %s.",
							error->message));
}

/*
 * A scan key comparing text column attnum of rel with value (NULL: set
 * later) in the column's collation, for an index of which it is column
 * indexattno (for systable_beginscan: the table's column number).
 */
void
coupon_catalog_text_key(ScanKey key, Relation rel, AttrNumber attnum,
						AttrNumber indexattno, StrategyNumber strategy,
						RegProcedure proc, const char *value)
{
	ScanKeyEntryInitialize(key, 0, indexattno, strategy, InvalidOid,
						   TupleDescAttr(RelationGetDescr(rel), attnum - 1)->attcollation,
						   proc, value ? CStringGetTextDatum(value) : (Datum) 0);
}

/*
 * A registered snapshot of the latest committed data, without this
 * transaction's own changes: they are visible from the command that made
 * them on, and seen from the first command there are none.  The caller
 * unregisters it.
 */
Snapshot
coupon_committed_snapshot(void)
{
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());

	snapshot->curcid = FirstCommandId;
	return snapshot;
}

/*
 * A registered snapshot of what a statement that sees the latest data
 * (SEES_LATEST) sees: the latest committed data and this transaction's
 * own changes, those of the current command too (as SPI makes them
 * visible before it runs a statement that may write).  One consistent
 * snapshot, unlike SnapshotSelf: a row updated while a scan passes it is
 * seen once, old or new.  The caller unregisters it.
 */
Snapshot
coupon_latest_snapshot(void)
{
	CommandCounterIncrement();
	return RegisterSnapshot(GetLatestSnapshot());
}

/*
 * Run one statement as the owner of the ledger; returns the number of rows
 * it returned, which are in SPI_tuptable.  Between coupon_sql_begin() and
 * coupon_sql_end().
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
	const char *outer_text = running_text;
	MemoryContext context = CurrentMemoryContext;

	statement_check_schema();
	running_text = statement_text(id);
	PG_TRY();
	{
		plan = statement_plan(id);

		GetUserIdAndSecContext(&save_userid, &save_sec_context);
		SetUserIdAndSecContext(coupon_catalog.owner,
							   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION | SECURITY_NOFORCE_RLS);
		if (def->sees == SEES_COMMITTED)
		{
			/* Read-only, so SPI uses the snapshot as it is. */
			snapshot = coupon_committed_snapshot();
			rc = SPI_execute_snapshot(plan, values, NULL, snapshot,
									  InvalidSnapshot, true, false, 0);
		}
		else
		{
			snapshot = coupon_latest_snapshot();
			rc = SPI_execute_snapshot(plan, values, NULL, snapshot,
									  InvalidSnapshot, false, true, 0);
		}
		UnregisterSnapshot(snapshot);
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_CATCH();
	{
		running_text = outer_text;
		statement_failed(context);
		PG_RE_THROW();
	}
	PG_END_TRY();
	running_text = outer_text;

	if (rc != def->expect)
		elog(ERROR, "SPI_execute_snapshot failed executing \"%s\": %s",
			 def->sql, SPI_result_code_string(rc));
	return SPI_processed;
}

/* Column col (from 1) of result row (from 0). */
Datum
coupon_sql_value(uint64 row, int col, bool *isnull)
{
	bool		null;
	Datum		value;

	value = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col,
						  &null);
	if (isnull)
		*isnull = null;
	else if (null)
		elog(ERROR, "unexpected NULL in column %d of a coupon query", col);
	return value;
}

/*
 * Run body(arg) in an internal subtransaction, and keep what it did if it
 * returns true; otherwise roll it back.  An error rolls it back too and is
 * raised again.  Returns what body returned.
 */
bool
coupon_subtransaction(bool (*body) (void *arg), void *arg)
{
	MemoryContext context = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool keep;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(context);
	PG_TRY();
	{
		keep = body(arg);
		if (keep)
			ReleaseCurrentSubTransaction();
		else
			RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(context);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(context);
		error = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(context);
		CurrentResourceOwner = owner;
		ReThrowError(error);
	}
	PG_END_TRY();
	return keep;
}
