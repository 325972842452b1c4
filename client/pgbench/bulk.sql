-- coupon_claim_many() for 100 new customers in one call, on one pool that
-- does not run out.
\set n :n + 1
SELECT count(claim_id) FROM coupon_claim_many('bench',
  ARRAY(SELECT 'b' || :run || '-' || :client_id || '-' || :n || '-' || g
          FROM generate_series(1, 100) g));
