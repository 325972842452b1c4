/*-------------------------------------------------------------------------
 *
 * route.c
 *		Where a customer of a pool is served in a coupon cluster.
 *
 * Floor: under the SQL entry points (claim.c's routed claim).  Calls only
 * the catalog's statements.
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
 * and answers with the partition that serves the customer.
 *
 * This is coupon_routed_here() of the install script, for the claim path:
 * one kept statement run as the owner of the tables (catalog.c), where a
 * SECURITY DEFINER function in PL/pgSQL cost a node about 100 us a claim
 * (README, "A cluster: the proxy's cost").  Both compute the same hash,
 * hashtext() of the customer as an unsigned 32-bit number.
 *
 * Note about locking: none.  The statement reads the latest committed
 * rows, as coupon_routed_here() did; a pool dropped and created again
 * between the read and the claim is claimed as the pool it then is.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation_d.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

#include "catalog.h"
#include "common.h"
#include "route.h"

/*
 * Where customer of pool is served, on the node that the proxy believes
 * to be partition: fails if this node is another partition, or in no
 * cluster.
 */
void
coupon_route(int32 partition, const char *pool, const char *customer,
			 CouponRoute *route)
{
	Datum		values[1] = {CStringGetTextDatum(pool)};
	bool		found;
	bool		isnull;
	int32		here = 0;
	int32		partitions = 0;
	int32		spread = 0;
	int32		member = 0;

	memset(route, 0, sizeof(*route));
	coupon_sql_begin();
	found = coupon_sql_run(COUPON_SQL_ROUTE, values) == 1;
	if (found)
	{
		here = DatumGetInt32(coupon_sql_value(0, 1, NULL));
		partitions = DatumGetInt32(coupon_sql_value(0, 2, NULL));
		spread = DatumGetInt32(coupon_sql_value(0, 3, &isnull));
		route->shared = !isnull;
		if (route->shared)
		{
			member = DatumGetInt32(coupon_sql_value(0, 4, NULL));
			route->capacity = DatumGetInt64(coupon_sql_value(0, 5, NULL));
			route->per_customer = DatumGetInt32(coupon_sql_value(0, 6, NULL));
		}
	}
	coupon_sql_end();

	if (!found || here != partition)
		ereport(ERROR,
				(errcode(ERRCODE_COUPON_WRONG_PARTITION),
				 errmsg("this node is partition %s, not partition %d",
						found ? psprintf("%d", here) : "of no cluster",
						partition),
				 errhint("The proxy's server options must name the nodes in the order coupon_cluster_attach() stamped them.")));
	route->serve = here;
	if (route->shared && spread > 0 && partitions > 0)
	{
		uint32		hash = DatumGetUInt32(DirectFunctionCall1Coll(hashtext,
																  DEFAULT_COLLATION_OID,
																  CStringGetTextDatum(customer)));

		route->serve = (here - member + (int32) (hash % (uint32) spread) +
						partitions) % partitions;
	}
}
