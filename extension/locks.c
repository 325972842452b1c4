/*-------------------------------------------------------------------------
 *
 * locks.c
 *		The customer lock and the request-id lock.
 *
 * A claim takes its customer's lock before it looks at what the customer
 * holds, and keeps it to the end of the transaction, like a row lock: the
 * same customer claiming from several sessions at once is served one at a
 * time, and the second sees the first one's claim.  A claim with a request
 * id first takes the request's lock, so that two calls with one request id
 * are served one after the other and the second finds the first's claim
 * (or its absence, after a rollback).
 *
 * Both are transaction-level advisory locks (lock class distinct from
 * pg_advisory_lock()'s), so the deadlock detector sees them and they show
 * in pg_locks.  Their tags are not a plain hash of the pool and the
 * customer: anyone can read pg_locks, in any database, and could test
 * guesses of who is claiming.  The tag is an HMAC-SHA-256 of them, keyed
 * by a random secret that the server draws at every start (semaphore.c);
 * the locks live no longer than the server, so the tags need no longer
 * stability than that.
 *
 * Note about locking: the locks are the heavyweight lock manager's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hmac.h"
#include "common/sha2.h"
#include "miscadmin.h"
#include "storage/lock.h"

#include "coupon.h"

/* Lock classes (field4 of the tag); pg_advisory_lock() uses 1 and 2. */
#define COUPON_CUSTOMER_LOCK_CLASS	0x0C0F
#define COUPON_REQUEST_LOCK_CLASS	0x0C10

/* The tag of the lock on (scope, name) in class lock_class. */
static void
lock_tag(LOCKTAG *tag, uint16 lock_class, const char *scope, const char *name)
{
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	uint8		header[2] = {(uint8) (lock_class >> 8), (uint8) lock_class};
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);
	uint32		hi;
	uint32		lo;

	if (ctx == NULL ||
		pg_hmac_init(ctx, coupon_secret(), 32) < 0 ||
		pg_hmac_update(ctx, header, sizeof(header)) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) scope, strlen(scope) + 1) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) name, strlen(name)) < 0 ||
		pg_hmac_final(ctx, digest, sizeof(digest)) < 0)
		elog(ERROR, "could not compute a coupon lock tag: %s",
			 ctx ? pg_hmac_error(ctx) : "out of memory");
	pg_hmac_free(ctx);
	memcpy(&hi, digest, sizeof(hi));
	memcpy(&lo, digest + sizeof(hi), sizeof(lo));
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, hi, lo, lock_class);
}

/*
 * Take the customer's lock on the pool until the transaction ends.  Returns
 * false if the transaction held it already.
 */
bool
coupon_lock_customer(const CouponPoolKey *key, const char *customer)
{
	LOCKTAG		tag;

	lock_tag(&tag, COUPON_CUSTOMER_LOCK_CLASS, key->name, customer);
	return LockAcquire(&tag, ExclusiveLock, false, false) == LOCKACQUIRE_OK;
}

/* Let go of the customer's lock (taken by this call) early. */
void
coupon_unlock_customer(const CouponPoolKey *key, const char *customer)
{
	LOCKTAG		tag;

	lock_tag(&tag, COUPON_CUSTOMER_LOCK_CLASS, key->name, customer);
	LockRelease(&tag, ExclusiveLock, false);
}

/*
 * Take the lock of a request id until the transaction ends.  scope is the
 * pool's name, or "" for a cart (no pool has an empty name).
 */
void
coupon_lock_request(const char *scope, const char *request_id)
{
	LOCKTAG		tag;

	lock_tag(&tag, COUPON_REQUEST_LOCK_CLASS, scope, request_id);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}
