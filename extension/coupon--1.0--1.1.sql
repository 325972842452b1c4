/* extension/coupon--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION coupon UPDATE TO '1.1'" to load this file. \quit

--
-- 1.1 adds the lifecycle of a claim: holds that expire, confirm, extend,
-- request ids, carts and bulk claims.  The ledger gains two columns,
-- appended (the extension writes rows by column number), and nothing of
-- the semaphore changes.  A transaction that has claimed or released
-- already holds a lock on the ledger, and this waits for it to end.  A
-- claim that starts while this runs waits for the lock ALTER TABLE takes;
-- when this commits, that claim finds the ledger's new columns and fails
-- with 40001 (serialization_failure): retried, it is a claim of 1.1.
--

ALTER TABLE @extschema@.coupon_claims
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN request_id text;
COMMENT ON TABLE @extschema@.coupon_claims IS
    'the coupon ledger: one row per grant; a hold has expires_at until it is confirmed; released_at is set by a release or an expiry';

CREATE INDEX coupon_claims_expiry ON @extschema@.coupon_claims (expires_at)
    WHERE released_at IS NULL AND expires_at IS NOT NULL;
-- request_id first: a cart's claims are found by their request ids alone,
-- in whatever pool (a single claim's by request id and pool).
CREATE UNIQUE INDEX coupon_claims_request ON @extschema@.coupon_claims (request_id, pool)
    WHERE request_id IS NOT NULL;

--
-- The functions of 1.0 pinned search_path; those of 1.1 do not (see the
-- install script).
--
ALTER FUNCTION @extschema@.coupon_pool_create(text, bigint, integer) RESET search_path;
ALTER FUNCTION @extschema@.coupon_pool_resize(text, bigint) RESET search_path;
ALTER FUNCTION @extschema@.coupon_pool_drop(text) RESET search_path;
ALTER FUNCTION @extschema@.coupon_release(bigint) RESET search_path;
ALTER FUNCTION @extschema@.coupon_pool_memory() RESET search_path;
ALTER FUNCTION @extschema@.coupon_occ_version() RESET search_path;

--
-- The claim functions gain request_id, and coupon_pools the column held.
-- The old ones are renamed, the new ones made (not executable by PUBLIC,
-- as in 1.0), the grants of the old ones copied to the new ones, and the
-- old ones dropped.  Only grants the old ones carry in their ACL are
-- copied: PUBLIC gets EXECUTE only if it was granted it explicitly.
--
ALTER FUNCTION @extschema@.coupon_claim(text, text, integer, interval)
    RENAME TO coupon_claim_1_0;
ALTER FUNCTION @extschema@.coupon_claim_detailed(text, text, integer, interval)
    RENAME TO coupon_claim_detailed_1_0;
ALTER VIEW @extschema@.coupon_pools RENAME TO coupon_pools_1_0;

CREATE FUNCTION @extschema@.coupon_claim(pool text, customer text,
                                         qty integer DEFAULT 1,
                                         wait interval DEFAULT '0',
                                         request_id text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'coupon_claim'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.coupon_claim(text, text, integer, interval, text) IS
    'claim qty coupons for customer; the claim id (the existing one on a repeat), or NULL when none can be granted within wait';

CREATE FUNCTION @extschema@.coupon_claim_detailed(pool text, customer text,
                                                  qty integer DEFAULT 1,
                                                  wait interval DEFAULT '0',
                                                  request_id text DEFAULT NULL,
                                                  OUT claim_id bigint,
                                                  OUT status text,
                                                  OUT available bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'coupon_claim_detailed'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.coupon_claim_detailed(text, text, integer, interval, text) IS
    'coupon_claim with a status (granted, repeat, sold_out, timed_out, limit_reached) and the permits available after it';

REVOKE ALL ON FUNCTION @extschema@.coupon_claim(text, text, integer, interval, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.coupon_claim_detailed(text, text, integer, interval, text) FROM PUBLIC;

CREATE VIEW @extschema@.coupon_pools AS
SELECT p.name AS pool,
       p.capacity,
       h.claimed,
       h.held,
       COALESCE(m.in_flight, 0) AS in_flight,
       COALESCE(m.available, p.capacity OPERATOR(pg_catalog.-) h.claimed) AS available,
       p.per_customer,
       COALESCE(m.grants, 0) AS grants,
       COALESCE(m.sold_out, 0) AS sold_out,
       COALESCE(m.waits, 0) AS waits
  FROM @extschema@.coupon_pool p
 CROSS JOIN LATERAL (
       SELECT COALESCE(pg_catalog.sum(c.qty), 0)::bigint AS claimed,
              COALESCE(pg_catalog.sum(c.qty) FILTER (WHERE c.expires_at IS NOT NULL), 0)::bigint AS held
         FROM @extschema@.coupon_claims c
        WHERE c.pool OPERATOR(pg_catalog.=) p.name AND c.released_at IS NULL) h
  LEFT JOIN @extschema@.coupon_pool_memory() m
       ON m.pool OPERATOR(pg_catalog.=) p.name;
COMMENT ON VIEW @extschema@.coupon_pools IS
    'every pool: capacity = claimed + in_flight + available once transactions end (claimed includes held); counters since the pool was loaded';

-- The extension's schema comes first in search_path while this runs:
-- every operator and function is schema-qualified, DO block included, so
-- that nothing another role created in that schema runs as the superuser
-- who updates (t/023_install_hijack.pl).
DO $$
DECLARE
    grant_row record;
BEGIN
    FOR grant_row IN
        SELECT pg_catalog.format('GRANT %s ON FUNCTION %s TO %s%s', a.privilege_type, n.target,
                      CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid THEN 'PUBLIC'
                           ELSE pg_catalog.quote_ident(r.rolname) END,
                      CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) AS sql
          FROM (VALUES ('@extschema@.coupon_claim_1_0(text, text, integer, interval)',
                        '@extschema@.coupon_claim(text, text, integer, interval, text)'),
                       ('@extschema@.coupon_claim_detailed_1_0(text, text, integer, interval)',
                        '@extschema@.coupon_claim_detailed(text, text, integer, interval, text)'))
               AS n(source, target)
          JOIN pg_catalog.pg_proc p
            ON p.oid OPERATOR(pg_catalog.=) n.source::pg_catalog.regprocedure::pg_catalog.oid
         CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
          LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) a.grantee
         WHERE a.grantee OPERATOR(pg_catalog.<>) p.proowner
        UNION ALL
        SELECT pg_catalog.format('GRANT %s ON TABLE @extschema@.coupon_pools TO %s%s', a.privilege_type,
                      CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid THEN 'PUBLIC'
                           ELSE pg_catalog.quote_ident(r.rolname) END,
                      CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
          FROM pg_catalog.pg_class c
         CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
          LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) a.grantee
         WHERE c.oid OPERATOR(pg_catalog.=) '@extschema@.coupon_pools_1_0'::pg_catalog.regclass::pg_catalog.oid
           AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
    LOOP
        EXECUTE grant_row.sql;
    END LOOP;
END
$$;

DROP VIEW @extschema@.coupon_pools_1_0;
DROP FUNCTION @extschema@.coupon_claim_1_0(text, text, integer, interval);
DROP FUNCTION @extschema@.coupon_claim_detailed_1_0(text, text, integer, interval);

--
-- The lifecycle.
--

CREATE FUNCTION @extschema@.coupon_hold(pool text, customer text, ttl interval,
                                        qty integer DEFAULT 1,
                                        wait interval DEFAULT '0',
                                        request_id text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'coupon_hold'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.coupon_hold(text, text, interval, integer, interval, text) IS
    'a claim that expires ttl after it is granted unless confirmed; the claim id, or NULL when none can be granted within wait';

CREATE FUNCTION @extschema@.coupon_confirm(claim_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'coupon_confirm'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.coupon_confirm(bigint) IS
    'make a hold permanent: true, or false if the claim was permanent already; an expired or released hold is an error (UC001, UC002)';

CREATE FUNCTION @extschema@.coupon_hold_extend(claim_id bigint, ttl interval)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'coupon_hold_extend'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.coupon_hold_extend(bigint, interval) IS
    'move a live hold''s expiry to clock_timestamp() + ttl and return it; an expired, released or permanent claim is an error (UC001, UC002, UC003)';

COMMENT ON FUNCTION @extschema@.coupon_release(bigint) IS
    'release (refund) a claim or a hold; its coupons return to the pool at commit; false if it was released already';

CREATE FUNCTION @extschema@.coupon_claim_cart(pools text[], qtys integer[],
                                              customer text,
                                              ttl interval DEFAULT NULL,
                                              wait interval DEFAULT '0',
                                              request_id text DEFAULT NULL)
RETURNS bigint[]
AS 'MODULE_PATHNAME', 'coupon_claim_cart'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.coupon_claim_cart(text[], integer[], text, interval, interval, text) IS
    'claim every line of a cart (holds if ttl is given) or none: one claim per pool, of the sum of its lines, whose id each of its lines gets; or NULL.  A request id (at most 250 bytes) names the cart whatever the order of its lines';

CREATE FUNCTION @extschema@.coupon_claim_cart_detailed(pools text[], qtys integer[],
                                                       customer text,
                                                       ttl interval DEFAULT NULL,
                                                       wait interval DEFAULT '0',
                                                       request_id text DEFAULT NULL,
                                                       OUT claim_ids bigint[],
                                                       OUT status text,
                                                       OUT line integer)
RETURNS record
AS 'MODULE_PATHNAME', 'coupon_claim_cart_detailed'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.coupon_claim_cart_detailed(text[], integer[], text, interval, interval, text) IS
    'coupon_claim_cart with a status for the whole cart and the first line (from 1) that could not be granted';

CREATE FUNCTION @extschema@.coupon_claim_many(pool text, customers text[],
                                              qty integer DEFAULT 1)
RETURNS TABLE(customer text, claim_id bigint, status text)
AS 'MODULE_PATHNAME', 'coupon_claim_many'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 100;
COMMENT ON FUNCTION @extschema@.coupon_claim_many(text, text[], integer) IS
    'claim qty coupons for each of many customers, each on its own: a row per customer with its claim id and status';

CREATE VIEW @extschema@.coupon_holds AS
SELECT c.id AS claim_id, c.pool, c.customer, c.qty, c.claimed_at, c.expires_at,
       c.expires_at OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp() AS expired
  FROM @extschema@.coupon_claims c
 WHERE c.released_at IS NULL AND c.expires_at IS NOT NULL;
COMMENT ON VIEW @extschema@.coupon_holds IS
    'live holds with their expiry; expired = its time is up and it is not returned yet';

REVOKE ALL ON TABLE @extschema@.coupon_holds FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.coupon_hold(text, text, interval, integer, interval, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.coupon_confirm(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.coupon_hold_extend(bigint, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.coupon_claim_cart(text[], integer[], text, interval, interval, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.coupon_claim_cart_detailed(text[], integer[], text, interval, interval, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.coupon_claim_many(text, text[], integer) FROM PUBLIC;
