/* proxy/coupon_proxy--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION coupon_proxy UPDATE TO '1.1'" to load this file. \quit

--
-- 1.1 spreads one pool over several nodes (README, "Spread pools"), and
-- needs coupon 1.5 on every node.
--
--   coupon_pool_create(pool, capacity, per_customer, spread)
--       spread > 1 creates a share of the pool on each of spread nodes,
--       the consecutive partitions from the pool's home (hashtext(pool)):
--       capacities that add up to capacity, the same spread id on all.
--   claims    go first to the pool's home node, which claims for the
--       customers its share serves and names the partition of the others'
--       share ('elsewhere'), where the claim goes next.  A node decides for
--       itself whom it serves (coupon_routed_here), so no proxy needs
--       to know which pools are spread, and a pool dropped and created
--       again is never served by an old routing.
--   sold out  on a share asks its peers for capacity (refill: a journaled
--       transfer, give on the peer then take here), then claims again; it
--       answers sold out only when no peer has any to give and nothing is
--       in flight to it.
--   coupon_cluster_recover() completes every transfer cut between its give
--       and its take; refill runs it for its pool before it says sold out.
--
-- Refill, recover, and the administration of spread pools run as the
-- owner of coupon_proxy (SECURITY DEFINER), so PL/Proxy connects to the
-- nodes as that role: only it may give and take capacity there.
--

--
-- The schema of coupon_proxy is never renamed.  Its functions name it as it
-- was when they were created (PL/Proxy's CLUSTER and RUN ON call functions
-- by those names, and so do the PL/pgSQL ones); after a rename, whoever may
-- create a schema could take the old name and have their functions run by
-- every call, with the caller's rights or the owner's.  PL/Proxy's
-- functions cannot check it as they start, so the rename itself is
-- refused (55000): an event trigger at the end of every ALTER SCHEMA of
-- it, whose function reads nothing but pg_catalog, compares the schema's
-- name now with the name of its creation.  An update from 1.0 after a
-- rename is refused as well: the functions of 1.0 name the old name.
--
DO $guard$
BEGIN
    -- Its owner could rename the schema while this transaction runs: the
    -- event trigger created below does not refuse a rename whose command
    -- started before it existed (PostgreSQL decides as a command starts
    -- whether it fires event triggers), and the functions made here would
    -- name the old name.  So it must be a superuser (a schema of
    -- pg_database_owner: the database's owner).
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_namespace n
                     JOIN pg_catalog.pg_database d
                       ON d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()
                     JOIN pg_catalog.pg_authid a
                       ON a.oid OPERATOR(pg_catalog.=)
                          CASE WHEN n.nspowner OPERATOR(pg_catalog.=) 'pg_database_owner'::pg_catalog.regrole::pg_catalog.oid
                               THEN d.datdba ELSE n.nspowner END
                    WHERE n.oid OPERATOR(pg_catalog.=) '@extschema@'::pg_catalog.regnamespace::pg_catalog.oid
                      AND a.rolsuper) THEN
        RAISE EXCEPTION 'schema @extschema@ of extension coupon_proxy must be owned by a superuser'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'The owner of the schema could rename it while the extension is installed or updated, and the extension''s functions name it.',
                  HINT = 'ALTER SCHEMA @extschema@ OWNER TO a superuser, or create the extension in a schema that a superuser owns.';
    END IF;
    IF pg_catalog.strpos((SELECT p.prosrc FROM pg_catalog.pg_proc p
                           WHERE p.oid OPERATOR(pg_catalog.=)
                                 '@extschema@.coupon_pool_drop(text)'::pg_catalog.regprocedure),
                         'CLUSTER @extschema@.coupon_proxy_cluster_name();') OPERATOR(pg_catalog.=) 0 THEN
        RAISE EXCEPTION 'schema @extschema@ of extension coupon_proxy has been renamed since coupon_proxy 1.0 was installed'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'The functions of coupon_proxy 1.0 name the schema as it was then.',
                  HINT = 'Rename the schema back to its name of then, and update.';
    END IF;
END
$guard$;

CREATE FUNCTION @extschema@.coupon_proxy_schema_renamed()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    schema_oid oid;
    schema_now text;
BEGIN
    SELECT e.extnamespace, n.nspname INTO schema_oid, schema_now
      FROM pg_catalog.pg_extension e
      JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
     WHERE e.extname OPERATOR(pg_catalog.=) 'coupon_proxy';
    IF schema_now OPERATOR(pg_catalog.<>) (pg_catalog.parse_ident('@extschema@'))[1]
       AND EXISTS (SELECT FROM pg_catalog.pg_event_trigger_ddl_commands() c
                    WHERE c.objid OPERATOR(pg_catalog.=) schema_oid) THEN
        RAISE EXCEPTION 'schema @extschema@ of extension coupon_proxy cannot be renamed'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'The functions of coupon_proxy name its schema as it was when they were created.',
                  HINT = 'To move coupon_proxy to another schema, drop it and create it there.';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.coupon_proxy_schema_renamed() FROM PUBLIC;
CREATE EVENT TRIGGER coupon_proxy_schema_rename ON ddl_command_end
    WHEN TAG IN ('ALTER SCHEMA')
    EXECUTE FUNCTION @extschema@.coupon_proxy_schema_renamed();

--
-- The node's functions, run on one partition.  Each node function of
-- coupon 1.5 that the proxy calls takes the partition first, so the proxy
-- function of the same arguments calls it as its TARGET, and the node
-- checks that it is that partition.
--

CREATE FUNCTION @extschema@.coupon_proxy_routed_claim(partition integer, pool text,
                                                      customer text, qty integer,
                                                      wait interval, request_id text,
                                                      detailed boolean,
                                                      OUT claim_id bigint, OUT status text,
                                                      OUT available bigint,
                                                      OUT serve_partition integer,
                                                      OUT shared boolean)
RETURNS record
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON partition;
    TARGET coupon_routed_claim;
$$;

CREATE FUNCTION @extschema@.coupon_proxy_routed_hold(partition integer, pool text,
                                                     customer text, ttl interval,
                                                     qty integer, wait interval,
                                                     request_id text,
                                                     OUT claim_id bigint, OUT available bigint,
                                                     OUT serve_partition integer)
RETURNS record
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON partition;
    TARGET coupon_routed_hold;
$$;

CREATE FUNCTION @extschema@.coupon_proxy_routed_claim_many(partition integer, pool text,
                                                           customers text[], qty integer,
                                                           OUT customer text,
                                                           OUT claim_id bigint,
                                                           OUT status text,
                                                           OUT serve_partition integer)
RETURNS SETOF record
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON partition;
    TARGET coupon_routed_claim_many;
$$;

CREATE FUNCTION @extschema@.coupon_proxy_routed_cart(partition integer, pools text[],
                                                     qtys integer[], customer text,
                                                     ttl interval, wait interval,
                                                     request_id text,
                                                     OUT claim_ids bigint[], OUT status text,
                                                     OUT line integer)
RETURNS record
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON partition;
    TARGET coupon_routed_claim_cart;
$$;

CREATE FUNCTION @extschema@.coupon_proxy_cart_lines(request_id text, OUT pool text,
                                                    OUT customer text, OUT qty integer)
RETURNS SETOF record
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON ALL;
    TARGET coupon_cart_request_lines;
$$;

CREATE FUNCTION @extschema@.coupon_proxy_serve_partition(partition integer, pool text,
                                                         customer text)
RETURNS integer
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON partition;
    TARGET coupon_routed_here;
$$;

CREATE FUNCTION @extschema@.coupon_proxy_spread_join(partition integer, pool text,
                                                     spread_id text, total bigint,
                                                     capacity bigint, per_customer integer,
                                                     spread integer, member integer)
RETURNS boolean
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON partition;
    TARGET coupon_spread_join;
$$;

CREATE FUNCTION @extschema@.coupon_proxy_spread_drop(partition integer, pool text,
                                                     spread_id text)
RETURNS boolean
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON partition;
    TARGET coupon_spread_drop;
$$;

CREATE FUNCTION @extschema@.coupon_proxy_spread_resize(partition integer, pool text,
                                                       spread_id text, capacity bigint)
RETURNS bigint
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON partition;
    TARGET coupon_spread_resize;
$$;

CREATE FUNCTION @extschema@.coupon_proxy_spread_dropping(partition integer, pool text,
                                                         spread_id text)
RETURNS boolean
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON partition;
    TARGET coupon_spread_dropping;
$$;

CREATE FUNCTION @extschema@.coupon_proxy_spread_info(partition integer, pool text,
                                                     OUT spread_id text, OUT spread integer,
                                                     OUT member integer, OUT home integer,
                                                     OUT total bigint, OUT capacity bigint,
                                                     OUT per_customer integer,
                                                     OUT dropping boolean,
                                                     OUT pool_exists boolean)
RETURNS record
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON partition;
    TARGET coupon_spread_info;
$$;

CREATE FUNCTION @extschema@.coupon_proxy_give(partition integer, transfer_id text, pool text,
                                              spread_id text, receiver integer, need bigint)
RETURNS bigint
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON partition;
    TARGET coupon_transfer_give;
$$;

CREATE FUNCTION @extschema@.coupon_proxy_take(partition integer, transfer_id text, pool text,
                                              spread_id text, giver integer, qty bigint)
RETURNS boolean
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON partition;
    TARGET coupon_transfer_take;
$$;

CREATE FUNCTION @extschema@.coupon_proxy_settle(partition integer, transfer_id text)
RETURNS boolean
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON partition;
    TARGET coupon_transfer_settle;
$$;

-- Every node's share of pool: partition, spread id, member, shares,
-- available, and what it gave that is not settled.
CREATE FUNCTION @extschema@.coupon_proxy_spread_state(pool text, OUT partition integer,
                                                      OUT spread_id text, OUT member integer,
                                                      OUT spread integer, OUT available bigint,
                                                      OUT unsettled bigint)
RETURNS SETOF record
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON ALL;
    TARGET coupon_spread_state;
$$;

-- A plain pool's administration, at its node.
CREATE FUNCTION @extschema@.coupon_proxy_pool_create(pool text, capacity bigint,
                                                     per_customer integer)
RETURNS boolean
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON @extschema@.coupon_proxy_pool_hash(pool);
    TARGET coupon_pool_create;
$$;

CREATE FUNCTION @extschema@.coupon_proxy_pool_resize(pool text, capacity bigint)
RETURNS void
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON @extschema@.coupon_proxy_pool_hash(pool);
    TARGET coupon_pool_resize;
$$;

CREATE FUNCTION @extschema@.coupon_proxy_pool_drop(pool text)
RETURNS void
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON @extschema@.coupon_proxy_pool_hash(pool);
    TARGET coupon_pool_drop;
$$;

-- Every node's transfers not settled yet, and every spread pool with its
-- capacity, from its home.
CREATE FUNCTION @extschema@.coupon_proxy_pending(OUT giver integer, OUT transfer_id text,
                                                 OUT pool text, OUT spread_id text,
                                                 OUT receiver integer, OUT qty bigint,
                                                 OUT made_at timestamptz)
RETURNS SETOF record
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON ALL;
    TARGET coupon_transfers_pending;
$$;

-- Which of transfer_ids their receivers have taken.
CREATE FUNCTION @extschema@.coupon_proxy_taken(transfer_ids text[])
RETURNS SETOF text
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON ALL;
    TARGET coupon_transfers_taken;
$$;

CREATE FUNCTION @extschema@.coupon_proxy_spread_pools(OUT pool text, OUT spread_id text,
                                                      OUT spread integer, OUT total bigint)
RETURNS SETOF record
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON ALL;
    TARGET coupon_spread_pools;
$$;

--
-- Transfers.
--

-- Complete the transfers of pool (every pool if NULL) cut between give
-- and take: take on the receiver (it is idempotent), then settle on the
-- giver.  Returns the number of transfers completed.  Runs as the owner.
CREATE FUNCTION @extschema@.coupon_proxy_recover(pool text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    n bigint := 0;
BEGIN
    FOR t IN SELECT * FROM @extschema@.coupon_proxy_pending() p
              WHERE $1 IS NULL OR p.pool OPERATOR(pg_catalog.=) $1
              ORDER BY p.made_at LOOP
        PERFORM @extschema@.coupon_proxy_take(t.receiver, t.transfer_id, t.pool, t.spread_id,
                                              t.giver, t.qty);
        PERFORM @extschema@.coupon_proxy_settle(t.giver, t.transfer_id);
        n := n OPERATOR(pg_catalog.+) 1;
    END LOOP;
    RETURN n;
END
$$;

-- Give to the share of pool on partition receiver from partition peer
-- (give there, take here, settle there); what was given.  A peer that
-- does not answer (PL/Proxy's connection errors are internal_error) gives
-- nothing; if its give committed before the answer was lost, the
-- transfer is in flight, and recover completes it.
CREATE FUNCTION @extschema@.coupon_proxy_transfer(pool text, spread_id text, peer integer,
                                                  receiver integer, need bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    transfer text := pg_catalog.gen_random_uuid()::text;
    given bigint;
BEGIN
    BEGIN
        given := @extschema@.coupon_proxy_give(peer, transfer, pool, spread_id, receiver, need);
    EXCEPTION WHEN internal_error THEN
        RETURN 0;
    END;
    IF given OPERATOR(pg_catalog.>) 0 THEN
        PERFORM @extschema@.coupon_proxy_take(receiver, transfer, pool, spread_id, peer, given);
        PERFORM @extschema@.coupon_proxy_settle(peer, transfer);
    END IF;
    RETURN given;
END
$$;

-- Bring capacity to the share of pool on partition receiver, which has
-- less than need.  Every node is asked at once for its share, and the
-- share with the most available gives.  If none has any, what is in
-- flight for the pool is completed, and refill says whether that brought
-- any.  True if the receiver got capacity.  one_claim is the quantity of one
-- claim: when all the shares together have less available, no share
-- could serve it, and nothing is moved (a qty above the pool's capacity
-- would otherwise drain every share into one before it is sold_out).  With a node down, the shares
-- are asked in turn instead, and the one that is down gives nothing.
-- Runs as the owner, whom alone the nodes let give and take: whoever
-- calls it moves capacity between the shares of a pool, which creates
-- none.
CREATE FUNCTION @extschema@.coupon_proxy_refill(pool text, receiver integer, need bigint,
                                                one_claim bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parts integer := @extschema@.coupon_proxy_partitions();
    info record;
    sid text;
    flight bigint;
    everywhere bigint;
    richest integer;
    most bigint;
BEGIN
    BEGIN
        WITH st AS (
            SELECT * FROM @extschema@.coupon_proxy_spread_state(pool)
        ), receiving AS (
            SELECT st.spread_id FROM st WHERE st.partition OPERATOR(pg_catalog.=) receiver
        ), peers AS (
            SELECT st.* FROM st, receiving r
             WHERE st.spread_id OPERATOR(pg_catalog.=) r.spread_id
               AND st.partition OPERATOR(pg_catalog.<>) receiver
        )
        SELECT r.spread_id,
               (SELECT pg_catalog.sum(st.unsettled)::bigint FROM st
                 WHERE st.spread_id OPERATOR(pg_catalog.=) r.spread_id),
               (SELECT pg_catalog.sum(st.available)::bigint FROM st
                 WHERE st.spread_id OPERATOR(pg_catalog.=) r.spread_id),
               (SELECT p.partition FROM peers p ORDER BY p.available DESC LIMIT 1),
               (SELECT pg_catalog.max(p.available) FROM peers p)
          INTO sid, flight, everywhere, richest, most
          FROM receiving r;
    EXCEPTION WHEN internal_error THEN
        -- A node does not answer: ask the shares in turn.
        SELECT * INTO info FROM @extschema@.coupon_proxy_spread_info(receiver, pool) i;
        FOR k IN 1 .. COALESCE(info.spread, 1) OPERATOR(pg_catalog.-) 1 LOOP
            IF @extschema@.coupon_proxy_transfer(pool, info.spread_id,
                   (info.home OPERATOR(pg_catalog.+)
                    ((info.member OPERATOR(pg_catalog.+) k) OPERATOR(pg_catalog.%) info.spread))
                   OPERATOR(pg_catalog.%) parts,
                   receiver, need) OPERATOR(pg_catalog.>) 0 THEN
                RETURN true;
            END IF;
        END LOOP;
        RETURN false;
    END;
    IF sid IS NULL THEN
        RETURN false;       -- not a spread pool (any more): nothing to ask for
    END IF;
    IF most OPERATOR(pg_catalog.>) 0 AND everywhere OPERATOR(pg_catalog.>=) one_claim
       AND @extschema@.coupon_proxy_transfer(pool, sid, richest, receiver, need)
           OPERATOR(pg_catalog.>) 0 THEN
        RETURN true;
    END IF;
    -- Nothing to give: maybe something is in flight (a node that stops
    -- answering meanwhile fails the recover: then nothing is brought).
    IF flight OPERATOR(pg_catalog.>) 0 THEN
        BEGIN
            RETURN @extschema@.coupon_proxy_recover(pool) OPERATOR(pg_catalog.>) 0;
        EXCEPTION WHEN internal_error THEN
            RETURN false;
        END;
    END IF;
    RETURN false;
END
$$;

-- Count one more call a claim of pool was sent on to: a few for a claim
-- (the home, then the customer's share), one a node for a bulk call.
-- Nodes that send it on and on disagree on the pool's shares, which
-- happens only while it is dropped and created again: 40001, retry.
CREATE FUNCTION @extschema@.coupon_proxy_hop(hops integer, pool text)
RETURNS integer
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF hops OPERATOR(pg_catalog.>=) 64 THEN
        RAISE EXCEPTION 'the nodes of pool "%" disagree on where its customers are served', pool
            USING ERRCODE = 'serialization_failure',
                  HINT = 'The pool is being dropped and created again: retry.';
    END IF;
    RETURN hops OPERATOR(pg_catalog.+) 1;
END
$$;

-- The pool's home named by a number whose low bits are its partition, as
-- PL/Proxy reads a RUN ON hash: the pool's hash without its sign, which the
-- node's check of the partition wants.  A claim or a hold sends it as the
-- home's partition and so reads no partition count (coupon_proxy_home
-- does, for about a tenth of the proxy's work on a claim).  Inlined where
-- it is used.
CREATE FUNCTION @extschema@.coupon_proxy_home_hash(pool text)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT @extschema@.coupon_proxy_pool_hash(pool) OPERATOR(pg_catalog.&) 2147483647
$$;

-- The pool's home: its partition.
CREATE FUNCTION @extschema@.coupon_proxy_home(pool text)
RETURNS integer
LANGUAGE sql STABLE
AS $$
    SELECT @extschema@.coupon_proxy_home_hash(pool) OPERATOR(pg_catalog.&)
           (@extschema@.coupon_proxy_partitions() OPERATOR(pg_catalog.-) 1)
$$;

--
-- The user API.  Like the routing functions of 1.0, the functions a claim
-- runs through pin no search_path (every name in them is qualified): they
-- run with the caller's rights, and pinning costs every claim.
--

-- A claim of pool for customer: at the home node first, then where it
-- says the customer is served; a share that is sold out is refilled and
-- asked again.  detailed: the statuses are the node's
-- coupon_claim_detailed's; else the node runs coupon_claim.
CREATE FUNCTION @extschema@.coupon_proxy_claim(pool text, customer text, qty integer,
                                               wait interval, request_id text,
                                               detailed boolean,
                                               OUT claim_id bigint, OUT status text,
                                               OUT available bigint)
RETURNS record
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    -- The home (coupon_proxy_home_hash).
    part integer := @extschema@.coupon_proxy_home_hash(pool);
    r record;
    refills integer := 0;
    hops integer := 0;
BEGIN
    LOOP
        SELECT * INTO r FROM @extschema@.coupon_proxy_routed_claim(part, pool, customer, qty,
                                                                   wait, request_id, detailed);
        -- The node's own partition, or the one that serves the customer.
        part := r.serve_partition;
        IF r.status OPERATOR(pg_catalog.=) 'elsewhere' THEN
            hops := @extschema@.coupon_proxy_hop(hops, pool);
            CONTINUE;
        END IF;
        -- A share sold out: the other shares may have some.  Each refill
        -- moves capacity, so this ends when no share has any left.
        EXIT WHEN r.shared IS NOT TRUE
                  OR NOT ((r.status OPERATOR(pg_catalog.=) 'sold_out') IS TRUE
                          OR (NOT detailed AND r.available OPERATOR(pg_catalog.<) qty)
                             IS TRUE)
                  OR refills OPERATOR(pg_catalog.>=) 64
                  OR NOT @extschema@.coupon_proxy_refill(pool, part, qty, qty);
        refills := refills OPERATOR(pg_catalog.+) 1;
    END LOOP;
    claim_id := r.claim_id;
    status := r.status;
    available := r.available;
END
$$;

DROP FUNCTION @extschema@.coupon_claim_detailed(text, text, integer, interval, text);
CREATE FUNCTION @extschema@.coupon_claim_detailed(pool text, customer text,
                                                  qty integer DEFAULT 1,
                                                  wait interval DEFAULT '0',
                                                  request_id text DEFAULT NULL,
                                                  OUT claim_id bigint,
                                                  OUT status text,
                                                  OUT available bigint)
RETURNS record
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    SELECT c.claim_id, c.status, c.available INTO claim_id, status, available
      FROM @extschema@.coupon_proxy_claim(pool, customer, qty, wait, request_id, true) c;
END
$$;

-- One SELECT of an expression, which PostgreSQL inlines into the caller's
-- query: a SQL function it does not inline plans its query at every call
-- (a fifth of the proxy's work on a claim, README "A cluster: the proxy's
-- cost"); coupon_claim_detailed, whose record cannot be inlined, is
-- PL/pgSQL, which keeps its plan.
DROP FUNCTION @extschema@.coupon_claim(text, text, integer, interval, text);
CREATE FUNCTION @extschema@.coupon_claim(pool text, customer text,
                                         qty integer DEFAULT 1,
                                         wait interval DEFAULT '0',
                                         request_id text DEFAULT NULL)
RETURNS bigint
LANGUAGE sql VOLATILE
AS $$
    SELECT (@extschema@.coupon_proxy_claim(pool, customer, qty, wait, request_id, false)).claim_id
$$;

DROP FUNCTION @extschema@.coupon_hold(text, text, interval, integer, interval, text);
CREATE FUNCTION @extschema@.coupon_hold(pool text, customer text, ttl interval,
                                        qty integer DEFAULT 1,
                                        wait interval DEFAULT '0',
                                        request_id text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    -- The home (coupon_proxy_home_hash).
    part integer := @extschema@.coupon_proxy_home_hash(pool);
    r record;
    refills integer := 0;
    hops integer := 0;
BEGIN
    LOOP
        SELECT * INTO r FROM @extschema@.coupon_proxy_routed_hold(part, pool, customer, ttl, qty,
                                                                  wait, request_id);
        EXIT WHEN r.claim_id IS NOT NULL;
        -- Not granted.  The node's answer says "elsewhere" only by a
        -- serving partition other than its own, so the home's hash becomes
        -- its partition before the two are compared.
        IF hops OPERATOR(pg_catalog.=) 0 AND refills OPERATOR(pg_catalog.=) 0 THEN
            part := @extschema@.coupon_proxy_home(pool);
        END IF;
        IF r.serve_partition OPERATOR(pg_catalog.<>) part THEN
            hops := @extschema@.coupon_proxy_hop(hops, pool);
            part := r.serve_partition;
            CONTINUE;
        END IF;
        -- No hold, and fewer available than asked for: refill and ask
        -- again (a customer at its limit has coupons available).
        EXIT WHEN r.available IS NULL
                  OR r.available OPERATOR(pg_catalog.>=) qty
                  OR refills OPERATOR(pg_catalog.>=) 64
                  OR NOT @extschema@.coupon_proxy_refill(pool, part, qty, qty);
        refills := refills OPERATOR(pg_catalog.+) 1;
    END LOOP;
    RETURN r.claim_id;
END
$$;

-- Bulk: each node claims for the customers it serves; those a share is
-- sold out for are claimed again after a refill.  Rows come node by node,
-- not in the order of customers.
DROP FUNCTION @extschema@.coupon_claim_many(text, text[], integer);
CREATE FUNCTION @extschema@.coupon_claim_many(pool text, customers text[],
                                              qty integer DEFAULT 1)
RETURNS TABLE(customer text, claim_id bigint, status text)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    -- Work left: customer work_who[i] at partition work_at[i].
    work_at integer[];
    work_who text[];
    part integer := @extschema@.coupon_proxy_home(pool);
    batch text[] := customers;      -- the first call, at the home, gets them all
    sold text[];
    r record;
    refills integer := 0;
    hops integer := 0;
BEGIN
    LOOP
        sold := '{}';
        FOR r IN SELECT * FROM @extschema@.coupon_proxy_routed_claim_many(part, pool, batch, qty) LOOP
            IF r.status OPERATOR(pg_catalog.=) 'elsewhere' THEN
                work_at := work_at OPERATOR(pg_catalog.||) r.serve_partition;
                work_who := work_who OPERATOR(pg_catalog.||) r.customer;
            ELSIF r.status OPERATOR(pg_catalog.=) 'sold_out' AND refills OPERATOR(pg_catalog.<) 64 THEN
                sold := sold OPERATOR(pg_catalog.||) r.customer;
            ELSE
                customer := r.customer;
                claim_id := r.claim_id;
                status := r.status;
                RETURN NEXT;
            END IF;
        END LOOP;
        -- Those the share was sold out for, again at once after a refill,
        -- before its capacity can be asked for by the next share.
        IF pg_catalog.cardinality(sold) OPERATOR(pg_catalog.>) 0 THEN
            refills := refills OPERATOR(pg_catalog.+) 1;
            IF @extschema@.coupon_proxy_refill(pool, part, pg_catalog.cardinality(sold)::bigint
                                                         OPERATOR(pg_catalog.*) qty, qty) THEN
                batch := sold;
                CONTINUE;
            END IF;
            RETURN QUERY SELECT u.c, NULL::bigint, 'sold_out'::text
                           FROM pg_catalog.unnest(sold) AS u(c);
        END IF;
        EXIT WHEN COALESCE(pg_catalog.cardinality(work_at), 0) OPERATOR(pg_catalog.=) 0;
        hops := @extschema@.coupon_proxy_hop(hops, pool);
        part := work_at[1];
        SELECT pg_catalog.array_agg(w.who ORDER BY w.n) FILTER (WHERE w.at OPERATOR(pg_catalog.=) part),
               pg_catalog.array_agg(w.at ORDER BY w.n) FILTER (WHERE w.at OPERATOR(pg_catalog.<>) part),
               pg_catalog.array_agg(w.who ORDER BY w.n) FILTER (WHERE w.at OPERATOR(pg_catalog.<>) part)
          INTO batch, work_at, work_who
          FROM ROWS FROM (pg_catalog.unnest(work_at), pg_catalog.unnest(work_who))
               WITH ORDINALITY AS w(at, who, n);
    END LOOP;
END
$$;

-- A cart goes to its pools' node when they share one, through the node's
-- check that none of them is spread; so does a cart the node refuses as
-- a whole (its lines' shapes, checked below), whose error it answers
-- before anything is held.  1.0 refused the others (0A000): now NULL.
CREATE OR REPLACE FUNCTION @extschema@.coupon_proxy_cart_partition(pools text[])
RETURNS integer
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    lowest integer;
    highest integer;
BEGIN
    IF pools IS NULL OR pools OPERATOR(pg_catalog.=) '{}' THEN
        RETURN 0;
    END IF;
    SELECT pg_catalog.min(h.part), pg_catalog.max(h.part) INTO lowest, highest
      FROM (SELECT @extschema@.coupon_proxy_home(u.pool) AS part
              FROM pg_catalog.unnest(pools) AS u(pool)) h;
    IF lowest OPERATOR(pg_catalog.<>) highest THEN
        RETURN NULL;
    END IF;
    RETURN COALESCE(lowest, 0);
END
$$;

-- Lines that a node refuses as a cart whatever its pools (README,
-- "Carts"): sent to one node whole, they change nothing anywhere.
CREATE FUNCTION @extschema@.coupon_proxy_cart_malformed(pools text[], qtys integer[])
RETURNS boolean
LANGUAGE sql IMMUTABLE
AS $$
    SELECT pools IS NULL OR qtys IS NULL
        OR COALESCE(pg_catalog.array_ndims(pools), 0) OPERATOR(pg_catalog.<>) 1
        OR COALESCE(pg_catalog.array_ndims(qtys), 0) OPERATOR(pg_catalog.<>) 1
        OR pg_catalog.cardinality(pools) OPERATOR(pg_catalog.<>) pg_catalog.cardinality(qtys)
        OR pg_catalog.cardinality(pools) OPERATOR(pg_catalog.>) 1000
        OR EXISTS (SELECT FROM ROWS FROM (pg_catalog.unnest(pools), pg_catalog.unnest(qtys))
                                   AS u(pool, qty)
                    WHERE u.pool IS NULL OR u.qty IS NULL OR u.qty OPERATOR(pg_catalog.<) 1
                       OR pg_catalog.octet_length(u.pool) OPERATOR(pg_catalog.<) 1
                       OR pg_catalog.octet_length(u.pool) OPERATOR(pg_catalog.>) 127)
$$;

-- Release the claims of ids for customer, each once, as a cart over
-- several nodes gives back what it got.  A release that fails (a node
-- that does not answer, a role without the grant of coupon_release)
-- leaves that hold to expire, and the others are released.
CREATE FUNCTION @extschema@.coupon_proxy_cart_release(ids bigint[], customer text)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    id bigint;
BEGIN
    FOR id IN SELECT DISTINCT u.id FROM pg_catalog.unnest(ids) AS u(id) ORDER BY 1 LOOP
        BEGIN
            PERFORM @extschema@.coupon_release(id, customer);
        EXCEPTION WHEN OTHERS THEN
            NULL;
        END;
    END LOOP;
END
$$;

-- A cart: at its pools' node when they share one, as is a cart of
-- malformed lines, which that node refuses.  A cart whose pools live on
-- several nodes (README, "Carts over several nodes"): with a request id,
-- every node is asked first whether the id was used for another cart
-- (23505).  Each node's lines are then held there as a cart of their
-- own, in the order of partitions, with the cart's request id and what
-- is left of wait; a cart of claims holds them for wait (a day at most)
-- and five minutes more, and confirms them once every node granted its
-- lines.  A node that refuses its lines (sold_out, timed_out,
-- limit_reached) gets the lines of the others released, and its status
-- and line are the cart's.  An error (a node's, a cancel, a hold whose
-- time was up at its confirm) releases what this call was granted and is
-- the cart's.  A retry with the request id finds each node's lines
-- ('repeat') and finishes what a call cut half-way left: no node is
-- confirmed before all held.
DROP FUNCTION @extschema@.coupon_claim_cart_detailed(text[], integer[], text, interval, interval, text);
CREATE FUNCTION @extschema@.coupon_claim_cart_detailed(pools text[], qtys integer[],
                                                       customer text,
                                                       ttl interval DEFAULT NULL,
                                                       wait interval DEFAULT '0',
                                                       request_id text DEFAULT NULL,
                                                       OUT claim_ids bigint[],
                                                       OUT status text,
                                                       OUT line integer)
RETURNS record
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    part integer := @extschema@.coupon_proxy_cart_partition(pools);
    who text := customer;
    started timestamptz := pg_catalog.clock_timestamp();
    hold_for interval := COALESCE(ttl, LEAST(GREATEST(wait, '0'), '1 day')
                                       OPERATOR(pg_catalog.+) interval '5 minutes');
    wait_left interval;
    node record;
    r record;
    got bigint[] := '{}';       -- every id the nodes answered with
    granted bigint[] := '{}';   -- those this call was granted
    id bigint;
BEGIN
    IF part IS NOT NULL OR @extschema@.coupon_proxy_cart_malformed(pools, qtys) THEN
        SELECT c.claim_ids, c.status, c.line INTO claim_ids, status, line
          FROM @extschema@.coupon_proxy_routed_cart(COALESCE(part,
                                                             @extschema@.coupon_proxy_home(pools[1]), 0),
                                                    pools, qtys, customer, ttl, wait, request_id) c;
        RETURN;
    END IF;
    IF request_id IS NOT NULL AND EXISTS (
           SELECT FROM @extschema@.coupon_proxy_cart_lines(request_id) l
             LEFT JOIN (SELECT u.pool, pg_catalog.sum(u.qty) AS qty
                          FROM ROWS FROM (pg_catalog.unnest(pools), pg_catalog.unnest(qtys))
                               AS u(pool, qty)
                         GROUP BY u.pool) w ON w.pool OPERATOR(pg_catalog.=) l.pool
            WHERE w.pool IS NULL OR w.qty OPERATOR(pg_catalog.<>) l.qty
               OR l.customer OPERATOR(pg_catalog.<>) who) THEN
        RAISE EXCEPTION 'request id "%" was used for another cart', request_id
            USING ERRCODE = 'unique_violation',
                  DETAIL = 'A retry of a cart must name its customer and, for each pool, the same sum.';
    END IF;
    claim_ids := pg_catalog.array_fill(NULL::bigint, ARRAY[pg_catalog.cardinality(pools)]);
    BEGIN
        FOR node IN
            SELECT @extschema@.coupon_proxy_home(u.pool) AS part,
                   pg_catalog.array_agg(u.pool ORDER BY u.n) AS pools,
                   pg_catalog.array_agg(u.qty ORDER BY u.n) AS qtys,
                   pg_catalog.array_agg(u.n ORDER BY u.n) AS lines
              FROM ROWS FROM (pg_catalog.unnest(pools), pg_catalog.unnest(qtys))
                   WITH ORDINALITY AS u(pool, qty, n)
             GROUP BY 1
             ORDER BY 1
        LOOP
            wait_left := CASE WHEN wait IS NULL OR wait OPERATOR(pg_catalog.<) '0' THEN wait
                              ELSE GREATEST(wait OPERATOR(pg_catalog.-)
                                            (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) started),
                                            '0') END;
            SELECT * INTO r
              FROM @extschema@.coupon_proxy_routed_cart(node.part, node.pools, node.qtys, customer,
                                                        hold_for, wait_left, request_id) c;
            IF r.status OPERATOR(pg_catalog.<>) 'granted' AND r.status OPERATOR(pg_catalog.<>) 'repeat' THEN
                PERFORM @extschema@.coupon_proxy_cart_release(got OPERATOR(pg_catalog.||) granted,
                                                              customer);
                claim_ids := NULL;
                status := r.status;
                line := node.lines[r.line];
                RETURN;
            END IF;
            IF r.status OPERATOR(pg_catalog.=) 'granted' THEN
                granted := granted OPERATOR(pg_catalog.||) r.claim_ids;
            ELSE
                got := got OPERATOR(pg_catalog.||) r.claim_ids;
            END IF;
            FOR i IN 1 .. pg_catalog.cardinality(node.lines) LOOP
                claim_ids[node.lines[i]] := r.claim_ids[i];
            END LOOP;
        END LOOP;
        IF ttl IS NULL THEN
            FOR id IN SELECT DISTINCT u.id
                        FROM pg_catalog.unnest(got OPERATOR(pg_catalog.||) granted) AS u(id)
                       ORDER BY 1 LOOP
                PERFORM @extschema@.coupon_confirm(id, customer);
            END LOOP;
        END IF;
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        PERFORM @extschema@.coupon_proxy_cart_release(granted, customer);
        RAISE;
    END;
    status := CASE WHEN granted OPERATOR(pg_catalog.=) '{}' THEN 'repeat' ELSE 'granted' END;
END
$$;

DROP FUNCTION @extschema@.coupon_claim_cart(text[], integer[], text, interval, interval, text);
CREATE FUNCTION @extschema@.coupon_claim_cart(pools text[], qtys integer[],
                                              customer text,
                                              ttl interval DEFAULT NULL,
                                              wait interval DEFAULT '0',
                                              request_id text DEFAULT NULL)
RETURNS bigint[]
LANGUAGE sql VOLATILE
AS $$
    SELECT CASE WHEN c.status OPERATOR(pg_catalog.=) 'granted'
                  OR c.status OPERATOR(pg_catalog.=) 'repeat' THEN c.claim_ids END
      FROM @extschema@.coupon_claim_cart_detailed(pools, qtys, customer, ttl, wait, request_id) c
$$;

--
-- Administration: for the owner, who may grant it.  It runs as the owner
-- of coupon_proxy, the role the nodes let create and drop shares.
--

-- The spread pool pool as its home node knows it (no spread id if it is
-- not spread; pool_exists if a pool of that name is there, spread or not).
CREATE FUNCTION @extschema@.coupon_proxy_home_share(pool text,
                                                    OUT home integer, OUT spread_id text,
                                                    OUT spread integer, OUT total bigint,
                                                    OUT per_customer integer,
                                                    OUT dropping boolean,
                                                    OUT pool_exists boolean)
RETURNS record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
BEGIN
    IF pool IS NULL THEN
        RAISE EXCEPTION 'pool must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    home := @extschema@.coupon_proxy_home(pool);
    SELECT * INTO s FROM @extschema@.coupon_proxy_spread_info(home, pool);
    spread_id := s.spread_id;
    spread := s.spread;
    total := s.total;
    per_customer := s.per_customer;
    dropping := s.dropping;
    pool_exists := s.pool_exists;
END
$$;

-- The capacity that member (0 to spread - 1) of a spread pool of capacity
-- total starts with: equal parts, the first ones one more for what is left.
CREATE FUNCTION @extschema@.coupon_proxy_share_of(total bigint, spread integer, member integer)
RETURNS bigint
LANGUAGE sql IMMUTABLE
AS $$
    SELECT total OPERATOR(pg_catalog./) spread OPERATOR(pg_catalog.+)
           CASE WHEN member OPERATOR(pg_catalog.<) (total OPERATOR(pg_catalog.%) spread)
                THEN 1 ELSE 0 END
$$;

-- A spread pool is created on every node it spreads to, the home last:
-- until the home has its share, no claim of the pool starts, and nothing
-- else touches the other shares.  Every node is checked before any is
-- changed: a pool of that name on one of them is refused (42710), unless
-- it is the share that the same create, cut half-way, left there (the
-- same settings and spread id, its capacity untouched): the call again
-- finishes the create.
CREATE FUNCTION @extschema@.coupon_proxy_admin_create(pool text, capacity bigint,
                                                   per_customer integer, spread integer)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parts integer := @extschema@.coupon_proxy_partitions();
    h record;
    sid text;
    info record;
    part integer;
    created boolean := false;
BEGIN
    IF spread IS NULL THEN
        RAISE EXCEPTION 'spread must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF spread OPERATOR(pg_catalog.<) 1 OR spread OPERATOR(pg_catalog.>) parts THEN
        RAISE EXCEPTION 'a pool cannot be spread over % nodes of a cluster of %', spread, parts
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = pg_catalog.format('spread is from 1 to %s, the number of nodes.', parts);
    END IF;
    SELECT * INTO h FROM @extschema@.coupon_proxy_home_share(pool);
    IF h.dropping THEN
        RAISE EXCEPTION 'spread pool "%" is being dropped', pool
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Finish the drop with coupon_pool_drop() first.';
    END IF;
    IF spread OPERATOR(pg_catalog.=) 1 AND h.spread_id IS NULL THEN
        RETURN @extschema@.coupon_proxy_pool_create(pool, capacity, per_customer);
    END IF;
    IF capacity IS NULL OR per_customer IS NULL THEN
        RAISE EXCEPTION 'capacity and per_customer must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF capacity OPERATOR(pg_catalog.<) 0 OR per_customer OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'capacity must be at least 0 and per_customer at least 1'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF h.spread_id IS NOT NULL THEN
        IF h.spread OPERATOR(pg_catalog.<>) spread OR h.total OPERATOR(pg_catalog.<>) capacity
           OR h.per_customer OPERATOR(pg_catalog.<>) per_customer THEN
            RAISE EXCEPTION 'pool "%" already exists with different settings', pool
                USING ERRCODE = 'duplicate_object',
                      DETAIL = pg_catalog.format('It has capacity %s spread over %s nodes, at most %s per customer.',
                                                 h.total, h.spread, h.per_customer),
                      HINT = 'Use coupon_pool_resize() to change its capacity.';
        END IF;
        -- The home joins last: every other share joined before it.  No
        -- join again, which would bring back a share that a drop has
        -- dropped since this call read the home.
        RETURN false;
    ELSIF h.pool_exists THEN
        RAISE EXCEPTION 'pool "%" already exists, and is not spread', pool
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Drop it first, or choose another name for the spread pool.';
    ELSE
        FOR k IN 1 .. spread OPERATOR(pg_catalog.-) 1 LOOP
            part := (h.home OPERATOR(pg_catalog.+) k) OPERATOR(pg_catalog.%) parts;
            SELECT * INTO info FROM @extschema@.coupon_proxy_spread_info(part, pool);
            CONTINUE WHEN NOT info.pool_exists;
            IF (info.member OPERATOR(pg_catalog.=) k
                AND info.spread OPERATOR(pg_catalog.=) spread
                AND info.total OPERATOR(pg_catalog.=) capacity
                AND info.per_customer OPERATOR(pg_catalog.=) per_customer
                AND info.capacity OPERATOR(pg_catalog.=)
                    @extschema@.coupon_proxy_share_of(capacity, spread, k)
                AND info.spread_id OPERATOR(pg_catalog.=) COALESCE(sid, info.spread_id)) IS NOT TRUE THEN
                RAISE EXCEPTION 'pool "%" already exists on partition %', pool, part
                    USING ERRCODE = 'duplicate_object',
                          DETAIL = CASE WHEN info.spread_id IS NOT NULL
                                        THEN 'It is a share of an earlier spread pool of that name, left by a create cut half-way or a drop on the node.' END,
                          HINT = 'coupon_pool_drop() on the proxy drops what is left of a spread pool whose home has no pool of that name; or choose another name.';
            END IF;
            sid := info.spread_id;
        END LOOP;
    END IF;
    sid := COALESCE(sid, pg_catalog.gen_random_uuid()::text);
    FOR k IN REVERSE spread OPERATOR(pg_catalog.-) 1 .. 0 LOOP
        created := @extschema@.coupon_proxy_spread_join(
                       (h.home OPERATOR(pg_catalog.+) k) OPERATOR(pg_catalog.%) parts,
                       pool, sid, capacity, @extschema@.coupon_proxy_share_of(capacity, spread, k),
                       per_customer, spread, k)
                   OR created;
    END LOOP;
    RETURN created;
END
$$;

-- A resize of a spread pool happens at its home, in one transaction
-- there: a growth adds to the home's share; a shrink takes off the home's
-- share, once transfers from the other shares have brought it what it
-- lacks.  A shrink that the shares cannot spare (claimed, held or in
-- flight) is refused and changes no capacity: what was moved to the home
-- stays there.
CREATE FUNCTION @extschema@.coupon_proxy_admin_resize(pool text, capacity bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h record;
    lack bigint;
BEGIN
    SELECT * INTO h FROM @extschema@.coupon_proxy_home_share(pool);
    IF h.spread_id IS NULL THEN
        PERFORM @extschema@.coupon_proxy_pool_resize(pool, capacity);
        RETURN;
    END IF;
    FOR attempt IN 1 .. 64 LOOP
        lack := @extschema@.coupon_proxy_spread_resize(h.home, pool, h.spread_id, capacity);
        IF lack OPERATOR(pg_catalog.=) 0 THEN
            RETURN;
        END IF;
        EXIT WHEN NOT @extschema@.coupon_proxy_refill(pool, h.home, lack, 0);
    END LOOP;
    RAISE EXCEPTION 'cannot shrink pool "%" to capacity %', pool, capacity
        USING ERRCODE = 'object_not_in_prerequisite_state',
              DETAIL = pg_catalog.format('Its shares have %s more claimed, held or in flight than that.', lack);
END
$$;

-- A drop marks the spread pool at its home as being dropped, drops the
-- other shares, then the home's: a drop cut half-way is finished by the
-- call again, which finds the pool at its home still, and meanwhile no
-- create or resize uses it.  A pool whose home has none of that name may
-- have shares elsewhere, left by a create cut half-way: they are dropped.
CREATE FUNCTION @extschema@.coupon_proxy_admin_drop(pool text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parts integer := @extschema@.coupon_proxy_partitions();
    h record;
    left_over record;
    found_any boolean := false;
BEGIN
    SELECT * INTO h FROM @extschema@.coupon_proxy_home_share(pool);
    IF h.spread_id IS NULL THEN
        IF NOT h.pool_exists THEN
            FOR left_over IN SELECT * FROM @extschema@.coupon_proxy_spread_state(pool) LOOP
                PERFORM @extschema@.coupon_proxy_spread_drop(left_over.partition, pool,
                                                             left_over.spread_id);
                found_any := true;
            END LOOP;
        END IF;
        IF NOT found_any THEN
            PERFORM @extschema@.coupon_proxy_pool_drop(pool);
        END IF;
        RETURN;
    END IF;
    PERFORM @extschema@.coupon_proxy_spread_dropping(h.home, pool, h.spread_id);
    FOR k IN REVERSE h.spread OPERATOR(pg_catalog.-) 1 .. 0 LOOP
        PERFORM @extschema@.coupon_proxy_spread_drop((h.home OPERATOR(pg_catalog.+) k)
                                                     OPERATOR(pg_catalog.%) parts,
                                                     pool, h.spread_id);
    END LOOP;
END
$$;

-- Create, resize and drop of a pool take turns, whichever proxy runs
-- them: each holds a session advisory lock, (3090, hashtext(pool)) of
-- pg_advisory_lock()'s two-key form, on the pool's home node from its
-- first call there to its last.  The lock lives in the session PL/Proxy
-- keeps to that node, so a proxy backend that dies, or a node that goes
-- down, lets go of it.  A second call that finds it taken fails at once
-- (55P03) and changes nothing: a create retried while a drop finishes
-- what a cut create left, or two proxies creating one spread pool, no
-- longer interleave.  take: lock, or else unlock; the answer is
-- pg_try_advisory_lock()'s or pg_advisory_unlock()'s.
CREATE FUNCTION @extschema@.coupon_proxy_admin_lock(partition integer, pool text,
                                                    take boolean)
RETURNS boolean
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON partition;
    SELECT CASE WHEN take
                THEN pg_catalog.pg_try_advisory_lock(3090, pg_catalog.hashtext(pool))
                ELSE pg_catalog.pg_advisory_unlock(3090, pg_catalog.hashtext(pool)) END;
$$;

-- Let go of the lock.  A home that does not answer has lost the session
-- that held it, and the lock with it: that error is not the caller's.
CREATE FUNCTION @extschema@.coupon_proxy_admin_end(home integer, pool text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.coupon_proxy_admin_lock(home, pool, false);
EXCEPTION WHEN OTHERS THEN
    NULL;
END
$$;

-- Run call (create, resize or drop) of pool with its home locked: 55P03
-- at once if another call holds it; the lock let go of however the call
-- ends.  The answer is the create's.
CREATE FUNCTION @extschema@.coupon_proxy_admin(call text, pool text, capacity bigint,
                                               per_customer integer, spread integer)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    home integer;
    created boolean;
BEGIN
    IF pool IS NULL THEN
        RAISE EXCEPTION 'pool must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    home := @extschema@.coupon_proxy_home(pool);
    IF NOT @extschema@.coupon_proxy_admin_lock(home, pool, true) THEN
        RAISE EXCEPTION 'another create, resize or drop of pool "%" is running', pool
            USING ERRCODE = 'lock_not_available',
                  DETAIL = pg_catalog.format('Partition %s, the pool''s home, holds advisory lock (3090, %s) for it.',
                                             home, pg_catalog.hashtext(pool)),
                  HINT = 'Retry once it has ended.';
    END IF;
    BEGIN
        IF call OPERATOR(pg_catalog.=) 'create' THEN
            created := @extschema@.coupon_proxy_admin_create(pool, capacity, per_customer, spread);
        ELSIF call OPERATOR(pg_catalog.=) 'resize' THEN
            PERFORM @extschema@.coupon_proxy_admin_resize(pool, capacity);
        ELSE
            PERFORM @extschema@.coupon_proxy_admin_drop(pool);
        END IF;
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        PERFORM @extschema@.coupon_proxy_admin_end(home, pool);
        RAISE;
    END;
    PERFORM @extschema@.coupon_proxy_admin_end(home, pool);
    RETURN created;
END
$$;

DROP FUNCTION @extschema@.coupon_pool_create(text, bigint, integer);
CREATE FUNCTION @extschema@.coupon_pool_create(pool text, capacity bigint,
                                               per_customer integer DEFAULT 1,
                                               spread integer DEFAULT 1)
RETURNS boolean
LANGUAGE sql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT @extschema@.coupon_proxy_admin('create', pool, capacity, per_customer, spread) $$;

DROP FUNCTION @extschema@.coupon_pool_resize(text, bigint);
CREATE FUNCTION @extschema@.coupon_pool_resize(pool text, capacity bigint)
RETURNS void
LANGUAGE sql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT @extschema@.coupon_proxy_admin('resize', pool, capacity, NULL, NULL) $$;

DROP FUNCTION @extschema@.coupon_pool_drop(text);
CREATE FUNCTION @extschema@.coupon_pool_drop(pool text)
RETURNS void
LANGUAGE sql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT @extschema@.coupon_proxy_admin('drop', pool, NULL, NULL, NULL) $$;

CREATE FUNCTION @extschema@.coupon_cluster_recover()
RETURNS bigint
LANGUAGE sql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT @extschema@.coupon_proxy_recover(NULL) $$;
COMMENT ON FUNCTION @extschema@.coupon_cluster_recover() IS
    'complete every capacity transfer between the shares of spread pools that was cut between its give and its take; returns how many';

-- The node that serves pool for customer (the pool's home without one).
CREATE OR REPLACE FUNCTION @extschema@.coupon_node(pool text, customer text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part integer;
    conn text;
BEGIN
    IF pool IS NULL THEN
        RAISE EXCEPTION 'pool must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    part := @extschema@.coupon_proxy_home(pool);
    IF customer IS NOT NULL THEN
        part := @extschema@.coupon_proxy_serve_partition(part, pool, customer);
    END IF;
    SELECT o.option_value INTO conn
      FROM pg_catalog.pg_foreign_server s,
           pg_catalog.pg_options_to_table(s.srvoptions) o
     WHERE s.srvname OPERATOR(pg_catalog.=) 'coupon_cluster'
       AND o.option_name OPERATOR(pg_catalog.=) ANY
           (ARRAY['p' OPERATOR(pg_catalog.||) part, 'partition_' OPERATOR(pg_catalog.||) part]);
    RETURN conn;
END
$$;

-- coupon_pools: one row a pool, a spread pool's shares added up, with
-- its capacity and what is in flight between its shares: given and not
-- yet taken (a transfer taken and not yet settled is in its receiver's
-- capacity already).
DROP VIEW @extschema@.coupon_pools;
CREATE VIEW @extschema@.coupon_pools AS
WITH nodes AS (
    SELECT * FROM @extschema@.coupon_proxy_pools()
), pending AS (
    SELECT * FROM @extschema@.coupon_proxy_pending()
), flight AS (
    SELECT t.pool, t.spread_id, pg_catalog.sum(t.qty)::bigint AS transferring
      FROM pending t
     WHERE t.transfer_id OPERATOR(pg_catalog.<>) ALL
           (ARRAY(SELECT @extschema@.coupon_proxy_taken(ARRAY(SELECT p.transfer_id FROM pending p))))
     GROUP BY t.pool, t.spread_id
)
SELECT n.pool,
       COALESCE(pg_catalog.max(s.total), pg_catalog.sum(n.capacity))::bigint AS capacity,
       pg_catalog.sum(n.claimed)::bigint AS claimed,
       pg_catalog.sum(n.held)::bigint AS held,
       pg_catalog.sum(n.in_flight)::bigint AS in_flight,
       pg_catalog.sum(n.available)::bigint AS available,
       pg_catalog.min(n.per_customer) AS per_customer,
       pg_catalog.sum(n.grants)::bigint AS grants,
       pg_catalog.sum(n.sold_out)::bigint AS sold_out,
       pg_catalog.sum(n.waits)::bigint AS waits,
       COALESCE(pg_catalog.max(s.spread), 1) AS spread,
       COALESCE(pg_catalog.max(f.transferring), 0)::bigint AS transferring
  FROM nodes n
  LEFT JOIN @extschema@.coupon_proxy_spread_pools() s ON s.pool OPERATOR(pg_catalog.=) n.pool
  LEFT JOIN flight f ON f.pool OPERATOR(pg_catalog.=) n.pool
                     AND f.spread_id OPERATOR(pg_catalog.=) s.spread_id
 GROUP BY n.pool;
COMMENT ON VIEW @extschema@.coupon_pools IS
    'every pool of the cluster, a spread pool''s shares added up: capacity is the pool''s, transferring what is in flight between its shares';

-- Attach now needs coupon 1.5 on every node: the same function, with
-- the version it asks for moved on.
DO $$
DECLARE
    src text := pg_catalog.pg_get_functiondef('@extschema@.coupon_cluster_attach()'::pg_catalog.regprocedure);
    old CONSTANT text := 'want_version CONSTANT text := ''1.4''';
BEGIN
    IF pg_catalog.strpos(src, old) OPERATOR(pg_catalog.=) 0 THEN
        RAISE EXCEPTION 'coupon_cluster_attach() is not that of coupon_proxy 1.0';
    END IF;
    EXECUTE pg_catalog.replace(src, old, 'want_version CONSTANT text := ''1.5''');
END
$$;

REVOKE ALL ON FUNCTION
    @extschema@.coupon_proxy_spread_join(integer, text, text, bigint, bigint, integer, integer, integer),
    @extschema@.coupon_proxy_spread_drop(integer, text, text),
    @extschema@.coupon_proxy_spread_dropping(integer, text, text),
    @extschema@.coupon_proxy_spread_resize(integer, text, text, bigint),
    @extschema@.coupon_proxy_spread_info(integer, text),
    @extschema@.coupon_proxy_give(integer, text, text, text, integer, bigint),
    @extschema@.coupon_proxy_take(integer, text, text, text, integer, bigint),
    @extschema@.coupon_proxy_settle(integer, text),
    @extschema@.coupon_proxy_spread_state(text),
    @extschema@.coupon_proxy_transfer(text, text, integer, integer, bigint),
    @extschema@.coupon_proxy_pool_create(text, bigint, integer),
    @extschema@.coupon_proxy_pool_resize(text, bigint),
    @extschema@.coupon_proxy_pool_drop(text),
    @extschema@.coupon_proxy_recover(text),
    @extschema@.coupon_proxy_home_share(text),
    @extschema@.coupon_proxy_refill(text, integer, bigint, bigint),
    @extschema@.coupon_proxy_claim(text, text, integer, interval, text, boolean),
    @extschema@.coupon_proxy_routed_claim(integer, text, text, integer, interval, text, boolean),
    @extschema@.coupon_proxy_routed_hold(integer, text, text, interval, integer, interval, text),
    @extschema@.coupon_proxy_routed_claim_many(integer, text, text[], integer),
    @extschema@.coupon_proxy_routed_cart(integer, text[], integer[], text, interval, interval, text),
    @extschema@.coupon_proxy_cart_release(bigint[], text),
    @extschema@.coupon_proxy_cart_lines(text),
    @extschema@.coupon_claim(text, text, integer, interval, text),
    @extschema@.coupon_claim_detailed(text, text, integer, interval, text),
    @extschema@.coupon_hold(text, text, interval, integer, interval, text),
    @extschema@.coupon_claim_many(text, text[], integer),
    @extschema@.coupon_claim_cart(text[], integer[], text, interval, interval, text),
    @extschema@.coupon_claim_cart_detailed(text[], integer[], text, interval, interval, text),
    @extschema@.coupon_pool_create(text, bigint, integer, integer),
    @extschema@.coupon_pool_resize(text, bigint),
    @extschema@.coupon_pool_drop(text),
    @extschema@.coupon_proxy_admin_create(text, bigint, integer, integer),
    @extschema@.coupon_proxy_admin_resize(text, bigint),
    @extschema@.coupon_proxy_admin_drop(text),
    @extschema@.coupon_proxy_admin_lock(integer, text, boolean),
    @extschema@.coupon_proxy_admin(text, text, bigint, integer, integer),
    @extschema@.coupon_proxy_admin_end(integer, text),
    @extschema@.coupon_cluster_recover() FROM PUBLIC;
REVOKE ALL ON TABLE @extschema@.coupon_pools FROM PUBLIC;
-- The claim functions' steps that only compute a partition, and what the
-- view reads.  The steps that claim or move capacity (coupon_proxy_claim,
-- the routed calls, refill) are granted with the API function that uses
-- them (README, "Grants"), so that a role without the grant of
-- coupon_claim cannot claim through them, nor move capacity.
GRANT EXECUTE ON FUNCTION
    @extschema@.coupon_proxy_serve_partition(integer, text, text),
    @extschema@.coupon_proxy_hop(integer, text),
    @extschema@.coupon_proxy_home_hash(text),
    @extschema@.coupon_proxy_home(text),
    @extschema@.coupon_proxy_pending(),
    @extschema@.coupon_proxy_taken(text[]),
    @extschema@.coupon_proxy_spread_pools() TO PUBLIC;
