--
-- coupon.max_pools is the size of a cache, never a limit on what a user
-- can do: one transaction drops more pools than the temporary instance
-- has slots (8), some loaded (claimed from), some never used, and any
-- number of times in a row.
--
SELECT count(coupon_pool_create('drop' || g, 10)) FROM generate_series(1, 20) g;
-- Half of them loaded and claimed from, one transaction each (claims in
-- flight keep their slots): 10 pools, more than the slots.
SELECT format('SELECT coupon_claim(%L, %L) IS NOT NULL AS granted', 'drop' || g, 'cust')
  FROM generate_series(1, 20, 2) g \gexec
BEGIN;
SELECT count(*) AS dropped
  FROM (SELECT coupon_pool_drop(name) FROM coupon_pool WHERE name LIKE 'drop%') d;
-- Gone for this transaction; a claim says so.
SELECT count(*) AS left_in_transaction FROM coupon_pools WHERE pool LIKE 'drop%';
\set VERBOSITY sqlstate
SELECT coupon_claim('drop1', 'cust');
\set VERBOSITY default
ROLLBACK;
-- Rolled back: every pool and its claims are there, and claims go on.
SELECT count(*) AS pools, sum(claimed) AS claimed, sum(available) AS available
  FROM coupon_pools WHERE pool LIKE 'drop%';
SELECT format('SELECT coupon_claim(%L, %L) IS NOT NULL AS granted', 'drop' || g, 'dora')
  FROM generate_series(1, 20, 7) g \gexec
-- Dropped and committed, then a new pool of one of the names starts empty.
SELECT count(*) AS dropped
  FROM (SELECT coupon_pool_drop(name) FROM coupon_pool WHERE name LIKE 'drop%') d;
SELECT count(*) AS pools_left FROM coupon_pools WHERE pool LIKE 'drop%';
SELECT count(*) AS claims_left FROM coupon_claims WHERE pool LIKE 'drop%';
SELECT coupon_pool_create('drop3', 2);
SELECT coupon_claim('drop3', 'cust') IS NOT NULL AS granted;
SELECT pool, claimed, in_flight, available FROM coupon_pools WHERE pool = 'drop3';
SELECT coupon_pool_drop('drop3');
