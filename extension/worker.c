/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The background workers that return expired holds to their pools.
 *
 * Floor: the top, beside coupon.c: a background worker is an entry of its
 * own.  It calls down into the lifecycle (lifecycle.c), the catalog and the
 * table of due holds (due.c); nothing calls it.
 *
 * A launcher, registered when the library is preloaded (nothing else to
 * configure), starts after recovery and reads, from the table in shared
 * memory that due.c keeps, for every database with live holds, the time
 * its next hold expires.  At that time
 * it starts a worker for the database, one at a time: the worker connects,
 * returns the overdue holds pool by pool in small batches (one
 * transaction per batch, FOR UPDATE SKIP LOCKED, lifecycle.c; a batch that
 * fails is logged and retried ten seconds later, the other pools go on),
 * writes down when the database's
 * next hold expires, and exits.  A worker lives for milliseconds, so it
 * never keeps a database from being dropped (DROP DATABASE waits a few
 * seconds for other sessions to leave), and one worker serves any number of
 * databases without a process per database.
 *
 * Who tells the launcher: a transaction that makes a hold, or moves its
 * expiry, announces it when it commits (escrow.c, through due.c, which
 * sets the launcher's latch); at its start, and every
 * coupon.expiry_revisit_interval (ten minutes by default), the launcher
 * visits every database, so that holds that outlived a restart or a crash
 * are returned, expired ones at once, and holds that came without a commit
 * announcing them (a database copied from a template, or restored) within
 * that interval of their arrival, or at their expiry if that is later.
 * The launcher never sleeps past its next visit, and a reload that
 * changes the interval wakes it.  A database that is dropped is forgotten
 * when the drop commits; a database whose extension is dropped has no
 * holds left and drops out by itself.  A
 * worker that fails (terminated, or its database gone) is retried shortly,
 * unless its database no longer exists or takes no connections; the
 * launcher itself is restarted by the postmaster a second after it dies.
 *
 * A worker acts as the owner of the ledger, in a security-restricted
 * operation with a fixed search_path, since what a DBA attached to the
 * ledger runs in its session.  With coupon.expiry_workers off the launcher
 * starts no worker (the holds it is told of wait for it to be on again),
 * and expired holds go back only through claimers that need them.
 *
 * Note about locking: none of its own; the table of databases is due.c's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "common.h"
#include "due.h"
#include "ledger.h"
#include "lifecycle.h"
#include "settings.h"
#include "worker.h"

#define EXPIRY_BATCH		100 /* holds per transaction */
#define EXPIRY_POOLS		1000	/* pools per look for overdue holds */
#define EXPIRY_BUDGET_MS	2000	/* a worker's run before it yields */
#define RETRY_MS			1000	/* overdue holds locked by others */
#define FAILED_RETRY_MS		2000	/* a worker that did not finish */
#define POOL_FAILED_RETRY_MS	10000	/* holds that could not be returned */
#define LAUNCHER_IDLE_MS	60000	/* the launcher looks around this often */

PGDLLEXPORT void coupon_expiry_launcher_main(Datum arg);
PGDLLEXPORT void coupon_expiry_worker_main(Datum arg);

/* Called from _PG_init when the library is preloaded. */
void
coupon_worker_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	strlcpy(worker.bgw_library_name, "coupon", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "coupon_expiry_launcher_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "coupon expiry launcher", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "coupon expiry launcher", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

/*
 * Every database that takes connections, to visit once: a list in the
 * caller's memory context, which outlives the transaction that reads it.
 */
static List *
all_databases(void)
{
	MemoryContext caller = CurrentMemoryContext;
	List	   *dboids = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;

	StartTransactionCommand();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tuple = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tuple);

		if (db->datallowconn)
		{
			MemoryContext xact = MemoryContextSwitchTo(caller);

			dboids = lappend_oid(dboids, db->oid);
			MemoryContextSwitchTo(xact);
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return dboids;
}

/* Does the database still exist and take connections? */
static bool
database_connectable(Oid dboid)
{
	HeapTuple	tuple;
	bool		ok = false;

	StartTransactionCommand();
	tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(dboid));
	if (HeapTupleIsValid(tuple))
	{
		ok = ((Form_pg_database) GETSTRUCT(tuple))->datallowconn;
		ReleaseSysCache(tuple);
	}
	CommitTransactionCommand();
	return ok;
}

/*
 * The database whose worker should run now: the most overdue one, else one
 * still to visit.  InvalidOid if none; *wake says when to look again.  If
 * a database did not fit in the table, or every
 * coupon.expiry_revisit_interval (since *visited), every database is
 * visited again: holds can arrive without a commit that announces them
 * (CREATE DATABASE ... TEMPLATE, a restore).
 */
static Oid
launcher_next(List **to_visit, TimestampTz *visited, TimestampTz now,
			  TimestampTz *wake)
{
	int			revisit_ms = coupon_expiry_revisit_interval * 1000;
	bool		overflow;
	Oid			dboid = coupon_due_next(now, wake, &overflow);

	if (*to_visit == NIL &&
		(overflow || TimestampDifferenceExceeds(*visited, now, revisit_ms)))
	{
		if (overflow)
			ereport(LOG,
					(errmsg("coupon: more databases have holds than coupon.max_pools, visiting every database")));
		*to_visit = all_databases();
		*visited = now;
	}
	if (!OidIsValid(dboid) && *to_visit != NIL)
	{
		dboid = linitial_oid(*to_visit);
		*to_visit = list_delete_first(*to_visit);
	}
	/* Done with this visit: wake for the next one. */
	if (*to_visit == NIL)
		*wake = Min(*wake, TimestampTzPlusMilliseconds(*visited, revisit_ms));
	return dboid;
}

/* A worker ended; if it did not finish its run, try again shortly. */
static void
launcher_reap(Oid dboid, TimestampTz started)
{
	coupon_due_reap(dboid, started, database_connectable(dboid),
					FAILED_RETRY_MS);
}

static bool
launcher_start(Oid dboid, BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	worker.bgw_main_arg = ObjectIdGetDatum(dboid);
	worker.bgw_notify_pid = MyProcPid;
	strlcpy(worker.bgw_library_name, "coupon", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "coupon_expiry_worker_main", BGW_MAXLEN);
	snprintf(worker.bgw_name, BGW_MAXLEN, "coupon expiry worker for database %u",
			 dboid);
	strlcpy(worker.bgw_type, "coupon expiry worker", BGW_MAXLEN);
	return RegisterDynamicBackgroundWorker(&worker, handle);
}

void
coupon_expiry_launcher_main(Datum arg)
{
	List	   *to_visit;
	TimestampTz visited;
	BackgroundWorkerHandle *running = NULL;
	Oid			running_db = InvalidOid;
	TimestampTz started = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	coupon_due_attach(MyLatch);

	to_visit = all_databases();
	visited = GetCurrentTimestamp();
	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		TimestampTz wake = TimestampTzPlusMilliseconds(now, LAUNCHER_IDLE_MS);
		pid_t		pid;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		if (running &&
			GetBackgroundWorkerPid(running, &pid) == BGWH_STOPPED)
		{
			launcher_reap(running_db, started);
			pfree(running);
			running = NULL;
		}
		if (running == NULL && coupon_expiry_workers)
		{
			Oid			dboid = launcher_next(&to_visit, &visited, now, &wake);

			if (OidIsValid(dboid) && launcher_start(dboid, &running))
			{
				running_db = dboid;
				started = now;
			}
			else if (OidIsValid(dboid))
			{
				/* No background worker slot free; try again shortly. */
				to_visit = lcons_oid(dboid, to_visit);
				wake = TimestampTzPlusMilliseconds(now, RETRY_MS);
			}
			if (to_visit != NIL && running == NULL)
				wake = Min(wake, TimestampTzPlusMilliseconds(now, RETRY_MS));
		}

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(TimestampDifferenceMilliseconds(now, wake), 1),
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* A step of a worker, run by worker_xact(). */
typedef void (*WorkerStep) (void *arg);

/*
 * Run step in a transaction of its own, as the owner of the ledger, in a
 * security-restricted operation; not at all if the database has no coupon
 * of version 1.1.  False if the step failed: then its error is logged
 * (with the pool, if any) and its transaction rolled back, as autovacuum
 * does with a table, so that one pool whose holds cannot be returned (an
 * AFTER trigger that fails, say) keeps no other pool waiting.
 */
static bool
worker_xact(WorkerStep step, void *arg, const char *pool)
{
	MemoryContext caller = CurrentMemoryContext;
	volatile bool done = true;

	StartTransactionCommand();
	PG_TRY();
	{
		Oid			schema;

		PushActiveSnapshot(GetTransactionSnapshot());
		schema = coupon_extension_schema();
		if (OidIsValid(schema))
			coupon_catalog_bind(schema);
		if (OidIsValid(schema) && coupon_catalog.lifecycle)
		{
			Oid			save_userid;
			int			save_sec_context;

			GetUserIdAndSecContext(&save_userid, &save_sec_context);
			SetUserIdAndSecContext(coupon_catalog.owner,
								   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
								   SECURITY_RESTRICTED_OPERATION);
			step(arg);
			SetUserIdAndSecContext(save_userid, save_sec_context);
		}
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(caller);
		if (pool)
			errcontext("returning the expired holds of coupon pool \"%s\"",
					   pool);
		EmitErrorReport();
		AbortOutOfAnyTransaction();
		FlushErrorState();
		RESUME_INTERRUPTS();
		done = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(caller);
	return done;
}

/* The pools with overdue holds, into *(List **) arg, kept past the commit. */
static void
step_overdue_pools(void *arg)
{
	MemoryContext xact = MemoryContextSwitchTo(TopMemoryContext);

	*(List **) arg = coupon_overdue_pools(EXPIRY_POOLS);
	MemoryContextSwitchTo(xact);
}

/* One pool's batch of overdue holds. */
typedef struct PoolBatch
{
	const char *pool;
	int64		returned;
} PoolBatch;

static void
step_expire_pool(void *arg)
{
	PoolBatch  *batch = (PoolBatch *) arg;
	CouponPoolKey key;

	coupon_make_key(&key, batch->pool);
	batch->returned = coupon_expire_overdue(&key, EXPIRY_BATCH, NULL);
}

/* The database's earliest expiry left, into *(TimestampTz *) arg. */
static void
step_next_expiry(void *arg)
{
	*(TimestampTz *) arg = coupon_next_expiry();
}

/*
 * Return the database's overdue holds, pool by pool (a transaction pins
 * the slot of each pool it changes, and there may be more pools than
 * slots), in batches, until none is left or the budget runs out.  Returns
 * when the worker should run again: at the next expiry; shortly if
 * overdue holds are left (locked by others, or the budget ran out); a
 * little later if a pool's holds could not be returned.
 */
static TimestampTz
worker_run(void)
{
	TimestampTz start = GetCurrentTimestamp();
	TimestampTz now;
	TimestampTz next = DT_NOEND;
	List	   *pools = NIL;
	bool		failed = false;
	ListCell   *lc;

	if (!worker_xact(step_overdue_pools, &pools, NULL))
		failed = true;
	foreach(lc, pools)
	{
		PoolBatch	batch = {lfirst(lc), 0};

		do
		{
			CHECK_FOR_INTERRUPTS();
			if (!worker_xact(step_expire_pool, &batch, batch.pool))
				failed = true;
		} while (batch.returned == EXPIRY_BATCH &&
				 !TimestampDifferenceExceeds(start, GetCurrentTimestamp(),
											 EXPIRY_BUDGET_MS));
	}
	if (!worker_xact(step_next_expiry, &next, NULL))
		failed = true;
	now = GetCurrentTimestamp();
	if (failed)
		return Min(next > now ? next : DT_NOEND,
				   TimestampTzPlusMilliseconds(now, POOL_FAILED_RETRY_MS));
	return next > now ? next : TimestampTzPlusMilliseconds(now, RETRY_MS);
}

void
coupon_expiry_worker_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	TimestampTz next;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET,
					PGC_S_OVERRIDE);

	next = worker_run();
	coupon_due_done(dboid, next);
	proc_exit(0);
}
