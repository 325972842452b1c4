/*-------------------------------------------------------------------------
 *
 * due.c
 *		When each database's next hold falls due: the expiry launcher's
 *		table, in shared memory.
 *
 * Floor: beside the semaphore, under the escrow; calls only the settings.
 * This is the one way the rest of the extension tells the expiry worker
 * (worker.c) about holds, and it points down: a transaction that makes a
 * hold, or moves its expiry, writes the hold's expiry here when it commits
 * (coupon_due_notify, from escrow.c), and a DROP DATABASE that commits
 * removes its database (coupon_due_forget); the launcher reads the table
 * (coupon_due_next), and it and its workers write down what they did
 * (coupon_due_reap, coupon_due_done).  Nothing here calls the worker; a
 * notice only sets the launcher's latch.
 *
 * The table has coupon.max_pools entries, one per database with live
 * holds.  A database that does not fit is remembered only as an overflow,
 * which makes the launcher visit every database.
 *
 * Note about locking: the table is protected by the second LWLock of the
 * "coupon" tranche (semaphore.c requests both); the launcher's latch
 * pointer too.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "due.h"
#include "settings.h"

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
coupon_due_shmem_request(Size *size)
{
	*size = add_size(*size, CACHELINEALIGN(worker_shmem_size()));
}

/* Called from coupon_shmem_startup(), with AddinShmemInitLock held. */
void
coupon_due_shmem_startup(void)
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
coupon_due_notify(Oid dboid, TimestampTz due)
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
coupon_due_forget(Oid dboid)
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

/* The launcher starts: notices set its latch until it exits. */
void
coupon_due_attach(Latch *launcher)
{
	LWLockAcquire(worker_shared->lock, LW_EXCLUSIVE);
	worker_shared->launcher = launcher;
	LWLockRelease(worker_shared->lock);
	on_shmem_exit(launcher_detach, (Datum) 0);
}

/*
 * The most overdue database, if it is due by now (its announcements are
 * then taken as seen); else InvalidOid, with *wake moved to the earliest
 * due time, if any.  *overflow says whether a database did not fit in the
 * table since the last call.
 */
Oid
coupon_due_next(TimestampTz now, TimestampTz *wake, bool *overflow)
{
	CouponDatabase *first = NULL;
	Oid			dboid = InvalidOid;

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
	*overflow = worker_shared->overflow;
	worker_shared->overflow = false;
	LWLockRelease(worker_shared->lock);
	return dboid;
}

/*
 * The worker of the database, started at started, ended: if it did not
 * write down its run, try again in retry_ms, or forget the database if it
 * takes no connections.
 */
void
coupon_due_reap(Oid dboid, TimestampTz started, bool connectable,
				int retry_ms)
{
	CouponDatabase *db;
	bool		failed;

	LWLockAcquire(worker_shared->lock, LW_EXCLUSIVE);
	db = database_entry(dboid, false);
	failed = db && db->due <= started;
	if (failed && !connectable)
		db->dboid = InvalidOid;
	else if (failed)
		db->due = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											  retry_ms);
	LWLockRelease(worker_shared->lock);
}

/*
 * The worker of the database finished its run: it should run again at
 * next (DT_NOEND: no hold left), or at the earliest expiry announced
 * meanwhile.
 */
void
coupon_due_done(Oid dboid, TimestampTz next)
{
	CouponDatabase *db;

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
}
