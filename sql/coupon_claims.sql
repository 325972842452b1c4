--
-- Claims: grants, repeats, the per-customer limit, release, aborts,
-- savepoints, waits, and the statuses of coupon_claim_detailed().
--
CREATE VIEW balance AS
SELECT pool, capacity, claimed, in_flight, available,
       capacity = claimed + in_flight + available AS balanced
  FROM coupon_pools ORDER BY pool;

SELECT coupon_pool_create('tickets', 3);

-- Claim ids increase; a repeat returns the customer's existing claim.
SELECT coupon_claim('tickets', 'ann') AS ann \gset
SELECT coupon_claim('tickets', 'bob') AS bob \gset
SELECT :bob > :ann AS increasing;
SELECT coupon_claim('tickets', 'ann') = :ann AS repeat_returns_same_id;
SELECT claim_id = :ann AS same_id, status FROM coupon_claim_detailed('tickets', 'ann');
SELECT count(*) AS ann_rows FROM coupon_claims WHERE customer = 'ann';
SELECT * FROM balance;

-- The last coupon, then sold out; a repeat is still answered when sold out.
SELECT status, available FROM coupon_claim_detailed('tickets', 'cat');
SELECT claim_id IS NULL AS no_claim, status, available FROM coupon_claim_detailed('tickets', 'dan');
SELECT coupon_claim('tickets', 'dan') IS NULL AS sold_out;
SELECT coupon_claim('tickets', 'ann') = :ann AS repeat_when_sold_out;

-- Release: the coupon comes back at commit; a second release is false.
BEGIN;
SELECT coupon_release(:bob);
SELECT available FROM coupon_pools WHERE pool = 'tickets';   -- not yet
COMMIT;
SELECT coupon_release(:bob);
SELECT * FROM balance;
SELECT released_at IS NOT NULL AS released FROM coupon_claims WHERE id = :bob;

-- A rolled-back release gives nothing back.
BEGIN;
SELECT coupon_release(:ann);
ROLLBACK;
SELECT * FROM balance;
SELECT released_at IS NULL AS still_held FROM coupon_claims WHERE id = :ann;

-- After a release the customer may claim again, with a new id.
SELECT coupon_claim('tickets', 'bob') > :bob AS new_claim;
SELECT * FROM balance;

-- Aborted claims give their permits back and leave no ledger row.
SELECT coupon_pool_resize('tickets', 10);
BEGIN;
SELECT coupon_claim('tickets', 'eve') IS NOT NULL AS granted;
SELECT in_flight, available FROM coupon_pools WHERE pool = 'tickets';
ROLLBACK;
SELECT count(*) AS eve_rows FROM coupon_claims WHERE customer = 'eve';
SELECT * FROM balance;

-- An error after the claim aborts it too.
BEGIN;
SELECT coupon_claim('tickets', 'fay') IS NOT NULL AS granted;
SELECT 1 / 0;
ROLLBACK;
SELECT count(*) AS fay_rows FROM coupon_claims WHERE customer = 'fay';
SELECT * FROM balance;

-- A savepoint rolled back returns its permit at once; the outer claim stays.
BEGIN;
SELECT coupon_claim('tickets', 'gil') IS NOT NULL AS granted;
SAVEPOINT s1;
SELECT coupon_claim('tickets', 'hal') IS NOT NULL AS granted;
SAVEPOINT s2;
SELECT coupon_claim('tickets', 'ivy') IS NOT NULL AS granted;
SELECT in_flight, available FROM coupon_pools WHERE pool = 'tickets';
ROLLBACK TO s1;
SELECT in_flight, available FROM coupon_pools WHERE pool = 'tickets';
RELEASE s1;
COMMIT;
SELECT customer FROM coupon_claims WHERE customer IN ('gil', 'hal', 'ivy') ORDER BY 1;
SELECT * FROM balance;

-- A committed savepoint keeps its claim.
BEGIN;
SAVEPOINT s;
SELECT coupon_claim('tickets', 'jon') IS NOT NULL AS granted;
RELEASE s;
COMMIT;
SELECT count(*) AS jon_rows FROM coupon_claims WHERE customer = 'jon' AND released_at IS NULL;

-- Claim and release in one transaction: nothing changes.
SELECT available AS before FROM coupon_pools WHERE pool = 'tickets' \gset
BEGIN;
SELECT coupon_release(coupon_claim('tickets', 'kim'));
COMMIT;
SELECT available = :before AS unchanged FROM coupon_pools WHERE pool = 'tickets';
SELECT * FROM balance;

-- A per-customer limit above one: quantities add up to the limit.
SELECT coupon_pool_create('seats', 10, 3);
SELECT status FROM coupon_claim_detailed('seats', 'ann', 2);
SELECT status FROM coupon_claim_detailed('seats', 'ann', 2);   -- 2 + 2 > 3
SELECT status FROM coupon_claim_detailed('seats', 'ann', 1);
SELECT status FROM coupon_claim_detailed('seats', 'ann', 1);
SELECT coupon_claim('seats', 'ann') IS NULL AS limit_reached;
SELECT sum(qty) AS ann_holds FROM coupon_claims WHERE pool = 'seats' AND customer = 'ann';
SELECT * FROM balance WHERE pool = 'seats';
-- Not enough left for qty 3, although 1 is.
SELECT coupon_claim('seats', 'bob', 3) IS NOT NULL, coupon_claim('seats', 'cat', 3) IS NOT NULL;
SELECT status, available FROM coupon_claim_detailed('seats', 'dan', 3);
SELECT status, available FROM coupon_claim_detailed('seats', 'dan', 1);
SELECT * FROM balance WHERE pool = 'seats';

-- Waiting: with nothing in flight a claimer is told "sold out" at once,
-- not after its wait.
SELECT clock_timestamp() AS t0 \gset
SELECT status FROM coupon_claim_detailed('seats', 'eve', 1, '30 seconds');
SELECT clock_timestamp() - :'t0' < interval '10 seconds' AS answered_at_once;
-- The claimer's own permits in flight cannot come back while it waits
-- (they return when its transaction ends): sold out at once as well.
SELECT coupon_pool_resize('seats', 11);
BEGIN;
SELECT coupon_claim('seats', 'eve') IS NOT NULL AS granted;
SELECT clock_timestamp() AS t1 \gset
SELECT status FROM coupon_claim_detailed('seats', 'fay', 1, '30 seconds');
SELECT clock_timestamp() - :'t1' < interval '10 seconds' AS answered_at_once;
ROLLBACK;
SELECT pool, waits, sold_out FROM coupon_pools WHERE pool = 'seats';

-- REPEATABLE READ callers are served exactly too.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) FROM coupon_claims;
SELECT coupon_claim('tickets', 'lea') IS NOT NULL AS granted;
SELECT coupon_claim('tickets', 'lea') = coupon_claim('tickets', 'lea') AS repeat;
COMMIT;
SELECT count(*) AS lea_rows FROM coupon_claims WHERE customer = 'lea';

-- Every pool balances, and the ledger agrees with the view.
SELECT * FROM balance;
SELECT p.pool, p.claimed = (SELECT coalesce(sum(qty), 0) FROM coupon_claims c
                             WHERE c.pool = p.pool AND released_at IS NULL) AS ledger_agrees
  FROM coupon_pools p ORDER BY 1;

-- A drop holds its pool's slot until it commits: one pool per statement.
SELECT format('SELECT coupon_pool_drop(%L)', pool) FROM coupon_pools ORDER BY pool \gexec
DROP VIEW balance;
