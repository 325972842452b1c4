--
-- A cart's request id names one cart: its customer and what it claims of
-- each pool (the lines of one pool added up), whatever the order of its
-- lines.  Asked again, the same cart answers with the claims the first
-- call made, in the order of the lines asked; the same request id for
-- another cart is an error (23505) that changes nothing.
--
CREATE FUNCTION pg_temp.balanced() RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(format('%s: claimed %s, in_flight %s, available %s, balanced %s',
                           pool, claimed, in_flight, available,
                           capacity = claimed + in_flight + available), E'\n' ORDER BY pool)
    FROM coupon_pools WHERE pool IN ('cx', 'cy', 'cz')
$$;
-- Everything the carts of these tests wrote, and the claim id sequence.
\getenv abs_srcdir PG_ABS_SRCDIR
\set helpers :abs_srcdir '/sql/include/ledger_helpers.sql'
\i :helpers
SELECT coupon_pool_create('cx', 10, 2), coupon_pool_create('cy', 10, 2),
       coupon_pool_create('cz', 10, 2);

-- A cart, then the same cart with its lines in another order.
SELECT coupon_claim_cart('{cx,cy}', '{1,1}', 'cust', '30 min', '0', 'order-77') AS first \gset
SELECT array_length(:'first'::bigint[], 1) AS lines;
SELECT claim_ids = ARRAY[(:'first'::bigint[])[2], (:'first'::bigint[])[1]] AS same_claims_in_my_order,
       status
  FROM coupon_claim_cart_detailed('{cy,cx}', '{1,1}', 'cust', '30 min', '0', 'order-77');
SELECT coupon_claim_cart('{cx,cy}', '{1,1}', 'cust', '30 min', '0', 'order-77') = :'first' AS same_claims;
SELECT pool, customer, qty, request_id, cart_claim FROM coupon_claims
 WHERE request_id = 'order-77' ORDER BY cart_claim;

-- The same request id for another cart: other pools, fewer or more pools,
-- other quantities, another customer.  Each is refused and changes nothing.
SELECT pg_temp.ledger('{cx,cy,cz}') AS before \gset
\set VERBOSITY sqlstate
SELECT coupon_claim_cart('{cx,cz}', '{1,1}', 'cust', '30 min', '0', 'order-77');
SELECT coupon_claim_cart('{cy}', '{1}', 'cust', '30 min', '0', 'order-77');
SELECT coupon_claim_cart('{cz,cy,cx}', '{1,1,1}', 'cust', '30 min', '0', 'order-77');
SELECT coupon_claim_cart('{cx,cy}', '{2,1}', 'cust', '30 min', '0', 'order-77');
SELECT coupon_claim_cart('{cx,cy,cx}', '{1,1,1}', 'cust', '30 min', '0', 'order-77');
SELECT coupon_claim_cart('{cy,cx}', '{1,1}', 'other', '30 min', '0', 'order-77');
\set VERBOSITY default
-- The message does not say whose claims the request id made.
SELECT coupon_claim_cart('{cy,cx}', '{1,1}', 'other', '30 min', '0', 'order-77');
SELECT pg_temp.ledger('{cx,cy,cz}') = :'before' AS unchanged;

-- A cart of one line, then another of one line, with one request id.
SELECT coupon_claim_cart('{cx}', '{1}', 'cust2', '30 min', '0', 'order-78') IS NOT NULL AS granted;
SELECT pg_temp.ledger('{cx,cy,cz}') AS before \gset
\set VERBOSITY sqlstate
SELECT coupon_claim_cart('{cy}', '{1}', 'cust2', '30 min', '0', 'order-78');
\set VERBOSITY default
SELECT pg_temp.ledger('{cx,cy,cz}') = :'before' AS unchanged;

-- Lines of one pool are one claim of their sum: each line answers with the
-- claim of its pool, and the lines may be split otherwise when asked again.
SELECT coupon_claim_cart('{cz,cx,cz}', '{1,1,1}', 'dora', NULL, '0', 'order-79') AS merged \gset
SELECT (:'merged'::bigint[])[1] = (:'merged'::bigint[])[3] AS one_claim_for_cz,
       (:'merged'::bigint[])[1] <> (:'merged'::bigint[])[2] AS another_for_cx;
SELECT pool, qty, request_id, cart_claim FROM coupon_claims
 WHERE request_id = 'order-79' ORDER BY cart_claim;
SELECT claim_ids = ARRAY[(:'merged'::bigint[])[2], (:'merged'::bigint[])[1]] AS same_claims, status
  FROM coupon_claim_cart_detailed('{cx,cz}', '{1,2}', 'dora', NULL, '0', 'order-79');
SELECT coupon_claim_cart('{cz,cz,cx}', '{1,1,1}', 'dora', NULL, '0', 'order-79')
       = ARRAY[(:'merged'::bigint[])[1], (:'merged'::bigint[])[1], (:'merged'::bigint[])[2]] AS same_claims;
\set VERBOSITY sqlstate
SELECT coupon_claim_cart('{cz,cx}', '{1,1}', 'dora', NULL, '0', 'order-79');
\set VERBOSITY default

-- A single claim's request id still names a claim per pool, and its error
-- does not say which claim or whose.
SELECT coupon_claim('cx', 'eve', 1, '0', 'single-1') IS NOT NULL AS granted,
       coupon_claim('cy', 'eve', 1, '0', 'single-1') IS NOT NULL AS other_pool;
SELECT coupon_claim('cx', 'fred', 1, '0', 'single-1');

-- A cart's request id may be 255 bytes long, as any request id; its
-- claims carry it as it is.
SELECT coupon_claim_cart('{cz}', '{1}', 'gus', NULL, '0', repeat('r', 256));
SELECT coupon_claim_cart('{cz}', '{1}', 'gus', NULL, '0', repeat('r', 255)) IS NOT NULL AS granted;
SELECT octet_length(request_id), cart_claim FROM coupon_claims WHERE customer = 'gus';

-- Exactly the claims made: order-77 two, order-78 one, order-79 two (one
-- of them of 2).
SELECT request_id AS request, count(*) AS claims, sum(qty) AS qty
  FROM coupon_claims WHERE request_id LIKE 'order-%'
 GROUP BY 1 ORDER BY 1;
SELECT pg_temp.balanced();

SELECT coupon_pool_drop('cx'), coupon_pool_drop('cy'), coupon_pool_drop('cz');
