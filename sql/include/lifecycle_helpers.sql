-- Helpers of the lifecycle tests, included with \i: a pool's counts and
-- whether they balance, and a wait until a hold's time is up.
CREATE FUNCTION pg_temp.balanced(p text) RETURNS text LANGUAGE sql AS $$
  SELECT format('capacity %s, claimed %s, held %s, in_flight %s, available %s, balanced %s',
                capacity, claimed, held, in_flight, available,
                capacity = claimed + in_flight + available)
    FROM coupon_pools WHERE pool = p
$$;
-- Wait until a hold's time is up (the clock, not the transaction's start).
CREATE FUNCTION pg_temp.wait_until_expired(claim bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  WHILE clock_timestamp() <= (SELECT expires_at FROM coupon_claims WHERE id = claim) LOOP
    PERFORM pg_sleep(0.01);
  END LOOP;
  RETURN true;
END $$;
