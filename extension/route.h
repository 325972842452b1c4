/*-------------------------------------------------------------------------
 *
 * route.h
 *		Where a customer of a pool is served in a coupon cluster; see
 *		route.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_ROUTE_H
#define COUPON_ROUTE_H

typedef struct CouponRoute
{
	int32		here;			/* this node's partition */
	int32		serve;			/* the partition that serves the customer */
	bool		shared;			/* the pool is a spread pool's share here */
	int64		capacity;		/* the share's, if shared */
	int32		per_customer;	/* the pool's, if shared */
} CouponRoute;

extern void coupon_route(int32 partition, const char *pool,
						 const char *customer, CouponRoute *route);

#endif							/* COUPON_ROUTE_H */
