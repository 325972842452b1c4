--
-- Every request id is the caller's.  A cart's claims are not written with
-- request ids of their own ("R/1", "R/2", ... in 1.2): a single claim or
-- hold with request id "R/1" and line 1 of cart "R" are two requests,
-- whichever comes first, and each repeat answers with its own claims.
--
CREATE FUNCTION pg_temp.balanced() RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(format('%s: claimed %s, in_flight %s, available %s, balanced %s',
                           pool, claimed, in_flight, available,
                           capacity = claimed + in_flight + available), E'\n' ORDER BY pool)
    FROM coupon_pools WHERE pool IN ('ra', 'rb')
$$;
SELECT coupon_pool_create('ra', 20, 5), coupon_pool_create('rb', 20, 5);

-- Cart "R" first (its line 1 is pool ra, line 2 pool rb), then single
-- claims "R/1" and "R/2" in those pools, for the same customer and qty:
-- new claims, not the cart's.
SELECT coupon_claim_cart('{ra,rb}', '{1,1}', 'cust', NULL, '0', 'R') AS cart \gset
SELECT claim_id, status FROM coupon_claim_detailed('ra', 'cust', 1, '0', 'R/1') \gset r1_
SELECT claim_id, status FROM coupon_claim_detailed('rb', 'cust', 1, '0', 'R/2') \gset r2_
SELECT :'r1_status' AS r1_status, :'r2_status' AS r2_status,
       :'r1_claim_id' NOT IN ((:'cart'::bigint[])[1]::text, (:'cart'::bigint[])[2]::text)
         AS r1_not_a_cart_claim,
       :'r2_claim_id' NOT IN ((:'cart'::bigint[])[1]::text, (:'cart'::bigint[])[2]::text)
         AS r2_not_a_cart_claim;
-- In another pool, "R/1" is another request again.
SELECT status FROM coupon_claim_detailed('rb', 'other', 1, '0', 'R/1');
-- Each repeat answers with its own claim: the cart with the cart's, in the
-- order of its lines, the single claims with theirs.
SELECT claim_ids = ARRAY[(:'cart'::bigint[])[2], (:'cart'::bigint[])[1]] AS cart_repeat, status
  FROM coupon_claim_cart_detailed('{rb,ra}', '{1,1}', 'cust', NULL, '0', 'R');
SELECT coupon_claim('ra', 'cust', 1, '0', 'R/1') = :r1_claim_id AS r1_repeat,
       coupon_claim('rb', 'cust', 1, '0', 'R/2') = :r2_claim_id AS r2_repeat;
SELECT count(*) AS cust_claims_of_ra FROM coupon_claims
 WHERE pool = 'ra' AND customer = 'cust' AND released_at IS NULL;

-- The other order: single claims "S/1" and "S/2" first, then cart "S" of
-- the same pools, customer and quantities.
SELECT coupon_claim('ra', 'dora', 1, '0', 'S/1') AS s1,
       coupon_claim('rb', 'dora', 1, '0', 'S/2') AS s2 \gset
SELECT claim_ids IS NOT NULL AND NOT (claim_ids && ARRAY[:s1, :s2]::bigint[]) AS new_claims,
       status
  FROM coupon_claim_cart_detailed('{ra,rb}', '{1,1}', 'dora', NULL, '0', 'S');
SELECT coupon_claim_cart('{ra,rb}', '{1,1}', 'dora', NULL, '0', 'S') && ARRAY[:s1, :s2]::bigint[]
       AS cart_repeat_has_single_claims;
SELECT coupon_claim('ra', 'dora', 1, '0', 'S/1') = :s1 AS s1_repeat,
       coupon_claim('rb', 'dora', 1, '0', 'S/2') = :s2 AS s2_repeat;
-- A single claim "T/1" of another customer, then cart "T" (in 1.2: 23505,
-- "used for another cart").
SELECT coupon_claim('ra', 'eve', 1, '0', 'T/1') IS NOT NULL AS granted;
SELECT status FROM coupon_claim_cart_detailed('{ra}', '{1}', 'fred', NULL, '0', 'T');

-- Holds: cart "H" of holds, then a hold "H/1" of the same pool, and the
-- reverse with "K"; each is a hold of its own, and a confirm of one leaves
-- the other a hold.
SELECT coupon_claim_cart('{ra}', '{2}', 'gus', '1 hour', '0', 'H') AS hcart \gset
SELECT coupon_hold('ra', 'gus', '1 hour', 2, '0', 'H/1') AS hsingle \gset
SELECT :hsingle <> (:'hcart'::bigint[])[1] AS hold_not_the_carts;
SELECT coupon_hold('rb', 'hal', '1 hour', 1, '0', 'K/1') AS ksingle \gset
SELECT claim_ids IS NOT NULL AND claim_ids[1] <> :ksingle AS new_hold, status
  FROM coupon_claim_cart_detailed('{rb}', '{1}', 'hal', '1 hour', '0', 'K');
SELECT coupon_confirm(:hsingle, 'gus') AS confirmed;
SELECT status FROM coupon_claim_cart_detailed('{ra}', '{2}', 'gus', NULL, '0', 'H');
SELECT coupon_hold('ra', 'gus', '1 hour', 2, '0', 'H/1') = :hsingle AS hold_repeat;

-- A cart's request id may be as long as any request id.
SELECT coupon_claim_cart('{rb}', '{1}', 'ivy', NULL, '0', repeat('r', 255)) IS NOT NULL AS granted;
SELECT coupon_claim_cart('{rb}', '{1}', 'ivy', NULL, '0', repeat('r', 256));

-- What the ledger holds: the request ids as the callers gave them, and the
-- number of each cart's claim in its cart.
SELECT pool, customer, qty, request_id, cart_claim, expires_at IS NOT NULL AS hold
  FROM coupon_claims WHERE pool IN ('ra', 'rb') AND octet_length(request_id) < 10
 ORDER BY id;
SELECT pg_temp.balanced();

SELECT coupon_pool_drop('ra'), coupon_pool_drop('rb');
