-- The textbook fix as an application writes it: in one transaction, the
-- conditional UPDATE of the counter row, then the ledger insert.  (The
-- stock never runs out here, so the UPDATE always finds its row.)
\set n :n + 1
BEGIN;
UPDATE bench.counter SET remaining = remaining - 1 WHERE id = 1 AND remaining >= 1;
INSERT INTO bench.ledger (pool, customer, qty) VALUES ('hotrow', 'c' || :run || '-' || :client_id || '-' || :n, 1);
END;
