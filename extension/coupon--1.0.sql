/* extension/coupon--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION coupon" to load this file. \quit

-- While this runs, search_path is the extension's schema, then pg_temp:
-- every operator and function below is schema-qualified, so that nothing
-- another role created in that schema can stand in for one
-- (t/023_install_hijack.pl).

--
-- Tables: the durable truth.  Nobody but the extension's owner writes
-- them; the functions below do it on the caller's behalf.  pg_dump keeps
-- their contents (pg_extension_config_dump).
--

CREATE TABLE @extschema@.coupon_pool (
    name         text PRIMARY KEY
                 CHECK (pg_catalog.octet_length(name) OPERATOR(pg_catalog.>=) 1
                        AND pg_catalog.octet_length(name) OPERATOR(pg_catalog.<=) 127),
    capacity     bigint NOT NULL CHECK (capacity OPERATOR(pg_catalog.>=) 0),
    per_customer integer NOT NULL DEFAULT 1 CHECK (per_customer OPERATOR(pg_catalog.>=) 1),
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE @extschema@.coupon_pool IS
    'coupon pools; change them only through coupon_pool_create, coupon_pool_resize and coupon_pool_drop';

-- Claim ids come from a sequence without cache, so they increase in the
-- order claims are made and can serve as fencing tokens.
CREATE SEQUENCE @extschema@.coupon_claims_id_seq AS bigint CACHE 1;

CREATE TABLE @extschema@.coupon_claims (
    id          bigint PRIMARY KEY
                DEFAULT pg_catalog.nextval('@extschema@.coupon_claims_id_seq'::pg_catalog.regclass),
    pool        text NOT NULL,
    customer    text NOT NULL,
    qty         integer NOT NULL,
    claimed_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    released_at timestamptz
);
ALTER SEQUENCE @extschema@.coupon_claims_id_seq OWNED BY @extschema@.coupon_claims.id;
-- qty has no CHECK constraint: only the extension writes the ledger and it
-- validates qty (1 <= qty <= capacity) first, while the executor would
-- re-read a CHECK expression's stored form on every claim.
COMMENT ON TABLE @extschema@.coupon_claims IS
    'the coupon ledger: one row per grant; released_at is set by coupon_release';

-- What a customer holds in a pool: the per-customer check and the
-- repeat lookup of every claim, and the claimed counts of coupon_pools.
CREATE INDEX coupon_claims_holder ON @extschema@.coupon_claims (pool, customer)
    INCLUDE (qty) WHERE released_at IS NULL;

SELECT pg_catalog.pg_extension_config_dump('@extschema@.coupon_pool', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.coupon_claims', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.coupon_claims_id_seq', '');

REVOKE ALL ON TABLE @extschema@.coupon_pool FROM PUBLIC;
REVOKE ALL ON TABLE @extschema@.coupon_claims FROM PUBLIC;
REVOKE ALL ON SEQUENCE @extschema@.coupon_claims_id_seq FROM PUBLIC;

--
-- Pool administration.
--

CREATE FUNCTION @extschema@.coupon_pool_create(pool text, capacity bigint,
                                               per_customer integer DEFAULT 1)
RETURNS boolean
AS 'MODULE_PATHNAME', 'coupon_pool_create'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.coupon_pool_create(text, bigint, integer) IS
    'create a pool of capacity coupons, at most per_customer per customer; true if created, false if it exists with the same settings';

CREATE FUNCTION @extschema@.coupon_pool_resize(pool text, capacity bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'coupon_pool_resize'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.coupon_pool_resize(text, bigint) IS
    'change a pool''s capacity; never below what is claimed or in flight; growth is published at commit';

CREATE FUNCTION @extschema@.coupon_pool_drop(pool text)
RETURNS void
AS 'MODULE_PATHNAME', 'coupon_pool_drop'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.coupon_pool_drop(text) IS
    'drop a pool and its ledger rows; fails while claims are in flight';

--
-- Claims.
--

-- The two claim functions are the hot path and carry no SET search_path:
-- they resolve no name through it (the per-customer check and the ledger
-- insert work on OIDs, every SQL statement of the extension is
-- schema-qualified down to its operators), and the GUC save and restore of a
-- pinned search_path measured about a tenth of a claim's cost.
CREATE FUNCTION @extschema@.coupon_claim(pool text, customer text,
                                         qty integer DEFAULT 1,
                                         wait interval DEFAULT '0')
RETURNS bigint
AS 'MODULE_PATHNAME', 'coupon_claim'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.coupon_claim(text, text, integer, interval) IS
    'claim qty coupons for customer; the claim id (the existing one on a repeat), or NULL when none can be granted within wait';

CREATE FUNCTION @extschema@.coupon_claim_detailed(pool text, customer text,
                                                  qty integer DEFAULT 1,
                                                  wait interval DEFAULT '0',
                                                  OUT claim_id bigint,
                                                  OUT status text,
                                                  OUT available bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'coupon_claim_detailed'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.coupon_claim_detailed(text, text, integer, interval) IS
    'coupon_claim with a status (granted, repeat, sold_out, timed_out, limit_reached) and the permits available after it';

CREATE FUNCTION @extschema@.coupon_release(claim_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'coupon_release'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.coupon_release(bigint) IS
    'release (refund) a claim; its coupons return to the pool at commit; false if it was released already';

--
-- Statistics.
--

CREATE FUNCTION @extschema@.coupon_pool_memory(OUT pool text,
                                               OUT available bigint,
                                               OUT in_flight bigint,
                                               OUT grants bigint,
                                               OUT sold_out bigint,
                                               OUT waits bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'coupon_pool_memory'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.coupon_pool_memory() IS
    'the shared-memory semaphores of this database''s pools that are loaded; use the view coupon_pools';

CREATE VIEW @extschema@.coupon_pools AS
SELECT p.name AS pool,
       p.capacity,
       h.claimed,
       COALESCE(m.in_flight, 0) AS in_flight,
       COALESCE(m.available, p.capacity OPERATOR(pg_catalog.-) h.claimed) AS available,
       p.per_customer,
       COALESCE(m.grants, 0) AS grants,
       COALESCE(m.sold_out, 0) AS sold_out,
       COALESCE(m.waits, 0) AS waits
  FROM @extschema@.coupon_pool p
 CROSS JOIN LATERAL (
       SELECT COALESCE(pg_catalog.sum(c.qty), 0)::bigint AS claimed
         FROM @extschema@.coupon_claims c
        WHERE c.pool OPERATOR(pg_catalog.=) p.name AND c.released_at IS NULL) h
  LEFT JOIN @extschema@.coupon_pool_memory() m
       ON m.pool OPERATOR(pg_catalog.=) p.name;
COMMENT ON VIEW @extschema@.coupon_pools IS
    'every pool: capacity = claimed + in_flight + available once transactions end; counters since the server started';

REVOKE ALL ON TABLE @extschema@.coupon_pools FROM PUBLIC;

--
-- Optimistic concurrency for application tables with a version column.
--

CREATE FUNCTION @extschema@.coupon_occ_version()
RETURNS trigger
AS 'MODULE_PATHNAME', 'coupon_occ_version'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION @extschema@.coupon_occ_version() IS
    'BEFORE UPDATE row trigger: bumps the version column (argument, default version) and fails with SQLSTATE 40001 when an update carries a stale version';

-- Functions are executable by PUBLIC by default; only the trigger stays so
-- (it can only run as a trigger).  See the README for the grants an
-- application role needs.
REVOKE ALL ON FUNCTION @extschema@.coupon_pool_create(text, bigint, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.coupon_pool_resize(text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.coupon_pool_drop(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.coupon_claim(text, text, integer, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.coupon_claim_detailed(text, text, integer, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.coupon_release(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.coupon_pool_memory() FROM PUBLIC;
