-- The ceiling for a bulk claim: the same 100 ledger rows in one multi-row
-- INSERT, no check at all (the rows built the same way as bulk.sql's).
\set n :n + 1
INSERT INTO bench.ledger (pool, customer, qty)
SELECT 'ceiling', 'b' || :run || '-' || :client_id || '-' || :n || '-' || g, 1
  FROM generate_series(1, 100) g;
