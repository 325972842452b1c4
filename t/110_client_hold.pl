# --hold in burst mode: 200 users hold one of 50 coupons for a second;
# half the holders confirm, the others abandon their hold to the server's
# expiry workers.  Once the client exits every hold has settled, and the
# database must agree with it: confirmed + available = coupons, no hold
# left, nobody over the limit.  --hold with another strategy, a --confirm
# outside 0..1 and a TTL of 0 are bad arguments, and a server whose expiry
# workers are off is refused.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use ClientTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $bin = stress_binary();
my $TRY = qr/^Try "coupon-stress --help" for more information\.$/m;

# [arguments, what the one line must say]
my @bad = (
	[ [ '--hold', '1', '--strategy', 'claim,naive' ],
	  qr/--hold applies to the claim strategy only, not to naive$/m ],
	[ [ '--hold', '1', '--confirm', '1.5' ],
	  qr/invalid value "1\.5" for --confirm: expected a fraction from 0 to 1/ ],
	[ [ '--hold', '0' ], qr/invalid value "0" for --hold/ ],
	[ [ '--confirm', '0.5' ], qr/--confirm applies to holds: give --hold=TTL/ ],);
foreach my $case (@bad)
{
	my ($args, $says) = @$case;
	command_checks_all([ $bin, @$args ], 2, [qr/^$/],
		[ qr/\A[^\n]*\n[^\n]*\n\z/, qr/^coupon-stress: /, $says, $TRY ],
		"bad argument @$args: one line, the hint, exit 2");
}

my $node = client_node('client_hold');

my $run = run_stress($node, '--hold', '1', '--confirm', '0.5', '--users',
	'200', '--coupons', '50', '--json');
my $r = check_holds($node, $run, 50, 'burst');
is_deeply([ map { $_->{strategy} } @{ $run->{json}{results} } ],
	['claim'], 'burst: claim alone runs');
is_deeply([ @{ $run->{json}{settings} }{qw(hold_s confirm)} ],
	[ 1, 0.5 ], 'burst: the settings say hold 1 s, confirm 0.5');
ok( $r->{ledger_rows} >= 50 && $r->{confirmed} > 0 && $r->{expired} > 0,
	"burst: every coupon held once at least ($r->{ledger_rows} holds), "
	  . "$r->{confirmed} confirmed, $r->{expired} expired");

# The table heads the stock "available" and adds the columns of holds.
$run = run_stress($node, '--hold', '0.5', '--users', '20', '--coupons', '5');
is($run->{rc}, 0, 'table: exit status 0');
like($run->{out}, qr/^holds = 0\.5 s, 0\.5 of them confirmed/m,
	'table: the header says how long holds last and how many confirm');
like($run->{out},
	qr/^strategy .* available .* errors +confirms +confirmed +expired +too late$/m,
	'table: available, and the columns of holds at the end');

# Abandoned holds need the expiry workers.
$node->safe_psql('postgres',
	'ALTER SYSTEM SET coupon.expiry_workers = off; SELECT pg_reload_conf()');
$node->poll_query_until('postgres', 'SHOW coupon.expiry_workers', 'off')
  or die 'coupon.expiry_workers did not turn off';
$run = run_stress($node, '--hold', '1', '--json');
is($run->{rc}, 2, 'workers off: exit status 2');
like($run->{err},
	qr/^coupon-stress: --hold needs the server's expiry workers: .* \(it is off\)$/m,
	'workers off: said so');
$node->safe_psql('postgres',
	'ALTER SYSTEM RESET coupon.expiry_workers; SELECT pg_reload_conf()');

done_testing();
