# The seed's answer under a GC pause: every second call stops 200 ms
# between its read and its write, four times the 50 ms lease of its
# Redlock lock.  While it sleeps the lock expires and others sell; when it
# wakes it writes back what it read.  redlock oversells; redlock-fenced,
# whose token PostgreSQL checks, refuses the stale write and stays exact.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use ClientTest;
use Test::More;

my $node = client_node('client_lease');
my @redis = redis_servers(3);

my $run = run_stress(
	$node, '--strategy', 'redlock,redlock-fenced', '--users', '100',
	'--coupons', '10', '--pause-ms', '200', '--pause-every', '2',
	'--lease-ms', '50', '--redis', join(',', @redis), '--json');
my $by = rows_of($run);
my ($redlock, $fenced) = ($by->{redlock}[0], $by->{'redlock-fenced'}[0]);

is($run->{rc}, 1, 'exit status 1: a strategy that claims to be correct was not');
is($run->{json}{settings}{pause_ms}, 200, 'the pause is reported');
ok($redlock->{oversold} > 0 && $redlock->{ledger_rows} > 10 && !$redlock->{correct},
	"redlock oversells: $redlock->{ledger_rows} rows for 10 coupons");
ok( $fenced->{correct}
	  && $fenced->{ledger_rows} == 10
	  && $fenced->{granted} == 10
	  && $fenced->{counter} == 0
	  && $fenced->{oversold} == 0
	  && $fenced->{lost_updates} == 0,
	'redlock-fenced stays exact: 10 rows, stock 0');
ok($fenced->{retries} > 0, 'redlock-fenced retried (stale tokens, busy lock)');
is(ledger_count($node, 'coupon_stress.grants', 'redlock-fenced'),
	'10', 'the ledger holds the 10 rows of redlock-fenced');

# The same pause without a lease that runs out: redlock is exact again.
$run = run_stress(
	$node, '--strategy', 'redlock', '--users', '30', '--coupons', '10',
	'--pause-ms', '20', '--pause-every', '2', '--lease-ms', '5000',
	'--redis', join(',', @redis), '--json');
ok($run->{rc} == 0 && $run->{json}{results}[0]{correct},
	'redlock with a lease longer than the pause: exact');

done_testing();
