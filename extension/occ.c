/*-------------------------------------------------------------------------
 *
 * occ.c
 *		coupon_occ_version(): optimistic concurrency for any table.
 *
 * Floor: an SQL entry point (a trigger); calls nothing of the extension's.
 *
 * The seed's pattern for optimistic concurrency is
 *
 *		UPDATE t SET ..., version = version + 1 WHERE id = $1 AND version = $2
 *
 * and its weak spot is that a stale write changes nothing, silently: the
 * application has to check the row count, and one that forgets loses the
 * write.  Under this trigger (BEFORE UPDATE FOR EACH ROW, the version
 * column's name as argument, default "version") the database keeps the
 * version itself:
 *
 *	- an UPDATE that leaves the version as it is (does not set it, or sets
 *	  it to the version it read, which is still current) bumps it by one;
 *	- an UPDATE that sets it to the current version plus one (the seed's
 *	  pattern, or an ORM that increments itself) is kept as it is;
 *	- any other value is a version the writer read before somebody else
 *	  changed the row: the UPDATE fails with SQLSTATE 40001
 *	  (serialization_failure), which drivers and retry loops already treat
 *	  as "retry the transaction".
 *
 * So "UPDATE t SET ..., version = $2 WHERE id = $1" either succeeds on the
 * version it read or fails loudly.  It holds under READ COMMITTED too:
 * when two writers race, the second re-evaluates on the first one's row
 * version, where its carried version is stale.
 *
 * The error tells the row's current version only to a role that may read
 * the column, as core's error messages show a failing row's values only to
 * those who may select them (ExecBuildSlotValueDescription): a role that
 * may update a table need not be allowed to read it.
 *
 * Note about locking: none beyond the row lock the UPDATE holds.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/int.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/rel.h"
#include "utils/rls.h"

#include "compat.h"

PG_FUNCTION_INFO_V1(coupon_occ_version);

static int64
version_get(HeapTuple tuple, TupleDesc tupdesc, int attnum, const char *name)
{
	bool		isnull;
	Datum		value = heap_getattr(tuple, attnum, tupdesc, &isnull);

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("version column \"%s\" must not be null", name)));
	switch (TupleDescAttr(tupdesc, attnum - 1)->atttypid)
	{
		case INT2OID:
			return DatumGetInt16(value);
		case INT4OID:
			return DatumGetInt32(value);
		default:
			return DatumGetInt64(value);
	}
}

static Datum
version_datum(Oid type, int64 version, const char *name)
{
	int64		max = type == INT2OID ? PG_INT16_MAX :
		type == INT4OID ? PG_INT32_MAX : PG_INT64_MAX;

	if (version > max)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("version column \"%s\" is out of range", name)));
	return type == INT2OID ? Int16GetDatum((int16) version) :
		type == INT4OID ? Int32GetDatum((int32) version) :
		Int64GetDatum(version);
}

/* May the current role read the version column of the relation? */
static bool
version_readable(Relation rel, int attnum)
{
	Oid			relid = RelationGetRelid(rel);
	Oid			role = GetUserId();

	if (check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
		return false;
	return pg_class_aclcheck(relid, role, ACL_SELECT) == ACLCHECK_OK ||
		pg_attribute_aclcheck(relid, attnum, role, ACL_SELECT) == ACLCHECK_OK;
}

pg_noreturn static void stale_version(Relation rel, int attnum,
									  int64 current, int64 carried);

static void
stale_version(Relation rel, int attnum, int64 current, int64 carried)
{
	bool		readable = version_readable(rel, attnum);

	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("could not update relation \"%s\": stale version",
					RelationGetRelationName(rel)),
			 readable ?
			 errdetail("The row has version %lld; the update carries version %lld.",
					   (long long) current, (long long) carried) :
			 errdetail("The update carries version %lld, which is not the row's current version.",
					   (long long) carried),
			 errhint("Read the row again and retry.")));
}

Datum
coupon_occ_version(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	tupdesc;
	const char *column = "version";
	const char *relname;
	int			attnum;
	Oid			type;
	int64		old_version;
	int64		new_version;
	int64		bumped;
	Datum		value;
	bool		isnull = false;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("coupon_occ_version() was not called by the trigger manager")));
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("coupon_occ_version() must be fired BEFORE UPDATE FOR EACH ROW")));
	if (trigdata->tg_trigger->tgnargs > 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("coupon_occ_version() takes at most one argument, the version column")));
	if (trigdata->tg_trigger->tgnargs == 1)
		column = trigdata->tg_trigger->tgargs[0];

	tupdesc = trigdata->tg_relation->rd_att;
	relname = RelationGetRelationName(trigdata->tg_relation);
	attnum = SPI_fnumber(tupdesc, column);
	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist",
						column, relname),
				 errhint("Name the version column as the trigger's argument.")));
	type = TupleDescAttr(tupdesc, attnum - 1)->atttypid;
	if (type != INT2OID && type != INT4OID && type != INT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("version column \"%s\" of relation \"%s\" must be smallint, integer or bigint",
						column, relname)));

	old_version = version_get(trigdata->tg_trigtuple, tupdesc, attnum, column);
	new_version = version_get(trigdata->tg_newtuple, tupdesc, attnum, column);

	if (pg_add_s64_overflow(old_version, 1, &bumped))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("version column \"%s\" is out of range", column)));
	if (new_version == old_version)
		new_version = bumped;
	else if (new_version != bumped)
		stale_version(trigdata->tg_relation, attnum, old_version, new_version);
	else
		return PointerGetDatum(trigdata->tg_newtuple);

	value = version_datum(type, new_version, column);
	return PointerGetDatum(heap_modify_tuple_by_cols(trigdata->tg_newtuple,
													 tupdesc, 1, &attnum,
													 &value, &isnull));
}
