/*-------------------------------------------------------------------------
 *
 * locks.c
 *		The customer lock and the request-id lock.
 *
 * Floor: beside load.c and ledger.c.  Calls only the semaphore (its
 * secret).
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
 * guesses of who is claiming.  The tag is SipHash-2-4 of them (Aumasson and
 * Bernstein, 2012: the keyed pseudorandom function that hash tables use
 * against attackers who see outputs and choose inputs), keyed by a random
 * secret that the server draws at every start (semaphore.c); the locks
 * live no longer than the server, so the tags need no longer stability
 * than that.  It costs a few dozen nanoseconds on the claim path, where an
 * HMAC through OpenSSL cost microseconds.
 *
 * A claim also takes its pool's lock, in a mode that all claims share,
 * and a transaction past COUPON_CUSTOMER_LOCKS_MAX customer locks takes
 * the pool's lock exclusively in place of further customer locks, so that
 * no transaction fills the server's shared lock table (campaign issuance
 * of a million customers in one statement); see coupon_lock_customer().
 *
 * Note about locking: the locks are the heavyweight lock manager's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/lock.h"

#include "common.h"
#include "compat.h"
#include "locks.h"
#include "semaphore.h"

/* Lock classes (field4 of the tag); pg_advisory_lock() uses 1 and 2. */
#define COUPON_CUSTOMER_LOCK_CLASS	0x0C0F
#define COUPON_REQUEST_LOCK_CLASS	0x0C10
#define COUPON_POOL_LOCK_CLASS		0x0C11

/* Customer locks a transaction takes one by one (see coupon_lock_customer). */
#define COUPON_CUSTOMER_LOCKS_MAX	1000

#define ROTL64(x, b)	(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND(v0, v1, v2, v3) \
	do { \
		v0 += v1; v1 = ROTL64(v1, 13); v1 ^= v0; v0 = ROTL64(v0, 32); \
		v2 += v3; v3 = ROTL64(v3, 16); v3 ^= v2; \
		v0 += v3; v3 = ROTL64(v3, 21); v3 ^= v0; \
		v2 += v1; v1 = ROTL64(v1, 17); v1 ^= v2; v2 = ROTL64(v2, 32); \
	} while (0)

static uint64
load_le64(const uint8 *p)
{
	uint64		v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/*
 * SipHash-2-4, keyed by the 16 bytes at key, of the concatenation of n
 * buffers.  (Key 00..0f and message 00..0e give a129ca6149be45e5, the
 * example of the SipHash paper.)
 */
static uint64
siphash24(const uint8 *key, const uint8 *const *parts, const size_t *lens,
		  int n)
{
	uint64		k0 = load_le64(key);
	uint64		k1 = load_le64(key + 8);
	uint64		v0 = k0 ^ UINT64CONST(0x736f6d6570736575);
	uint64		v1 = k1 ^ UINT64CONST(0x646f72616e646f6d);
	uint64		v2 = k0 ^ UINT64CONST(0x6c7967656e657261);
	uint64		v3 = k1 ^ UINT64CONST(0x7465646279746573);
	uint8		block[8];
	int			fill = 0;
	uint64		total = 0;
	uint64		m;

	for (int p = 0; p < n; p++)
	{
		for (size_t i = 0; i < lens[p]; i++)
		{
			block[fill++] = parts[p][i];
			total++;
			if (fill == 8)
			{
				m = load_le64(block);
				v3 ^= m;
				SIPROUND(v0, v1, v2, v3);
				SIPROUND(v0, v1, v2, v3);
				v0 ^= m;
				fill = 0;
			}
		}
	}
	m = total << 56;
	for (int i = fill - 1; i >= 0; i--)
		m |= (uint64) block[i] << (8 * i);
	v3 ^= m;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	v0 ^= m;
	v2 ^= 0xff;
	for (int i = 0; i < 4; i++)
		SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/* The tag of the lock on (scope, name) in class lock_class. */
static void
lock_tag(LOCKTAG *tag, uint16 lock_class, const char *scope, const char *name)
{
	uint8		header[2] = {(uint8) (lock_class >> 8), (uint8) lock_class};
	const uint8 *parts[3] = {header, (const uint8 *) scope,
	(const uint8 *) name};
	size_t		lens[3] = {sizeof(header), strlen(scope) + 1, strlen(name)};
	uint64		hash = siphash24(coupon_secret(), parts, lens, 3);

	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) (hash >> 32),
						 (uint32) hash, lock_class);
}

/*
 * Take the customer's lock on the pool until the transaction ends.  Returns
 * false if the transaction held it already, or holds the whole pool's.
 *
 * A transaction's first COUPON_CUSTOMER_LOCKS_MAX customer locks are taken
 * one by one, each under the pool's lock in RowExclusiveLock (which any
 * number of transactions share); past that, the transaction takes the
 * pool's lock in ExclusiveLock instead, which stands for every customer of
 * the pool: it waits for the transactions that hold customer locks of the
 * pool, and they, and later ones, wait for it.  So one transaction never
 * holds more than that many customer locks, plus two per pool, in the
 * server's shared lock table, however many customers it claims for.  The
 * count is of the top-level transaction whose local id is noted; locks a
 * rolled-back savepoint let go of stay counted, which only makes the
 * transaction take the pool's lock sooner.
 */
bool
coupon_lock_customer(const CouponPoolKey *key, const char *customer)
{
	static LocalTransactionId counted_xact = InvalidLocalTransactionId;
	static int	customer_locks = 0;
	LOCKTAG		pool_tag;
	LOCKTAG		tag;

	if (counted_xact != coupon_local_xid())
	{
		counted_xact = coupon_local_xid();
		customer_locks = 0;
	}
	lock_tag(&pool_tag, COUPON_POOL_LOCK_CLASS, key->name, "");
	if (customer_locks >= COUPON_CUSTOMER_LOCKS_MAX)
	{
		(void) LockAcquire(&pool_tag, ExclusiveLock, false, false);
		return false;
	}
	(void) LockAcquire(&pool_tag, RowExclusiveLock, false, false);
	lock_tag(&tag, COUPON_CUSTOMER_LOCK_CLASS, key->name, customer);
	if (LockAcquire(&tag, ExclusiveLock, false, false) != LOCKACQUIRE_OK)
		return false;
	customer_locks++;
	return true;
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
