# ALTER EXTENSION coupon UPDATE from 1.2, whose carts' claims carry the
# request ids "R/1", "R/2", ..., to 1.3, where they carry R and their
# number in the cart (column cart_claim) and every request id is the
# caller's.
#
# A database on 1.2, run by the library of 1.3 until the update: carts
# (one of holds, one claim of it confirmed) get the request ids of 1.2 and
# their retries answer as in 1.2; single claims with request ids of the
# form "R/n" that do not look like a cart (README, "Upgrade") stay single
# claims.  A cart in flight while the update runs (the update waits for
# it; it commits), and a cart retried while the update has not committed
# (it waits, then answers or fails with 40001 and answers when retried).
# After the update: the carts' claims carry R and cart_claim n, the
# single claims keep their request ids; every retry answers with the same
# claims as before; "R/1" is now a request of its own; the semaphores are
# exact; and the database has exactly the objects of a fresh CREATE
# EXTENSION coupon.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use CouponTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my ($current) = slurp_file("$FindBin::RealBin/../coupon.control") =~
  /^default_version = '([^']+)'/m;
my $node = coupon_node('upgrade_cart_ids', bare => 1);
my $q = sub { $node->safe_psql('postgres', $_[0]) };
$q->(q{
CREATE EXTENSION coupon VERSION '1.2';
SELECT coupon_pool_create(p, 20, 3) FROM unnest('{a,b,c}'::text[]) p;
});

# Carts, on the ledger of 1.2.
my $k1 = $q->("SELECT coupon_claim_cart('{b,a}', '{1,1}', 'u1', NULL, '0', 'K1')");
my $k2 = $q->("SELECT coupon_claim_cart('{a,b,c}', '{1,1,2}', 'u2', '1 hour', '0', 'K2')");
$q->("SELECT coupon_confirm((('$k2')::bigint[])[2], 'u2')");
is( $q->(q{SELECT string_agg(request_id || '@' || pool, ',' ORDER BY id) FROM coupon_claims}),
	'K1/1@a,K1/2@b,K2/1@a,K2/2@b,K2/3@c', 'before the update, carts are written as 1.2 did');
is($q->("SELECT coupon_claim_cart('{a,b}', '{1,1}', 'u1', NULL, '0', 'K1')"),
	'{' . join(',', reverse($k1 =~ /(\d+)/g)) . '}', 'and retried as 1.2 did');

# Single claims whose request ids cannot be a cart's: n does not start at
# 1 (T); pools out of order (U); one request id in two pools (V); "W/1"
# and "W/2" in two transactions (W/2).  And "W/1", which looks exactly
# like a cart of one claim.
$q->(q{
SELECT coupon_claim('a', 'u5', 1, '0', 'T/2');
BEGIN;
SELECT coupon_claim('b', 'u6', 1, '0', 'U/1'), coupon_claim('a', 'u6', 1, '0', 'U/2'),
       coupon_claim('a', 'u7', 1, '0', 'V/1'), coupon_claim('b', 'u7', 1, '0', 'V/1'),
       coupon_claim('a', 'u8', 1, '0', 'W/1');
COMMIT;
SELECT coupon_claim('b', 'u8', 1, '0', 'W/2');
});
my $singles_sql = q{
SELECT string_agg(id || ':' || pool || ':' || request_id, ',' ORDER BY id)
  FROM coupon_claims WHERE customer >= 'u5' AND NOT (customer = 'u8' AND pool = 'a')};
my $singles = $q->($singles_sql);

# A cart in flight; the update waits for it.
my $inflight = bg_open($node, 'postgres');
bg_run($inflight, 'BEGIN');
my $k3 = bg_run($inflight,
	"SELECT coupon_claim_cart('{c,b}', '{1,1}', 'u4', NULL, '0', 'K3')");
my $updater = bg_open($node);
my $upid = bg_pid($updater);
bg_run($updater, 'BEGIN');
bg_send($updater, 'ALTER EXTENSION coupon UPDATE');
ok(wait_until_event($node, $upid, 'Lock'), 'the update waits for the cart in flight');
bg_run($inflight, 'COMMIT');
my (undef, $state, $err) = bg_collect($updater);
is($state, '00000', 'ALTER EXTENSION coupon UPDATE') or diag($err);

# A retry of cart K1 bound to the ledger of 1.2 waits for the update.
my $k1_late = run_across_update($node, $inflight, $updater,
	"SELECT coupon_claim_cart('{a,b}', '{1,1}', 'u1', NULL, '0', 'K1')",
	'a retry of cart K1');
is($k1_late, '{' . join(',', reverse($k1 =~ /(\d+)/g)) . '}',
	'and answered with the cart\'s claims');
bg_close($_) for $inflight, $updater;

is($q->("SELECT extversion FROM pg_extension WHERE extname = 'coupon'"),
	$current, "the version is $current");
is( $q->(q{
SELECT string_agg(request_id || '#' || cart_claim || '@' || pool, ',' ORDER BY id)
  FROM coupon_claims WHERE cart_claim IS NOT NULL}),
	'K1#1@a,K1#2@b,K2#1@a,K2#2@b,K2#3@c,W#1@a,K3#1@b,K3#2@c',
	'the carts\' claims carry their request id and number, and so does W/1');
is($q->($singles_sql), $singles, 'the single claims keep their request ids');
is($q->("SELECT coupon_claim_cart('{a}', '{1}', 'u8', NULL, '0', 'W')"),
	'{' . $q->("SELECT id FROM coupon_claims WHERE customer = 'u8' AND pool = 'a'") . '}',
	'W/1 answers a retry of cart W, as it did in 1.2');

# Every retry answers as before the update.
is($q->("SELECT coupon_claim_cart('{b,a}', '{1,1}', 'u1', NULL, '0', 'K1')"),
	$k1, 'cart K1 retried: its claims');
is( $q->(q{SELECT claim_ids::text || ' ' || status
  FROM coupon_claim_cart_detailed('{c,b,a}', '{2,1,1}', 'u2', '1 hour', '0', 'K2')}),
	'{' . join(',', reverse($k2 =~ /(\d+)/g)) . '} repeat',
	'cart K2 of holds retried: its claims');
is($q->("SELECT coupon_claim_cart('{c,b}', '{1,1}', 'u4', NULL, '0', 'K3')"),
	$k3, 'cart K3, in flight during the update, retried: its claims');
for my $single ([qw(a u5 T/2)], [qw(b u6 U/1)], [qw(a u6 U/2)], [qw(a u7 V/1)],
	[qw(b u7 V/1)], [qw(b u8 W/2)])
{
	my ($pool, $customer, $request) = @$single;
	like($singles,
		qr/(?:^|,)\Q@{[$q->("SELECT coupon_claim('$pool', '$customer', 1, '0', '$request')")]}\E:$pool:\Q$request\E(?:,|$)/,
		"single claim $request of $pool retried: its claim");
}

# "K1/1" is a request of its own now, and so is cart "T".
my $own = $q->("SELECT coupon_claim('a', 'u1', 1, '0', 'K1/1')");
ok($k1 !~ /\b$own\b/, 'a claim with request id K1/1 is not cart K1\'s');
is($q->("SELECT status FROM coupon_claim_cart_detailed('{a}', '{1}', 'u5', NULL, '0', 'T')"),
	'granted', 'a cart T beside the single claim T/2');
check_pools($node, 'postgres', 'after the update');

# A fresh CREATE EXTENSION gives the same objects and ledger columns.
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION coupon');
my $objects = q{
SELECT string_agg(pg_describe_object(d.classid, d.objid, d.objsubid), E'\n' ORDER BY 1)
  FROM pg_depend d
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'coupon'
 WHERE d.deptype = 'e'};
my $indexes = q{
SELECT string_agg(indexdef, E'\n' ORDER BY indexname) FROM pg_indexes
 WHERE tablename = 'coupon_claims'};
my $columns = q{
SELECT string_agg(attname || ':' || format_type(atttypid, atttypmod), ',' ORDER BY attnum)
  FROM pg_attribute WHERE attrelid = 'coupon_claims'::regclass AND attnum > 0};
for my $sql ($objects, $indexes, $columns)
{
	is($q->($sql), $node->safe_psql('fresh', $sql),
		"the updated database is a fresh $current: " . ($sql =~ /FROM (\w+)/)[0]);
}

check_log($node, '030_upgrade_cart_ids');
$node->stop;
done_testing();
