/*-------------------------------------------------------------------------
 *
 * coupon.c
 *		Module entry point of the coupon extension: GUCs and hooks.
 *
 * The semaphore lives in shared memory, so the library must be listed in
 * shared_preload_libraries; then _PG_init reserves the memory and the lock
 * (shmem_request_hook), creates the table at start and after every crash
 * restart (shmem_startup_hook), and registers the transaction callbacks of
 * the escrow.  Loaded any other way (by CREATE EXTENSION or a function
 * call), the library still serves the optimistic-concurrency trigger and
 * pool creation; everything that needs the semaphore fails with a hint.
 *
 * See coupon.h for a map of the other files.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/guc.h"

#include "coupon.h"

PG_MODULE_MAGIC;

/* GUC: how many pools, of all databases, can be in use at once. */
int			coupon_max_pools = 1024;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

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

void
_PG_init(void)
{
	coupon_ledger_init();

	if (!process_shared_preload_libraries_in_progress)
		return;

	DefineCustomIntVariable("coupon.max_pools",
							"Maximum number of coupon pools in use at once, in all databases.",
							"Each pool in use takes one slot of shared memory.",
							&coupon_max_pools,
							1024,
							1,
							1000000,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
	MarkGUCPrefixReserved("coupon");

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = coupon_shmem_request_hook;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = coupon_shmem_startup_hook;

	coupon_escrow_init();
}
