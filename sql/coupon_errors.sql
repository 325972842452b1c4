--
-- Every bad input gets a clear error with a fitting SQLSTATE and changes
-- nothing: each case runs against the same state, and the state (pools,
-- counters, ledger, claim id sequence) is compared before and after.
--
SELECT coupon_pool_create('p', 2);
SELECT coupon_claim('p', 'holder') IS NOT NULL AS granted;

CREATE FUNCTION pg_temp.coupon_state() RETURNS text LANGUAGE sql AS $$
  SELECT md5(concat_ws('|',
    (SELECT string_agg(v::text, ',' ORDER BY v.pool) FROM coupon_pools v),
    (SELECT string_agg(c::text, ',' ORDER BY c.id) FROM coupon_claims c),
    (SELECT last_value::text || is_called::text FROM coupon_claims_id_seq)))
$$;

CREATE FUNCTION pg_temp.attempt(sql text, OUT code text, OUT message text,
                                OUT unchanged boolean)
LANGUAGE plpgsql AS $$
DECLARE
  before text := pg_temp.coupon_state();
BEGIN
  BEGIN
    EXECUTE sql;
    code := '00000';
    message := 'no error';
  EXCEPTION WHEN OTHERS THEN
    code := SQLSTATE;
    message := SQLERRM;
  END;
  unchanged := pg_temp.coupon_state() = before;
END $$;

CREATE TEMP TABLE cases (n serial, sql text, expect text);
INSERT INTO cases (sql, expect) VALUES
  -- coupon_pool_create
  ($$SELECT coupon_pool_create(NULL, 1)$$,                    '22004'),
  ($$SELECT coupon_pool_create('', 1)$$,                      '22023'),
  ($$SELECT coupon_pool_create(repeat('x', 128), 1)$$,        '22023'),
  ($$SELECT coupon_pool_create(repeat('x', 10240), 1)$$,      '22023'),
  ($$SELECT coupon_pool_create(repeat('é', 64), 1)$$,         '22023'),
  ($$SELECT coupon_pool_create('q', NULL)$$,                  '22004'),
  ($$SELECT coupon_pool_create('q', -1)$$,                    '22023'),
  ($$SELECT coupon_pool_create('q', 1, NULL)$$,               '22004'),
  ($$SELECT coupon_pool_create('q', 1, 0)$$,                  '22023'),
  ($$SELECT coupon_pool_create('q', 1, -2147483648)$$,        '22023'),
  ($$SELECT coupon_pool_create('q', '9223372036854775808')$$, '22003'),
  ($$SELECT coupon_pool_create('p', 3)$$,                     '42710'),
  ($$SELECT coupon_pool_create('p', 2, 2)$$,                  '42710'),
  -- coupon_pool_resize
  ($$SELECT coupon_pool_resize(NULL, 1)$$,                    '22004'),
  ($$SELECT coupon_pool_resize('', 1)$$,                      '22023'),
  ($$SELECT coupon_pool_resize('nope', 1)$$,                  '42704'),
  ($$SELECT coupon_pool_resize('p', NULL)$$,                  '22004'),
  ($$SELECT coupon_pool_resize('p', -1)$$,                    '22023'),
  ($$SELECT coupon_pool_resize('p', -9223372036854775808)$$,  '22023'),
  ($$SELECT coupon_pool_resize('p', 0)$$,                     '55000'),
  -- coupon_pool_drop
  ($$SELECT coupon_pool_drop(NULL)$$,                         '22004'),
  ($$SELECT coupon_pool_drop('')$$,                           '22023'),
  ($$SELECT coupon_pool_drop('nope')$$,                       '42704'),
  ($$SELECT coupon_pool_drop(repeat('x', 10240))$$,           '22023'),
  -- coupon_claim
  ($$SELECT coupon_claim(NULL, 'c')$$,                        '22004'),
  ($$SELECT coupon_claim('', 'c')$$,                          '22023'),
  ($$SELECT coupon_claim(repeat('x', 10240), 'c')$$,          '22023'),
  ($$SELECT coupon_claim('nope', 'c')$$,                      '42704'),
  ($$SELECT coupon_claim('P', 'c')$$,                         '42704'),
  ($$SELECT coupon_claim('p', NULL)$$,                        '22004'),
  ($$SELECT coupon_claim('p', '')$$,                          '22023'),
  ($$SELECT coupon_claim('p', repeat('c', 1025))$$,           '22023'),
  ($$SELECT coupon_claim('p', repeat('c', 10240))$$,          '22023'),
  ($$SELECT coupon_claim('p', 'c', NULL)$$,                   '22004'),
  ($$SELECT coupon_claim('p', 'c', 0)$$,                      '22023'),
  ($$SELECT coupon_claim('p', 'c', -1)$$,                     '22023'),
  ($$SELECT coupon_claim('p', 'c', -2147483648)$$,            '22023'),
  ($$SELECT coupon_claim('p', 'c', 3)$$,                      '22023'),
  ($$SELECT coupon_claim('p', 'c', 2)$$,                      '22023'),
  ($$SELECT coupon_claim('p', 'c', 2147483647)$$,             '22023'),
  ($$SELECT coupon_claim('p', 'c', 2147483648)$$,             '42883'),
  ($$SELECT coupon_claim('p', 'c', 1, NULL)$$,                '22004'),
  ($$SELECT coupon_claim('p', 'c', 1, '-1 second')$$,         '22023'),
  ($$SELECT coupon_claim('p', 'c', 1, '-1 month 1 day')$$,    '22023'),
  ($$SELECT coupon_claim('p', 'c', 1, '178000000 years')$$,   '22008'),
  ($$SELECT coupon_claim_detailed(NULL, 'c')$$,               '22004'),
  ($$SELECT coupon_claim_detailed('nope', 'c')$$,             '42704'),
  ($$SELECT coupon_claim_detailed('p', 'c', 0)$$,             '22023'),
  -- coupon_release
  ($$SELECT coupon_release(NULL)$$,                           '22004'),
  ($$SELECT coupon_release(0)$$,                              '42704'),
  ($$SELECT coupon_release(-1)$$,                             '42704'),
  ($$SELECT coupon_release(9223372036854775807)$$,            '42704'),
  -- request ids
  ($$SELECT coupon_claim('p', 'c', 1, '0', '')$$,             '22023'),
  ($$SELECT coupon_claim('p', 'c', 1, '0', repeat('r', 256))$$, '22023'),
  -- coupon_hold
  ($$SELECT coupon_hold(NULL, 'c', '1 hour')$$,               '22004'),
  ($$SELECT coupon_hold('p', NULL, '1 hour')$$,               '22004'),
  ($$SELECT coupon_hold('p', 'c', NULL)$$,                    '22004'),
  ($$SELECT coupon_hold('p', 'c', '1 hour', NULL)$$,          '22004'),
  ($$SELECT coupon_hold('p', 'c', '1 hour', 1, NULL)$$,       '22004'),
  ($$SELECT coupon_hold('p', 'c', '0')$$,                     '22023'),
  ($$SELECT coupon_hold('p', 'c', '-1 second')$$,             '22023'),
  ($$SELECT coupon_hold('p', 'c', '178000000 years')$$,       '22008'),
  ($$SELECT coupon_hold('p', 'c', '300000 years')$$,          '22008'),
  ($$SELECT coupon_hold('p', 'c', '1 hour', 0)$$,             '22023'),
  ($$SELECT coupon_hold('p', 'c', '1 hour', 2)$$,             '22023'),
  ($$SELECT coupon_hold('p', 'c', '1 hour', 1, '-1 s')$$,     '22023'),
  ($$SELECT coupon_hold('p', 'c', '1 hour', 1, '0', '')$$,    '22023'),
  ($$SELECT coupon_hold('nope', 'c', '1 hour')$$,             '42704'),
  ($$SELECT coupon_hold('', 'c', '1 hour')$$,                 '22023'),
  -- coupon_confirm and coupon_hold_extend
  ($$SELECT coupon_confirm(NULL)$$,                           '22004'),
  ($$SELECT coupon_confirm(0)$$,                              '42704'),
  ($$SELECT coupon_confirm((SELECT id FROM coupon_claims WHERE customer = 'holder'))$$, '00000'),
  ($$SELECT coupon_hold_extend(NULL, '1 hour')$$,             '22004'),
  ($$SELECT coupon_hold_extend((SELECT id FROM coupon_claims WHERE customer = 'holder'), NULL)$$, '22004'),
  ($$SELECT coupon_hold_extend((SELECT id FROM coupon_claims WHERE customer = 'holder'), '0')$$, '22023'),
  ($$SELECT coupon_hold_extend(0, '1 hour')$$,                '42704'),
  ($$SELECT coupon_hold_extend((SELECT id FROM coupon_claims WHERE customer = 'holder'), '1 hour')$$, 'UC003'),
  -- coupon_claim_cart
  ($$SELECT coupon_claim_cart(NULL, '{1}', 'c')$$,            '22004'),
  ($$SELECT coupon_claim_cart('{p}', NULL, 'c')$$,            '22004'),
  ($$SELECT coupon_claim_cart('{p}', '{1}', NULL)$$,          '22004'),
  ($$SELECT coupon_claim_cart('{p}', '{1}', 'c', NULL, NULL)$$, '22004'),
  ($$SELECT coupon_claim_cart('{}', '{}', 'c')$$,             '22023'),
  ($$SELECT coupon_claim_cart('{p}', '{1,1}', 'c')$$,         '22023'),
  ($$SELECT coupon_claim_cart('{p,NULL}', '{1,1}', 'c')$$,    '22004'),
  ($$SELECT coupon_claim_cart('{p}', '{NULL}', 'c')$$,        '22004'),
  ($$SELECT coupon_claim_cart('{""}', '{1}', 'c')$$,          '22023'),
  ($$SELECT coupon_claim_cart(ARRAY[repeat('x', 128)], '{1}', 'c')$$, '22023'),
  ($$SELECT coupon_claim_cart('{p}', '{0}', 'c')$$,           '22023'),
  ($$SELECT coupon_claim_cart('{p}', '{2}', 'c')$$,           '22023'),
  ($$SELECT coupon_claim_cart('{p,p}', '{1,1}', 'c')$$,       '22023'),
  ($$SELECT coupon_claim_cart('{{p}}', '{{1}}', 'c')$$,       '2202E'),
  ($$SELECT coupon_claim_cart('{nope}', '{1}', 'c')$$,        '42704'),
  ($$SELECT coupon_claim_cart('{p}', '{1}', 'c', '0')$$,      '22023'),
  ($$SELECT coupon_claim_cart('{p}', '{1}', '')$$,            '22023'),
  ($$SELECT coupon_claim_cart(array_fill('p'::text, ARRAY[1001]), array_fill(1, ARRAY[1001]), 'c')$$, '22023'),
  ($$SELECT * FROM coupon_claim_cart_detailed('{p}', '{1,1}', 'c')$$, '22023'),
  -- coupon_claim_many
  ($$SELECT * FROM coupon_claim_many(NULL, '{c}')$$,          '22004'),
  ($$SELECT * FROM coupon_claim_many('p', NULL)$$,            '22004'),
  ($$SELECT * FROM coupon_claim_many('p', '{c,NULL}')$$,      '22004'),
  ($$SELECT * FROM coupon_claim_many('p', '{""}')$$,          '22023'),
  ($$SELECT * FROM coupon_claim_many('p', ARRAY[repeat('c', 1025)])$$, '22023'),
  ($$SELECT * FROM coupon_claim_many('p', '{c}', NULL)$$,     '22004'),
  ($$SELECT * FROM coupon_claim_many('p', '{c}', 0)$$,        '22023'),
  ($$SELECT * FROM coupon_claim_many('p', '{c}', 2)$$,        '22023'),
  ($$SELECT * FROM coupon_claim_many('p', '{{c}}')$$,         '2202E'),
  ($$SELECT * FROM coupon_claim_many('nope', '{c}')$$,        '42704'),
  -- the trigger function is not for calling
  ($$SELECT coupon_occ_version()$$,                           '39P01'),
  -- a cart's request id is checked as any request id; the lines of one
  -- pool are added up
  ($$SELECT coupon_claim_cart('{p}', '{1}', 'c', NULL, '0', '')$$, '22023'),
  ($$SELECT coupon_claim_cart('{p}', '{1}', 'c', NULL, '0', repeat('r', 256))$$, '22023'),
  ($$SELECT coupon_claim_cart('{p,p}', '{2147483647,2}', 'c')$$, '22023');

-- (The ids of claims found by a subquery depend on the tests before.)
SELECT n, sql, code, code = expect AS expected, unchanged,
       regexp_replace(message, '^(claim|hold) \d+ (is not a hold|has expired|was released)$',
                      '\1 N \2') AS message
  FROM cases, pg_temp.attempt(sql)
 ORDER BY n;

-- Nothing above changed anything: still one claim and balanced.
SELECT pool, capacity, claimed, in_flight, available, grants, sold_out, waits
  FROM coupon_pools;
SELECT count(*) FROM coupon_claims;

SELECT coupon_pool_drop('p');
