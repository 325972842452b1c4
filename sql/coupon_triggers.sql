--
-- What a DBA may attach to the ledger.  An AFTER trigger sees every row
-- the extension writes, runs as the caller (as it would for the caller's
-- own INSERT), and leaks nothing (no relcache warning); a BEFORE ROW
-- trigger, which could change or suppress the rows the coupons are counted
-- from, is refused with a clear error, and nothing changes.
--
SELECT coupon_pool_create('audited', 3);

CREATE TABLE ledger_audit (op text, claim_id bigint, released boolean,
                           by_role name);
CREATE FUNCTION audit_claims() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO ledger_audit
  VALUES (TG_OP, NEW.id, NEW.released_at IS NOT NULL, current_user);
  RETURN NULL;
END $$;
CREATE TRIGGER audit AFTER INSERT OR UPDATE ON coupon_claims
  FOR EACH ROW EXECUTE FUNCTION audit_claims();

CREATE ROLE regress_coupon_app;
GRANT EXECUTE ON FUNCTION coupon_claim(text, text, integer, interval, text),
                          coupon_release(bigint) TO regress_coupon_app;
GRANT INSERT ON ledger_audit TO regress_coupon_app;

SELECT coupon_claim('audited', 'a') AS a_id \gset
SET ROLE regress_coupon_app;
SELECT coupon_claim('audited', 'b') IS NOT NULL AS granted;
SELECT coupon_release(:a_id);
RESET ROLE;
SELECT op, claim_id = :a_id AS is_a, released, by_role FROM ledger_audit ORDER BY claim_id, op;
DROP TRIGGER audit ON coupon_claims;

CREATE FUNCTION veto() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RETURN NULL;
END $$;
CREATE TRIGGER veto BEFORE INSERT ON coupon_claims
  FOR EACH ROW EXECUTE FUNCTION veto();
SELECT coupon_claim('audited', 'c');
SELECT capacity, claimed, in_flight, available FROM coupon_pools WHERE pool = 'audited';
DROP TRIGGER veto ON coupon_claims;
SELECT coupon_claim('audited', 'c') IS NOT NULL AS granted;
SELECT capacity, claimed, in_flight, available FROM coupon_pools WHERE pool = 'audited';

SELECT coupon_pool_drop('audited');
DROP FUNCTION audit_claims(), veto();
DROP TABLE ledger_audit;
REVOKE ALL ON FUNCTION coupon_claim(text, text, integer, interval, text),
                       coupon_release(bigint) FROM regress_coupon_app;
DROP ROLE regress_coupon_app;
