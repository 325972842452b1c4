-- The ceiling: a bare ledger insert, no check at all (one row shaped and
-- indexed exactly like coupon_claims), a unique customer per call.  It
-- returns the new row's id, as coupon_claim() does: a shop's insert that
-- grants a coupon tells the customer which, and pgbench, on the same
-- machine, pays for reading the row in both.
\set n :n + 1
INSERT INTO bench.ledger (pool, customer, qty) VALUES ('ceiling', 'c' || :run || '-' || :client_id || '-' || :n, 1)
RETURNING id;
