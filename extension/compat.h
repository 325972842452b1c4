/*-------------------------------------------------------------------------
 *
 * compat.h
 *		Differences between the PostgreSQL majors coupon builds against.
 *
 * Each difference is hidden here behind one small definition or static
 * inline wrapper, as pg_wait_sampling's compat.h and pgvector do, so that
 * no other file needs a PG_VERSION_NUM test.  Supported: PostgreSQL 15 to
 * 18.  CI builds and tests 15, 17 and 18 (the majors Debian ships); 16
 * takes the same branches as 17 here.
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_COMPAT_H
#define COUPON_COMPAT_H

#include "access/genam.h"
#include "catalog/pg_proc.h"
#include "executor/executor.h"
#include "nodes/pg_list.h"
#include "storage/proc.h"
#include "utils/acl.h"

/*
 * PostgreSQL 16 moved the varlena macros out of postgres.h, and the
 * permissions of a range table entry into a list of their own (below).
 */
#if PG_VERSION_NUM >= 160000
#include "parser/parse_relation.h"
#include "varatt.h"
#endif

/*
 * PostgreSQL 16 replaced pg_proc_aclcheck() by object_aclcheck() of an
 * object of pg_proc.
 */
static inline AclResult
coupon_function_aclcheck(Oid funcoid, Oid roleid)
{
#if PG_VERSION_NUM >= 160000
	return object_aclcheck(ProcedureRelationId, funcoid, roleid, ACL_EXECUTE);
#else
	return pg_proc_aclcheck(funcoid, roleid, ACL_EXECUTE);
#endif
}

/*
 * PostgreSQL 18 replaced pg_attribute_noreturn(), written after the
 * declarator, with pg_noreturn, written before it.  Before 18 the old
 * attribute works in front as well.
 */
#ifndef pg_noreturn
#define pg_noreturn pg_attribute_noreturn()
#endif

/*
 * Give an executor state a range table of the one relation rte describes,
 * as logical replication's apply worker does before it inserts a row.
 * PostgreSQL 16 keeps the relation's permissions in a separate list of
 * RTEPermissionInfo; 18 also wants the set of range table entries that
 * partition pruning left in (here: entry 1).
 */
static inline void
coupon_exec_init_range_table(EState *estate, RangeTblEntry *rte)
{
#if PG_VERSION_NUM >= 160000
	List	   *perminfos = NIL;

	addRTEPermissionInfo(&perminfos, rte);
#endif
#if PG_VERSION_NUM >= 180000
	ExecInitRangeTable(estate, list_make1(rte), perminfos,
					   bms_make_singleton(1));
#elif PG_VERSION_NUM >= 160000
	ExecInitRangeTable(estate, list_make1(rte), perminfos);
#else
	ExecInitRangeTable(estate, list_make1(rte));
#endif
}

/* EvalPlanQualInit() took the result relations in 16. */
static inline void
coupon_epq_init(EPQState *epq, EState *estate)
{
#if PG_VERSION_NUM >= 160000
	EvalPlanQualInit(epq, estate, NULL, NIL, -1, NIL);
#else
	EvalPlanQualInit(epq, estate, NULL, NIL, -1);
#endif
}

/* ExecInsertIndexTuples() took onlySummarizing in 16. */
static inline List *
coupon_insert_index_tuples(ResultRelInfo *rri, TupleTableSlot *slot,
						   EState *estate)
{
#if PG_VERSION_NUM >= 160000
	return ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL,
								 false);
#else
	return ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL);
#endif
}

/* index_beginscan() took instrumentation in 18. */
static inline IndexScanDesc
coupon_index_beginscan(Relation heap, Relation index, Snapshot snapshot,
					   int nkeys)
{
#if PG_VERSION_NUM >= 180000
	return index_beginscan(heap, index, snapshot, NULL, nkeys, 0);
#else
	return index_beginscan(heap, index, snapshot, nkeys, 0);
#endif
}

/*
 * The backend's local transaction id, which tells one top-level transaction
 * from the next; PostgreSQL 17 moved it into the PGPROC's virtual
 * transaction id.
 */
static inline LocalTransactionId
coupon_local_xid(void)
{
#if PG_VERSION_NUM >= 170000
	return MyProc->vxid.lxid;
#else
	return MyProc->lxid;
#endif
}

#endif							/* COUPON_COMPAT_H */
