--
-- Release, confirm and extend with the customer named (1.2): they act
-- only on that customer's claim.  Another customer's claim, or no claim
-- at all, is UC004 before anything else about it is said (released,
-- expired, permanent), and changes nothing; a NULL customer is 22004,
-- never "any customer".  Without the customer they act on any claim id,
-- as in 1.1.
--
-- In a database of its own, so that claim ids start at 1.
\set regress_db :DBNAME
CREATE DATABASE coupon_customer_checks;
\c coupon_customer_checks
CREATE EXTENSION coupon;
\getenv abs_srcdir PG_ABS_SRCDIR
\set helpers :abs_srcdir '/sql/include/lifecycle_helpers.sql'
\i :helpers
-- Every row of the ledger, to show that an error changed nothing.
CREATE FUNCTION pg_temp.rows() RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(format('%s:%s:%s:%s', id, customer, released_at IS NOT NULL,
                           expires_at), ',' ORDER BY id)
    FROM coupon_claims
$$;

SELECT coupon_pool_create('own', 10);
SELECT coupon_claim('own', 'ann') AS ann_claim \gset
SELECT coupon_pool_create('own2', 10);
SELECT coupon_hold('own2', 'ann', '1 hour') AS ann_hold \gset
SELECT coupon_hold('own2', 'ben', '1 hour') AS ben_hold \gset
SELECT coupon_hold('own2', 'cid', '50 ms') AS cid_hold \gset
SELECT pg_temp.wait_until_expired(:cid_hold);
SELECT coupon_claim('own', 'dan') AS dan_claim \gset
SELECT coupon_release(:dan_claim, 'dan');
SELECT max(id) + 1000 AS no_claim FROM coupon_claims \gset
SELECT pg_temp.rows() AS before \gset

-- Another customer's claim, hold, released claim, expired hold, or no
-- claim at all: UC004 every time, and nothing changes.
\set VERBOSITY sqlstate
SELECT coupon_release(:ann_claim, 'ben');
SELECT coupon_release(:ann_claim, 'Ann');
SELECT coupon_release(:ann_claim, '');
SELECT coupon_release(:dan_claim, 'ann');
SELECT coupon_release(:no_claim, 'ann');
SELECT coupon_confirm(:ann_hold, 'ben');
SELECT coupon_confirm(:cid_hold, 'ben');
SELECT coupon_confirm(:ann_claim, 'ben');
SELECT coupon_confirm(:no_claim, 'ben');
SELECT coupon_hold_extend(:ben_hold, '1 day', 'ann');
SELECT coupon_hold_extend(:cid_hold, '1 day', 'ann');
SELECT coupon_hold_extend(:ann_claim, '1 day', 'ben');
SELECT coupon_hold_extend(:no_claim, '1 day', 'ben');
-- A NULL customer: 22004.
SELECT coupon_release(:ann_claim, NULL);
SELECT coupon_confirm(:ann_hold, NULL);
SELECT coupon_hold_extend(:ann_hold, '1 day', NULL);
\set VERBOSITY default
SELECT coupon_release(:ann_claim, 'ben');
SELECT pg_temp.rows() = :'before' AS unchanged;
SELECT pg_temp.balanced('own'), pg_temp.balanced('own2');

-- The claim's own customer: what 1.1's calls do.
SELECT coupon_hold_extend(:ben_hold, '2 hours', 'ben') > now() + '1 hour' AS extended;
SELECT coupon_confirm(:ann_hold, 'ann') AS confirmed,
       coupon_confirm(:ann_hold, 'ann') AS confirmed_again;
SELECT coupon_release(:ann_claim, 'ann') AS released,
       coupon_release(:ann_claim, 'ann') AS released_again;
\set VERBOSITY sqlstate
SELECT coupon_confirm(:cid_hold, 'cid');
SELECT coupon_hold_extend(:ann_hold, '1 hour', 'ann');
\set VERBOSITY default
SELECT id, customer, released_at IS NOT NULL AS released, expires_at IS NOT NULL AS hold
  FROM coupon_claims WHERE id IN (:ann_claim, :ann_hold, :ben_hold) ORDER BY id;
SELECT pg_temp.balanced('own'), pg_temp.balanced('own2');

-- Without the customer, any claim id, as before.
SELECT coupon_release(:ben_hold) AS released_by_id;

-- The new functions are not executable by PUBLIC.
SELECT p.oid::regprocedure AS function, has_function_privilege('public', p.oid, 'EXECUTE') AS public
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'coupon'
 WHERE p.proname IN ('coupon_release', 'coupon_confirm', 'coupon_hold_extend')
 ORDER BY p.oid::regprocedure::text;

SELECT coupon_pool_drop('own'), coupon_pool_drop('own2');

\c :regress_db
DROP DATABASE coupon_customer_checks;
