# The background workers that return expired holds.
#
# With nothing configured beyond shared_preload_libraries:
#   - a hold's coupon is back about a second after it expires, in every
#     database that has the extension, with nobody claiming;
#   - holds survive a crash (-m immediate) with their expiry; those whose
#     time ran out while the server was down are returned once it is up;
#   - the launcher comes back after pg_terminate_backend, and so does the
#     expiry;
#   - DROP EXTENSION and CREATE EXTENSION, and a database dropped while its
#     holds are due, do not stop the workers, and no worker keeps a
#     database from being dropped;
#   - coupon.expiry_workers = off stops the workers (a claimer that needs
#     the coupon still returns an overdue hold), on starts them again.
# Each hold is returned exactly once and every pool stays balanced.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use CouponTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

my $node = coupon_node('expiry');

# The worker is woken at a hold's expiry; without that wake-up, the
# launcher finds the hold on its next look around (every 60 s,
# LAUNCHER_IDLE_MS in extension/worker.c).  A return within a quarter of
# that shows the wake-up; the rest is room for a loaded machine.
my $MAX_LAG = 15;

# Seconds from a hold's expiry to its return by the worker.
sub returned_after
{
	my ($db, $id) = @_;
	ok(wait_returned($node, $db, $id),
		"$db: hold $id is returned");
	return $node->safe_psql($db,
		"SELECT extract(epoch FROM released_at - expires_at) FROM coupon_claims WHERE id = $id");
}

############################################################################
# A hold comes back about a second after it expires, in every database.
############################################################################
$node->safe_psql('postgres', 'CREATE DATABASE shop2');
my @lags;
for my $db (qw(postgres shop2))
{
	$node->safe_psql($db, 'CREATE EXTENSION coupon') if $db ne 'postgres';
	$node->safe_psql($db, "SELECT coupon_pool_create('p', 2)");
	my $id = $node->safe_psql($db, "SELECT coupon_hold('p', 'h1', '1 second')");
	my $lag = returned_after($db, $id);
	push @lags, $lag;
	cmp_ok($lag, '<', $MAX_LAG,
		"$db: returned ${lag} s after it expired, woken at the expiry (< $MAX_LAG s)");
	is($node->safe_psql($db,
			"SELECT claimed, held, in_flight, available FROM coupon_pools WHERE pool = 'p'"),
		'0|0|0|2', "$db: the coupon is available again");
}

############################################################################
# Crash with a live hold and one that expires while the server is down.
############################################################################
my $SHORT_TTL = 2;
my $short = $node->safe_psql('postgres',
	"SELECT coupon_hold('p', 'short', '$SHORT_TTL seconds')");
my $long = $node->safe_psql('postgres', "SELECT coupon_hold('p', 'long', '1 hour')");
my $long_expiry = $node->safe_psql('postgres',
	"SELECT expires_at FROM coupon_claims WHERE id = $long");
$node->stop('immediate');
# Stay down until the short hold's time is up (counted from the stop, which
# came after the hold was granted).
my $down = time;
usleep(100_000) while time - $down < $SHORT_TTL;
$node->start;
returned_after('postgres', $short);
is( $node->safe_psql('postgres',
		"SELECT released_at IS NULL AND expires_at = '$long_expiry' FROM coupon_claims WHERE id = $long"),
	't', 'the live hold survived the crash with its expiry');
check_pools($node, 'postgres', 'after the crash');

############################################################################
# The launcher is terminated: it comes back, and so does the expiry.
############################################################################
my $launcher = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'coupon expiry launcher'");
like($launcher, qr/^\d+$/, 'the launcher runs');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($launcher)");
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 1 AND bool_and(pid <> $launcher) FROM pg_stat_activity WHERE backend_type = 'coupon expiry launcher'"),
	'a new launcher runs after pg_terminate_backend');
my $after_term = $node->safe_psql('postgres',
	"SELECT coupon_hold('p', 'after_term', '1 second')");
returned_after('postgres', $after_term);

############################################################################
# DROP EXTENSION and CREATE EXTENSION; a database dropped with holds due.
############################################################################
my $gone = $node->safe_psql('shop2', "SELECT coupon_hold('p', 'gone', '1 hour')");
$node->safe_psql('shop2', 'DROP EXTENSION coupon');
$node->safe_psql('shop2', 'CREATE EXTENSION coupon');
$node->safe_psql('shop2', "SELECT coupon_pool_create('p', 1)");
my $anew = $node->safe_psql('shop2', "SELECT coupon_hold('p', 'anew', '1 second')");
returned_after('shop2', $anew);

$node->safe_psql('postgres', 'CREATE DATABASE doomed');
$node->safe_psql('doomed',
	"CREATE EXTENSION coupon; SELECT coupon_pool_create('p', 100)");
$node->safe_psql('doomed',
	"SELECT coupon_hold('p', 'c' || g, '1 second') FROM generate_series(1, 100) g");
# Drop it as soon as its holds are due, while a worker may be returning
# them: it must not be kept from being dropped.
ok(wait_due($node, 'doomed'), 'the holds of the doomed database are due');
my ($state, $out, $err) =
  sql_state($node, 'postgres', 'DROP DATABASE doomed');
is($state, '00000', 'a database whose holds fall due is dropped') or diag($err);
my $still = $node->safe_psql('postgres', "SELECT coupon_hold('p', 'still', '1 second')");
returned_after('postgres', $still);

############################################################################
# coupon.expiry_workers = off, then on.
############################################################################
$node->safe_psql('postgres',
	"ALTER SYSTEM SET coupon.expiry_workers = off; SELECT pg_reload_conf()");
ok( $node->poll_query_until('postgres', 'SHOW coupon.expiry_workers', 'off'),
	'coupon.expiry_workers is off');
my $parked = $node->safe_psql('postgres',
	"SELECT coupon_hold('p', 'parked', '1 second')");
wait_due($node, 'postgres', $parked)
  or die 'the parked hold never fell due';
# Give a worker time to act, were there one: three times the slowest return
# measured above, and 3 s at least.  It must not.
my $window = 3 * (sort { $b <=> $a } @lags)[0];
$window = 3 if $window < 3;
my $until = time + $window;
my $returned = 'f';
while (time < $until)
{
	$returned = $node->safe_psql('postgres',
		"SELECT released_at IS NOT NULL FROM coupon_claims WHERE id = $parked");
	last if $returned eq 't';
	usleep(200_000);
}
is($returned, 'f',
	sprintf('with the workers off, the overdue hold stays (%.1f s watched)', $window));
$node->safe_psql('postgres',
	"ALTER SYSTEM RESET coupon.expiry_workers; SELECT pg_reload_conf()");
returned_after('postgres', $parked);

############################################################################
# Exactly once, and balanced.
############################################################################
for my $db (qw(postgres shop2))
{
	is( $node->safe_psql($db,
			"SELECT count(*) FROM coupon_claims WHERE released_at IS NULL AND expires_at < now()"),
		'0', "$db: no overdue hold left");
	check_pools($node, $db, "$db at the end");
}
note sprintf('expiry figures: returned %.2f s and %.2f s after expiring (two databases)', @lags);
check_log($node, '020_expiry_worker');
$node->stop;
done_testing();
