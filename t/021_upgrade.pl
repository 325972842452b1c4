# ALTER EXTENSION coupon UPDATE from 1.0 to the current version (coupon.control);
# and from 1.4 on a node of a cluster, which gets the limit of its ids and
# a schema that cannot be renamed; and from 1.4 after a rename of the
# schema, refused until the schema has its name back.
#
# A database on 1.0 with pools (one resized, one sold out), claims (some
# released), an application role with the documented grants of 1.0, a
# claim in flight while the update runs (the update waits for it; it
# commits), and a claim started while the update has not committed (it
# waits for the update, then goes through or fails with 40001 and goes
# through when retried).  After the update: the version is current; pools,
# ledger and sequence are what they were plus those claims; the
# semaphores are exact (available = capacity - claimed) and every pool
# fills to exactly its capacity; the application role keeps its grants on
# the new signatures of the claim functions and the view, and PUBLIC gets
# none (a role without grants can execute no function but the trigger
# function); holds, carts and bulk claims work on the old pools; and the
# database has exactly the objects a fresh CREATE EXTENSION coupon (which
# installs the current version) makes.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use CouponTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# The version CREATE EXTENSION installs, from the control file.
my ($current) = slurp_file("$FindBin::RealBin/../coupon.control") =~
  /^default_version = '([^']+)'/m;
my $node = coupon_node('upgrade', bare => 1);
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION coupon VERSION '1.0';
CREATE ROLE app LOGIN;
GRANT EXECUTE ON FUNCTION coupon_claim(text, text, integer, interval),
      coupon_claim_detailed(text, text, integer, interval),
      coupon_release(bigint), coupon_pool_memory() TO app;
GRANT SELECT ON coupon_pools TO app;
SELECT coupon_pool_create('a', 10);
SELECT coupon_pool_create('b', 5, 2);
SELECT coupon_pool_create('sold', 2);
SELECT coupon_claim('a', 'c' || g) FROM generate_series(1, 6) g;
SELECT coupon_claim('b', 'x', 2);
SELECT coupon_claim('sold', 's' || g) FROM generate_series(1, 2) g;
SELECT coupon_release(id) FROM coupon_claims WHERE customer IN ('c2', 'c5');
SELECT coupon_pool_resize('a', 12);
});
is($node->safe_psql('postgres',
		"SELECT extversion FROM pg_extension WHERE extname = 'coupon'"),
	'1.0', 'installed 1.0');
my $ledger_sql = q{
SELECT string_agg(format('%s|%s|%s|%s|%s|%s', id, pool, customer, qty,
                         claimed_at, released_at IS NOT NULL), ',' ORDER BY id)
  FROM coupon_claims};
my $ledger_before = $node->safe_psql('postgres', $ledger_sql);

# A claim in flight, by the application role; the update waits for it.
my $inflight = bg_open($node, 'postgres', extra_params => [ '-U', 'app' ]);
bg_run($inflight, 'BEGIN');
my $inflight_id = bg_run($inflight, "SELECT coupon_claim('a', 'in_flight')");
my $updater = bg_open($node);
my $upid = bg_pid($updater);
bg_run($updater, 'BEGIN');
bg_send($updater, 'ALTER EXTENSION coupon UPDATE');
ok(wait_until_event($node, $upid, 'Lock'),
	'the update waits for the claim in flight');
bg_run($inflight, 'COMMIT');
my (undef, $state, $err) = bg_collect($updater);
is($state, '00000', 'ALTER EXTENSION coupon UPDATE') or diag($err);

# A claim that starts while the update has not committed (in the same
# session, bound to the ledger of 1.0) waits for the ledger's lock.  Once
# the update commits, it either goes through or fails with 40001 and
# succeeds when retried: never the error that asks to drop the extension.
my $late_id = run_across_update($node, $inflight, $updater,
	"SELECT coupon_claim('a', 'late')", 'a claim');
like($late_id, qr/^\d+$/, 'the claim during the update, or its retry, has an id');
is( $node->safe_psql('postgres',
		"SELECT string_agg(id || '', ',') FROM coupon_claims WHERE released_at IS NULL AND customer = 'late'"),
	$late_id, 'exactly that claim is in the ledger');
bg_close($_) for $inflight, $updater;

is($node->safe_psql('postgres',
		"SELECT extversion FROM pg_extension WHERE extname = 'coupon'"),
	$current, "the version is $current");
is( $node->safe_psql('postgres',
		"SELECT string_agg(id || '', ',') FROM coupon_claims WHERE released_at IS NULL AND customer = 'in_flight'"),
	$inflight_id, 'the claim that was in flight committed, with its id');
like($node->safe_psql('postgres', $ledger_sql),
	qr/^\Q$ledger_before\E,\Q$inflight_id\E\|a\|in_flight\|1\|/,
	'the ledger is what it was, plus that claim');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM coupon_claims WHERE expires_at IS NOT NULL OR request_id IS NOT NULL"),
	'0', 'the old claims are permanent and have no request id');
check_pools($node, 'postgres', 'after the update');
is( $node->safe_psql('postgres',
		"SELECT string_agg(pool || '=' || available, ',' ORDER BY pool) FROM coupon_pool_memory()"),
	'a=6,b=3,sold=0', 'the semaphores loaded before the update go on, exact');

# The application role keeps its grants, on the new signatures.
is( $node->safe_psql(
		'postgres', q{
SELECT has_function_privilege('app', 'coupon_claim(text,text,integer,interval,text)', 'EXECUTE')
   AND has_function_privilege('app', 'coupon_claim_detailed(text,text,integer,interval,text)', 'EXECUTE')
   AND has_function_privilege('app', 'coupon_release(bigint)', 'EXECUTE')
   AND has_table_privilege('app', 'coupon_pools', 'SELECT')
   AND NOT has_function_privilege('app', 'coupon_hold(text,text,interval,integer,interval,text)', 'EXECUTE')}),
	't', 'app keeps exactly its grants, on the new signatures');
$node->safe_psql('postgres', 'CREATE ROLE nobody LOGIN');
cmp_ok(
	check_no_public_execute(
		$node, 'postgres', $node->connstr('postgres') . ' user=nobody',
		'after the update'),
	'>=', 13,
	'every function of the extension but the trigger function was called');
expect_state($node, 'postgres',
	"SELECT coupon_claim('b', 'app_customer', 1, '0', 'req-1')", '00000',
	'app claims with a request id', connstr => $node->connstr('postgres') . ' user=app');

# The lifecycle works on the old pools.
like($node->safe_psql('postgres', "SELECT coupon_hold('a', 'holder', '1 hour')"),
	qr/^\d+$/, 'a hold on an old pool');
like( $node->safe_psql('postgres',
		"SELECT coupon_claim_cart('{a,b}', '{1,1}', 'carter')"),
	qr/^\{\d+,\d+\}$/, 'a cart over old pools');
is( $node->safe_psql('postgres',
		"SELECT count(claim_id) FROM coupon_claim_many('a', '{m1,m2}')"),
	'2', 'a bulk claim on an old pool');
for my $pool (qw(a b sold))
{
	my $left = $node->safe_psql('postgres',
		"SELECT capacity - claimed FROM coupon_pools WHERE pool = '$pool'");
	is( $node->safe_psql('postgres',
			"SELECT count(coupon_claim('$pool', 'fill' || g)) FROM generate_series(1, 20) g"),
		$left, "pool $pool fills to exactly its capacity ($left left)");
}
check_pools($node, 'postgres', 'filled', loaded => 1);

# A fresh CREATE EXTENSION gives the current version, with the same objects.
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION coupon');
my $objects = q{
SELECT string_agg(pg_describe_object(d.classid, d.objid, d.objsubid)
                  || coalesce(' ' || p.proconfig::text, ''), E'\n' ORDER BY 1)
  FROM pg_depend d
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'coupon'
  LEFT JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
 WHERE d.deptype = 'e'};
is($node->safe_psql('fresh',
		"SELECT extversion FROM pg_extension WHERE extname = 'coupon'"),
	$current, "CREATE EXTENSION coupon installs $current");
is($node->safe_psql('postgres', $objects), $node->safe_psql('fresh', $objects),
	"the updated database has exactly the objects of a fresh $current");
my $columns = q{
SELECT string_agg(attname || ':' || format_type(atttypid, atttypmod), ',' ORDER BY attnum)
  FROM pg_attribute WHERE attrelid = 'coupon_claims'::regclass AND attnum > 0};
is($node->safe_psql('postgres', $columns), $node->safe_psql('fresh', $columns),
	'and the same ledger columns, in the same order');

# A node that joined a cluster under 1.4 gets the limit of its claim ids
# from the update (partition 2: up to (3 << 48) - 1); a membership removed
# by hand lifts it (also after a rename of the extension's schema: the
# trigger finds the sequence by the table's schema of the moment), and a
# new one sets it again.
my $seqmax = q{SELECT seqmax FROM pg_sequence WHERE seqrelid = 'coupon_claims_id_seq'::regclass};
$node->safe_psql('postgres', 'CREATE DATABASE joined');
$node->safe_psql('joined', q{
CREATE SCHEMA shop;
CREATE EXTENSION coupon VERSION '1.4' SCHEMA shop;
SELECT shop.coupon_cluster_join('c', 2, 4);
ALTER EXTENSION coupon UPDATE;
});
my $limit_of = sub {
	return $node->safe_psql('joined', qq{SET search_path = $_[0]; $seqmax});
};
is($limit_of->('shop'), (3 << 48) - 1,
	'a node joined under 1.4: its ids end where partition 3\'s begin');
expect_state($node, 'joined', 'ALTER SCHEMA shop RENAME TO shop2', '55000',
	"the extension's schema cannot be renamed");
$node->safe_psql('joined', 'DELETE FROM shop.coupon_cluster_member');
is($limit_of->('shop'), '9223372036854775807', 'its membership deleted, they do not');
# Renamed by a superuser who disabled the event trigger: a join is refused
# (its text names the old name), and a membership row written then (as a
# restore writes it) limits the sequence of the schema's name now.
$node->safe_psql('joined', q{
ALTER EVENT TRIGGER coupon_schema_rename DISABLE;
ALTER SCHEMA shop RENAME TO shop2;
});
expect_state($node, 'joined', q{SELECT shop2.coupon_cluster_join('c', 3, 4)}, '55000',
	'a renamed schema cannot join (its functions name the old name)');
$node->safe_psql('joined',
	q{INSERT INTO shop2.coupon_cluster_member (cluster, partition, partitions) VALUES ('c', 3, 4)});
is($limit_of->('shop2'), (4 << 48) - 1, 'a membership row written under the new name sets the limit');
$node->safe_psql('joined', q{
ALTER SCHEMA shop2 RENAME TO shop;
ALTER EVENT TRIGGER coupon_schema_rename ENABLE;
});
is($limit_of->('shop'), (4 << 48) - 1, 'and the schema gets its name back');

# Renamed under 1.4, whose functions name the old name: the update is
# refused until the schema has it back.
check_update_after_rename($node, 'renamed14', 'coupon', '1.4', '1.5');
# A name of then that holds the name of now and the table's name.
check_update_after_rename($node, 'oddly14', 'coupon', '1.4', '1.5',
	'"z shop.coupon_cluster_member q"', 'shop');
$node->safe_psql('joined', 'TRUNCATE shop.coupon_cluster_member');
is($limit_of->('shop'), '9223372036854775807', 'its membership truncated, no limit');

check_log($node, '021_upgrade');
$node->stop;
done_testing();
