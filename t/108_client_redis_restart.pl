# Redis crashes and restarts between a decrement and its commit, with
# appendfsync everysec (the setting of many installs): the first server
# process, at its 100th take, has Redis crash (DEBUG CRASH-AND-RECOVER)
# and restart from its append-only file; the clients reconnect and sell
# on.  What was lost or oversold depends on what Redis had written when it
# died, so the test checks the report against the truth: the stock it
# shows is the Redis key, the ledger the table, and stock, ledger, leaked
# and lost add up to the coupons.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use ClientTest;
use Test::More;

my $STOCK = 3000;
my $node = client_node('client_redis_restart');
my ($redis) = redis_servers(1, 'appendfsync everysec');
my ($before) = redis_cli($redis, 'INFO', 'server') =~ /run_id:(\w+)/;

my $run = run_stress(
	$node, '--strategy', 'redis', '-T', '8', '-c', '16',
	'--coupons', $STOCK, '--restart-redis', '100',
	'--redis', $redis, '--json');
my $r = $run->{json}{results}[0];
my ($after) = redis_cli($redis, 'INFO', 'server') =~ /run_id:(\w+)/;

ok($run->{rc} == 0 || $run->{rc} == 1, 'the run completed (exit 0 or 1)');
is($run->{json}{settings}{redis}[0]{appendfsync},
	'everysec', 'Redis reported with appendfsync everysec');
isnt($after, $before, 'Redis restarted during the run (new run_id)');
ok($r->{errors} > 0, "calls in flight at the crash failed ($r->{errors})");
ok($r->{granted} > 100, "the clients reconnected and sold on ($r->{granted})");
is(redis_cli($redis, 'GET', 'coupon_stress:stock'),
	$r->{counter}, 'the stock reported is the Redis key');
is(ledger_count($node, 'coupon_stress.grants', 'redis'),
	$r->{ledger_rows}, 'the ledger reported is the table');
is($r->{counter} + $r->{ledger_rows} + $r->{leaked} - $r->{lost_updates},
	$STOCK, 'stock + ledger + leaked - lost = the coupons');
is($r->{oversold}, $r->{ledger_rows} > $STOCK ? $r->{ledger_rows} - $STOCK : 0,
	'oversold is what the ledger holds beyond the coupons');
note("restart: leaked $r->{leaked}, lost $r->{lost_updates}, "
	  . "oversold $r->{oversold}, errors $r->{errors}");

# A Redis that does not allow DEBUG cannot be crashed: said at once.
my ($locked) = redis_servers(1, 'enable-debug-command no');
$run = run_stress($node, '--strategy', 'redis', '-T', '1',
	'--restart-redis', '10', '--redis', $locked, '--json');
is($run->{rc}, 2, 'Redis without DEBUG: exit status 2');
like($run->{err},
	qr/--restart-redis needs DEBUG on Redis at \Q$locked\E \(enable-debug-command is no; set it to local\)/,
	'Redis without DEBUG: says what to set');

done_testing();
