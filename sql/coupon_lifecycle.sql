--
-- The lifecycle of a claim: holds that expire unless confirmed, extend,
-- release; request ids; carts; bulk claims.  The test instance runs with
-- coupon.expiry_workers = off, so that an expired hold stays until a
-- claimer that needs its coupons returns it (the workers are tested by
-- TAP).  Every step ends balanced: capacity = claimed + in_flight +
-- available, claimed including held.
--
SHOW coupon.expiry_workers;
\getenv abs_srcdir PG_ABS_SRCDIR
\set helpers :abs_srcdir '/sql/include/lifecycle_helpers.sql'
\i :helpers

--
-- Holds: counted like claims, confirmed, extended, released.
--
SELECT coupon_pool_create('tickets', 3);
-- A hold expires ttl after it is granted, by the clock.
SELECT clock_timestamp() AS before_ann \gset
SELECT coupon_hold('tickets', 'ann', '1 hour') AS ann \gset
SELECT pg_temp.balanced('tickets');
SELECT claim_id = :ann AS is_ann, pool, customer, qty,
       expires_at BETWEEN :'before_ann'::timestamptz + interval '1 hour'
                      AND clock_timestamp() + interval '1 hour' AS in_an_hour,
       expired
  FROM coupon_holds;
-- The hold counts against ann's limit of one: a claim answers with it,
-- as 'held' (a claim is permanent, a hold is not: confirm it instead).
SELECT claim_id = :ann AS the_hold, status FROM coupon_claim_detailed('tickets', 'ann');
SELECT coupon_confirm(:ann);
SELECT coupon_confirm(:ann);
SELECT count(*) AS holds FROM coupon_holds;
SELECT pg_temp.balanced('tickets');
\set VERBOSITY sqlstate
SELECT coupon_hold_extend(:ann, '1 hour');
\set VERBOSITY default

SELECT coupon_hold('tickets', 'bob', '10 minutes') AS bob \gset
SELECT clock_timestamp() AS before_extend \gset
SELECT coupon_hold_extend(:bob, '2 hours') AS bob_until \gset
SELECT :'bob_until'::timestamptz BETWEEN :'before_extend'::timestamptz + interval '2 hours'
                                     AND clock_timestamp() + interval '2 hours'
       AS two_hours_from_the_extend;
SELECT expires_at = :'bob_until' AS stored FROM coupon_holds WHERE claim_id = :bob;
SELECT coupon_release(:bob);
\set VERBOSITY sqlstate
SELECT coupon_confirm(:bob);
SELECT coupon_hold_extend(:bob, '1 hour');
\set VERBOSITY default
SELECT pg_temp.balanced('tickets');

-- A hold made in a transaction that rolls back leaves nothing.
BEGIN;
SELECT coupon_hold('tickets', 'cat', '1 hour') IS NOT NULL AS held;
SELECT in_flight FROM coupon_pool_memory() WHERE pool = 'tickets';
ROLLBACK;
SELECT pg_temp.balanced('tickets');

--
-- Expiry by the claimer that needs the coupons.
--
SELECT coupon_pool_create('flash', 1);
SELECT coupon_hold('flash', 'slow', '50 milliseconds') AS slow \gset
SELECT status FROM coupon_claim_detailed('flash', 'early');
SELECT pg_temp.wait_until_expired(:slow);
-- Its time is up; nobody has returned it yet.
SELECT expired FROM coupon_holds WHERE claim_id = :slow;
SELECT pg_temp.balanced('flash');
\set VERBOSITY sqlstate
SELECT coupon_confirm(:slow);
\set VERBOSITY default
SELECT expired FROM coupon_holds WHERE claim_id = :slow;
-- A claimer that finds the pool sold out returns the overdue hold in its
-- own transaction and takes its coupon; rolled back, both are undone.
BEGIN;
SELECT status FROM coupon_claim_detailed('flash', 'quick');
SELECT released_at IS NOT NULL AS released FROM coupon_claims WHERE id = :slow;
ROLLBACK;
SELECT expired FROM coupon_holds WHERE claim_id = :slow;
SELECT pg_temp.balanced('flash');
SELECT status FROM coupon_claim_detailed('flash', 'quick');
SELECT customer, released_at IS NOT NULL AS released, expires_at IS NOT NULL AS hold
  FROM coupon_claims WHERE pool = 'flash' ORDER BY id;
SELECT pg_temp.balanced('flash');
\set VERBOSITY sqlstate
SELECT coupon_confirm(:slow);
\set VERBOSITY default

--
-- A hold whose time is up is no longer held: its customer claims again,
-- alone or in a bulk call, before anyone has returned the old hold.
--
SELECT coupon_pool_create('again', 5);
SELECT coupon_hold('again', 'xan', '20 milliseconds') AS xan \gset
SELECT pg_temp.wait_until_expired(:xan);
SELECT claim_id <> :xan AS new_claim, status FROM coupon_claim_detailed('again', 'xan');
SELECT coupon_hold('again', 'yul', '20 milliseconds') AS yul \gset
SELECT pg_temp.wait_until_expired(:yul);
SELECT customer, claim_id <> :yul AS new_claim, status
  FROM coupon_claim_many('again', '{yul}');
SELECT pg_temp.balanced('again');

-- A transaction that returned an overdue hold and rolled back leaves the
-- hold overdue and the pool still looking for it.
SELECT coupon_pool_create('undone', 3, 3);
SELECT coupon_hold('undone', 'x', '20 milliseconds') AS undone_x \gset
SELECT coupon_claim('undone', 'z') IS NOT NULL AS granted;
SELECT pg_temp.wait_until_expired(:undone_x);
BEGIN;
SELECT status FROM coupon_claim_detailed('undone', 'y', 3);
ROLLBACK;
SELECT status FROM coupon_claim_detailed('undone', 'w', 2);
SELECT pg_temp.balanced('undone');

-- A bulk call grants the coupons of the overdue holds it returned.
SELECT coupon_pool_create('refilled', 3);
SELECT count(coupon_hold('refilled', 'h' || i, '20 milliseconds')) AS holds
  FROM generate_series(1, 3) i;
SELECT bool_and(pg_temp.wait_until_expired(id)) AS expired
  FROM coupon_claims WHERE pool = 'refilled';
SELECT customer, status FROM coupon_claim_many('refilled', '{a,b,c,d,e}');
SELECT pg_temp.balanced('refilled');

-- A claim that may wait waits for a hold to expire, if it expires in time.
SELECT coupon_pool_create('soon', 1);
SELECT coupon_hold('soon', 'holder', '2 seconds') IS NOT NULL AS held;
SELECT status FROM coupon_claim_detailed('soon', 'hasty');
SELECT status FROM coupon_claim_detailed('soon', 'patient', 1, '60 seconds');
SELECT pg_temp.balanced('soon');

--
-- Request ids.
--
SELECT coupon_pool_create('multi', 10, 3);
SELECT coupon_claim('multi', 'dan', 1, '0', 'order-1') AS first \gset
SELECT coupon_claim('multi', 'dan', 1, '0', 'order-1') = :first AS same_claim;
SELECT claim_id = :first AS same_claim, status
  FROM coupon_claim_detailed('multi', 'dan', 1, '0', 'order-1');
SELECT coupon_claim('multi', 'dan', 1, '0', 'order-2') <> :first AS new_claim;
SELECT claimed FROM coupon_pools WHERE pool = 'multi';
\set VERBOSITY sqlstate
SELECT coupon_claim('multi', 'eve', 1, '0', 'order-1');
SELECT coupon_claim('multi', 'dan', 2, '0', 'order-1');
\set VERBOSITY default
-- The same request id names a claim per pool.
SELECT coupon_claim('tickets', 'dan', 1, '0', 'order-1') IS NOT NULL AS other_pool;
-- A released claim is never the answer to its request id: UC002.
SELECT coupon_release(:first);
\set VERBOSITY sqlstate
SELECT claim_id = :first AS same_claim, status
  FROM coupon_claim_detailed('multi', 'dan', 1, '0', 'order-1');
\set VERBOSITY default
SELECT coupon_hold('multi', 'fay', '1 hour', 1, '0', 'hold-1') AS fay \gset
SELECT coupon_hold('multi', 'fay', '1 hour', 1, '0', 'hold-1') = :fay AS same_hold;
SELECT pg_temp.balanced('multi');

--
-- Carts: every line or none.
--
SELECT coupon_pool_create('shoes', 5), coupon_pool_create('socks', 2),
       coupon_pool_create('hats', 1);
SELECT array_length(coupon_claim_cart('{shoes,socks}', '{1,1}', 'gus'), 1) AS lines;
SELECT pool, customer FROM coupon_claims WHERE customer = 'gus' ORDER BY id;
-- hats has one coupon: a cart that asks for it and more fails at that
-- line, and takes nothing.
SELECT coupon_claim('hats', 'hal') IS NOT NULL AS hats_gone;
SELECT claim_ids, status, line
  FROM coupon_claim_cart_detailed('{shoes,socks,hats}', '{1,1,1}', 'ida');
SELECT count(*) AS ida_claims FROM coupon_claims WHERE customer = 'ida';
SELECT pg_temp.balanced('shoes'), pg_temp.balanced('socks');
-- Lines of one pool are added up: two lines of socks, whose limit is one.
\set VERBOSITY sqlstate
SELECT coupon_claim_cart('{socks,shoes,socks}', '{1,1,1}', 'jo');
\set VERBOSITY default
-- A cart of holds, with a request id: asked again, the same lines.
SELECT claim_ids AS kim
  FROM coupon_claim_cart_detailed('{socks,shoes}', '{1,1}', 'kim', '30 minutes', '0', 'cart-7') \gset
SELECT array_length(:'kim'::bigint[], 1) AS lines;
SELECT claim_ids = :'kim', status
  FROM coupon_claim_cart_detailed('{socks,shoes}', '{1,1}', 'kim', '30 minutes', '0', 'cart-7');
SELECT count(*) AS kim_holds FROM coupon_holds WHERE customer = 'kim';
\set VERBOSITY sqlstate
SELECT coupon_claim_cart('{socks,shoes}', '{1,1}', 'lou', NULL, '0', 'cart-7');
\set VERBOSITY default
SELECT pg_temp.balanced('shoes'), pg_temp.balanced('socks');

--
-- Bulk: many customers in one call, each on its own.
--
SELECT coupon_pool_create('promo', 5, 1);
SELECT coupon_claim('promo', 'old') IS NOT NULL AS granted;
SELECT customer, claim_id IS NOT NULL AS has_id, status
  FROM coupon_claim_many('promo', '{old,new1,new2,new1,new3,new4,new5}');
SELECT count(*) AS rows, count(DISTINCT customer) AS customers
  FROM coupon_claims WHERE pool = 'promo';
SELECT pg_temp.balanced('promo');
SELECT coupon_pool_create('promo2', 10, 2);
SELECT customer, status FROM coupon_claim_many('promo2', '{a,b,a,a}', 1);
SELECT customer, status FROM coupon_claim_many('promo2', '{c,d}', 2);
SELECT pg_temp.balanced('promo2');
-- What a bulk call's customers hold is read in one scan when they are close
-- together in the ledger's index, one by one when they are spread among
-- many others' claims; either way the same as the ledger says.
SELECT coupon_pool_create('spread', 1000, 2);
SELECT count(*) AS granted
  FROM coupon_claim_many('spread', ARRAY(SELECT 'c' || lpad(g::text, 3, '0')
                                           FROM generate_series(0, 199) g))
 WHERE status = 'granted';
SELECT coupon_release(id) FROM coupon_claims
 WHERE pool = 'spread' AND customer IN ('c050', 'c150');
SELECT customer, status FROM coupon_claim_many('spread', '{c051,c049,c050,c050,c050}');
SELECT customer, status FROM coupon_claim_many('spread', '{c000,c150,c199,c049,zed}');
SELECT customer, sum(qty) AS held FROM coupon_claims
 WHERE pool = 'spread' AND released_at IS NULL
   AND customer IN ('c000', 'c049', 'c050', 'c051', 'c150', 'c199', 'c100', 'zed')
 GROUP BY customer ORDER BY customer;
SELECT pg_temp.balanced('spread');

SELECT count(*) AS unbalanced FROM coupon_pools
 WHERE capacity <> claimed + in_flight + available OR in_flight <> 0;
\o /dev/null
SELECT format('SELECT coupon_pool_drop(%L)', pool) FROM coupon_pools ORDER BY pool \gexec
\o
SELECT count(*) AS pools_left FROM coupon_pools;
