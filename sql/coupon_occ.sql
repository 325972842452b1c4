--
-- coupon_occ_version(): the database keeps the version column; a stale
-- write fails with SQLSTATE 40001 instead of silently changing nothing.
--
CREATE TABLE stock (id int PRIMARY KEY, remaining int, version bigint NOT NULL DEFAULT 1);
INSERT INTO stock VALUES (1, 50, 1);

-- Without the trigger: the seed's pattern; a stale write matches no row,
-- and only the row count tells.
UPDATE stock SET remaining = remaining - 1, version = version + 1 WHERE id = 1 AND version = 1;
UPDATE stock SET remaining = remaining - 1, version = version + 1 WHERE id = 1 AND version = 1;
SELECT remaining, version FROM stock;

CREATE TRIGGER stock_version BEFORE UPDATE ON stock
  FOR EACH ROW EXECUTE FUNCTION coupon_occ_version();

-- With it: carry the version read; it is checked and bumped.
UPDATE stock SET remaining = remaining - 1, version = 2 WHERE id = 1;
SELECT remaining, version FROM stock;
-- The same write again carries a stale version now: 40001.
UPDATE stock SET remaining = remaining - 1, version = 2 WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
SELECT remaining, version FROM stock;
-- An update that does not mention the version still bumps it.
UPDATE stock SET remaining = 40 WHERE id = 1;
SELECT remaining, version FROM stock;
-- The seed's own pattern keeps working under the trigger (no double bump).
UPDATE stock SET remaining = remaining - 1, version = version + 1 WHERE id = 1 AND version = 4;
SELECT remaining, version FROM stock;
-- Any other version is stale, older or from nowhere.
UPDATE stock SET version = 1 WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
UPDATE stock SET version = 99 WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
UPDATE stock SET version = NULL WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
SELECT remaining, version FROM stock;

-- The error is a serialization failure a retry loop can catch.
DO $$
BEGIN
  UPDATE stock SET remaining = 0, version = 1 WHERE id = 1;
EXCEPTION WHEN serialization_failure THEN
  RAISE NOTICE 'caught %: %', SQLSTATE, SQLERRM;
END $$;

-- Another column name, smaller integer types, and their overflow.
CREATE TABLE doc (id int PRIMARY KEY, body text, rev smallint NOT NULL);
INSERT INTO doc VALUES (1, 'a', 32766);
CREATE TRIGGER doc_rev BEFORE UPDATE ON doc
  FOR EACH ROW EXECUTE FUNCTION coupon_occ_version('rev');
UPDATE doc SET body = 'b' WHERE id = 1;
SELECT body, rev FROM doc;
UPDATE doc SET body = 'c' WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
SELECT body, rev FROM doc;

-- Misuse is reported when the trigger fires.
CREATE TABLE wrong (id int PRIMARY KEY, version text, n int);
INSERT INTO wrong VALUES (1, 'v1', 0);
CREATE TRIGGER wrong_type BEFORE UPDATE ON wrong
  FOR EACH ROW EXECUTE FUNCTION coupon_occ_version();
UPDATE wrong SET n = 1;
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER wrong_type ON wrong;
CREATE TRIGGER wrong_column BEFORE UPDATE ON wrong
  FOR EACH ROW EXECUTE FUNCTION coupon_occ_version('no_such_column');
UPDATE wrong SET n = 1;
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER wrong_column ON wrong;
CREATE TRIGGER wrong_args BEFORE UPDATE ON wrong
  FOR EACH ROW EXECUTE FUNCTION coupon_occ_version('version', 'n');
UPDATE wrong SET n = 1;
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER wrong_args ON wrong;
CREATE TRIGGER wrong_time AFTER UPDATE ON wrong
  FOR EACH ROW EXECUTE FUNCTION coupon_occ_version('n');
UPDATE wrong SET n = 1;
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER wrong_time ON wrong;
CREATE TRIGGER wrong_event BEFORE INSERT ON wrong
  FOR EACH ROW EXECUTE FUNCTION coupon_occ_version('n');
INSERT INTO wrong VALUES (2, 'v', 0);
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER wrong_event ON wrong;
CREATE TRIGGER wrong_level BEFORE UPDATE ON wrong
  FOR EACH STATEMENT EXECUTE FUNCTION coupon_occ_version('n');
UPDATE wrong SET n = 1;
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM wrong;

-- A role that may update the table but not read the version column is not
-- told the row's version in the error, as core shows values only to those
-- who may select them; once it may read the column, it is.
CREATE TABLE secret_stock (id int PRIMARY KEY, remaining int,
                           version bigint NOT NULL DEFAULT 0);
INSERT INTO secret_stock VALUES (1, 10, 7);
CREATE TRIGGER secret_version BEFORE UPDATE ON secret_stock
  FOR EACH ROW EXECUTE FUNCTION coupon_occ_version();
CREATE ROLE regress_coupon_blind;
GRANT UPDATE ON secret_stock TO regress_coupon_blind;
SET ROLE regress_coupon_blind;
UPDATE secret_stock SET remaining = 9, version = 3;
RESET ROLE;
GRANT SELECT (version) ON secret_stock TO regress_coupon_blind;
SET ROLE regress_coupon_blind;
UPDATE secret_stock SET remaining = 9, version = 3;
RESET ROLE;
DROP TABLE secret_stock;
DROP ROLE regress_coupon_blind;

DROP TABLE stock, doc, wrong;
