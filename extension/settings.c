/*-------------------------------------------------------------------------
 *
 * settings.c
 *		The coupon.* settings (GUCs): their variables and their definitions.
 *
 * Floor: the bottom; calls nothing of the extension's (the check of
 * coupon.function_schema is catalog.c's, passed in by _PG_init).  The semaphore and
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

/*
 * GUC: the schema that the running function of the extension written in
 * SQL or PL/pgSQL names in its text (a quoted identifier, as the install
 * scripts write @extschema@); empty outside them.  Each sets it as it
 * starts (SET clause), so that check_hook (catalog.c) refuses the call
 * when the schema has been renamed since the function was created.
 */
char	   *coupon_function_schema = NULL;

/*
 * Define coupon.function_schema; from _PG_init, whether the library is
 * preloaded or not, since the functions that set it need no semaphore.
 */
void
coupon_settings_define_function_schema(GucStringCheckHook check_hook)
{
	DefineCustomStringVariable("coupon.function_schema",
							   "Schema named by the running SQL or PL/pgSQL function of extension coupon.",
							   "Set by those functions as they start; a name that is not "
							   "the extension's schema now is refused.",
							   &coupon_function_schema,
							   "",
							   PGC_USERSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   check_hook, NULL, NULL);
}

/* Define the other settings and reserve the "coupon." prefix; from _PG_init. */
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
