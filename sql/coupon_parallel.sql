--
-- A coupon function run inside a parallel worker (here through a wrapper
-- that claims to be PARALLEL SAFE, under debug_parallel_query) is refused
-- before it changes anything: a worker's abort would not give permits
-- back.  Afterwards nothing is in flight and the pool can be dropped.
--
SELECT coupon_pool_create('par', 3);
SELECT coupon_claim('par', 'held') IS NOT NULL AS granted;

CREATE FUNCTION claim_in_worker(customer text) RETURNS bigint
LANGUAGE plpgsql PARALLEL SAFE AS $$
BEGIN
  RETURN coupon_claim('par', customer);
END $$;
CREATE FUNCTION release_in_worker(id bigint) RETURNS boolean
LANGUAGE plpgsql PARALLEL SAFE AS $$
BEGIN
  RETURN coupon_release(id);
END $$;
CREATE FUNCTION resize_in_worker(capacity bigint) RETURNS void
LANGUAGE plpgsql PARALLEL SAFE AS $$
BEGIN
  PERFORM coupon_pool_resize('par', capacity);
END $$;

SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET max_parallel_workers_per_gather = 2;
-- force_parallel_mode was renamed debug_parallel_query in PostgreSQL 16.
SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
                       THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END,
                  'on', false) AS forced;
\set VERBOSITY terse
SELECT claim_in_worker('newcomer');
SELECT release_in_worker(id) FROM coupon_claims WHERE customer = 'held';
SELECT resize_in_worker(10);
\set VERBOSITY default
RESET max_parallel_workers_per_gather;
RESET parallel_tuple_cost;
RESET parallel_setup_cost;
SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
                       THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END,
                  'off', false) AS unforced;

SELECT capacity, claimed, in_flight, available FROM coupon_pools WHERE pool = 'par';
SELECT customer, released_at IS NOT NULL AS released FROM coupon_claims WHERE pool = 'par';
SELECT coupon_pool_drop('par');
DROP FUNCTION claim_in_worker(text), release_in_worker(bigint), resize_in_worker(bigint);
