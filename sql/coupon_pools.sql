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

SELECT coupon_pool_drop(pool) FROM coupon_pools;
SELECT count(*) FROM coupon_claims;
DROP VIEW balance;
