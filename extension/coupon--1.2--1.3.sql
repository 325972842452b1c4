/* extension/coupon--1.2--1.3.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION coupon UPDATE TO '1.3'" to load this file. \quit

--
-- 1.3 gives every request id to the caller.  Up to 1.2, the claims of a
-- cart with request id R carried the request ids "R/1", "R/2", ... (the
-- cart's pools by name), so a single claim with request id "R/1" was
-- taken for part of cart R, and the other way round.  From 1.3 a cart's
-- claims carry R itself and their number in the cart in the new column
-- cart_claim, which is NULL for a single claim; the unique index on
-- request ids covers it, so that the two can never meet.  A claim that
-- starts while this runs waits for the ledger's lock and, once this
-- commits, fails with 40001 (serialization_failure): retried, it is a
-- claim of 1.3.
--

ALTER TABLE @extschema@.coupon_claims ADD COLUMN cart_claim integer;
COMMENT ON COLUMN @extschema@.coupon_claims.cart_claim IS
    'a claim of a cart: its number in the cart with request id request_id (from 1, the cart''s pools by name); NULL for a single claim';

DROP INDEX @extschema@.coupon_claims_request;

--
-- The claims of the carts of 1.2 take the new form.  Nothing in a row of
-- 1.2 says whether request id "R/n" was given to a single claim or made
-- for a cart, so a row is taken for a cart's claim when it looks exactly
-- like one: the rows of one customer made in one transaction (one
-- claimed_at) whose request ids are R followed by "/" and a number of up
-- to four digits without leading zeros are "R/1" to "R/k", k at most 1000,
-- with their pools in the order of n by name (as strcmp() orders them)
-- and their claim ids in the same order, each pool once.  Such rows were
-- a cart's, or single claims that 1.2 already answered a retry of cart R
-- with.  They become request id R with cart_claim n; every other row
-- keeps its request id as a single claim's.
--
WITH line AS (
    SELECT c.id, c.pool, c.customer, c.claimed_at,
           pg_catalog.substring(c.request_id, '^(.+)/[1-9][0-9]{0,3}$') AS cart,
           pg_catalog.substring(c.request_id, '/([1-9][0-9]{0,3})$')::pg_catalog.int4 AS n
      FROM @extschema@.coupon_claims c
     WHERE c.request_id OPERATOR(pg_catalog.~) '^.+/[1-9][0-9]{0,3}$'
), ranked AS (
    SELECT l.id, l.cart, l.n, l.customer, l.claimed_at,
           pg_catalog.rank() OVER (PARTITION BY l.cart, l.customer, l.claimed_at
                                   ORDER BY l.id) AS by_id,
           pg_catalog.rank() OVER (PARTITION BY l.cart, l.customer, l.claimed_at
                                   ORDER BY l.pool COLLATE pg_catalog."C") AS by_pool
      FROM line l
), judged AS (
    SELECT r.id, r.n,
           pg_catalog.bool_and(r.n OPERATOR(pg_catalog.=) r.by_id
                               AND r.by_pool OPERATOR(pg_catalog.=) r.by_id
                               AND r.n OPERATOR(pg_catalog.<=) 1000)
               OVER (PARTITION BY r.cart, r.customer, r.claimed_at) AS of_cart
      FROM ranked r
)
UPDATE @extschema@.coupon_claims c
   SET cart_claim = j.n
  FROM judged j
 WHERE c.id OPERATOR(pg_catalog.=) j.id AND j.of_cart;
-- (One column per SET: t/023_install_hijack.pl reads no other "=" as an
-- assignment.)
UPDATE @extschema@.coupon_claims c
   SET request_id = pg_catalog.substring(c.request_id, '^(.+)/[1-9][0-9]{0,3}$')
 WHERE c.cart_claim IS NOT NULL;

-- request_id first: a single claim's request id is found with its pool,
-- a cart's claims by request id and cart_claim, in whatever pool.  A
-- single claim's NULL cart_claim is not distinct from another's.
CREATE UNIQUE INDEX coupon_claims_request
    ON @extschema@.coupon_claims (request_id, cart_claim, pool) NULLS NOT DISTINCT
    WHERE request_id IS NOT NULL;

COMMENT ON FUNCTION @extschema@.coupon_claim_cart(text[], integer[], text, interval, interval, text) IS
    'claim every line of a cart (holds if ttl is given) or none: one claim per pool, of the sum of its lines, whose id each of its lines gets; or NULL.  A request id names the cart whatever the order of its lines, apart from the request ids of single claims';
