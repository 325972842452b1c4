# Confirms that race the expiry.  8 clients hold coupons for 0.3 s, for
# 3 s; every second call of a process stops 400 ms (--pause-ms) before it
# confirms, longer than the TTL, so a confirm drawn among those finds its
# hold expired (UC001), or already returned (UC002): that is counted as
# too late, not as an error, and the pool balances all the same.  The
# pause, not the machine's speed, makes those confirms late.  In burst
# mode, a think time (--race-window) longer than the TTL makes every
# confirm too late: nothing is confirmed and every coupon is back.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use ClientTest;
use Test::More;

my $node = client_node('client_hold_race');

my $run = run_stress($node, '-T', '3', '-c', '8', '--hold', '0.3',
	'--coupons', '40', '--pause-ms', '400', '--pause-every', '2', '--json');
my $r = check_holds($node, $run, 40, 'throughput');
cmp_ok($r->{confirms_too_late}, '>', 0,
	"throughput: $r->{confirms_too_late} confirms too late, "
	  . "$r->{confirms} in time, $r->{expired} holds expired");

$run = run_stress($node, '--hold', '0.2', '--race-window', '300000',
	'--users', '100', '--coupons', '30', '--json');
$r = check_holds($node, $run, 30, 'think longer than the TTL');
ok( $r->{confirms} == 0
	  && $r->{confirms_too_late} > 0
	  && $r->{expired} == $r->{ledger_rows},
	"think longer than the TTL: all $r->{confirms_too_late} confirms too "
	  . "late, all $r->{expired} holds expired");

done_testing();
