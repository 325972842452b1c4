--
-- Shared memory holds coupon.max_pools pools at a time, of all databases.
-- A pool with nothing in flight and no claimer waiting is evicted when
-- room is needed, and loaded again from the committed ledger on its next
-- use: available = capacity - claimed, released claims not counted.  A bad
-- claim loads nothing.  Only when every slot is held by a transaction that
-- has changes in flight is there no room (53400).
--
SELECT current_setting('coupon.max_pools')::int AS max_pools \gset
SELECT :max_pools <= 64 AS small_enough_to_fill;

-- 10 coupons; 4 claimed, then 2 of those released.
SELECT coupon_pool_create('reload', 10);
SELECT count(coupon_claim('reload', 'r' || g)) AS granted FROM generate_series(1, 4) g;
SELECT count(coupon_release(id)) AS released
  FROM coupon_claims WHERE pool = 'reload' AND customer IN ('r1', 'r2');
SELECT available, in_flight FROM coupon_pool_memory() WHERE pool = 'reload';

-- Use max_pools other pools: 'reload' is evicted to make room.
SELECT count(coupon_pool_create('other' || g, 3)) = :max_pools AS all_created
  FROM generate_series(1, :max_pools) g;
SELECT count(coupon_claim('other' || g, 'x')) = :max_pools AS all_granted
  FROM generate_series(1, :max_pools) g;
SELECT count(*) AS reload_in_memory FROM coupon_pool_memory() WHERE pool = 'reload';

-- Loaded again from the ledger: 10 - 2 live claims = 8, and this claim
-- takes one.
SELECT status, available FROM coupon_claim_detailed('reload', 'r5');
SELECT capacity, claimed, in_flight, available FROM coupon_pools WHERE pool = 'reload';

-- A claim that asks for more than the pool allows is refused before
-- anything is loaded.
SELECT count(coupon_claim('other' || g, 'y')) = :max_pools AS all_granted
  FROM generate_series(1, :max_pools) g;
SELECT count(*) AS reload_in_memory FROM coupon_pool_memory() WHERE pool = 'reload';
\set VERBOSITY terse
SELECT coupon_claim('reload', 'greedy', 11);
SELECT coupon_claim('reload', 'greedy', 2);
\set VERBOSITY default
SELECT count(*) AS reload_in_memory FROM coupon_pool_memory() WHERE pool = 'reload';

-- One transaction holding changes of every slot's pool: the next pool
-- finds no room.  Rolled back, everything is as it was.
BEGIN;
SELECT count(coupon_claim('other' || g, 'z')) = :max_pools AS all_granted
  FROM generate_series(1, :max_pools) g;
SAVEPOINT full_table;
\set VERBOSITY terse
SELECT coupon_claim('reload', 'r6');
\set VERBOSITY default
ROLLBACK TO full_table;
ROLLBACK;
SELECT count(*) AS unbalanced FROM coupon_pools
 WHERE capacity <> claimed + in_flight + available OR in_flight <> 0;
SELECT capacity, claimed, available FROM coupon_pools WHERE pool = 'reload';

-- A drop holds its pool's slot until its transaction ends: one at a time.
\set ECHO none
\o /dev/null
SELECT format('SELECT coupon_pool_drop(%L)', pool) FROM coupon_pools
 WHERE pool = 'reload' OR pool LIKE 'other%' ORDER BY pool \gexec
\o
\set ECHO all
SELECT count(*) AS pools_left FROM coupon_pools;
