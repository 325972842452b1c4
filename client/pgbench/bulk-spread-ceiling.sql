-- The ceiling for bulk-spread.sql: 100 ledger rows for customers drawn the
-- same way, in one multi-row INSERT into a ledger holding the same earlier
-- claims, no check at all.
INSERT INTO bench.ledger (pool, customer, qty)
SELECT 'spread', 's' || (random() * 999999)::int, 1
  FROM generate_series(1, 100) g;
