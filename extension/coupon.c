/*-------------------------------------------------------------------------
 *
 * coupon.c
 *		Module entry point of the coupon extension: settings and every hook.
 *
 * Floor: the top.  Nothing calls it; it calls down to register what the
 * other files define.
 *
 * The semaphore lives in shared memory, so the library must be listed in
 * shared_preload_libraries.  Then _PG_init, in one block as
 * pg_stat_statements does, defines the settings (settings.c), reserves the
 * memory and the locks
 * (shmem_request_hook), creates the table at start and after every crash
 * restart (shmem_startup_hook), registers the transaction callbacks of the
 * escrow and the object-access hook that notices dropped pool tables and
 * databases (escrow.c), and registers the expiry launcher (worker.c).
 * Whether preloaded or not, it registers the cache callbacks of the
 * extension's catalog and the post-parse-analysis hook that checks what
 * the extension's statements read (catalog.c), and defines
 * coupon.function_schema, with which the functions written in SQL and
 * PL/pgSQL check the name of the extension's schema (catalog.c).
 * Loaded any other way (by CREATE EXTENSION or a function call), the
 * library still serves the optimistic-concurrency trigger and pool
 * creation; everything that needs the semaphore fails with a hint.
 *
 * See common.h for a map of the other files.
 *
 * Note about locking: none; _PG_init runs in the postmaster, or in a
 * backend that loads the library.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/objectaccess.h"
#include "miscadmin.h"
#include "parser/analyze.h"
#include "storage/ipc.h"
#include "utils/inval.h"
#include "utils/syscache.h"

#include "catalog.h"
#include "escrow.h"
#include "semaphore.h"
#include "settings.h"
#include "worker.h"

PG_MODULE_MAGIC;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static object_access_hook_type prev_object_access_hook = NULL;
static post_parse_analyze_hook_type prev_post_parse_analyze_hook = NULL;

void		_PG_init(void);

static void
coupon_shmem_request_hook(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	coupon_shmem_request();
}

static void
coupon_shmem_startup_hook(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	coupon_shmem_startup();
}

static void
coupon_object_access_hook(ObjectAccessType access, Oid classId, Oid objectId,
						  int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	coupon_escrow_object_access(access, classId, objectId, subId, arg);
}

static void
coupon_post_parse_analyze_hook(ParseState *pstate, Query *query,
							   JumbleState *jstate)
{
	if (prev_post_parse_analyze_hook)
		prev_post_parse_analyze_hook(pstate, query, jstate);
	coupon_catalog_check_analyzed(pstate, query);
}

void
_PG_init(void)
{
	CacheRegisterRelcacheCallback(coupon_catalog_invalidate, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, coupon_catalog_schema_invalidate,
								  (Datum) 0);
	prev_post_parse_analyze_hook = post_parse_analyze_hook;
	post_parse_analyze_hook = coupon_post_parse_analyze_hook;
	coupon_settings_define_function_schema(coupon_catalog_check_function_schema);

	if (!process_shared_preload_libraries_in_progress)
		return;

	coupon_settings_define();

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = coupon_shmem_request_hook;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = coupon_shmem_startup_hook;
	prev_object_access_hook = object_access_hook;
	object_access_hook = coupon_object_access_hook;
	RegisterXactCallback(coupon_escrow_xact_callback, NULL);
	RegisterSubXactCallback(coupon_escrow_subxact_callback, NULL);
	coupon_worker_register();
}
