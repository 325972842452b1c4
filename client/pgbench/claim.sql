-- coupon_claim() on one pool that does not run out, a unique customer per call.
\set n :n + 1
SELECT coupon_claim('bench', 'c' || :run || '-' || :client_id || '-' || :n);
