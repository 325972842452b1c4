--
-- coupon_ledger_prune(older_than, batch_size): deletes ledger rows
-- released more than older_than ago, batch by batch, each committed; a row
-- with a request id only once it was released more than a day ago
-- (whatever older_than says), so that a repeat within a day still gets its
-- answer (UC002); never a live claim or hold, however old, nor a hold whose
-- time is up but that nobody returned yet.  The pools' counts do not move.
-- Bad arguments change nothing.  Not executable by PUBLIC.
--
-- In a database of its own, so that the ledger holds only this test's rows.
\set regress_db :DBNAME
CREATE DATABASE coupon_prune;
\c coupon_prune
CREATE EXTENSION coupon;
\getenv abs_srcdir PG_ABS_SRCDIR
\set helpers :abs_srcdir '/sql/include/lifecycle_helpers.sql'
\i :helpers
-- The ledger's rows by customer, with whether each is released.
CREATE FUNCTION pg_temp.rows() RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(format('%s%s', customer, CASE WHEN released_at IS NULL THEN '' ELSE '(r)' END),
                    ',' ORDER BY id)
    FROM coupon_claims WHERE pool = 'pr'
$$;
-- Pretend a row was released (or claimed) long ago: the test cannot wait days.
CREATE FUNCTION pg_temp.age(who text, released interval, claimed interval DEFAULT NULL)
RETURNS void LANGUAGE sql AS $$
  UPDATE coupon_claims
     SET released_at = CASE WHEN released_at IS NOT NULL THEN now() - released END,
         claimed_at = now() - coalesce(claimed, released)
   WHERE pool = 'pr' AND customer = who
$$;

SELECT coupon_pool_create('pr', 20);
SELECT coupon_claim('pr', 'old_release') AS old_release \gset
SELECT coupon_claim('pr', 'recent_release') AS recent_release \gset
SELECT coupon_claim('pr', 'fresh_release') AS fresh_release \gset
SELECT coupon_claim('pr', 'old_request', request_id => 'rq-old') AS old_request \gset
SELECT coupon_claim('pr', 'recent_request', request_id => 'rq-recent') AS recent_request \gset
SELECT coupon_claim('pr', 'live_old_claim') IS NOT NULL AS live_old_claim;
SELECT coupon_hold('pr', 'live_hold', '1 hour') IS NOT NULL AS live_hold;
SELECT coupon_hold('pr', 'due_hold', '10 ms') AS due_hold \gset
SELECT coupon_hold('pr', 'returned_hold', '10 ms') AS returned_hold \gset
SELECT pg_temp.wait_until_expired(:due_hold), pg_temp.wait_until_expired(:returned_hold);
SELECT coupon_release(:old_release), coupon_release(:recent_release),
       coupon_release(:fresh_release), coupon_release(:old_request),
       coupon_release(:recent_request), coupon_release(:returned_hold);
SELECT pg_temp.age('old_release', '3 days'), pg_temp.age('recent_release', '2 hours'),
       pg_temp.age('old_request', '3 days'), pg_temp.age('recent_request', '2 hours'),
       pg_temp.age('live_old_claim', NULL, '1 year'), pg_temp.age('returned_hold', '3 days');
SELECT pg_temp.rows();
SELECT pg_temp.balanced('pr') AS before \gset

-- Bad arguments: an error, and nothing is deleted.
\set VERBOSITY sqlstate
CALL coupon_ledger_prune(NULL);
CALL coupon_ledger_prune('1 hour', NULL);
CALL coupon_ledger_prune('-1 hour');
CALL coupon_ledger_prune('1 hour', 0);
-- In a transaction block it cannot commit its batches.
BEGIN;
CALL coupon_ledger_prune('1 hour');
ROLLBACK;
\set VERBOSITY default
SELECT pg_temp.rows();

-- Older than an hour, two ids a batch: the rows released three days and
-- two hours ago go, but the request released two hours ago stays.
CALL coupon_ledger_prune('1 hour', 2);
SELECT pg_temp.rows();
SELECT pg_temp.balanced('pr') = :'before' AS counts_unchanged;
-- A repeat of the request released two hours ago still gets its answer.
\set VERBOSITY sqlstate
SELECT coupon_claim('pr', 'recent_request', request_id => 'rq-recent');
\set VERBOSITY default

-- older_than zero: every released row but that request, once more.
CALL coupon_ledger_prune('0');
SELECT pg_temp.rows();
-- A day and a half later it goes too (and the repeat would be a new claim).
SELECT pg_temp.age('recent_request', '36 hours');
CALL coupon_ledger_prune('0', 100000);
SELECT pg_temp.rows();
SELECT pg_temp.balanced('pr') = :'before' AS counts_unchanged;

-- The hold whose time was up is still the pool's until it is returned;
-- returned, it goes at the next prune.
SELECT coupon_release(:due_hold);
SELECT pg_temp.age('due_hold', '3 days');
CALL coupon_ledger_prune('1 day');
SELECT pg_temp.rows();

SELECT has_function_privilege('public', 'coupon_ledger_prune(interval, integer)', 'EXECUTE') AS public_may_prune;

-- An empty ledger: nothing to do.
SELECT coupon_pool_drop('pr');
CALL coupon_ledger_prune('0');

\c :regress_db
DROP DATABASE coupon_prune;
