# An application server killed between its take and its commit: three
# server processes share 12 clients; the first one kills itself (SIGKILL)
# at its 5th take (early: on a loaded machine the two others may sell
# most of the stock before the first gets many), when the coupon is taken (the Redis decrement, the
# claim in its transaction) and not yet committed, and the two others sell
# on.  redis loses what the dead server had taken for good: the stock in
# Redis says sold and no ledger row holds it.  claim gets it back at once:
# the transaction died with its connection, and the pool sells out to the
# last coupon.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use ClientTest;
use Test::More;

my $STOCK = 300;
my $node = client_node('client_kill_server');
my @redis = redis_servers(1);

my $run = run_stress(
	$node, '--strategy', 'redis,claim', '-T', '4', '-c', '12',
	'--servers', '3', '--coupons', $STOCK, '--kill-server', '5',
	'--redis', $redis[0], '--json');
my $by = rows_of($run);
my ($redis, $claim) = ($by->{redis}[0], $by->{claim}[0]);

is($run->{rc}, 1, 'exit status 1: redis was not exact');
like($run->{err},
	qr/^coupon-stress: claim, 12 clients: server 1 killed at its take 5, with its 4 clients$/m,
	'claim: the first server was killed');
like($run->{err},
	qr/^coupon-stress: redis, 12 clients: server 1 killed at its take 5, with its 4 clients$/m,
	'redis: the first server was killed');

ok($redis->{leaked} >= 1, "redis leaked $redis->{leaked} coupons");
is($redis->{counter} + $redis->{ledger_rows} + $redis->{leaked},
	$STOCK, 'redis: stock + ledger + leaked = the coupons');
ok(!$redis->{correct} && $redis->{oversold} == 0, 'redis: not correct, not oversold');
is(redis_cli($redis[0], 'GET', 'coupon_stress:stock'),
	$redis->{counter}, 'redis: the stock reported is the Redis key');

ok( $claim->{correct}
	  && $claim->{leaked} == 0
	  && $claim->{counter} + $claim->{ledger_rows} == $STOCK,
	'claim: balanced, nothing leaked');
is($claim->{ledger_rows}, $STOCK, 'claim: every coupon sold, to the last');
is($node->safe_psql('postgres',
		"SELECT claimed || ' ' || in_flight || ' ' || available
		   FROM coupon_pools WHERE pool = 'stress_claim'"),
	"$STOCK 0 0", 'claim: the pool agrees: all claimed, none in flight');

done_testing();
