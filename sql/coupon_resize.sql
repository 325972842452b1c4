--
-- Capacity changes count the transaction's own pending changes: a shrink
-- may take back growth the same transaction made, and a claim may use the
-- coupons the same transaction released or added.  Each step is checked
-- against the invariant capacity = claimed + in_flight + available.
--
CREATE FUNCTION pg_temp.balanced(p text) RETURNS text LANGUAGE sql AS $$
  SELECT format('capacity %s, claimed %s, in_flight %s, available %s, balanced %s',
                capacity, claimed, in_flight, available,
                capacity = claimed + in_flight + available)
    FROM coupon_pools WHERE pool = p
$$;

SELECT coupon_pool_create('grow', 5);
SELECT count(coupon_claim('grow', 'c' || g)) AS granted FROM generate_series(1, 5) g;
SELECT pg_temp.balanced('grow');

-- Grow then shrink in one transaction, on a full pool: the shrink takes
-- back part of the transaction's own growth.
BEGIN;
SELECT coupon_pool_resize('grow', 20);
SELECT coupon_pool_resize('grow', 15);
SELECT in_flight, available FROM coupon_pool_memory() WHERE pool = 'grow';
COMMIT;
SELECT pg_temp.balanced('grow');

-- A shrink rolled back to a savepoint gives its growth back.
BEGIN;
SELECT coupon_pool_resize('grow', 30);
SAVEPOINT s;
SELECT coupon_pool_resize('grow', 16);
ROLLBACK TO s;
COMMIT;
SELECT pg_temp.balanced('grow');

-- Own growth does not let a shrink go below what is claimed.
BEGIN;
SELECT coupon_pool_resize('grow', 40);
SELECT coupon_pool_resize('grow', 4);
ROLLBACK;
SELECT pg_temp.balanced('grow');

-- Shrink then grow in one transaction.
BEGIN;
SELECT coupon_pool_resize('grow', 10);
SELECT coupon_pool_resize('grow', 12);
COMMIT;
SELECT pg_temp.balanced('grow');

-- A full pool grown by one in a transaction: a claim in the same
-- transaction uses the new coupon; rolled back, both are undone.
SELECT coupon_pool_create('tight', 1);
SELECT coupon_claim('tight', 'first') IS NOT NULL AS granted;
BEGIN;
SELECT coupon_pool_resize('tight', 2);
SELECT status, claim_id IS NOT NULL AS has_id FROM coupon_claim_detailed('tight', 'second');
SELECT in_flight, available FROM coupon_pool_memory() WHERE pool = 'tight';
ROLLBACK;
SELECT pg_temp.balanced('tight');
BEGIN;
SELECT coupon_pool_resize('tight', 2);
SELECT coupon_claim('tight', 'second') IS NOT NULL AS granted;
COMMIT;
SELECT pg_temp.balanced('tight');

-- A release and a claim in one transaction on a sold-out pool: the claim
-- gets the released coupon; committed, the coupon changed hands.
SELECT status FROM coupon_claim_detailed('tight', 'third');
BEGIN;
SELECT coupon_release(id) FROM coupon_claims WHERE pool = 'tight' AND customer = 'first';
SELECT status FROM coupon_claim_detailed('tight', 'third');
COMMIT;
SELECT pg_temp.balanced('tight');
SELECT customer, released_at IS NOT NULL AS released
  FROM coupon_claims WHERE pool = 'tight' ORDER BY id;

SELECT coupon_pool_drop(pool) FROM coupon_pools WHERE pool IN ('grow', 'tight');
