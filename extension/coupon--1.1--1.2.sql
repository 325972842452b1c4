/* extension/coupon--1.1--1.2.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION coupon UPDATE TO '1.2'" to load this file. \quit

--
-- 1.2 lets an application name the customer whose claim it releases,
-- confirms or extends, and lets the DBA prune the ledger.  Nothing of the
-- ledger's columns or of the semaphore changes.  Every operator and
-- function is schema-qualified (t/023_install_hijack.pl), the body of
-- coupon_ledger_prune included: as a procedure that commits, it can pin no
-- search_path.
--

--
-- Claim ids are no capabilities: whoever may call coupon_release,
-- coupon_confirm or coupon_hold_extend can act on any claim id.  These
-- overloads take the customer too, and act only on that customer's claim
-- (UC004 otherwise, whether the claim is another customer's or none at
-- all); a NULL customer is an error, never "any customer".
--
CREATE FUNCTION @extschema@.coupon_release(claim_id bigint, customer text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'coupon_release'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.coupon_release(bigint, text) IS
    'release (refund) customer''s claim or hold; its coupons return to the pool at commit; false if it was released already; another customer''s claim is an error (UC004)';

CREATE FUNCTION @extschema@.coupon_confirm(claim_id bigint, customer text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'coupon_confirm'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.coupon_confirm(bigint, text) IS
    'make customer''s hold permanent: true, or false if the claim was permanent already; an expired or released hold is an error (UC001, UC002), and so is another customer''s claim (UC004)';

CREATE FUNCTION @extschema@.coupon_hold_extend(claim_id bigint, ttl interval,
                                               customer text)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'coupon_hold_extend'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.coupon_hold_extend(bigint, interval, text) IS
    'move customer''s live hold''s expiry to clock_timestamp() + ttl and return it; an expired, released or permanent claim is an error (UC001, UC002, UC003), and so is another customer''s claim (UC004)';

REVOKE ALL ON FUNCTION @extschema@.coupon_release(bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.coupon_confirm(bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.coupon_hold_extend(bigint, interval, text) FROM PUBLIC;

--
-- Retention.  Released rows (refunds and returned holds) stay in the
-- ledger until the DBA prunes them: they count for nothing, but cost
-- space and scans.  A row with a request id is the answer to a repeat of
-- that request (UC001, UC002): it is kept for at least a day after its
-- release whatever older_than says, so that a client retrying within a
-- day is never granted a second claim.  Live rows (released_at NULL:
-- claims, and holds until they are returned) are never touched.
--
-- The ledger is walked by claim id, batch_size ids per transaction, each
-- batch committed before the next starts: call it with CALL, outside a
-- transaction block, as a role that may delete from the ledger.
--
CREATE PROCEDURE @extschema@.coupon_ledger_prune(older_than interval,
                                                 batch_size integer DEFAULT 10000)
LANGUAGE plpgsql
AS $prune$
DECLARE
    cutoff timestamptz;
    request_cutoff timestamptz;
    last_id bigint;
    batch_end bigint;
    deleted bigint;
    total bigint := 0;
BEGIN
    IF older_than IS NULL OR batch_size IS NULL THEN
        RAISE EXCEPTION 'older_than and batch_size must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF older_than OPERATOR(pg_catalog.<) '0'::pg_catalog.interval THEN
        RAISE EXCEPTION 'older_than must not be negative'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF batch_size OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    cutoff := pg_catalog.now() OPERATOR(pg_catalog.-) older_than;
    request_cutoff := pg_catalog.now() OPERATOR(pg_catalog.-)
        GREATEST(older_than, '1 day'::pg_catalog.interval);
    SELECT pg_catalog.min(c.id) OPERATOR(pg_catalog.-) 1 INTO last_id
      FROM @extschema@.coupon_claims c;
    LOOP
        SELECT pg_catalog.max(b.id) INTO batch_end
          FROM (SELECT c.id FROM @extschema@.coupon_claims c
                 WHERE c.id OPERATOR(pg_catalog.>) last_id
                 ORDER BY c.id LIMIT batch_size) b;
        EXIT WHEN batch_end IS NULL;
        DELETE FROM @extschema@.coupon_claims c
         WHERE c.id OPERATOR(pg_catalog.>) last_id
           AND c.id OPERATOR(pg_catalog.<=) batch_end
           AND c.released_at OPERATOR(pg_catalog.<) cutoff
           AND (c.request_id IS NULL
                OR c.released_at OPERATOR(pg_catalog.<) request_cutoff);
        GET DIAGNOSTICS deleted = ROW_COUNT;
        total := total OPERATOR(pg_catalog.+) deleted;
        last_id := batch_end;
        COMMIT;
        RAISE NOTICE 'coupon_ledger_prune: claim ids up to % done, rows deleted: %',
            last_id, total;
    END LOOP;
END
$prune$;
COMMENT ON PROCEDURE @extschema@.coupon_ledger_prune(interval, integer) IS
    'delete ledger rows released more than older_than ago (a day at least for rows with a request id), batch_size claim ids per transaction; never a live claim or hold';

REVOKE ALL ON PROCEDURE @extschema@.coupon_ledger_prune(interval, integer) FROM PUBLIC;
