-- The ceiling: a bare ledger insert, no check at all (one row shaped and
-- indexed exactly like coupon_claims), a unique customer per call.
\set n :n + 1
INSERT INTO bench.ledger (pool, customer, qty) VALUES ('ceiling', 'c' || :run || '-' || :client_id || '-' || :n, 1);
