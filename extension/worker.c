/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The background workers that return expired holds to their pools.
 *
 * A launcher, registered when the library is preloaded (nothing else to
 * configure), starts after recovery and keeps, in shared memory, for every
 * database with live holds, the time its next hold expires.  At that time
 * it starts a worker for the database, one at a time: the worker connects,
 * returns the overdue holds in small batches (one transaction per batch,
 * FOR UPDATE SKIP LOCKED, lifecycle.c), writes down when the database's
 * next hold expires, and exits.  A worker lives for milliseconds, so it
 * never keeps a database from being dropped (DROP DATABASE waits a few
 * seconds for other sessions to leave), and one worker serves any number of
 * databases without a process per database.
 *
 * Who tells the launcher: a transaction that makes a hold, or moves its
 * expiry, announces it when it commits (escrow.c); at its start the
 * launcher visits every database once, so that holds that outlived a
 * restart or a crash are returned, expired ones at once.  A database that
 * is dropped is forgotten when the drop commits; a database whose
 * extension is dropped has no holds left and drops out by itself.  A
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
 * Note about locking: the table of databases is protected by the second
 * LWLock of the "coupon" tranche; the launcher's latch pointer too.
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
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "coupon.h"

#define EXPIRY_BATCH		100 /* holds per transaction */
#define EXPIRY_BUDGET_MS	2000	/* a worker's run before it yields */
#define RETRY_MS			1000	/* overdue holds locked by others */
#define FAILED_RETRY_MS		2000	/* a worker that did not finish */
#define LAUNCHER_IDLE_MS	60000	/* the launcher looks around this often */

PGDLLEXPORT void coupon_expiry_launcher_main(Datum arg);
PGDLLEXPORT void coupon_expiry_worker_main(Datum arg);

/* A database with live holds. */
typedef struct CouponDatabase
{
	Oid			dboid;			/* InvalidOid: a free entry */
	TimestampTz due;			/* its worker's next run */
	TimestampTz announced;		/* earliest expiry announced during a run */
} CouponDatabase;

typedef struct CouponWorkerShared
{
	LWLock	   *lock;
	Latch	   *launcher;		/* NULL while no launcher runs */
	bool		overflow;		/* a database did not fit in the table */
	int			size;
	CouponDatabase databases[FLEXIBLE_ARRAY_MEMBER];
} CouponWorkerShared;

static CouponWorkerShared *worker_shared = NULL;

static Size
worker_shmem_size(void)
{
	return add_size(offsetof(CouponWorkerShared, databases),
					mul_size(coupon_max_pools, sizeof(CouponDatabase)));
}

/* Called from coupon_shmem_request(). */
void
coupon_worker_shmem_request(Size *size)
{
	*size = add_size(*size, CACHELINEALIGN(worker_shmem_size()));
}

/* Called from coupon_shmem_startup(), with AddinShmemInitLock held. */
void
coupon_worker_shmem_startup(void)
{
	bool		found;

	worker_shared = ShmemInitStruct("coupon expiry", worker_shmem_size(),
									&found);
	if (!found)
	{
		memset(worker_shared, 0, worker_shmem_size());
		worker_shared->lock = &(GetNamedLWLockTranche("coupon"))[1].lock;
		worker_shared->size = coupon_max_pools;
	}
}

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

/* The entry of a database; with create, a new one if there is none. */
static CouponDatabase *
database_entry(Oid dboid, bool create)
{
	CouponDatabase *free_entry = NULL;

	for (int i = 0; i < worker_shared->size; i++)
	{
		CouponDatabase *db = &worker_shared->databases[i];

		if (db->dboid == dboid)
			return db;
		if (free_entry == NULL && !OidIsValid(db->dboid))
			free_entry = db;
	}
	if (!create)
		return NULL;
	if (free_entry == NULL)
	{
		worker_shared->overflow = true;
		return NULL;
	}
	free_entry->dboid = dboid;
	free_entry->due = DT_NOEND;
	free_entry->announced = DT_NOEND;
	return free_entry;
}

/*
 * A hold of the database expires at due (a transaction that made it has
 * committed): make sure its worker runs then.
 */
void
coupon_worker_notify(Oid dboid, TimestampTz due)
{
	CouponDatabase *db;
	Latch	   *launcher;

	if (worker_shared == NULL)
		return;
	LWLockAcquire(worker_shared->lock, LW_EXCLUSIVE);
	db = database_entry(dboid, true);
	if (db)
	{
		db->due = Min(db->due, due);
		db->announced = Min(db->announced, due);
	}
	launcher = worker_shared->launcher;
	LWLockRelease(worker_shared->lock);
	if (launcher)
		SetLatch(launcher);
}

/* The database was dropped. */
void
coupon_worker_forget(Oid dboid)
{
	CouponDatabase *db;

	if (worker_shared == NULL)
		return;
	LWLockAcquire(worker_shared->lock, LW_EXCLUSIVE);
	db = database_entry(dboid, false);
	if (db)
		db->dboid = InvalidOid;
	LWLockRelease(worker_shared->lock);
}

static void
launcher_detach(int code, Datum arg)
{
	LWLockAcquire(worker_shared->lock, LW_EXCLUSIVE);
	worker_shared->launcher = NULL;
	LWLockRelease(worker_shared->lock);
}

/* Every database that takes connections, to visit once. */
static List *
all_databases(void)
{
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
			dboids = lappend_oid(dboids, db->oid);
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
 * a database did not fit in the table, every database is visited again.
 */
static Oid
launcher_next(List **to_visit, TimestampTz now, TimestampTz *wake)
{
	CouponDatabase *first = NULL;
	Oid			dboid = InvalidOid;
	bool		overflow;

	LWLockAcquire(worker_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < worker_shared->size; i++)
	{
		CouponDatabase *db = &worker_shared->databases[i];

		if (OidIsValid(db->dboid) && (first == NULL || db->due < first->due))
			first = db;
	}
	if (first && first->due <= now)
	{
		dboid = first->dboid;
		first->announced = DT_NOEND;
	}
	else if (first)
		*wake = Min(*wake, first->due);
	overflow = worker_shared->overflow;
	worker_shared->overflow = false;
	LWLockRelease(worker_shared->lock);

	if (overflow && *to_visit == NIL)
	{
		ereport(LOG,
				(errmsg("coupon: more databases have holds than coupon.max_pools, visiting every database")));
		*to_visit = all_databases();
	}
	if (!OidIsValid(dboid) && *to_visit != NIL)
	{
		dboid = linitial_oid(*to_visit);
		*to_visit = list_delete_first(*to_visit);
	}
	return dboid;
}

/* A worker ended; if it did not finish its run, try again shortly. */
static void
launcher_reap(Oid dboid, TimestampTz started)
{
	CouponDatabase *db;
	bool		failed;
	bool		connectable = database_connectable(dboid);

	LWLockAcquire(worker_shared->lock, LW_EXCLUSIVE);
	db = database_entry(dboid, false);
	failed = db && db->due <= started;
	if (failed && !connectable)
		db->dboid = InvalidOid;
	else if (failed)
		db->due = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											  FAILED_RETRY_MS);
	LWLockRelease(worker_shared->lock);
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
	BackgroundWorkerHandle *running = NULL;
	Oid			running_db = InvalidOid;
	TimestampTz started = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	LWLockAcquire(worker_shared->lock, LW_EXCLUSIVE);
	worker_shared->launcher = MyLatch;
	LWLockRelease(worker_shared->lock);
	on_shmem_exit(launcher_detach, (Datum) 0);

	to_visit = all_databases();
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
			Oid			dboid = launcher_next(&to_visit, now, &wake);

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

/*
 * One transaction of a worker: return up to EXPIRY_BATCH overdue holds, as
 * the owner of the ledger.  Returns the number returned; *next the
 * database's earliest expiry left (DT_NOEND if none, or if the database
 * has no coupon of version 1.1).
 */
static int64
worker_batch(TimestampTz *next)
{
	Oid			schema;
	int64		expired = 0;

	*next = DT_NOEND;
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	schema = coupon_extension_schema();
	if (OidIsValid(schema))
	{
		coupon_catalog_bind(schema);
		if (coupon_catalog.lifecycle)
		{
			Oid			save_userid;
			int			save_sec_context;

			GetUserIdAndSecContext(&save_userid, &save_sec_context);
			SetUserIdAndSecContext(coupon_catalog.owner,
								   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
								   SECURITY_RESTRICTED_OPERATION);
			expired = coupon_expire_overdue(NULL, EXPIRY_BATCH, NULL);
			*next = coupon_next_expiry();
			SetUserIdAndSecContext(save_userid, save_sec_context);
		}
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	return expired;
}

void
coupon_expiry_worker_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	TimestampTz start;
	TimestampTz next;
	CouponDatabase *db;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET,
					PGC_S_OVERRIDE);

	start = GetCurrentTimestamp();
	while (worker_batch(&next) == EXPIRY_BATCH &&
		   !TimestampDifferenceExceeds(start, GetCurrentTimestamp(),
									   EXPIRY_BUDGET_MS))
		CHECK_FOR_INTERRUPTS();

	/* Overdue holds left are locked by others, or the budget ran out. */
	if (next <= GetCurrentTimestamp())
		next = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), RETRY_MS);

	LWLockAcquire(worker_shared->lock, LW_EXCLUSIVE);
	db = database_entry(dboid, next != DT_NOEND);
	if (db)
	{
		db->due = Min(next, db->announced);
		db->announced = DT_NOEND;
		if (db->due == DT_NOEND)
			db->dboid = InvalidOid;
	}
	LWLockRelease(worker_shared->lock);
	proc_exit(0);
}
