/*-------------------------------------------------------------------------
 *
 * route.c
 *		Where a customer of a pool is served in a coupon cluster.
 *
 * Floor: under the SQL entry points (claim.c's routed claim).  Calls only
 * the catalog (its statements, and the key of coupon_spread that it
 * opens).
 *
 * A node of a cluster is stamped with its partition and the cluster's
 * number of partitions (coupon_cluster_member, 1.4).  A pool spread over
 * several nodes has a share on each of them, member 0 at its home and
 * member k at partition (home + k) mod partitions (coupon_spread, 1.5); a
 * customer of a spread pool is served by share hash(customer) mod spread,
 * and every other pool serves all its customers where it is.  The proxy
 * sends a claim to the node it believes serves it, saying which partition
 * that is; the node checks that it is that partition (UC005: the proxy's
 * server options name the nodes in another order than attach stamped them)
 * and answers with the partition that serves the customer.  As PL/Proxy's
 * RUN ON does, a number names the partition it is modulo the partitions
 * (its low bits): the proxy's claim sends the pool's hash, which spares
 * it a read of the partition count.
 *
 * The routed claim (claim.c) asks here, and so does every other routed
 * call through coupon_routed_here() (claim.c too): kept statements run as
 * the owner of the tables (catalog.c), where the SECURITY DEFINER function
 * in PL/pgSQL that this replaced cost a node about 40 us a claim (README,
 * "A cluster: the proxy's cost").  Most pools are not spread: a probe of
 * coupon_spread's primary key tells so first, without the statement,
 * which was about a quarter of the routed claim function's time (perf,
 * 2026-12-07).  The hash is hashtext() of the customer
 * as an unsigned 32-bit number, as the proxy computes it.  A node's
 * stamp never changes once written (attach refuses another), so a
 * session reads it once and keeps it until the extension's tables are
 * bound anew (dropped and created again, say); a node of no cluster is
 * asked again at every call, since it may be attached meanwhile.
 *
 * Note about locking: the probe of coupon_spread takes AccessShareLock on
 * the table and its key, as a SELECT would.  It and the statements read
 * the latest committed rows; a pool dropped and created again
 * between the read and the claim is claimed as the pool it then is.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/relation.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation_d.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "catalog.h"
#include "common.h"
#include "route.h"

/* This node's stamp, as this session read it. */
static struct
{
	uint64		binding;		/* of coupon_catalog: 0 if not read */
	int32		partition;
	int32		partitions;
} member;

/* This node's partition and partitions; false if it is in no cluster. */
static bool
read_member(void)
{
	if (member.binding != 0 && member.binding == coupon_catalog.binding)
		return true;
	if (coupon_sql_run(COUPON_SQL_MEMBER, NULL) != 1)
		return false;
	member.partition = DatumGetInt32(coupon_sql_value(0, 1, NULL));
	member.partitions = DatumGetInt32(coupon_sql_value(0, 2, NULL));
	member.binding = coupon_catalog.binding;
	return true;
}

/*
 * Has this node surely no share of pool?  True if the primary key of
 * coupon_spread has no row of it, seen as the statement that reads the
 * share would see it (coupon_latest_snapshot); false if it has one, or
 * cannot be read so (coupon_catalog_open_spread_key), or the table is
 * gone since the call was bound: the statement then answers, or fails
 * with its retry.  The table is locked before its index, as DROP INDEX
 * locks them.
 */
static bool
no_share_here(const char *pool)
{
	Relation	spread;
	Relation	key;
	ScanKeyData scankey;
	SysScanDesc scan;
	Snapshot	snapshot;
	bool		none;

	if (!OidIsValid(coupon_catalog.spread_relid))
		return false;
	spread = try_relation_open(coupon_catalog.spread_relid, AccessShareLock);
	if (spread == NULL)
		return false;
	key = spread->rd_rel->relkind == RELKIND_RELATION ?
		coupon_catalog_open_spread_key() : NULL;
	if (key == NULL)
	{
		relation_close(spread, AccessShareLock);
		return false;
	}
	coupon_catalog_text_key(&scankey, spread, 1, 1, BTEqualStrategyNumber,
							F_TEXTEQ, pool);
	snapshot = coupon_latest_snapshot();
	scan = systable_beginscan(spread, RelationGetRelid(key), true, snapshot,
							  1, &scankey);
	none = !HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	UnregisterSnapshot(snapshot);
	index_close(key, AccessShareLock);
	relation_close(spread, AccessShareLock);
	return none;
}

/*
 * Where customer of pool is served, on the node that the proxy believes
 * to be partition (modulo the partitions): fails if this node is another
 * partition, or in no cluster.  A NULL pool or customer is served here.
 */
void
coupon_route(int32 partition, const char *pool, const char *customer,
			 CouponRoute *route)
{
	Datum		values[1] = {pool ? CStringGetTextDatum(pool) : (Datum) 0};
	bool		found;
	int32		spread = 0;
	int32		member_no = 0;

	memset(route, 0, sizeof(*route));
	coupon_sql_begin();
	found = read_member();
	if (found)
		partition &= member.partitions - 1;
	if (found && member.partition == partition && pool != NULL &&
		!no_share_here(pool) &&
		coupon_sql_run(COUPON_SQL_SHARE, values) == 1)
	{
		route->shared = true;
		spread = DatumGetInt32(coupon_sql_value(0, 1, NULL));
		member_no = DatumGetInt32(coupon_sql_value(0, 2, NULL));
		route->capacity = DatumGetInt64(coupon_sql_value(0, 3, NULL));
		route->per_customer = DatumGetInt32(coupon_sql_value(0, 4, NULL));
	}
	coupon_sql_end();

	if (!found || member.partition != partition)
		ereport(ERROR,
				(errcode(ERRCODE_COUPON_WRONG_PARTITION),
				 errmsg("this node is partition %s, not partition %d",
						found ? psprintf("%d", member.partition) : "of no cluster",
						partition),
				 errhint("The proxy's server options must name the nodes in the order coupon_cluster_attach() stamped them.")));
	route->here = route->serve = member.partition;
	if (route->shared && customer != NULL && spread > 0 && member.partitions > 0)
	{
		uint32		hash = DatumGetUInt32(DirectFunctionCall1Coll(hashtext,
																  DEFAULT_COLLATION_OID,
																  CStringGetTextDatum(customer)));

		route->serve = (member.partition - member_no +
						(int32) (hash % (uint32) spread) +
						member.partitions) % member.partitions;
	}
}
