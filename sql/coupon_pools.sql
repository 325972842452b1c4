--
-- Pool administration: create, the idempotent repeat, resize, drop, and
-- the view.  After every step the pools must balance:
-- capacity = claimed + in_flight + available (invariant 1).
--
CREATE VIEW balance AS
SELECT pool, capacity, claimed, in_flight, available, per_customer,
       capacity = claimed + in_flight + available AS balanced
  FROM coupon_pools ORDER BY pool;

SELECT coupon_pool_create('spring', 5);
SELECT coupon_pool_create('spring', 5);       -- same settings: a no-op
SELECT coupon_pool_create('spring', 5, 1);    -- the default spelled out
SELECT coupon_pool_create('summer', 0, 3);    -- an empty pool is allowed
SELECT * FROM balance;

-- Growth is published when the transaction commits, not before.
BEGIN;
SELECT coupon_pool_resize('spring', 8);
SELECT capacity, available FROM coupon_pools WHERE pool = 'spring';
COMMIT;
SELECT * FROM balance WHERE pool = 'spring';

-- Growth rolled back never happened.
BEGIN;
SELECT coupon_pool_resize('spring', 100);
ROLLBACK;
SELECT * FROM balance WHERE pool = 'spring';

-- Shrinking takes permits at once and gives them back on rollback.
SELECT coupon_claim('spring', 'c' || i) FROM generate_series(1, 3) i;
BEGIN;
SELECT coupon_pool_resize('spring', 4);
SELECT capacity, claimed, in_flight, available FROM coupon_pools WHERE pool = 'spring';
ROLLBACK;
SELECT * FROM balance WHERE pool = 'spring';

-- Never below what is claimed...
SELECT coupon_pool_resize('spring', 2);
\echo :LAST_ERROR_SQLSTATE
SELECT coupon_pool_resize('spring', 3);
SELECT * FROM balance WHERE pool = 'spring';
SELECT coupon_claim('spring', 'c4');           -- sold out: NULL
-- ... or in flight.
BEGIN;
SELECT coupon_pool_resize('spring', 5);
COMMIT;
BEGIN;
SELECT coupon_claim('spring', 'c4') IS NOT NULL AS granted;
SELECT coupon_pool_resize('spring', 3);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT * FROM balance WHERE pool = 'spring';

-- A pool cannot be dropped while one of its claims is in flight.
BEGIN;
SELECT coupon_claim('spring', 'c5') IS NOT NULL AS granted;
SELECT coupon_pool_drop('spring');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT * FROM balance WHERE pool = 'spring';

-- A rolled-back drop changes nothing, and claims work again after it.
BEGIN;
SELECT coupon_pool_drop('spring');
SELECT count(*) FROM coupon_pools WHERE pool = 'spring';
ROLLBACK;
SELECT coupon_claim('spring', 'c6') IS NOT NULL AS granted;
SELECT * FROM balance WHERE pool = 'spring';

-- Dropping removes the pool and its ledger rows; a new pool of the same
-- name starts from its own, empty ledger.
SELECT coupon_pool_drop('spring');
SELECT count(*) AS ledger_rows FROM coupon_claims WHERE pool = 'spring';
SELECT * FROM balance;
SELECT coupon_pool_create('spring', 2);
SELECT * FROM balance WHERE pool = 'spring';
SELECT coupon_claim('spring', 'c1') > 0 AS granted;
SELECT * FROM balance WHERE pool = 'spring';

-- Names are text: quotes, spaces and unicode are fine.
SELECT coupon_pool_create('O''Brien "black" friday ☃', 1);
SELECT coupon_claim('O''Brien "black" friday ☃', 'zoë') > 0 AS granted;
SELECT * FROM balance WHERE pool LIKE 'O%';

-- The statistics count what happened since the pools were loaded.
SELECT pool, grants, sold_out, waits FROM coupon_pools ORDER BY pool;

-- Shared memory is filled from committed data only.  A pool created in
-- the transaction takes no claims before it commits, and a rollback leaves
-- nothing behind; resizing it is fine, its row is all there is.
BEGIN;
SELECT coupon_pool_create('fresh', 100);
SELECT coupon_claim('fresh', 'early');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT count(*) AS fresh_pools FROM coupon_pools WHERE pool = 'fresh';
BEGIN;
SELECT coupon_pool_create('fresh', 100);
SELECT coupon_pool_resize('fresh', 2);
COMMIT;
SELECT count(coupon_claim('fresh', 'c' || i)) AS granted FROM generate_series(1, 10) i;
SELECT * FROM balance WHERE pool = 'fresh';

-- Dropped and created anew in one transaction: no claims before commit.
BEGIN;
SELECT coupon_pool_drop('fresh');
SELECT coupon_pool_create('fresh', 5);
SELECT coupon_claim('fresh', 'again');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT * FROM balance WHERE pool = 'fresh';

-- A pool of capacity 0 is sold out, until it grows.
SELECT coupon_pool_create('closed', 0);
SELECT status FROM coupon_claim_detailed('closed', 'early', 1, '10 seconds');
SELECT coupon_pool_resize('closed', 1);
SELECT status FROM coupon_claim_detailed('closed', 'early');
SELECT * FROM balance WHERE pool = 'closed';

-- A drop holds its pool's slot until it commits: one pool per statement.
SELECT format('SELECT coupon_pool_drop(%L)', pool) FROM coupon_pools ORDER BY pool \gexec
SELECT count(*) FROM coupon_claims;
DROP VIEW balance;

-- DROP and CREATE EXTENSION in one transaction: the new extension's pools
-- never meet the shared memory of the old ones.
SELECT coupon_pool_create('redeploy', 100);
SELECT coupon_claim('redeploy', 'x') > 0 AS granted;
BEGIN;
DROP EXTENSION coupon;
CREATE EXTENSION coupon;
SELECT coupon_pool_create('redeploy', 1);
SAVEPOINT before_claim;
SELECT coupon_claim('redeploy', 'c1');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO before_claim;
COMMIT;
SELECT count(coupon_claim('redeploy', 'c' || i)) AS granted FROM generate_series(1, 5) i;
SELECT pool, capacity, claimed, in_flight, available FROM coupon_pools;
SELECT coupon_pool_drop('redeploy');
