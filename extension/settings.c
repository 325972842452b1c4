/*-------------------------------------------------------------------------
 *
 * settings.c
 *		The coupon.* settings (GUCs): their variables and their definitions.
 *
 * Floor: the bottom; calls nothing of the extension's.  The semaphore and
 * the table of due holds are sized by coupon.max_pools, the expiry
 * launcher obeys coupon.expiry_workers and coupon.expiry_revisit_interval;
 * _PG_init (coupon.c) has them defined, once, when the library is
 * preloaded.  Not preloaded, they keep their defaults, which nothing then
 * reads.
 *
 * Note about locking: none; PostgreSQL sets the variables.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "settings.h"

/* GUC: how many pools, of all databases, shared memory holds at once. */
int			coupon_max_pools = 1024;

/* GUC: do background workers return expired holds? */
bool		coupon_expiry_workers = true;

/* GUC: seconds between the expiry launcher's visits of every database. */
int			coupon_expiry_revisit_interval = 600;

/* Define the settings and reserve the "coupon." prefix; from _PG_init. */
void
coupon_settings_define(void)
{
	DefineCustomIntVariable("coupon.max_pools",
							"Number of coupon pools that shared memory holds at once, for all databases.",
							"A pool with changes in flight or claimers waiting keeps its slot; "
							"an idle one is evicted when room is needed and loaded again from the ledger.",
							&coupon_max_pools,
							1024,
							1,
							1000000,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("coupon.expiry_workers",
							 "Return expired holds to their pools by background workers.",
							 "When off, an expired hold goes back only when a claimer "
							 "that needs its coupons finds it.",
							 &coupon_expiry_workers,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("coupon.expiry_revisit_interval",
							"Time between the expiry launcher's visits of every database.",
							"A visit finds holds that no commit announced, such as those "
							"of a restored database or one copied from a template.",
							&coupon_expiry_revisit_interval,
							600,
							1,
							86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	MarkGUCPrefixReserved("coupon");
}
