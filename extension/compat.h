/*-------------------------------------------------------------------------
 *
 * compat.h
 *		Differences between the PostgreSQL majors coupon builds against.
 *
 * The rest of the code is written for the newest API; each difference is
 * hidden here behind one small definition or static inline wrapper, as
 * pg_wait_sampling's compat.h and pgvector do, so that no other file needs
 * a PG_VERSION_NUM test.  Supported: PostgreSQL 15 to 18.
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_COMPAT_H
#define COUPON_COMPAT_H

#include "executor/executor.h"

/* PostgreSQL 16 moved the varlena macros out of postgres.h. */
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

/*
 * PostgreSQL 18 replaced pg_attribute_noreturn(), written after the
 * declarator, with pg_noreturn, written before it.
 */
#ifndef pg_noreturn
#define pg_noreturn _Noreturn
#endif

/*
 * ExecInitRangeTable() took permission infos in 16 and the unpruned
 * relations in 18; EvalPlanQualInit() took the result relations in 16.
 * The range table here is one relation, written without permission checks
 * (see ledger.c).
 */
static inline void
coupon_init_range_table(EState *estate, List *rtable)
{
#if PG_VERSION_NUM >= 180000
	ExecInitRangeTable(estate, rtable, NIL, bms_make_singleton(1));
#elif PG_VERSION_NUM >= 160000
	ExecInitRangeTable(estate, rtable, NIL);
#else
	ExecInitRangeTable(estate, rtable);
#endif
}

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

#endif							/* COUPON_COMPAT_H */
