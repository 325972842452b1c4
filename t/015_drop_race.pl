# Drops and re-creations racing claims.
#
# A drop marks its pool's slot with its transaction, and only that
# transaction's end clears the mark; a claim never takes from a slot whose
# pool's drop has committed (whoever finds such a slot frees it).
#
# 1. The window, held open.  A pool of five coupons, in use, is dropped and
#    created again with one coupon, in one transaction.  Its commit becomes visible
#    to others a moment before its commit callback frees the old slot; gdb
#    stops the backend right there (a breakpoint on the callback).  In that
#    window a second drop of the pool starts and gives up (lock_timeout:
#    the first still holds its table lock), and two claims are made: they must find the new pool, of one coupon, not the
#    dying slot of the old one.  (When the rolled-back drop cleared the
#    committed drop's mark, both claims took from the old slot and the new
#    pool ended with two claims for its one coupon.)
#
# 2. The same, at random.  The pool is dropped and created again, over and
#    over, while other sessions start drops that roll back and others
#    claim; at every moment sampled, the ledger holds at most one live
#    claim for the pool of one coupon, and at the end the pool loads
#    exactly.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use CouponTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

my $node = coupon_node('droprace');
# The old pool is in use, so it has a slot that the drop marks.
$node->safe_psql('postgres',
	"SELECT coupon_pool_create('race', 5); SELECT coupon_claim('race', 'before')");

############################################################################
# 1. The window, held open by gdb.
############################################################################
my $a = bg_open($node);
my $apid = bg_pid($a);
bg_run($a, 'BEGIN');
bg_run($a, "SELECT coupon_pool_drop('race')");
bg_run($a, "SELECT coupon_pool_create('race', 1)");
my $gdb = gdb_break($apid,
	'coupon_escrow_xact_callback if event == XACT_EVENT_COMMIT');
bg_send($a, 'COMMIT');
ok(gdb_wait_hit($gdb),
	'the drop and re-creation committed, its callback not run yet');
is( $node->safe_psql('postgres', "SELECT capacity FROM coupon_pool WHERE name = 'race'"),
	'1', 'others see the new pool of one coupon');
# The second drop marks the slot it finds, then waits for the first one's
# table lock (held until the first backend's callbacks have run) and gives
# up: its abort clears its own mark only.
expect_state($node, 'postgres',
	"SET lock_timeout = '200ms'; BEGIN; SELECT coupon_pool_drop('race');",
	'55P03', 'in the window: a second drop starts and gives up');
is( $node->safe_psql('postgres',
		"SELECT coupon_claim('race', 'w1') IS NOT NULL, coupon_claim('race', 'w2') IS NOT NULL"),
	't|f', 'in the window: of two claims, the new pool grants one');
gdb_continue($gdb);
bg_collect($a);
bg_close($a);
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM coupon_claims WHERE pool = 'race' AND released_at IS NULL"),
	'1', 'the pool of one coupon has one claim');
check_pools($node, 'postgres', 'after the window', pools => ['race'], loaded => 1);
$node->safe_psql('postgres', "SELECT coupon_pool_drop('race'); SELECT coupon_pool_create('race', 1)");

############################################################################
# 2. The same, at random.
############################################################################
# Expected refusals while the pool comes and goes are swallowed; anything
# else fails the pgbench client.
my $quiet = 'EXCEPTION WHEN object_in_use OR undefined_object'
  . ' OR object_not_in_prerequisite_state OR raise_exception THEN NULL;';
my $dir = PostgreSQL::Test::Utils::tempdir;
append_to_file("$dir/recreate.sql", qq{
DO \$\$ BEGIN
  PERFORM coupon_pool_drop('race');
  PERFORM coupon_pool_create('race', 1);
$quiet END \$\$;
});
append_to_file("$dir/drop_abort.sql", qq{
DO \$\$ BEGIN
  PERFORM coupon_pool_drop('race');
  RAISE EXCEPTION 'roll the drop back';
$quiet END \$\$;
});
append_to_file("$dir/claim.sql", qq{
\\set n random(1, 1000000000)
DO \$\$ BEGIN
  PERFORM coupon_claim('race', 'c' || :n);
$quiet END \$\$;
});

my $run = pgbench_start($node, 'postgres', $dir, 'race',
	'-c', 6, '-j', 2, '-T', 8,
	'-f', "$dir/recreate.sql\@2", '-f', "$dir/drop_abort.sql\@3",
	'-f', "$dir/claim.sql\@5");

# Invariant 2, sampled: never more live claims than the one coupon.  From
# one open session: a psql started for each sample can take a second on a
# loaded machine.
my $sampler = bg_open($node);
my ($samples, $worst) = (0, 0);
while (running($run))
{
	my $live = bg_run($sampler,
		"SELECT count(*) FROM coupon_claims WHERE pool = 'race' AND released_at IS NULL");
	$worst = $live if $live > $worst;
	$samples++;
	usleep(10_000);
}
$run->finish;
bg_close($sampler);
my ($done, $out, $err) = pgbench_result($dir, 'race');
cmp_ok($done, '>', 100, "drops, re-creations and claims ran ($done)");
unlike($out . $err, qr/ERROR|aborted/,
	'no unexpected error');
cmp_ok($samples, '>', 10, "the ledger was sampled $samples times");
cmp_ok($worst, '<=', 1, 'never more than one live claim for the one coupon');

# The pool that is left: balanced, and it loads and fills exactly.
$node->safe_psql('postgres', "SELECT coupon_pool_create('race', 1)");
check_pools($node, 'postgres', 'after the race', pools => ['race']);
my $left = $node->safe_psql('postgres',
	"SELECT capacity - claimed FROM coupon_pools WHERE pool = 'race'");
is( $node->safe_psql('postgres',
		"SELECT count(coupon_claim('race', 'fill' || g)) FROM generate_series(1, 3) g"),
	$left, 'the pool grants exactly what is left of its one coupon');
check_pools($node, 'postgres', 'filled', loaded => 1, pools => ['race']);
check_log($node, '015_drop_race');
$node->stop;
done_testing();
