--
-- Without shared_preload_libraries = 'coupon': CREATE EXTENSION, pool
-- creation and the OCC trigger work; everything that needs the semaphore
-- fails with a clear error and a hint.
--
SHOW shared_preload_libraries;
SELECT coupon_pool_create('p', 10);
SELECT coupon_claim('p', 'c');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM coupon_claim_detailed('p', 'c');
SELECT coupon_pool_resize('p', 5);
SELECT coupon_pool_drop('p');
SELECT * FROM coupon_pools;
SELECT coupon_release(1);
SELECT count(*) AS ledger_rows FROM coupon_claims;
SELECT name, capacity FROM coupon_pool;

CREATE TABLE stock (id int PRIMARY KEY, remaining int, version int NOT NULL);
INSERT INTO stock VALUES (1, 5, 1);
CREATE TRIGGER stock_version BEFORE UPDATE ON stock
  FOR EACH ROW EXECUTE FUNCTION coupon_occ_version();
UPDATE stock SET remaining = 4, version = 1 WHERE id = 1;
UPDATE stock SET remaining = 3, version = 1 WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM stock;
DROP TABLE stock;
