/*-------------------------------------------------------------------------
 *
 * catalog.h
 *		The extension's tables, and statements run on them as their owner;
 *		see catalog.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_CATALOG_H
#define COUPON_CATALOG_H

#include "access/skey.h"
#include "utils/guc.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"

#include "compat.h"

typedef enum CouponStatement
{
	COUPON_SQL_LOAD,
	COUPON_SQL_POOL_VISIBLE,
	COUPON_SQL_LOCK_POOL,
	COUPON_SQL_LOCK_CLAIM,
	COUPON_SQL_LOCK_POOL_CLAIMS,
	COUPON_SQL_OVERDUE_POOLS,
	COUPON_SQL_LOCK_OVERDUE_OF_POOL,
	COUPON_SQL_ANY_OVERDUE_OF_POOL,
	COUPON_SQL_NEXT_EXPIRY,
	COUPON_SQL_NEXT_EXPIRY_OF_POOL,
	COUPON_SQL_MEMBER,
	COUPON_SQL_SHARE,
	COUPON_SQL_COUNT
} CouponStatement;

/* The extension's catalog entries, as this backend knows them. */
typedef struct CouponCatalog
{
	Oid			schema;
	Oid			pool_relid;
	Oid			pool_pkey;		/* coupon_pool_pkey */
	Oid			claims_relid;
	Oid			claims_pkey;	/* coupon_claims_pkey */
	Oid			holder_index;	/* coupon_claims_holder */
	Oid			request_index;	/* coupon_claims_request; 1.1 */
	Oid			id_seq;			/* coupon_claims_id_seq */
	Oid			member_relid;	/* coupon_cluster_member; 1.4 */
	Oid			spread_relid;	/* coupon_spread; 1.5 */
	Oid			owner;			/* of the ledger: runs the statements */
	bool		lifecycle;		/* the ledger has the columns of 1.1 */
	bool		cart_claims;	/* and the column cart_claim of 1.3 */
	int			claims_natts;	/* the columns of the ledger: 6, 8 or 9 */
	uint64		binding;		/* counts the bindings: changes when they do */
} CouponCatalog;

extern CouponCatalog coupon_catalog;

extern void coupon_catalog_invalidate(Datum arg, Oid relid);
extern void coupon_catalog_schema_invalidate(Datum arg, int cacheid,
											 uint32 hashvalue);
extern void coupon_catalog_check_analyzed(struct ParseState *pstate,
										  struct Query *query);
extern Oid	coupon_extension_schema(void);
extern bool coupon_catalog_check_function_schema(char **newval, void **extra,
												 GucSource source);
extern void coupon_catalog_bind(Oid schema);
extern void coupon_catalog_check_ledger(Relation claims);
extern Relation coupon_catalog_open_live_index(void);
extern Relation coupon_catalog_open_spread_key(void);
extern void coupon_require_lifecycle(const char *function);
extern void coupon_catalog_text_key(ScanKey key, Relation rel, AttrNumber attnum,
									AttrNumber indexattno, StrategyNumber strategy,
									RegProcedure proc, const char *value);
extern Snapshot coupon_committed_snapshot(void);
extern Snapshot coupon_latest_snapshot(void);
extern void coupon_sql_begin(void);
extern void coupon_sql_end(void);
extern uint64 coupon_sql_run(CouponStatement id, Datum *values);
extern Datum coupon_sql_value(uint64 row, int col, bool *isnull);
extern bool coupon_subtransaction(bool (*body) (void *arg), void *arg);

#endif							/* COUPON_CATALOG_H */
