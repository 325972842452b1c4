# A rename of the extension's schema committed while claims run (the
# event trigger that refuses renames disabled, as a superuser may).
#
# The statements the extension runs name its schema in their text, and a
# plan is analyzed again from its text after any change of a schema.  A
# claim that took in the rename only once its statement locked the ledger
# analyzed the old name and failed with 42P01.  A call must either work
# or fail with 40001 (retry it), and change nothing when it fails.
#
# 1. In the window.  A claim starts while the rename's transaction is
#    open, then waits for the pool row, which another session holds FOR
#    UPDATE, inside its load of the pool; the rename commits, the pool row
#    is let go, and the claim goes on to read the ledger.  It works.
#
# 2. A loop.  pgbench claimers (claims, and claims released in the same
#    statement) on pools that keep being evicted and loaded again
#    (coupon.max_pools below the number of pools), while another session
#    renames the schema back and forth.  No call fails other than with
#    40001, and every pool is exact at the end.
#
# The sessions find the functions whatever the schema is called:
# search_path = shop, shop2.  The claimers of the loop call them through
# functions with SQL-standard bodies, bound to them when created: looking a
# name up while it changes thousands of times a second can find neither
# name, in any statement.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use CouponTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $clients = 3;
my $pools = 8;
my $node = coupon_node('rename_claims', bare => 1,
	conf => [ 'coupon.max_pools = ' . ($clients + 1) ]);
$node->safe_psql(
	'postgres', qq{
CREATE SCHEMA shop;
CREATE EXTENSION coupon SCHEMA shop;
-- renames are refused; a superuser may disable that, as here
ALTER EVENT TRIGGER coupon_schema_rename DISABLE;
ALTER DATABASE postgres SET search_path = shop, shop2;
ALTER DATABASE postgres SET statement_timeout = '${PostgreSQL::Test::Utils::timeout_default}s';
SELECT shop.coupon_pool_create('w', 10);
SELECT shop.coupon_pool_create('p', 10);
SELECT shop.coupon_pool_create('q' || i, 1000000) FROM generate_series(1, $pools) i;
CREATE SCHEMA app;
CREATE FUNCTION app.claim(pool text, customer text) RETURNS bigint
BEGIN ATOMIC SELECT shop.coupon_claim(pool, customer); END;
CREATE FUNCTION app.claim_release(pool text, customer text) RETURNS boolean
BEGIN ATOMIC
  SELECT shop.coupon_release(shop.coupon_claim(pool, customer), customer);
END;
});

# The schema's name now.
sub schema_name
{
	return $node->safe_psql('postgres',
		"SELECT nspname FROM pg_namespace n JOIN pg_extension e ON e.extnamespace = n.oid WHERE extname = 'coupon'"
	);
}

############################################################################
# 1. In the window.
############################################################################
my $claimer = bg_open($node);
my $holder = bg_open($node);
my $renamer = bg_open($node);
my $pid = bg_pid($claimer);
# Every wait of the claimer has a deadline.
bg_run($claimer,
	"SET lock_timeout = '${PostgreSQL::Test::Utils::timeout_default}s'");
like(bg_run($claimer, "SELECT coupon_claim('w', 'c0')"),
	qr/^\d+$/, 'a claim before the rename prepares the statements');

bg_run($holder, 'BEGIN');
bg_run($holder, "SELECT 1 FROM shop.coupon_pool WHERE name = 'p' FOR UPDATE");
bg_run($renamer, 'BEGIN');
bg_run($renamer, 'ALTER SCHEMA shop RENAME TO shop2');
bg_send($claimer, "SELECT coupon_claim('p', 'c1')");
ok(wait_until_event($node, $pid, 'Lock'),
	'the claim, started while the rename is open, waits for the pool row');
bg_run($renamer, 'COMMIT');
bg_run($holder, 'COMMIT');
my ($out, $state, $err) = bg_collect($claimer);
is($state, '00000', 'the claim in the window works') or diag($err);
like($out, qr/^\d+$/, 'and answers with its claim id');
is(schema_name(), 'shop2', 'the schema is renamed');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(format('%s:%s', pool, customer), ',' ORDER BY id) FROM coupon_claims WHERE released_at IS NULL"
	),
	'w:c0,p:c1',
	'the ledger holds the claims made');
check_pools($node, 'postgres', 'after the window', loaded => 1,
	pools => [ 'p', 'w' ]);
bg_run($renamer, 'ALTER SCHEMA shop2 RENAME TO shop');
bg_close($_) for $claimer, $holder, $renamer;

############################################################################
# 2. A loop.
############################################################################
my $dir = PostgreSQL::Test::Utils::tempdir;
append_to_file("$dir/claim.sql", qq{\\set n random(1, $pools)
\\set c random(1, 1000000000)
SELECT app.claim('q' || :n, 'k' || :client_id || '-' || :c);
});
append_to_file("$dir/release.sql", qq{\\set n random(1, $pools)
\\set c random(1, 1000000000)
SELECT app.claim_release('q' || :n, 'r' || :client_id || '-' || :c);
});
append_to_file("$dir/rename.sql", q{ALTER SCHEMA shop RENAME TO shop2;
ALTER SCHEMA shop2 RENAME TO shop;
});
my @pgbench = ('-T', 3, '--failures-detailed', '--verbose-errors');
my $bench = pgbench_start($node, 'postgres', $dir, 'bench',
	'-c', $clients, '-j', $clients, @pgbench,
	'-f', "$dir/claim.sql", '-f', "$dir/release.sql");
my $renamer_bench = pgbench_start($node, 'postgres', $dir, 'rename',
	'-c', 1, @pgbench, '-f', "$dir/rename.sql");

# Both end after 3 s; the deadline is a guard against a hang.
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while (grep { running($_) } $bench, $renamer_bench)
{
	last if time > $deadline;
	usleep(50_000);
}
if (grep { $_->pumpable } $bench, $renamer_bench)
{
	$_->kill_kill for $bench, $renamer_bench;
	fail('pgbench ended within ' . $PostgreSQL::Test::Utils::timeout_default . ' s (hang guard)');
}
ok($bench->finish, 'the claimers exit 0: no client aborted on an error');
ok($renamer_bench->finish, 'the renamer exits 0');
if (schema_name() eq 'shop2')
{
	$node->safe_psql('postgres', 'ALTER SCHEMA shop2 RENAME TO shop');
}
my ($renames) = pgbench_result($dir, 'rename');
my ($done, $bout, $berr) = pgbench_result($dir, 'bench');
my ($serialization) = $bout =~ /number of serialization failures: (\d+)/;
my ($deadlocks) = $bout =~ /number of deadlock failures: (\d+)/;
my ($failed) = $bout =~ /number of failed transactions: (\d+)/;
note("$renames pairs of renames, $done transactions, "
	  . ($serialization // '?') . ' failed with 40001');
cmp_ok($renames, '>', 0, 'the schema was renamed while the claims ran');
cmp_ok($done, '>', 0, 'pgbench made claims');
is($deadlocks // -1, 0, 'no deadlock failure');
is($failed // -1, $serialization // -2,
	'every failed call failed with 40001');
my @other = grep { /ERROR/ && !/could not serialize|schema of extension coupon changed/ }
  split /\n/, $berr;
is(scalar(@other), 0, 'no other error')
  or diag(join("\n", grep { defined } @other[ 0 .. 9 ]));
is(schema_name(), 'shop', 'the schema has its first name again');
# A pool with a permit left in flight keeps its slot: the loaded pools are
# checked against their semaphores, the others against their ledgers.
my @loaded = split /\n/,
  $node->safe_psql('postgres', 'SELECT pool FROM coupon_pool_memory()');
check_pools($node, 'postgres', 'after the loop, the loaded pools',
	loaded => 1, pools => \@loaded);
check_pools($node, 'postgres', 'after the loop, every pool');

check_log($node, '028_schema_rename');
$node->stop;
done_testing();
