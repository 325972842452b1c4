/* proxy/coupon_proxy--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION coupon_proxy CASCADE" to load this file. \quit

--
-- The proxy of a coupon cluster.  Every node runs the extension coupon as
-- it is; this database runs PL/Proxy and the functions below, which have
-- the names, arguments and results of the node's user API and run the
-- node's function of the same name on the node that serves the call:
--
--   a pool's calls                    the node hashtext(pool) picks
--   release, confirm, extend          the node named in the claim id's
--                                     high bits (coupon_cluster_join)
--   a cart                            its pools' node, if they share one
--   coupon_pools, coupon_holds        every node, gathered
--
-- The cluster is PL/Proxy's SQL/MED server coupon_cluster, partitions p0
-- to pN-1; coupon_cluster_attach() stamps each node with its partition.
-- Each remote call is a transaction of its own on its node: the proxy
-- keeps no state but the one row that says it was attached (several
-- proxies can serve one cluster), and a call whose answer was lost is
-- retried with its request id.  The node's functions are called by their
-- bare names: extension coupon must be on the search_path of the role the
-- proxy connects as.
--
-- Every name below is schema-qualified, PL/Proxy bodies included; the
-- routing functions, called on every request, pin no search_path for
-- that reason (as the node's claim functions).
--

-- The cluster this proxy attached, and its number of partitions; no row
-- before coupon_cluster_attach().  Not secret: every caller's routing
-- reads it.
CREATE TABLE @extschema@.coupon_proxy_cluster (
    cluster     text NOT NULL,
    partitions  integer NOT NULL,
    attached_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE UNIQUE INDEX coupon_proxy_cluster_one ON @extschema@.coupon_proxy_cluster ((true));
COMMENT ON TABLE @extschema@.coupon_proxy_cluster IS
    'the cluster coupon_cluster_attach() stamped on the nodes (at most one row)';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.coupon_proxy_cluster', '');
REVOKE ALL ON TABLE @extschema@.coupon_proxy_cluster FROM PUBLIC;
GRANT SELECT ON TABLE @extschema@.coupon_proxy_cluster TO PUBLIC;

--
-- Routing: executable by every role (they compute a partition number and
-- read nothing secret); the API's grants decide who calls.
--

-- The CLUSTER of every routed call: refuses every call before attach.
CREATE FUNCTION @extschema@.coupon_proxy_cluster_name()
RETURNS text
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    PERFORM FROM @extschema@.coupon_proxy_cluster;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the coupon cluster is not attached'
            USING ERRCODE = 'UC007',
                  HINT = 'Create the server coupon_cluster and a user mapping for it, then run SELECT coupon_cluster_attach() as the owner of extension coupon_proxy.';
    END IF;
    RETURN 'coupon_cluster';
END
$$;

-- The number of partitions, or the error of a call before attach.
CREATE FUNCTION @extschema@.coupon_proxy_partitions()
RETURNS integer
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    n integer;
BEGIN
    SELECT c.partitions INTO n FROM @extschema@.coupon_proxy_cluster c;
    IF n IS NULL THEN
        PERFORM @extschema@.coupon_proxy_cluster_name();
    END IF;
    RETURN n;
END
$$;

-- A pool's hash (PL/Proxy takes it modulo the partitions).  A NULL pool
-- goes to partition 0, whose coupon answers 22004.
CREATE FUNCTION @extschema@.coupon_proxy_pool_hash(pool text)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT COALESCE(pg_catalog.hashtext(pool), 0) $$;

-- The partition a claim id names; UC008 if it names none of this
-- cluster's.  A NULL id goes to partition 0, whose coupon answers 22004.
CREATE FUNCTION @extschema@.coupon_proxy_claim_partition(claim_id bigint)
RETURNS integer
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    n integer := @extschema@.coupon_proxy_partitions();
    p bigint := claim_id OPERATOR(pg_catalog.>>) 48;
BEGIN
    IF claim_id IS NULL THEN
        RETURN 0;
    END IF;
    IF claim_id OPERATOR(pg_catalog.<) 0 OR p OPERATOR(pg_catalog.>=) n THEN
        RAISE EXCEPTION 'claim id % names no node of this cluster', claim_id
            USING ERRCODE = 'UC008',
                  DETAIL = pg_catalog.format('A claim id is (partition << 48) | a number of its node; this one names partition %s, and the cluster has partitions 0 to %s.',
                                             p, n OPERATOR(pg_catalog.-) 1);
    END IF;
    RETURN p;
END
$$;

-- The partition of a cart's pools; 0A000 if they are on several.  NULL
-- pools (and an empty or NULL array) go to partition 0 (or the others'
-- partition), whose coupon answers the error.
CREATE FUNCTION @extschema@.coupon_proxy_cart_partition(pools text[])
RETURNS integer
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    mask integer := @extschema@.coupon_proxy_partitions() OPERATOR(pg_catalog.-) 1;
    pool text;
    first_pool text;
    first_part integer;
    part integer;
BEGIN
    IF pools IS NULL THEN
        RETURN 0;
    END IF;
    FOREACH pool IN ARRAY pools LOOP
        CONTINUE WHEN pool IS NULL;
        part := pg_catalog.hashtext(pool) OPERATOR(pg_catalog.&) mask;
        IF first_pool IS NULL THEN
            first_pool := pool;
            first_part := part;
        ELSIF part OPERATOR(pg_catalog.<>) first_part THEN
            RAISE EXCEPTION 'carts over several nodes are not supported yet'
                USING ERRCODE = 'feature_not_supported',
                      DETAIL = pg_catalog.format('Pool "%s" is on node p%s and pool "%s" on node p%s.',
                                                 first_pool, first_part, pool, part),
                      HINT = 'Claim each node''s lines as a cart of their own, or name the pools of a cart so that coupon_node() gives one node.';
        END IF;
    END LOOP;
    RETURN COALESCE(first_part, 0);
END
$$;

GRANT EXECUTE ON FUNCTION @extschema@.coupon_proxy_cluster_name(),
    @extschema@.coupon_proxy_partitions(),
    @extschema@.coupon_proxy_pool_hash(text),
    @extschema@.coupon_proxy_claim_partition(bigint),
    @extschema@.coupon_proxy_cart_partition(text[]) TO PUBLIC;

--
-- The user API: the node's functions, run where they belong.
--

CREATE FUNCTION @extschema@.coupon_pool_create(pool text, capacity bigint,
                                               per_customer integer DEFAULT 1)
RETURNS boolean
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON @extschema@.coupon_proxy_pool_hash(pool);
$$;

CREATE FUNCTION @extschema@.coupon_pool_resize(pool text, capacity bigint)
RETURNS void
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON @extschema@.coupon_proxy_pool_hash(pool);
$$;

CREATE FUNCTION @extschema@.coupon_pool_drop(pool text)
RETURNS void
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON @extschema@.coupon_proxy_pool_hash(pool);
$$;

CREATE FUNCTION @extschema@.coupon_claim(pool text, customer text,
                                         qty integer DEFAULT 1,
                                         wait interval DEFAULT '0',
                                         request_id text DEFAULT NULL)
RETURNS bigint
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON @extschema@.coupon_proxy_pool_hash(pool);
$$;

CREATE FUNCTION @extschema@.coupon_claim_detailed(pool text, customer text,
                                                  qty integer DEFAULT 1,
                                                  wait interval DEFAULT '0',
                                                  request_id text DEFAULT NULL,
                                                  OUT claim_id bigint,
                                                  OUT status text,
                                                  OUT available bigint)
RETURNS record
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON @extschema@.coupon_proxy_pool_hash(pool);
$$;

CREATE FUNCTION @extschema@.coupon_hold(pool text, customer text, ttl interval,
                                        qty integer DEFAULT 1,
                                        wait interval DEFAULT '0',
                                        request_id text DEFAULT NULL)
RETURNS bigint
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON @extschema@.coupon_proxy_pool_hash(pool);
$$;

CREATE FUNCTION @extschema@.coupon_claim_many(pool text, customers text[],
                                              qty integer DEFAULT 1)
RETURNS TABLE(customer text, claim_id bigint, status text)
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON @extschema@.coupon_proxy_pool_hash(pool);
$$;

CREATE FUNCTION @extschema@.coupon_release(claim_id bigint, customer text)
RETURNS boolean
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON @extschema@.coupon_proxy_claim_partition(claim_id);
$$;

CREATE FUNCTION @extschema@.coupon_release(claim_id bigint)
RETURNS boolean
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON @extschema@.coupon_proxy_claim_partition(claim_id);
$$;

CREATE FUNCTION @extschema@.coupon_confirm(claim_id bigint, customer text)
RETURNS boolean
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON @extschema@.coupon_proxy_claim_partition(claim_id);
$$;

CREATE FUNCTION @extschema@.coupon_confirm(claim_id bigint)
RETURNS boolean
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON @extschema@.coupon_proxy_claim_partition(claim_id);
$$;

CREATE FUNCTION @extschema@.coupon_hold_extend(claim_id bigint, ttl interval,
                                               customer text)
RETURNS timestamptz
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON @extschema@.coupon_proxy_claim_partition(claim_id);
$$;

CREATE FUNCTION @extschema@.coupon_hold_extend(claim_id bigint, ttl interval)
RETURNS timestamptz
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON @extschema@.coupon_proxy_claim_partition(claim_id);
$$;

CREATE FUNCTION @extschema@.coupon_claim_cart(pools text[], qtys integer[],
                                              customer text,
                                              ttl interval DEFAULT NULL,
                                              wait interval DEFAULT '0',
                                              request_id text DEFAULT NULL)
RETURNS bigint[]
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON @extschema@.coupon_proxy_cart_partition(pools);
$$;

CREATE FUNCTION @extschema@.coupon_claim_cart_detailed(pools text[], qtys integer[],
                                                       customer text,
                                                       ttl interval DEFAULT NULL,
                                                       wait interval DEFAULT '0',
                                                       request_id text DEFAULT NULL,
                                                       OUT claim_ids bigint[],
                                                       OUT status text,
                                                       OUT line integer)
RETURNS record
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON @extschema@.coupon_proxy_cart_partition(pools);
$$;

-- The views: every node's rows; a node that does not answer fails the
-- query with an error that names it.
CREATE FUNCTION @extschema@.coupon_proxy_pools(OUT pool text, OUT capacity bigint,
                                               OUT claimed bigint, OUT held bigint,
                                               OUT in_flight bigint, OUT available bigint,
                                               OUT per_customer integer, OUT grants bigint,
                                               OUT sold_out bigint, OUT waits bigint)
RETURNS SETOF record
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON ALL;
    SELECT v.pool, v.capacity, v.claimed, v.held, v.in_flight, v.available,
           v.per_customer, v.grants, v.sold_out, v.waits
      FROM coupon_pools v;
$$;

CREATE FUNCTION @extschema@.coupon_proxy_holds(OUT claim_id bigint, OUT pool text,
                                               OUT customer text, OUT qty integer,
                                               OUT claimed_at timestamptz,
                                               OUT expires_at timestamptz,
                                               OUT expired boolean)
RETURNS SETOF record
LANGUAGE plproxy
AS $$
    CLUSTER @extschema@.coupon_proxy_cluster_name();
    RUN ON ALL;
    SELECT v.claim_id, v.pool, v.customer, v.qty, v.claimed_at, v.expires_at, v.expired
      FROM coupon_holds v;
$$;

CREATE VIEW @extschema@.coupon_pools AS
SELECT p.pool, p.capacity, p.claimed, p.held, p.in_flight, p.available,
       p.per_customer, p.grants, p.sold_out, p.waits
  FROM @extschema@.coupon_proxy_pools() p;
COMMENT ON VIEW @extschema@.coupon_pools IS
    'every pool of every node (the node''s coupon_pools)';

CREATE VIEW @extschema@.coupon_holds AS
SELECT h.claim_id, h.pool, h.customer, h.qty, h.claimed_at, h.expires_at, h.expired
  FROM @extschema@.coupon_proxy_holds() h;
COMMENT ON VIEW @extschema@.coupon_holds IS
    'every live hold of every node (the node''s coupon_holds)';

-- The connection string of the node that serves a pool (and customer: the
-- same node for every customer while pools are not spread), for an
-- application that writes its order on that node in the claim's
-- transaction.
CREATE FUNCTION @extschema@.coupon_node(pool text, customer text DEFAULT NULL)
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
    part := pg_catalog.hashtext(pool) OPERATOR(pg_catalog.&)
            (@extschema@.coupon_proxy_partitions() OPERATOR(pg_catalog.-) 1);
    SELECT o.option_value INTO conn
      FROM pg_catalog.pg_foreign_server s,
           pg_catalog.pg_options_to_table(s.srvoptions) o
     WHERE s.srvname OPERATOR(pg_catalog.=) 'coupon_cluster'
       AND o.option_name OPERATOR(pg_catalog.=) ANY
           (ARRAY['p' OPERATOR(pg_catalog.||) part, 'partition_' OPERATOR(pg_catalog.||) part]);
    RETURN conn;
END
$$;

--
-- Attach: for the owner.  The nodes are read first and stamped only when
-- every one of them can be, so that a refusal changes nothing.
--

CREATE FUNCTION @extschema@.coupon_proxy_node_version(partition integer, OUT version text)
RETURNS text
LANGUAGE plproxy
AS $$
    CLUSTER 'coupon_cluster';
    RUN ON partition;
    SELECT (SELECT e.extversion FROM pg_catalog.pg_extension e
             WHERE e.extname OPERATOR(pg_catalog.=) 'coupon') AS version;
$$;

CREATE FUNCTION @extschema@.coupon_proxy_node_state(partition integer,
                                                    OUT member_cluster text,
                                                    OUT member_partition integer,
                                                    OUT member_partitions integer,
                                                    OUT min_id bigint, OUT max_id bigint,
                                                    OUT last_id bigint)
RETURNS record
LANGUAGE plproxy
AS $$
    CLUSTER 'coupon_cluster';
    RUN ON partition;
    SELECT m.cluster AS member_cluster, m.partition AS member_partition,
           m.partitions AS member_partitions, l.min_id, l.max_id, s.last_value AS last_id
      FROM (SELECT pg_catalog.min(c.id) AS min_id, pg_catalog.max(c.id) AS max_id
              FROM coupon_claims c) l
     CROSS JOIN coupon_claims_id_seq s
      LEFT JOIN coupon_cluster_member m ON true;
$$;

CREATE FUNCTION @extschema@.coupon_proxy_node_join(cluster text, partition integer,
                                                   partitions integer)
RETURNS integer
LANGUAGE plproxy
AS $$
    CLUSTER 'coupon_cluster';
    RUN ON partition;
    TARGET coupon_cluster_join;
$$;

CREATE FUNCTION @extschema@.coupon_cluster_attach()
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    want_version CONSTANT text := '1.4';
    n integer;
    i integer;
    cl text;
    v text;
    st record;
    sqlstate_ text;
    msg text;
    detail text;
    hint text;
BEGIN
    SELECT pg_catalog.count(o.option_name) INTO n
      FROM pg_catalog.pg_foreign_server s
      JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid OPERATOR(pg_catalog.=) s.srvfdw
      LEFT JOIN pg_catalog.pg_options_to_table(s.srvoptions) o
        ON o.option_name OPERATOR(pg_catalog.~) '^(p|partition_)[0-9]+$'
     WHERE s.srvname OPERATOR(pg_catalog.=) 'coupon_cluster'
       AND w.fdwname OPERATOR(pg_catalog.=) 'plproxy'
    HAVING pg_catalog.count(s.oid) OPERATOR(pg_catalog.>) 0;
    IF n IS NULL THEN
        RAISE EXCEPTION 'server "coupon_cluster" of foreign data wrapper plproxy does not exist'
            USING ERRCODE = 'undefined_object',
                  HINT = 'CREATE SERVER coupon_cluster FOREIGN DATA WRAPPER plproxy OPTIONS (p0 ''...'', p1 ''...''), and CREATE USER MAPPING FOR PUBLIC SERVER coupon_cluster.';
    END IF;
    IF n OPERATOR(pg_catalog.<) 1 OR (n OPERATOR(pg_catalog.&) (n OPERATOR(pg_catalog.-) 1))
       OPERATOR(pg_catalog.<>) 0 THEN
        RAISE EXCEPTION 'server "coupon_cluster" has % partitions', n
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'PL/Proxy needs a power of two of partitions, p0 to pN-1.';
    END IF;

    -- coupon_node() and the routing of carts take a hash modulo the
    -- partitions as PL/Proxy does by default, with a mask.
    PERFORM FROM pg_catalog.pg_foreign_server s,
                 pg_catalog.pg_options_to_table(s.srvoptions) o
     WHERE s.srvname OPERATOR(pg_catalog.=) 'coupon_cluster'
       AND o.option_name OPERATOR(pg_catalog.=) 'modular_mapping'
       AND o.option_value OPERATOR(pg_catalog.<>) '0';
    IF FOUND THEN
        RAISE EXCEPTION 'server "coupon_cluster" must not set modular_mapping'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use a power of two of partitions, mapped by PL/Proxy''s default mask.';
    END IF;

    LOCK TABLE @extschema@.coupon_proxy_cluster IN EXCLUSIVE MODE;
    SELECT c.cluster INTO cl FROM @extschema@.coupon_proxy_cluster c;

    -- Read every node; refuse before anything changes.
    FOR i IN 0 .. n OPERATOR(pg_catalog.-) 1 LOOP
        BEGIN
            v := @extschema@.coupon_proxy_node_version(i);
            IF v IS NULL THEN
                RAISE EXCEPTION 'node p% has no extension coupon', i
                    USING ERRCODE = 'UC009',
                          HINT = pg_catalog.format('Run CREATE EXTENSION coupon on that node, with coupon %s.', want_version);
            ELSIF v OPERATOR(pg_catalog.<>) want_version THEN
                RAISE EXCEPTION 'node p% has coupon %, and this proxy needs %', i, v, want_version
                    USING ERRCODE = 'UC009',
                          HINT = 'Install that version on the node and run ALTER EXTENSION coupon UPDATE there.';
            END IF;
            SELECT * INTO st FROM @extschema@.coupon_proxy_node_state(i);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS sqlstate_ = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                                    detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
            IF sqlstate_ OPERATOR(pg_catalog.=) 'UC009' THEN
                RAISE;
            END IF;
            RAISE EXCEPTION 'node p% cannot be attached: %', i, msg
                USING ERRCODE = sqlstate_, DETAIL = detail, HINT = hint;
        END;
        IF st.member_cluster IS NOT NULL THEN
            cl := COALESCE(cl, st.member_cluster);
            IF st.member_cluster OPERATOR(pg_catalog.<>) cl
               OR st.member_partition OPERATOR(pg_catalog.<>) i
               OR st.member_partitions OPERATOR(pg_catalog.<>) n THEN
                RAISE EXCEPTION 'node p% is partition % of % of cluster "%"', i,
                                st.member_partition, st.member_partitions, st.member_cluster
                    USING ERRCODE = 'UC005',
                          DETAIL = pg_catalog.format('This proxy would make it partition %s of %s of cluster "%s".',
                                                     i, n, COALESCE(cl, st.member_cluster)),
                          HINT = 'A node belongs to one cluster, as one partition: check the options of server coupon_cluster.';
            END IF;
        ELSIF i OPERATOR(pg_catalog.<>) 0
              AND ((st.min_id OPERATOR(pg_catalog.>>) 48) OPERATOR(pg_catalog.<>) i
                   OR (st.max_id OPERATOR(pg_catalog.>>) 48) OPERATOR(pg_catalog.<>) i
                   OR (st.last_id OPERATOR(pg_catalog.>>) 48) OPERATOR(pg_catalog.>) i) THEN
            RAISE EXCEPTION 'node p% has claims whose ids do not name it', i
                USING ERRCODE = 'UC006',
                      DETAIL = pg_catalog.format('Its ledger has claim ids up to %s; partition %s''s ids start at %s.',
                                                 GREATEST(st.max_id, st.last_id), i,
                                                 i::bigint OPERATOR(pg_catalog.<<) 48),
                      HINT = 'Attach a node whose ledger is empty, or this one as partition 0.';
        END IF;
    END LOOP;

    cl := COALESCE(cl, pg_catalog.gen_random_uuid()::text);
    FOR i IN 0 .. n OPERATOR(pg_catalog.-) 1 LOOP
        PERFORM @extschema@.coupon_proxy_node_join(cl, i, n);
    END LOOP;

    DELETE FROM @extschema@.coupon_proxy_cluster;
    INSERT INTO @extschema@.coupon_proxy_cluster (cluster, partitions) VALUES (cl, n);
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@.coupon_cluster_attach() IS
    'stamp every node of server coupon_cluster with its partition (coupon_cluster_join) and enable the proxy; returns the number of nodes; idempotent';

REVOKE ALL ON FUNCTION @extschema@.coupon_cluster_attach(),
    @extschema@.coupon_proxy_node_version(integer),
    @extschema@.coupon_proxy_node_state(integer),
    @extschema@.coupon_proxy_node_join(text, integer, integer),
    @extschema@.coupon_pool_create(text, bigint, integer),
    @extschema@.coupon_pool_resize(text, bigint),
    @extschema@.coupon_pool_drop(text),
    @extschema@.coupon_claim(text, text, integer, interval, text),
    @extschema@.coupon_claim_detailed(text, text, integer, interval, text),
    @extschema@.coupon_hold(text, text, interval, integer, interval, text),
    @extschema@.coupon_claim_many(text, text[], integer),
    @extschema@.coupon_release(bigint, text),
    @extschema@.coupon_release(bigint),
    @extschema@.coupon_confirm(bigint, text),
    @extschema@.coupon_confirm(bigint),
    @extschema@.coupon_hold_extend(bigint, interval, text),
    @extschema@.coupon_hold_extend(bigint, interval),
    @extschema@.coupon_claim_cart(text[], integer[], text, interval, interval, text),
    @extschema@.coupon_claim_cart_detailed(text[], integer[], text, interval, interval, text),
    @extschema@.coupon_proxy_pools(),
    @extschema@.coupon_proxy_holds(),
    @extschema@.coupon_node(text, text) FROM PUBLIC;
REVOKE ALL ON TABLE @extschema@.coupon_pools, @extschema@.coupon_holds FROM PUBLIC;
