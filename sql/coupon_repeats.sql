--
-- What a repeat answers, and inputs at the edges of the 1.1 surface.
--
-- A repeat never hands back a claim that is gone: a request whose claim
-- was released, or whose hold's time is up (returned or not), is an error
-- (UC002, UC001) and changes nothing.  A permanent claim asked for what a
-- live hold holds is answered 'held' with the hold's id (coupon_claim:
-- NULL), so that the caller confirms the hold instead of taking a hold for
-- a permanent claim.  An empty customer array is zero rows.  A wait near
-- the largest interval on a pool with nothing to wait for answers at once.
-- Every step ends balanced.
--
\getenv abs_srcdir PG_ABS_SRCDIR
\set helpers :abs_srcdir '/sql/include/lifecycle_helpers.sql'
\i :helpers
-- The ledger and the sequence, to show that an error changed nothing.
CREATE FUNCTION pg_temp.ledger() RETURNS text LANGUAGE sql AS $$
  SELECT format('%s rows, %s released, last id %s',
                count(*), count(released_at), (SELECT last_value FROM coupon_claims_id_seq))
    FROM coupon_claims
$$;

SELECT coupon_pool_create('r', 5);

-- A customer with a live hold asks for a permanent claim: 'held'.
SELECT coupon_hold('r', 'alice', '1 hour') AS alice_hold \gset
SELECT claim_id = :alice_hold AS is_the_hold, status
  FROM coupon_claim_detailed('r', 'alice');
SELECT coupon_claim('r', 'alice') IS NULL AS claim_is_null;
SELECT customer, claim_id = :alice_hold AS is_the_hold, status
  FROM coupon_claim_many('r', ARRAY['alice']);
-- A hold asked again is the same hold: a repeat.
SELECT claim_id = :alice_hold AS is_the_hold, status
  FROM coupon_claim_detailed('r', 'alice') WHERE false
UNION ALL
SELECT coupon_hold('r', 'alice', '1 hour') = :alice_hold, 'repeat';
-- A cart of claims that meets the hold: the line is at its limit.
SELECT claim_ids, status, line FROM coupon_claim_cart_detailed('{r}', '{1}', 'alice');
-- Once confirmed, the claim is the answer: a repeat.
SELECT coupon_confirm(:alice_hold);
SELECT claim_id = :alice_hold AS is_the_claim, status
  FROM coupon_claim_detailed('r', 'alice');
SELECT pg_temp.balanced('r');

-- A request whose hold is live: a repeat for a hold, 'held' for a claim.
SELECT coupon_hold('r', 'bob', '1 hour', request_id => 'rq-live') AS bob_hold \gset
SELECT coupon_hold('r', 'bob', '1 hour', request_id => 'rq-live') = :bob_hold AS same_hold;
SELECT claim_id = :bob_hold AS is_the_hold, status
  FROM coupon_claim_detailed('r', 'bob', request_id => 'rq-live');

-- A request whose claim was released: an error, and nothing changes.
SELECT coupon_claim('r', 'carol', request_id => 'rq-released') AS carol \gset
SELECT coupon_release(:carol);
SELECT pg_temp.ledger() AS before \gset
\set VERBOSITY sqlstate
SELECT coupon_claim('r', 'carol', request_id => 'rq-released');
SELECT * FROM coupon_claim_detailed('r', 'carol', request_id => 'rq-released');
\set VERBOSITY default
SELECT pg_temp.ledger() = :'before' AS unchanged;

-- A request whose hold's time is up, not yet returned, then returned.
SELECT coupon_hold('r', 'dave', '20 ms', request_id => 'rq-expired') AS dave \gset
SELECT pg_temp.wait_until_expired(:dave);
SELECT pg_temp.ledger() AS before \gset
\set VERBOSITY sqlstate
SELECT coupon_hold('r', 'dave', '20 ms', request_id => 'rq-expired');
\set VERBOSITY default
SELECT pg_temp.ledger() = :'before' AS unchanged;
-- The expired hold is not held: dave claims anew, without the request id.
SELECT status FROM coupon_claim_detailed('r', 'dave');
-- Sold out now; the claimer that needs dave's expired hold returns it.
SELECT pg_temp.balanced('r');
SELECT status FROM coupon_claim_detailed('r', 'erin');
SELECT released_at IS NOT NULL AS returned FROM coupon_claims WHERE id = :dave;
\set VERBOSITY sqlstate
SELECT coupon_hold('r', 'dave', '20 ms', request_id => 'rq-expired');
\set VERBOSITY default
SELECT pg_temp.balanced('r');

-- A cart whose claims were released: an error; its live holds: 'held'.
SELECT coupon_pool_create('c1', 5);
SELECT coupon_pool_create('c2', 5);
SELECT coupon_claim_cart('{c1,c2}', '{1,1}', 'frank', request_id => 'cart-rel') AS frank \gset
SELECT coupon_release(id) FROM unnest(:'frank'::bigint[]) id;
\set VERBOSITY sqlstate
SELECT coupon_claim_cart('{c1,c2}', '{1,1}', 'frank', request_id => 'cart-rel');
\set VERBOSITY default
SELECT coupon_claim_cart('{c1,c2}', '{1,1}', 'gina', '1 hour', request_id => 'cart-held') AS gina \gset
SELECT claim_ids = :'gina'::bigint[] AS same_ids, status
  FROM coupon_claim_cart_detailed('{c1,c2}', '{1,1}', 'gina', request_id => 'cart-held');
SELECT claim_ids = :'gina'::bigint[] AS same_ids, status
  FROM coupon_claim_cart_detailed('{c1,c2}', '{1,1}', 'gina', '1 hour', request_id => 'cart-held');
SELECT pg_temp.balanced('c1'), pg_temp.balanced('c2');

-- An empty customer array: zero rows, and nothing changes; the pool must
-- still exist and qty still fit.
SELECT pg_temp.ledger() AS before \gset
SELECT * FROM coupon_claim_many('r', '{}'::text[]);
SELECT count(*) FROM coupon_claim_many('r', ARRAY[]::text[], 1);
SELECT pg_temp.ledger() = :'before' AS unchanged;
\set VERBOSITY sqlstate
SELECT * FROM coupon_claim_many('nope', '{}'::text[]);
SELECT * FROM coupon_claim_many('r', '{}'::text[], 0);
SELECT * FROM coupon_claim_many('r', '{}'::text[], 6);
SELECT * FROM coupon_claim_many('r', NULL::text[]);
SELECT coupon_claim_cart('{}'::text[], '{}'::integer[], 'x');
SELECT * FROM coupon_claim_cart_detailed('{}'::text[], '{}'::integer[], 'x');
SELECT coupon_claim_cart('{r}', '{}'::integer[], 'x');
SELECT coupon_claim_cart('{}'::text[], '{1}', 'x');
\set VERBOSITY default
SELECT pg_temp.ledger() = :'before' AS unchanged;

-- The largest wait on a sold-out pool with no hold to wait for: sold_out
-- at once, not a sleep until statement_timeout.
SELECT coupon_pool_create('gone', 1);
SELECT coupon_claim('gone', 'first') IS NOT NULL AS claimed;
SET statement_timeout = '60s';
SELECT claim_id, status FROM coupon_claim_detailed('gone', 'late', 1, '290000 years');
SELECT claim_ids, status, line
  FROM coupon_claim_cart_detailed('{gone}', '{1}', 'late', NULL, '290000 years');
SELECT claim_ids, status, line
  FROM coupon_claim_cart_detailed('{gone}', '{1}', 'late', '1 hour', '290000 years');
RESET statement_timeout;
SELECT pg_temp.balanced('gone');

-- The largest ttl a caller can give is stored as a valid timestamp, one
-- that reads back: 200 holds and extends a few microseconds short of the
-- last timestamp (each either refused with 22008 when the clock has moved
-- past it, or stored), then one past it, always refused.
SELECT coupon_pool_create('far', 1000);
DO $$
DECLARE
  last constant timestamptz := '294276-12-31 23:59:59.999999+00';
  id bigint;
BEGIN
  FOR i IN 1 .. 200 LOOP
    BEGIN
      id := coupon_hold('far', 'h' || i, (last - clock_timestamp()) - (i % 50) * interval '1 us');
      PERFORM coupon_hold_extend(id, (last - clock_timestamp()) - (i % 30) * interval '1 us');
    EXCEPTION WHEN datetime_field_overflow THEN
      NULL;
    END;
  END LOOP;
END $$;
SELECT count(*) > 0 AS some_stored,
       bool_and(expires_at <= '294276-12-31 23:59:59.999999+00') AS all_valid,
       bool_and(expires_at::text::timestamptz = expires_at) AS all_read_back
  FROM coupon_claims WHERE pool = 'far';
SELECT coupon_hold('far', 'last', '1 hour') AS far \gset
\set VERBOSITY sqlstate
SELECT coupon_hold('far', 'past', ('294276-12-31 23:59:59.999999+00'::timestamptz - clock_timestamp()) + interval '1 us');
SELECT coupon_hold_extend(:far, ('294276-12-31 23:59:59.999999+00'::timestamptz - clock_timestamp()) + interval '1 us');
\set VERBOSITY default
SELECT pg_temp.balanced('far') LIKE '%balanced t' AS balanced;
