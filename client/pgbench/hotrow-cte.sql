-- The hot row at its most generous: the conditional UPDATE and the ledger
-- insert in one statement, one round trip.
\set n :n + 1
WITH d AS (UPDATE bench.counter SET remaining = remaining - 1 WHERE id = 1 AND remaining >= 1 RETURNING 1)
INSERT INTO bench.ledger (pool, customer, qty) SELECT 'hotrow', 'c' || :run || '-' || :client_id || '-' || :n, 1 FROM d;
