/* extension/coupon--1.4--1.5.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION coupon UPDATE TO '1.5'" to load this file. \quit

--
-- 1.5 lets one pool be spread over several nodes of a cluster (README,
-- "Spread pools").  A spread pool of capacity C over k nodes is k pools of
-- the same name, one a node, whose capacities are shares of C; each share
-- serves the customers whose hash picks it, so a customer's limit and
-- request ids hold on one node.  Capacity moves between shares by a
-- journaled transfer (the demarcation protocol): the giver lowers its
-- capacity and records the transfer in one transaction, then the receiver
-- raises its own once per transfer id.  A transfer cut between the two
-- leaves capacity in flight, never counted twice: the sum of the shares
-- plus what is in flight is C at every instant, and each share grants at
-- most its own capacity.
--
-- A node decides for itself which customers it serves: the proxy's calls
-- go through the routed functions below, which claim only for a customer
-- of this share and otherwise say which partition serves it.  The
-- functions that change shares and move capacity are for the proxy's role
-- only (the DBA grants them, README "Scaling past one server").
--

-- Refused after a rename of the schema: coupon_cluster_join, which 1.4
-- created under the name the schema had then, gets here the check of the
-- name it is given now (below), which would pass while its text names the
-- old one.  Its text must name the schema by its name now, and name no
-- other schema (a name of then that holds this one, such as
-- "x shop.coupon_cluster_member y", would pass the first test alone).
-- Rename the schema back and update.
DO $guard$
DECLARE
    join_text text;
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
        RAISE EXCEPTION 'schema @extschema@ of extension coupon must be owned by a superuser'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'The owner of the schema could rename it while the extension is installed or updated, and the extension''s functions name it.',
                  HINT = 'ALTER SCHEMA @extschema@ OWNER TO a superuser, or create the extension in a schema that a superuser owns.';
    END IF;
    SELECT p.prosrc INTO join_text FROM pg_catalog.pg_proc p
     WHERE p.oid OPERATOR(pg_catalog.=)
           '@extschema@.coupon_cluster_join(text, integer, integer)'::pg_catalog.regprocedure;
    -- it names the schema by this name, and by no other
    IF pg_catalog.strpos(join_text, ' @extschema@.coupon_cluster_member ') OPERATOR(pg_catalog.=) 0
       OR pg_catalog.strpos(pg_catalog.replace(join_text, '@extschema@.coupon_', ''), '.coupon_')
          OPERATOR(pg_catalog.<>) 0 THEN
        RAISE EXCEPTION 'schema @extschema@ of extension coupon has been renamed since coupon 1.4 was installed'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'The functions of 1.4 written in PL/pgSQL name the schema as it was then.',
                  HINT = 'Rename the schema back to its name of then, and update.';
    END IF;
END
$guard$;

-- What a pool has claimed, read when it is loaded into shared memory
-- (after a restart, a failover, an eviction): the live claims of a pool,
-- each (pool, qty) key once with the list of its rows (B-tree
-- deduplication), so that a million live claims are a few megabytes to
-- read rather than the tens of the index of holders, which names every
-- customer.  Built here for the claims already in the ledger.
CREATE INDEX coupon_claims_live ON @extschema@.coupon_claims (pool, qty)
    WHERE released_at IS NULL;

-- This node's share of each spread pool.  A row whose pool_created_at is
-- not that of the pool of the same name is stale (the pool was dropped
-- here and created again) and counts for nothing.
CREATE TABLE @extschema@.coupon_spread (
    pool            text PRIMARY KEY,
    spread_id       text NOT NULL,
    spread          integer NOT NULL CHECK (spread OPERATOR(pg_catalog.>) 1),
    member          integer NOT NULL CHECK (member OPERATOR(pg_catalog.>=) 0
                                            AND member OPERATOR(pg_catalog.<) spread),
    total           bigint NOT NULL CHECK (total OPERATOR(pg_catalog.>=) 0),
    pool_created_at timestamptz NOT NULL,
    dropping        boolean NOT NULL DEFAULT false
);
COMMENT ON COLUMN @extschema@.coupon_spread.dropping IS
    'at the home: a drop of the spread pool has begun (its other shares may be gone), so no create or resize may use the pool until the drop is finished';
COMMENT ON COLUMN @extschema@.coupon_spread.total IS
    'the capacity of the whole spread pool, kept by member 0 (the home): the shares plus what is in flight between them add up to it';
COMMENT ON TABLE @extschema@.coupon_spread IS
    'the spread pools this node holds a share of: written only by coupon_spread_join and coupon_spread_drop';

-- The transfer journal: one row for what this node gave (outgoing) and one
-- for what it took (incoming), per transfer id.  An incoming row is never
-- deleted by the extension: it is what makes a take happen once.
CREATE TABLE @extschema@.coupon_transfers (
    transfer_id text NOT NULL
                CHECK (pg_catalog.octet_length(transfer_id) OPERATOR(pg_catalog.>=) 1
                       AND pg_catalog.octet_length(transfer_id) OPERATOR(pg_catalog.<=) 127),
    outgoing    boolean NOT NULL,
    pool        text NOT NULL,
    spread_id   text NOT NULL,
    peer        integer NOT NULL,
    qty         bigint NOT NULL CHECK (qty OPERATOR(pg_catalog.>=) 0),
    made_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    settled_at  timestamptz,
    PRIMARY KEY (transfer_id, outgoing)
);
CREATE INDEX coupon_transfers_unsettled ON @extschema@.coupon_transfers (pool)
    WHERE outgoing AND settled_at IS NULL;
COMMENT ON TABLE @extschema@.coupon_transfers IS
    'capacity given to (outgoing) and taken from (incoming) other shares of spread pools, by transfer id; settled_at marks an outgoing transfer whose receiver has taken it';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.coupon_spread', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.coupon_transfers', '');
REVOKE ALL ON TABLE @extschema@.coupon_spread, @extschema@.coupon_transfers FROM PUBLIC;

-- A node's claim ids end where the next partition's begin: the ledger's
-- sequence stops at (partition << 48) + 2^48 - 1, so that a node that has
-- given all its ids refuses a claim (2200H, nothing written) rather than
-- give one that names another node.  A trigger on coupon_cluster_member
-- (which coupon_cluster_join writes and a restore loads) sets the limit
-- when the row is written and lifts it when the row is removed by hand (to
-- join again, maybe as another partition); the no-op UPDATE below sets it
-- for a node that joined under 1.4.  The trigger names the sequence by the
-- table's schema as it is now (TG_TABLE_SCHEMA), never by the schema name
-- of install time: after a rename, that name could be anybody's schema.
CREATE FUNCTION @extschema@.coupon_cluster_member_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE pg_catalog.format('ALTER SEQUENCE %I.coupon_claims_id_seq %s', TG_TABLE_SCHEMA,
        CASE WHEN TG_OP OPERATOR(pg_catalog.=) ANY (ARRAY['INSERT', 'UPDATE'])
             THEN pg_catalog.format('MAXVALUE %s',
                      (NEW.partition::bigint OPERATOR(pg_catalog.<<) 48)
                      OPERATOR(pg_catalog.+) 281474976710655)
             ELSE 'NO MAXVALUE' END);
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.coupon_cluster_member_changed() FROM PUBLIC;
CREATE TRIGGER coupon_cluster_member_row AFTER INSERT OR UPDATE OR DELETE
    ON @extschema@.coupon_cluster_member
    FOR EACH ROW EXECUTE FUNCTION @extschema@.coupon_cluster_member_changed();
CREATE TRIGGER coupon_cluster_member_truncate AFTER TRUNCATE
    ON @extschema@.coupon_cluster_member
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.coupon_cluster_member_changed();
UPDATE @extschema@.coupon_cluster_member SET partition = partition;

-- The functions written in SQL and PL/pgSQL name the extension's schema as
-- it is when they are created.  Each sets coupon.function_schema to that
-- name as it starts, which the library refuses (55000) once the schema has
-- been renamed, and checks again before each statement it analyzes while
-- it runs (catalog.c): after a rename the old name could be anybody's
-- schema, whose objects they would run with their rights.  The functions
-- of 1.5 below do it by their SET clause; coupon_cluster_join of 1.4 gets
-- the clause here; coupon_ledger_prune, a procedure that commits and so
-- can have no SET clause, sets it before each of its transactions.
ALTER FUNCTION @extschema@.coupon_cluster_join(text, integer, integer)
    SET coupon.function_schema = '@extschema@';

-- And the schema is not renamed: an event trigger at the end of every
-- ALTER SCHEMA of it refuses a rename (55000).  Those checks fail a call
-- after a rename, they cannot make it work; and they are the library's,
-- which a server that stops preloading it no longer makes, while a node's
-- proxy calls the node's functions by their bare names through its role's
-- search_path, which names the schema.  The trigger's function reads
-- nothing but pg_catalog, and compares the schema's name now with the name
-- of its creation, so ALTER SCHEMA ... OWNER TO passes, and so does a
-- rename back.  It names nothing by the schema's old name, so it clears
-- coupon.function_schema, which a session may have left set to that name.
-- A superuser can disable the trigger (ALTER EVENT TRIGGER ... DISABLE):
-- the functions in C follow a rename then, the others refuse every call
-- until the schema has its name back.
CREATE FUNCTION @extschema@.coupon_schema_renamed()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET coupon.function_schema = ''
AS $$
DECLARE
    schema_oid oid;
    schema_now text;
BEGIN
    SELECT e.extnamespace, n.nspname INTO schema_oid, schema_now
      FROM pg_catalog.pg_extension e
      JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
     WHERE e.extname OPERATOR(pg_catalog.=) 'coupon';
    IF schema_now OPERATOR(pg_catalog.<>) (pg_catalog.parse_ident('@extschema@'))[1]
       AND EXISTS (SELECT FROM pg_catalog.pg_event_trigger_ddl_commands() c
                    WHERE c.objid OPERATOR(pg_catalog.=) schema_oid) THEN
        RAISE EXCEPTION 'schema @extschema@ of extension coupon cannot be renamed'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Its functions written in SQL and PL/pgSQL name the schema, and so do the search_path settings of a cluster''s nodes.',
                  HINT = 'A superuser who disables event trigger coupon_schema_rename can rename it; then only the functions written in C work until it has its name back.';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.coupon_schema_renamed() FROM PUBLIC;
CREATE EVENT TRIGGER coupon_schema_rename ON ddl_command_end
    WHEN TAG IN ('ALTER SCHEMA')
    EXECUTE FUNCTION @extschema@.coupon_schema_renamed();

CREATE OR REPLACE PROCEDURE @extschema@.coupon_ledger_prune(older_than interval,
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
    PERFORM pg_catalog.set_config('coupon.function_schema', '@extschema@', true);
    SELECT pg_catalog.min(c.id) OPERATOR(pg_catalog.-) 1 INTO last_id
      FROM @extschema@.coupon_claims c;
    LOOP
        PERFORM pg_catalog.set_config('coupon.function_schema', '@extschema@', true);
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

--
-- The functions below that the proxy calls on one node take, first, the
-- partition the proxy means to call (PL/Proxy passes the arguments of its
-- own function): a node refuses a call meant for another partition with
-- UC005, so that server options changed after attach can never route a
-- claim to the wrong share.
--

-- coupon_spread_share: this node's live share of pool (no row if the pool
-- is not spread here), with the node's partition and the number of
-- partitions.  lock: the pool row and the share's row are locked FOR
-- UPDATE, which serializes the caller with resize, drop, and every other
-- give and take of it; both are locked so that a caller that waited reads
-- both as the transaction it waited for left them.
CREATE FUNCTION @extschema@.coupon_spread_share(pool text, lock boolean,
                                                OUT spread_id text, OUT spread integer,
                                                OUT member integer, OUT total bigint,
                                                OUT capacity bigint, OUT per_customer integer,
                                                OUT dropping boolean,
                                                OUT partition integer, OUT partitions integer)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET coupon.function_schema = '@extschema@'
AS $$
BEGIN
    IF lock THEN
        RETURN QUERY
        SELECT s.spread_id, s.spread, s.member, s.total, p.capacity, p.per_customer,
               s.dropping, m.partition, m.partitions
          FROM @extschema@.coupon_pool p
          JOIN @extschema@.coupon_spread s
            ON s.pool OPERATOR(pg_catalog.=) p.name
           AND s.pool_created_at OPERATOR(pg_catalog.=) p.created_at
         CROSS JOIN @extschema@.coupon_cluster_member m
         WHERE p.name OPERATOR(pg_catalog.=) $1
           FOR UPDATE OF p, s;
    ELSE
        RETURN QUERY
        SELECT s.spread_id, s.spread, s.member, s.total, p.capacity, p.per_customer,
               s.dropping, m.partition, m.partitions
          FROM @extschema@.coupon_pool p
          JOIN @extschema@.coupon_spread s
            ON s.pool OPERATOR(pg_catalog.=) p.name
           AND s.pool_created_at OPERATOR(pg_catalog.=) p.created_at
         CROSS JOIN @extschema@.coupon_cluster_member m
         WHERE p.name OPERATOR(pg_catalog.=) $1;
    END IF;
END
$$;

-- coupon_routed_here: the partition that serves customer in pool, after
-- checking that this node is partition partition, taken modulo the
-- partitions as PL/Proxy's RUN ON takes it (UC005 if not).  It is
-- this node's partition unless the pool is spread here and the customer's
-- hash picks another share: the shares of a spread pool sit on consecutive
-- partitions from the pool's home, and share k serves the customers with
-- hashtext(customer) modulo the number of shares = k.  It tells where a
-- customer of a pool is served, nothing else.
CREATE FUNCTION @extschema@.coupon_routed_here(partition integer, pool text, customer text)
RETURNS integer
AS 'MODULE_PATHNAME', 'coupon_routed_here'
LANGUAGE C STABLE;
COMMENT ON FUNCTION @extschema@.coupon_routed_here(integer, text, text) IS
    'the partition that serves customer in pool, after checking that this node is partition partition modulo the partitions (UC005)';

-- What a spread pool's share here has available, for the proxy's refill
-- (NULL for a pool that is not spread here): the semaphore's count, or,
-- for a pool not in shared memory (nothing in flight), what coupon_pools
-- counts in the ledger.
CREATE FUNCTION @extschema@.coupon_share_available(pool text)
RETURNS bigint
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET coupon.function_schema = '@extschema@'
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM @extschema@.coupon_spread_share($1, false)) THEN
        RETURN NULL;
    END IF;
    RETURN COALESCE((SELECT m.available FROM @extschema@.coupon_pool_memory() m
                      WHERE m.pool OPERATOR(pg_catalog.=) $1),
                    (SELECT v.available FROM @extschema@.coupon_pools v
                      WHERE v.pool OPERATOR(pg_catalog.=) $1));
END
$$;
COMMENT ON FUNCTION @extschema@.coupon_share_available(text) IS
    'what this node''s share of a spread pool has available; NULL if pool is not spread here';

--
-- The routed calls: what the proxy runs on a pool's node.  Each claims
-- exactly as the function it wraps when this node serves the customer,
-- and otherwise claims nothing and answers with the partition that does
-- (status 'elsewhere').  They run with the caller's rights: the caller
-- needs EXECUTE on them and on the wrapped function, as on a lone server
-- (triggers on the ledger run as the caller, never as the extension's
-- owner; the routed claim and hold, in C, check the grant of the
-- function they stand for).  Every name in them is qualified, so the claim functions pin no
-- search_path, which would cost every claim.
--

-- The claim: in C (claim.c, route.c), where the look-up of the customer's
-- share costs one kept statement instead of the PL/pgSQL of
-- coupon_routed_here.  detailed: the status is coupon_claim_detailed's;
-- otherwise 'granted' for coupon_claim's claim id, or NULL.  available is
-- the share's when a spread pool's share gave nothing; shared says, then,
-- whether the pool is a spread pool's share, which a refill could help.
CREATE FUNCTION @extschema@.coupon_routed_claim(partition integer, pool text, customer text,
                                                qty integer, wait interval,
                                                request_id text, detailed boolean,
                                                OUT claim_id bigint, OUT status text,
                                                OUT available bigint,
                                                OUT serve_partition integer,
                                                OUT shared boolean)
RETURNS record
AS 'MODULE_PATHNAME', 'coupon_routed_claim'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- The hold: in C too (claim.c), with the same look-up, and the same
-- answer for a qty above the share: what it has, for a refill first.
CREATE FUNCTION @extschema@.coupon_routed_hold(partition integer, pool text, customer text,
                                               ttl interval, qty integer, wait interval,
                                               request_id text,
                                               OUT claim_id bigint, OUT available bigint,
                                               OUT serve_partition integer)
RETURNS record
AS 'MODULE_PATHNAME', 'coupon_routed_hold'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- The customers this node serves are claimed together; the others come
-- back with status 'elsewhere' and the partition that serves them.
CREATE FUNCTION @extschema@.coupon_routed_claim_many(partition integer, pool text,
                                                     customers text[], qty integer)
RETURNS TABLE(customer text, claim_id bigint, status text, serve_partition integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET coupon.function_schema = '@extschema@'
AS $$
DECLARE
    here integer := @extschema@.coupon_routed_here($1, NULL, NULL);
    mine text[];
    others text[];
    others_at integer[];
BEGIN
    IF customers IS NOT NULL THEN
        SELECT pg_catalog.array_agg(u.c ORDER BY u.n) FILTER (WHERE u.p OPERATOR(pg_catalog.=) here),
               pg_catalog.array_agg(u.c ORDER BY u.n) FILTER (WHERE u.p OPERATOR(pg_catalog.<>) here),
               pg_catalog.array_agg(u.p ORDER BY u.n) FILTER (WHERE u.p OPERATOR(pg_catalog.<>) here)
          INTO mine, others, others_at
          FROM (SELECT x.c, x.n, @extschema@.coupon_routed_here($1, $2, x.c) AS p
                  FROM pg_catalog.unnest(customers) WITH ORDINALITY AS x(c, n)) u;
        RETURN QUERY
        SELECT o.c, NULL::bigint, 'elsewhere'::text, o.p
          FROM ROWS FROM (pg_catalog.unnest(others), pg_catalog.unnest(others_at)) AS o(c, p);
    END IF;
    IF mine IS NOT NULL OR customers IS NULL
       OR pg_catalog.cardinality(customers) OPERATOR(pg_catalog.=) 0 THEN
        RETURN QUERY
        SELECT m.customer, m.claim_id, m.status, here
          FROM @extschema@.coupon_claim_many($2, COALESCE(mine, customers), $4) m;
    END IF;
END
$$;

-- A cart's pools must not be spread (the proxy splits no cart over the
-- shares of a pool); otherwise the cart is claimed as it is.
CREATE FUNCTION @extschema@.coupon_routed_claim_cart(partition integer, pools text[],
                                                     qtys integer[], customer text,
                                                     ttl interval, wait interval,
                                                     request_id text,
                                                     OUT claim_ids bigint[], OUT status text,
                                                     OUT line integer)
RETURNS record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET coupon.function_schema = '@extschema@'
AS $$
DECLARE
    pool text;
BEGIN
    PERFORM @extschema@.coupon_routed_here($1, NULL, NULL);
    FOREACH pool IN ARRAY COALESCE(pools, '{}') LOOP
        IF @extschema@.coupon_share_available(pool) IS NOT NULL THEN
            RAISE EXCEPTION 'pool "%" is spread over several nodes: it cannot be in a cart', pool
                USING ERRCODE = 'feature_not_supported',
                      HINT = 'Claim the spread pool''s line on its own, as a hold, and confirm it with the cart.';
        END IF;
    END LOOP;
    SELECT d.claim_ids, d.status, d.line INTO claim_ids, status, line
      FROM @extschema@.coupon_claim_cart_detailed($2, $3, $4, $5, $6, $7) d;
END
$$;

-- The lines of the carts made with request_id on this node, released or
-- not: what the proxy asks every node before it claims a cart over
-- several nodes with a request id, so that the id of another cart is
-- refused (23505) before anything is held.
CREATE FUNCTION @extschema@.coupon_cart_request_lines(request_id text, OUT pool text,
                                                      OUT customer text, OUT qty integer)
RETURNS SETOF record
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET coupon.function_schema = '@extschema@'
AS $$
    SELECT c.pool, c.customer, c.qty FROM @extschema@.coupon_claims c
     WHERE c.request_id OPERATOR(pg_catalog.=) $1 AND c.cart_claim IS NOT NULL
$$;

COMMENT ON FUNCTION @extschema@.coupon_routed_claim(integer, text, text, integer, interval, text, boolean) IS
    'the proxy''s coupon_claim and coupon_claim_detailed: claims if this node serves customer in pool, else status ''elsewhere'' and the partition that does';
COMMENT ON FUNCTION @extschema@.coupon_routed_hold(integer, text, text, interval, integer, interval, text) IS
    'the proxy''s coupon_hold: holds if this node serves customer in pool, else no id and the partition that does';
COMMENT ON FUNCTION @extschema@.coupon_routed_claim_many(integer, text, text[], integer) IS
    'the proxy''s coupon_claim_many: claims for the customers this node serves in pool; the others get status ''elsewhere'' and their partition';
COMMENT ON FUNCTION @extschema@.coupon_routed_claim_cart(integer, text[], integer[], text, interval, interval, text) IS
    'the proxy''s coupon_claim_cart_detailed: refuses a spread pool (0A000), else claims the cart';
COMMENT ON FUNCTION @extschema@.coupon_cart_request_lines(text) IS
    'the lines of this node''s carts with a request id, for the proxy''s check of a cart over several nodes';

-- For the roles that claim through the proxy (README, "Grants"), with
-- coupon_routed_here and coupon_share_available, which they call.
REVOKE ALL ON FUNCTION
    @extschema@.coupon_spread_share(text, boolean),
    @extschema@.coupon_routed_here(integer, text, text),
    @extschema@.coupon_share_available(text),
    @extschema@.coupon_routed_claim(integer, text, text, integer, interval, text, boolean),
    @extschema@.coupon_routed_hold(integer, text, text, interval, integer, interval, text),
    @extschema@.coupon_routed_claim_many(integer, text, text[], integer),
    @extschema@.coupon_routed_claim_cart(integer, text[], integer[], text, interval, interval, text),
    @extschema@.coupon_cart_request_lines(text)
    FROM PUBLIC;

--
-- Shares and transfers: for the owner of coupon_proxy, which the proxy
-- connects as for them.  Each changes this node in one transaction.
--

-- Create this node's share of a spread pool of capacity total.  A repeat
-- with the same spread id, member and settings returns false and changes
-- nothing (capacity may have moved since); any other pool of that name,
-- and a share that is being dropped, is refused.
CREATE FUNCTION @extschema@.coupon_spread_join(partition integer, pool text, spread_id text,
                                               total bigint, capacity bigint,
                                               per_customer integer, spread integer,
                                               member integer)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET coupon.function_schema = '@extschema@'
AS $$
DECLARE
    s record;
    created timestamptz;
BEGIN
    PERFORM @extschema@.coupon_routed_here($1, NULL, NULL);
    IF $3 IS NULL OR $4 IS NULL OR $7 IS NULL OR $8 IS NULL THEN
        RAISE EXCEPTION 'spread_id, total, spread and member must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF $7 OPERATOR(pg_catalog.<) 2 OR $8 OPERATOR(pg_catalog.<) 0
       OR $8 OPERATOR(pg_catalog.>=) $7 THEN
        RAISE EXCEPTION 'member % of a pool spread over % nodes is not possible', $8, $7
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The pool table first, as coupon_pool_create below locks it and as a
    -- resize (pool row, then share row) does: no deadlock with either.
    LOCK TABLE @extschema@.coupon_pool IN SHARE ROW EXCLUSIVE MODE;
    LOCK TABLE @extschema@.coupon_spread IN SHARE ROW EXCLUSIVE MODE;
    SELECT * INTO s FROM @extschema@.coupon_spread_share($2, true);
    IF FOUND AND s.spread_id OPERATOR(pg_catalog.=) $3 AND s.member OPERATOR(pg_catalog.=) $8
       AND s.total OPERATOR(pg_catalog.=) $4 AND s.spread OPERATOR(pg_catalog.=) $7
       AND s.per_customer OPERATOR(pg_catalog.=) $6 THEN
        IF s.dropping THEN
            RAISE EXCEPTION 'spread pool "%" is being dropped', $2
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Finish the drop with coupon_pool_drop() first.';
        END IF;
        RETURN false;
    END IF;
    IF FOUND OR EXISTS (SELECT FROM @extschema@.coupon_pool p
                         WHERE p.name OPERATOR(pg_catalog.=) $2) THEN
        RAISE EXCEPTION 'pool "%" already exists on this node', $2
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Drop it first, or choose another name for the spread pool.';
    END IF;
    PERFORM @extschema@.coupon_pool_create($2, $5, $6);
    SELECT p.created_at INTO created FROM @extschema@.coupon_pool p
     WHERE p.name OPERATOR(pg_catalog.=) $2;
    DELETE FROM @extschema@.coupon_spread x WHERE x.pool OPERATOR(pg_catalog.=) $2;
    INSERT INTO @extschema@.coupon_spread (pool, spread_id, spread, member, total, pool_created_at)
    VALUES ($2, $3, $7, $8, $4, created);
    RETURN true;
END
$$;

-- Drop this node's share; false if it has none of that spread id.
CREATE FUNCTION @extschema@.coupon_spread_drop(partition integer, pool text, spread_id text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET coupon.function_schema = '@extschema@'
AS $$
DECLARE
    s record;
BEGIN
    PERFORM @extschema@.coupon_routed_here($1, NULL, NULL);
    SELECT * INTO s FROM @extschema@.coupon_spread_share($2, true);
    IF NOT FOUND OR (s.spread_id OPERATOR(pg_catalog.=) $3) IS NOT TRUE THEN
        RETURN false;
    END IF;
    PERFORM @extschema@.coupon_pool_drop($2);
    DELETE FROM @extschema@.coupon_spread x WHERE x.pool OPERATOR(pg_catalog.=) $2;
    RETURN true;
END
$$;

-- This node's share of pool, locked, if it is one of spread spread_id;
-- else undefined_object.
CREATE FUNCTION @extschema@.coupon_spread_locked(partition integer, pool text, spread_id text,
                                                 home_only boolean)
RETURNS record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET coupon.function_schema = '@extschema@'
AS $$
DECLARE
    s record;
BEGIN
    PERFORM @extschema@.coupon_routed_here($1, NULL, NULL);
    SELECT * INTO s FROM @extschema@.coupon_spread_share($2, true);
    IF (s.spread_id OPERATOR(pg_catalog.=) $3) IS NOT TRUE
       OR (home_only AND s.member OPERATOR(pg_catalog.<>) 0) THEN
        RAISE EXCEPTION 'pool "%" is not a share of spread pool % here', $2, $3
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN s;
END
$$;

-- Lower the share by what it can spare of want, at most: capacity that is
-- unclaimed, unheld and not in flight.  Claims race with it, so a shrink
-- the escrow refuses is tried again with less.  Returns what was taken
-- off (0 if nothing could be).
CREATE FUNCTION @extschema@.coupon_spread_spare(pool text, want bigint, capacity bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET coupon.function_schema = '@extschema@'
AS $$
DECLARE
    a bigint;
BEGIN
    FOR attempt IN 1 .. 8 LOOP
        a := LEAST(want, COALESCE(@extschema@.coupon_share_available($1), 0));
        IF attempt OPERATOR(pg_catalog.>) 1 THEN
            a := a OPERATOR(pg_catalog./) 2;
        END IF;
        IF a OPERATOR(pg_catalog.<=) 0 THEN
            RETURN 0;
        END IF;
        BEGIN
            PERFORM @extschema@.coupon_pool_resize($1, capacity OPERATOR(pg_catalog.-) a);
            RETURN a;
        EXCEPTION WHEN object_not_in_prerequisite_state THEN
            NULL;   -- claimed meanwhile: ask again
        END;
    END LOOP;
    RETURN 0;
END
$$;

-- The arguments of a give or take: this node is partition, none is NULL,
-- and the amount is at least at_least.  Then the journal's row for the
-- transfer id in that direction, if there is one: its qty (NULL if
-- none).  A transfer id is the proxy's for one transfer: a row of it for
-- another pool, spread or peer is refused (42710).
CREATE FUNCTION @extschema@.coupon_transfer_check(partition integer, transfer_id text,
                                                  pool text, spread_id text, peer integer,
                                                  amount bigint, at_least bigint,
                                                  outgoing boolean)
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET coupon.function_schema = '@extschema@'
AS $$
DECLARE
    t record;
BEGIN
    PERFORM @extschema@.coupon_routed_here($1, NULL, NULL);
    IF $2 IS NULL OR $3 IS NULL OR $4 IS NULL OR $5 IS NULL OR $6 IS NULL THEN
        RAISE EXCEPTION 'the arguments of a transfer must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF $6 OPERATOR(pg_catalog.<) $7 THEN
        RAISE EXCEPTION 'the amount of a transfer must be at least %', $7
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO t FROM @extschema@.coupon_transfers x
     WHERE x.transfer_id OPERATOR(pg_catalog.=) $2 AND x.outgoing OPERATOR(pg_catalog.=) $8;
    IF FOUND AND (t.pool OPERATOR(pg_catalog.<>) $3 OR t.spread_id OPERATOR(pg_catalog.<>) $4
                  OR t.peer OPERATOR(pg_catalog.<>) $5) THEN
        RAISE EXCEPTION 'transfer % was made for another pool or peer', $2
            USING ERRCODE = 'duplicate_object',
                  DETAIL = pg_catalog.format('It moved %s of pool "%s" (spread %s) with partition %s.',
                                             t.qty, t.pool, t.spread_id, t.peer);
    END IF;
    RETURN t.qty;
END
$$;

-- Give: lower this share by up to GREATEST(need, half of what it has
-- available) and record the transfer to partition receiver, in one
-- transaction.  A repeat of a transfer id that gave returns what it gave
-- and changes nothing.  Returns the amount given, 0 if there was nothing
-- to give (or the pool is no share of spread spread_id here).
CREATE FUNCTION @extschema@.coupon_transfer_give(partition integer, transfer_id text,
                                                 pool text, spread_id text,
                                                 receiver integer, need bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET coupon.function_schema = '@extschema@'
AS $$
DECLARE
    s record;
    given bigint;
BEGIN
    SELECT * INTO s FROM @extschema@.coupon_spread_share($3, true);
    given := @extschema@.coupon_transfer_check($1, $2, $3, $4, $5, $6, 1, true);
    IF given IS NOT NULL THEN
        RETURN given;
    END IF;
    IF (s.spread_id OPERATOR(pg_catalog.=) $4) IS NOT TRUE THEN
        RETURN 0;
    END IF;
    given := @extschema@.coupon_spread_spare($3,
                 GREATEST($6, COALESCE(@extschema@.coupon_share_available($3), 0)
                              OPERATOR(pg_catalog./) 2),
                 s.capacity);
    -- Nothing given leaves no trace: a repeat may give later, once.
    IF given OPERATOR(pg_catalog.>) 0 THEN
        INSERT INTO @extschema@.coupon_transfers (transfer_id, outgoing, pool, spread_id, peer, qty)
        VALUES ($2, true, $3, $4, $5, given);
    END IF;
    RETURN given;
END
$$;

-- Take: raise this share by qty once per transfer id.  Returns true if
-- this call raised it; false for a repeat, and for a transfer to a pool
-- that is no longer the share of spread spread_id here (the pool was
-- dropped: what was in flight went with it).
CREATE FUNCTION @extschema@.coupon_transfer_take(partition integer, transfer_id text,
                                                 pool text, spread_id text,
                                                 giver integer, qty bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET coupon.function_schema = '@extschema@'
AS $$
DECLARE
    s record;
BEGIN
    IF @extschema@.coupon_transfer_check($1, $2, $3, $4, $5, $6, 0, false) IS NOT NULL THEN
        RETURN false;
    END IF;
    -- The journal row first: a concurrent take of the same id waits here
    -- and then does nothing.
    INSERT INTO @extschema@.coupon_transfers (transfer_id, outgoing, pool, spread_id, peer, qty,
                                              settled_at)
    VALUES ($2, false, $3, $4, $5, $6, pg_catalog.now())
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    SELECT * INTO s FROM @extschema@.coupon_spread_share($3, true);
    IF (s.spread_id OPERATOR(pg_catalog.=) $4) IS NOT TRUE THEN
        RETURN false;
    END IF;
    IF $6 OPERATOR(pg_catalog.>) 0 THEN
        PERFORM @extschema@.coupon_pool_resize($3, s.capacity OPERATOR(pg_catalog.+) $6);
    END IF;
    RETURN true;
END
$$;

-- Mark an outgoing transfer taken; true if it was pending.
CREATE FUNCTION @extschema@.coupon_transfer_settle(partition integer, transfer_id text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET coupon.function_schema = '@extschema@'
AS $$
BEGIN
    PERFORM @extschema@.coupon_routed_here($1, NULL, NULL);
    UPDATE @extschema@.coupon_transfers t SET settled_at = pg_catalog.now()
     WHERE t.transfer_id OPERATOR(pg_catalog.=) $2 AND t.outgoing AND t.settled_at IS NULL;
    RETURN FOUND;
END
$$;

-- At the home of a spread pool: mark it as being dropped, the first step
-- of a drop, before the other shares go.  Until the home's share goes
-- too, no create or resize may use the pool.  True if it was not marked.
CREATE FUNCTION @extschema@.coupon_spread_dropping(partition integer, pool text, spread_id text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET coupon.function_schema = '@extschema@'
AS $$
BEGIN
    PERFORM @extschema@.coupon_spread_locked($1, $2, $3, true);
    UPDATE @extschema@.coupon_spread x SET dropping = true
     WHERE x.pool OPERATOR(pg_catalog.=) $2 AND NOT x.dropping;
    RETURN FOUND;
END
$$;

-- A resize of the spread pool, at its home (member 0), which keeps its
-- capacity (total).  A growth raises the home's share and the total in
-- one transaction.  A shrink lowers both by the same amount in one
-- transaction if the home's share can spare it (unclaimed, unheld, not in
-- flight); if it cannot, nothing changes, and the function returns what
-- the home lacks, which the proxy brings to it from the other shares by
-- transfers before it asks again.  Returns 0 once the pool has that
-- capacity.  The shares plus what is in flight add up to the total at
-- every commit, so concurrent resizes each find an exact pool: the last
-- one decides its capacity.
CREATE FUNCTION @extschema@.coupon_spread_resize(partition integer, pool text, spread_id text,
                                                 capacity bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET coupon.function_schema = '@extschema@'
AS $$
DECLARE
    s record;
    lack bigint;
BEGIN
    IF $4 IS NULL THEN
        RAISE EXCEPTION 'capacity must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF $4 OPERATOR(pg_catalog.<) 0 THEN
        RAISE EXCEPTION 'capacity must be at least 0' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    s := @extschema@.coupon_spread_locked($1, $2, $3, true);
    IF s.dropping THEN
        RAISE EXCEPTION 'spread pool "%" is being dropped', $2
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Finish the drop with coupon_pool_drop().';
    END IF;
    IF $4 OPERATOR(pg_catalog.<) s.total THEN
        lack := s.total OPERATOR(pg_catalog.-) $4
                OPERATOR(pg_catalog.-) COALESCE(@extschema@.coupon_share_available($2), 0);
        IF lack OPERATOR(pg_catalog.>) 0 THEN
            RETURN lack;
        END IF;
        BEGIN
            PERFORM @extschema@.coupon_pool_resize($2, s.capacity OPERATOR(pg_catalog.-)
                                                       (s.total OPERATOR(pg_catalog.-) $4));
        EXCEPTION WHEN object_not_in_prerequisite_state THEN
            RETURN 1;       -- claimed meanwhile: the home lacks one at least
        END;
    ELSIF $4 OPERATOR(pg_catalog.>) s.total THEN
        PERFORM @extschema@.coupon_pool_resize($2, s.capacity OPERATOR(pg_catalog.+)
                                                   ($4 OPERATOR(pg_catalog.-) s.total));
    END IF;
    UPDATE @extschema@.coupon_spread x SET total = $4 WHERE x.pool OPERATOR(pg_catalog.=) $2;
    RETURN 0;
END
$$;

-- This node's share of pool, for the proxy's create, resize and drop;
-- pool_exists says whether a pool of that name is here, a share or not.
CREATE FUNCTION @extschema@.coupon_spread_info(partition integer, pool text,
                                               OUT spread_id text, OUT spread integer,
                                               OUT member integer, OUT home integer,
                                               OUT total bigint, OUT capacity bigint,
                                               OUT per_customer integer, OUT dropping boolean,
                                               OUT pool_exists boolean)
RETURNS record
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET coupon.function_schema = '@extschema@'
AS $$
DECLARE
    s record;
BEGIN
    PERFORM @extschema@.coupon_routed_here($1, NULL, NULL);
    SELECT * INTO s FROM @extschema@.coupon_spread_share($2, false);
    spread_id := s.spread_id;
    spread := s.spread;
    member := s.member;
    total := s.total;
    capacity := s.capacity;
    per_customer := s.per_customer;
    dropping := s.dropping;
    pool_exists := EXISTS (SELECT FROM @extschema@.coupon_pool p
                            WHERE p.name OPERATOR(pg_catalog.=) $2);
    home := ((s.partition OPERATOR(pg_catalog.-) s.member OPERATOR(pg_catalog.+) s.partitions)
             OPERATOR(pg_catalog.%) s.partitions)::integer;
END
$$;

-- This node's share of pool, if it has one (no row otherwise): what the
-- proxy's refill asks every node at once, to pick the share that gives,
-- or to know that none can and whether anything is in flight.  It and
-- coupon_share_available are PL/pgSQL, whose plans a session keeps: as
-- SQL functions with SET they were planned on every call, a millisecond
-- a node on every sold-out answer of a spread pool.
CREATE FUNCTION @extschema@.coupon_spread_state(pool text, OUT partition integer,
                                                OUT spread_id text, OUT member integer,
                                                OUT spread integer, OUT available bigint,
                                                OUT unsettled bigint)
RETURNS SETOF record
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET coupon.function_schema = '@extschema@'
AS $$
BEGIN
    RETURN QUERY
    SELECT s.partition, s.spread_id, s.member, s.spread,
           @extschema@.coupon_share_available($1),
           (SELECT COALESCE(pg_catalog.sum(t.qty), 0)::bigint
              FROM @extschema@.coupon_transfers t
             WHERE t.pool OPERATOR(pg_catalog.=) $1 AND t.spread_id OPERATOR(pg_catalog.=) s.spread_id
               AND t.outgoing AND t.settled_at IS NULL)
      FROM @extschema@.coupon_spread_share($1, false) s;
END
$$;
COMMENT ON FUNCTION @extschema@.coupon_spread_state(text) IS
    'this node''s share of a spread pool: partition, spread id, member, shares, available, and what it gave that is not settled';

--
-- For the proxy's view coupon_pools (PL/Proxy runs them on every node):
-- for the roles that read it, as coupon_pools is (README, "Grants").
--

-- The outgoing transfers not settled yet, from this node (giver).
CREATE FUNCTION @extschema@.coupon_transfers_pending(OUT giver integer, OUT transfer_id text,
                                                     OUT pool text, OUT spread_id text,
                                                     OUT receiver integer, OUT qty bigint,
                                                     OUT made_at timestamptz)
RETURNS SETOF record
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET coupon.function_schema = '@extschema@'
AS $$
    SELECT m.partition, t.transfer_id, t.pool, t.spread_id, t.peer, t.qty, t.made_at
      FROM @extschema@.coupon_transfers t
     CROSS JOIN @extschema@.coupon_cluster_member m
     WHERE t.outgoing AND t.settled_at IS NULL
$$;

-- Which of transfer_ids this node has taken, as their receiver: a transfer
-- taken and not yet settled by its giver is no longer in flight.
CREATE FUNCTION @extschema@.coupon_transfers_taken(transfer_ids text[])
RETURNS SETOF text
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET coupon.function_schema = '@extschema@'
AS $$
    SELECT t.transfer_id
      FROM @extschema@.coupon_transfers t
     WHERE t.transfer_id OPERATOR(pg_catalog.=) ANY ($1) AND NOT t.outgoing
$$;

-- The spread pools whose home this node is, with their capacity.
CREATE FUNCTION @extschema@.coupon_spread_pools(OUT pool text, OUT spread_id text,
                                                OUT spread integer, OUT total bigint)
RETURNS SETOF record
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET coupon.function_schema = '@extschema@'
AS $$
    SELECT s.pool, s.spread_id, s.spread, s.total
      FROM @extschema@.coupon_spread s
      JOIN @extschema@.coupon_pool p
        ON p.name OPERATOR(pg_catalog.=) s.pool
       AND p.created_at OPERATOR(pg_catalog.=) s.pool_created_at
     WHERE s.member OPERATOR(pg_catalog.=) 0
$$;

REVOKE ALL ON FUNCTION
    @extschema@.coupon_spread_join(integer, text, text, bigint, bigint, integer, integer, integer),
    @extschema@.coupon_spread_drop(integer, text, text),
    @extschema@.coupon_spread_locked(integer, text, text, boolean),
    @extschema@.coupon_spread_spare(text, bigint, bigint),
    @extschema@.coupon_transfer_check(integer, text, text, text, integer, bigint, bigint, boolean),
    @extschema@.coupon_transfer_give(integer, text, text, text, integer, bigint),
    @extschema@.coupon_transfer_take(integer, text, text, text, integer, bigint),
    @extschema@.coupon_transfer_settle(integer, text),
    @extschema@.coupon_spread_dropping(integer, text, text),
    @extschema@.coupon_spread_resize(integer, text, text, bigint),
    @extschema@.coupon_spread_info(integer, text),
    @extschema@.coupon_spread_state(text),
    @extschema@.coupon_transfers_pending(),
    @extschema@.coupon_transfers_taken(text[]),
    @extschema@.coupon_spread_pools() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.coupon_spread_join(integer, text, text, bigint, bigint, integer, integer, integer) IS
    'create this node''s share of a spread pool (the proxy''s coupon_pool_create); idempotent';
COMMENT ON FUNCTION @extschema@.coupon_spread_drop(integer, text, text) IS
    'drop this node''s share of a spread pool (the proxy''s coupon_pool_drop)';
COMMENT ON FUNCTION @extschema@.coupon_transfer_give(integer, text, text, text, integer, bigint) IS
    'lower this share and journal the transfer in one transaction; idempotent per transfer id';
COMMENT ON FUNCTION @extschema@.coupon_transfer_take(integer, text, text, text, integer, bigint) IS
    'raise this share once per transfer id';
COMMENT ON FUNCTION @extschema@.coupon_transfer_settle(integer, text) IS
    'mark an outgoing transfer as taken by its receiver';
COMMENT ON FUNCTION @extschema@.coupon_spread_dropping(integer, text, text) IS
    'at the home of a spread pool: mark it as being dropped (the first step of the proxy''s coupon_pool_drop)';
COMMENT ON FUNCTION @extschema@.coupon_spread_resize(integer, text, text, bigint) IS
    'at the home of a spread pool: grow or shrink it to capacity, or say what its share lacks for the shrink';
COMMENT ON FUNCTION @extschema@.coupon_spread_info(integer, text) IS
    'this node''s share of a spread pool: spread id, number of shares, member, home partition, the pool''s capacity, the share''s capacity, per-customer limit, whether it is being dropped, and whether a pool of that name exists here';
COMMENT ON FUNCTION @extschema@.coupon_transfers_pending() IS
    'the outgoing transfers of this node not yet settled (the proxy''s coupon_pools and coupon_cluster_recover)';
COMMENT ON FUNCTION @extschema@.coupon_transfers_taken(text[]) IS
    'which of the transfers named this node has taken as their receiver (the proxy''s coupon_pools)';
COMMENT ON FUNCTION @extschema@.coupon_spread_pools() IS
    'the spread pools whose home this node is, with their capacity (the proxy''s coupon_pools)';
