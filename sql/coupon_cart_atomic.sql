--
-- A cart is all or nothing: a cart whose last line cannot be granted (its
-- pool sold out, or the customer at its limit there) leaves every earlier
-- pool exactly as it was, inside the cart's transaction (nothing in
-- flight) and after it (available, claimed, the ledger), for claims and
-- holds alike.  (A line that waits and times out needs a second session:
-- specs/cart_all_or_nothing.spec.)
--
-- Pools, in the order a cart claims them (by name): ka and kb, then the
-- last one, kz.
CREATE FUNCTION pg_temp.pools() RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(format('%s: claimed %s, in_flight %s, available %s',
                           pool, claimed, in_flight, available), E'\n' ORDER BY pool)
    FROM coupon_pools WHERE pool IN ('ka', 'kb', 'kz')
$$;
-- Every ledger row of these pools, and the claim id sequence.
\getenv abs_srcdir PG_ABS_SRCDIR
\set helpers :abs_srcdir '/sql/include/ledger_helpers.sql'
\i :helpers
SELECT coupon_pool_create('ka', 5), coupon_pool_create('kb', 5, 2),
       coupon_pool_create('kz', 1);
-- kz's one coupon goes to another customer: kz is sold out.
SELECT coupon_claim('kz', 'other') IS NOT NULL AS kz_taken;
SELECT pg_temp.pools() AS before_pools, pg_temp.ledger('{ka,kb,kz}') AS before_ledger \gset

-- Sold out on the last line, a claim and a hold; nothing in flight in the
-- cart's own transaction, nothing changed after it.
BEGIN;
SELECT * FROM coupon_claim_cart_detailed('{ka,kb,kz}', '{1,2,1}', 'cust');
SELECT pg_temp.pools() = :'before_pools' AS unchanged_in_transaction;
SELECT coupon_claim_cart('{kb,ka,kz}', '{1,1,1}', 'cust', '10 min') IS NULL AS hold_refused;
SELECT pg_temp.pools() = :'before_pools' AS unchanged_in_transaction;
COMMIT;
SELECT pg_temp.pools() = :'before_pools' AS unchanged,
       pg_temp.ledger('{ka,kb,kz}') = :'before_ledger' AS ledger_unchanged;
SELECT pg_temp.pools();

-- The customer's limit on the last line: "other" holds kz's coupon
-- already (a repeat for a claim alone, the limit for a cart).
BEGIN;
SELECT * FROM coupon_claim_cart_detailed('{ka,kz,kb}', '{1,1,1}', 'other');
SELECT pg_temp.pools() = :'before_pools' AS unchanged_in_transaction;
SELECT * FROM coupon_claim_cart_detailed('{ka,kb,kz}', '{1,1,1}', 'other', '10 min');
SELECT pg_temp.pools() = :'before_pools' AS unchanged_in_transaction;
COMMIT;
SELECT pg_temp.pools() = :'before_pools' AS unchanged,
       pg_temp.ledger('{ka,kb,kz}') = :'before_ledger' AS ledger_unchanged;

-- The same carts in autocommit, with a request id: nothing is written, and
-- the request id is still free for a cart that can be granted.
SELECT * FROM coupon_claim_cart_detailed('{ka,kb,kz}', '{1,1,1}', 'other', NULL, '0', 'cart-1');
SELECT * FROM coupon_claim_cart_detailed('{ka,kb,kz}', '{1,1,1}', 'cust', NULL, '0', 'cart-2');
SELECT pg_temp.pools() = :'before_pools' AS unchanged,
       pg_temp.ledger('{ka,kb,kz}') = :'before_ledger' AS ledger_unchanged;
SELECT coupon_claim_cart('{ka,kb}', '{1,1}', 'cust', NULL, '0', 'cart-2') IS NOT NULL AS granted;
SELECT pg_temp.pools();

-- A cart that fails in a savepoint of a transaction that then claims and
-- commits: only the later claim is in the pools.
BEGIN;
SAVEPOINT s;
SELECT (coupon_claim_cart_detailed('{ka,kb,kz}', '{1,1,1}', 'dora')).status;
RELEASE s;
SELECT coupon_claim('ka', 'dora') IS NOT NULL AS granted;
COMMIT;
SELECT pg_temp.pools();

SELECT coupon_pool_drop('ka'), coupon_pool_drop('kb'), coupon_pool_drop('kz');
