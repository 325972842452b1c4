# The checks of --hold have teeth: while the client waits for its
# abandoned holds to expire, someone else changes the pool, and the
# client's row must say so (not correct, exit status 1).  A confirmed
# claim released leaves the pool balanced but not the ledger; a coupon
# added leaves the ledger balanced but not the pool; expiry workers
# turned off leave holds live past the TTL plus 30 s, which the client
# reports.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use ClientTest;
use IPC::Run;
use JSON::PP;
use Test::More;

my $node = client_node('client_hold_checks');
my $pool = "pool = 'stress_claim'";

# Run a burst of holds for 3 s and, once its users have left, $sql.
# Returns the row and the client's stderr.
sub foreign_change
{
	my ($label, $sql) = @_;
	my ($out, $err) = ('', '');
	# The last run's rows must not pass for this one's.
	$node->safe_psql('postgres',
		"SELECT coupon_pool_drop(pool) FROM coupon_pools WHERE $pool");
	my $client = IPC::Run::start(
		[ stress_binary(), '--hold', '8', '--users', '50', '--coupons', '20', '--json' ],
		'>', \$out, '2>', \$err,
		init => sub { client_env($node) });
	$node->poll_query_until(
		'postgres', qq{SELECT EXISTS (SELECT FROM coupon_claims
		   WHERE $pool AND released_at IS NULL AND expires_at IS NULL)
		 AND (SELECT count(*) FROM pg_stat_activity
		   WHERE application_name = 'coupon-stress' AND backend_type = 'client backend') <= 1})
	  or die 'the burst did not end';
	$node->safe_psql('postgres', $sql);
	# Holds are still live after the change, so the client reads back after it.
	cmp_ok($node->safe_psql('postgres', "SELECT held FROM coupon_pools WHERE $pool"),
		'>', 0, "$label: done while the client still waits for live holds");
	$client->finish;
	note("stderr:\n$err") if $err ne '';
	my $r = decode_json($out)->{results}[0];
	is($client->result, 1, "$label: exit status 1");
	ok(!$r->{correct}, "$label: the row is not correct");
	return ($r, $err);
}

my ($r, $err) = foreign_change('release', qq{SELECT coupon_release(min(id))
	FROM coupon_claims WHERE $pool AND released_at IS NULL AND expires_at IS NULL});
is($r->{confirmed}, $r->{confirms} - 1,
	'release: one confirm the client saw is no longer confirmed');
is($r->{confirmed} + $r->{expired}, $r->{ledger_rows} - 1,
	'release: a ledger row neither confirmed nor expired');
is($r->{confirmed} + $r->{available}, 20, 'release: the pool balances');

($r, $err) = foreign_change('resize',
	"SELECT coupon_pool_resize('stress_claim', 21)");
ok( $r->{confirmed} == $r->{confirms}
	  && $r->{confirmed} + $r->{expired} == $r->{ledger_rows},
	'resize: the ledger balances');
is($r->{confirmed} + $r->{available}, 21,
	'resize: confirmed + available is one more than the coupons');

($r, $err) = foreign_change('workers off',
	'ALTER SYSTEM SET coupon.expiry_workers = off; SELECT pg_reload_conf()');
like($err,
	qr/^coupon-stress: claim, 50 clients: holds still live or in flight \d+\.\d s after the point ended/m,
	'workers off: the wait that ran out is reported');
is( $r->{held},
	$node->safe_psql('postgres', "SELECT held FROM coupon_pools WHERE $pool"),
	"workers off: the holds left ($r->{held}) are reported");
is($r->{confirmed} + $r->{held} + $r->{available}, 20,
	'workers off: confirmed + held + available = coupons');
$node->safe_psql('postgres',
	'ALTER SYSTEM RESET coupon.expiry_workers; SELECT pg_reload_conf()');
ok($node->poll_query_until('postgres', "SELECT held = 0 FROM coupon_pools WHERE $pool"),
	'workers on again: the holds left expire');

done_testing();
