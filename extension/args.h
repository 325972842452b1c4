/*-------------------------------------------------------------------------
 *
 * args.h
 *		Argument checks and errors shared by the SQL functions; see args.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_ARGS_H
#define COUPON_ARGS_H

#include "datatype/timestamp.h"
#include "fmgr.h"

#include "compat.h"

pg_noreturn extern void coupon_pool_missing(const char *pool);
pg_noreturn extern void coupon_pool_uncommitted(const char *pool);
pg_noreturn extern void coupon_claim_missing(int64 claim_id);
pg_noreturn extern void coupon_claim_not_customers(int64 claim_id,
													const char *customer);
pg_noreturn extern void coupon_claim_gone(int64 claim_id,
										  TimestampTz released_at,
										  TimestampTz expires_at,
										  const char *request_id);
extern void coupon_arg_not_null(FunctionCallInfo fcinfo, int argno,
								const char *what);
extern char *coupon_arg_text(FunctionCallInfo fcinfo, int argno,
							 const char *what, int maxlen);
extern char *coupon_arg_pool(FunctionCallInfo fcinfo, int argno);
extern char *coupon_arg_request_id(FunctionCallInfo fcinfo, int argno);
extern int64 coupon_arg_int64(FunctionCallInfo fcinfo, int argno,
							  const char *what, int64 min);
extern int32 coupon_arg_int32(FunctionCallInfo fcinfo, int argno,
							  const char *what, int32 min);
extern int64 coupon_arg_duration(FunctionCallInfo fcinfo, int argno,
								 const char *what);
extern int64 coupon_arg_ttl(FunctionCallInfo fcinfo, int argno);
extern TimestampTz coupon_expiry_after(int64 ttl);
extern TimestampTz coupon_deadline(int64 wait);

#endif							/* COUPON_ARGS_H */
