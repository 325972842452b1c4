-- coupon_claim_many() for 100 customers drawn at random from a million
-- who already hold earlier claims all over the ledger's index (the pool
-- "spread", set up by pgbench-compare.sh): each customer's holdings are
-- found by a probe of its own.
SELECT count(claim_id) FROM coupon_claim_many('spread',
  ARRAY(SELECT 's' || (random() * 999999)::int FROM generate_series(1, 100) g));
