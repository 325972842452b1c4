/* extension/coupon--1.3--1.4.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION coupon UPDATE TO '1.4'" to load this file. \quit

--
-- 1.4 lets a database be a node of a cluster behind PL/Proxy (the
-- extension coupon_proxy on the proxy's database).  The proxy stamps each
-- node with its partition through coupon_cluster_join(); from then on the
-- node's claim ids name it: id = (partition << 48) | local number, so the
-- proxy routes a release, confirm or extend by the id alone.  Ids stay
-- increasing on the node: joining only ever moves the ledger's sequence
-- up.  Nothing else changes: a node serves its pools exactly as a lone
-- server does.
--

-- One row at most: the cluster this database belongs to, and as what.
CREATE TABLE @extschema@.coupon_cluster_member (
    cluster    text NOT NULL
               CHECK (pg_catalog.octet_length(cluster) OPERATOR(pg_catalog.>=) 1
                      AND pg_catalog.octet_length(cluster) OPERATOR(pg_catalog.<=) 127),
    partition  integer NOT NULL CHECK (partition OPERATOR(pg_catalog.>=) 0),
    partitions integer NOT NULL CHECK (partitions OPERATOR(pg_catalog.>) partition),
    joined_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE UNIQUE INDEX coupon_cluster_member_one ON @extschema@.coupon_cluster_member ((true));
COMMENT ON TABLE @extschema@.coupon_cluster_member IS
    'the cluster this node belongs to (at most one row); written only by coupon_cluster_join';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.coupon_cluster_member', '');
REVOKE ALL ON TABLE @extschema@.coupon_cluster_member FROM PUBLIC;

--
-- coupon_cluster_join: for the DBA (the proxy's coupon_cluster_attach()
-- calls it as the owner).  A repeat with the same cluster, partition and
-- partitions returns the partition and changes nothing; any other is
-- refused with UC005.  A ledger with ids that would not name the node (any
-- id whose high bits are not the partition, or a sequence already past the
-- partition's ids) is refused with UC006: its claims could not be routed.
-- The ledger is locked in SHARE mode while the ids are checked and the
-- sequence moved, so that no claim in flight takes an id of the old kind
-- after the check.
--
CREATE FUNCTION @extschema@.coupon_cluster_join(cluster text, partition integer,
                                                partitions integer)
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    want_cluster text := $1;
    want_part integer := $2;
    want_parts integer := $3;
    m record;
    base bigint;
    foreign_id bigint;
    last_id bigint;
BEGIN
    IF want_cluster IS NULL OR want_part IS NULL OR want_parts IS NULL THEN
        RAISE EXCEPTION 'cluster, partition and partitions must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF pg_catalog.octet_length(want_cluster) OPERATOR(pg_catalog.<) 1
       OR pg_catalog.octet_length(want_cluster) OPERATOR(pg_catalog.>) 127 THEN
        RAISE EXCEPTION 'cluster name must be 1 to 127 bytes long'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF want_parts OPERATOR(pg_catalog.<) 1 OR want_parts OPERATOR(pg_catalog.>) 32768
       OR (want_parts OPERATOR(pg_catalog.&) (want_parts OPERATOR(pg_catalog.-) 1))
          OPERATOR(pg_catalog.<>) 0 THEN
        RAISE EXCEPTION 'a cluster of % partitions is not possible', want_parts
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'PL/Proxy needs a power of two of partitions; claim ids have room for up to 32768.';
    END IF;
    IF want_part OPERATOR(pg_catalog.<) 0 OR want_part OPERATOR(pg_catalog.>=) want_parts THEN
        RAISE EXCEPTION 'partition % is not one of the % partitions of a cluster', want_part, want_parts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    LOCK TABLE @extschema@.coupon_cluster_member IN EXCLUSIVE MODE;
    SELECT c.cluster, c.partition, c.partitions INTO m
      FROM @extschema@.coupon_cluster_member c;
    IF FOUND THEN
        IF m.cluster OPERATOR(pg_catalog.=) want_cluster
           AND m.partition OPERATOR(pg_catalog.=) want_part
           AND m.partitions OPERATOR(pg_catalog.=) want_parts THEN
            RETURN want_part;
        END IF;
        RAISE EXCEPTION 'this node is partition % of % of cluster "%"', m.partition, m.partitions, m.cluster
            USING ERRCODE = 'UC005',
                  DETAIL = pg_catalog.format('It was asked to be partition %s of %s of cluster "%s".',
                                             want_part, want_parts, want_cluster),
                  HINT = 'A node belongs to one cluster, as one partition: check the proxy''s server options.';
    END IF;

    LOCK TABLE @extschema@.coupon_claims IN SHARE MODE;
    base := want_part::bigint OPERATOR(pg_catalog.<<) 48;
    SELECT c.id INTO foreign_id
      FROM @extschema@.coupon_claims c
     WHERE (c.id OPERATOR(pg_catalog.>>) 48) OPERATOR(pg_catalog.<>) want_part::bigint
     LIMIT 1;
    SELECT s.last_value INTO last_id FROM @extschema@.coupon_claims_id_seq s;
    IF foreign_id IS NOT NULL
       OR (last_id OPERATOR(pg_catalog.>>) 48) OPERATOR(pg_catalog.>) want_part::bigint THEN
        RAISE EXCEPTION 'the ledger of this node has claim ids that do not name partition %', want_part
            USING ERRCODE = 'UC006',
                  DETAIL = pg_catalog.format('Claim id %s was given here; partition %s''s ids are from %s to %s.',
                                             COALESCE(foreign_id, last_id), want_part, base,
                                             base OPERATOR(pg_catalog.+) 281474976710655),
                  HINT = 'Attach a node whose ledger is empty, or this one as partition 0.';
    END IF;
    IF last_id OPERATOR(pg_catalog.<) base THEN
        PERFORM pg_catalog.setval('@extschema@.coupon_claims_id_seq'::pg_catalog.regclass, base, true);
    END IF;

    INSERT INTO @extschema@.coupon_cluster_member (cluster, partition, partitions)
    VALUES (want_cluster, want_part, want_parts);
    RETURN want_part;
END
$$;
COMMENT ON FUNCTION @extschema@.coupon_cluster_join(text, integer, integer) IS
    'make this node partition partition of partitions of a cluster: its claim ids become (partition << 48) | local number; idempotent; refuses another cluster or partition (UC005) and a ledger whose ids do not name the partition (UC006)';
REVOKE ALL ON FUNCTION @extschema@.coupon_cluster_join(text, integer, integer) FROM PUBLIC;
