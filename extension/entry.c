/*-------------------------------------------------------------------------
 *
 * entry.c
 *		The start of every SQL function: coupon_enter().
 *
 * Floor: the bottom of the SQL entry points; every entry point calls it,
 * and it calls down into the escrow, the semaphore and the catalog.
 *
 * Every SQL function starts with coupon_enter(): the library must be
 * preloaded (for anything that needs the semaphore), the function must be
 * allowed to write here (not on a standby, not in a read-only transaction,
 * not in parallel mode, where a worker's abort would not give its permits
 * back), the extension's tables are found, and the transaction is marked
 * so that PREPARE TRANSACTION is refused (escrow.c).  All of it before
 * anything changes.
 *
 * Note about locking: none.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "utils/lsyscache.h"

#include "catalog.h"
#include "entry.h"
#include "escrow.h"
#include "semaphore.h"

/*
 * The start of every SQL function of the extension, named function; see
 * the header comment.
 */
void
coupon_enter(FunctionCallInfo fcinfo, const char *function,
			 CouponAccess access)
{
	if (access != COUPON_WRITES_TABLES)
		coupon_require_preload();
	if (access != COUPON_READS)
	{
		if (RecoveryInProgress())
			ereport(ERROR,
					(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
					 errmsg("cannot execute %s() on a standby server", function),
					 errdetail("The server is in hot standby: coupons are claimed and changed on the primary only."),
					 errhint("Connect to the primary server.")));
		if (XactReadOnly)
			ereport(ERROR,
					(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
					 errmsg("cannot execute %s() in a read-only transaction",
							function)));
		if (IsInParallelMode())
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
					 errmsg("cannot execute %s() during a parallel operation",
							function),
					 errhint("Do not mark functions that call it PARALLEL SAFE.")));
		coupon_escrow_touch();
	}
	coupon_catalog_bind(get_func_namespace(fcinfo->flinfo->fn_oid));
}
