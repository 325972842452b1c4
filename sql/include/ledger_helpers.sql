-- Included with \i: a fingerprint of everything the ledger holds of some
-- pools, and the claim id sequence, to prove that a call changed nothing.
CREATE FUNCTION pg_temp.ledger(pools text[]) RETURNS text LANGUAGE sql AS $$
  SELECT md5(concat_ws('|',
    (SELECT string_agg(c::text, ',' ORDER BY c.id) FROM coupon_claims c
      WHERE pool = ANY (pools)),
    (SELECT last_value::text || is_called::text FROM coupon_claims_id_seq)))
$$;
