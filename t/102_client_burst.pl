# The seed's race, scaled down: 60 users, each on its own connection to
# PostgreSQL and to Redis, released at once for 6 coupons, with a 20 ms
# window between each read and its write, one application server process.
# Every strategy is checked against the truth read back (ledger rows,
# stock), and the report names the durability of both systems.  A Redis
# that cannot be reached fails the run at once.
#
# The seed's 500 users for 50 coupons prove nothing more: every user reads
# within the window either way (naive sold to all 500), and each
# strategy's verdict is exact or not; most of the 5 minutes that 500 took
# went to opening 4,000 connections.  t/004_load500 still races 500
# connections on the extension.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use ClientTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = client_node('client_burst');
my @redis = redis_servers(3);

my ($USERS, $COUPONS) = (60, 6);
my $run = run_stress($node, '--race-window', '20000', '--users', $USERS,
	'--coupons', $COUPONS, '--redis', join(',', @redis), '--json');
check_burst($run, 'burst', $USERS, $COUPONS);

my $settings = $run->{json}{settings};
is_deeply(
	[ map { "$_->{appendonly}/$_->{appendfsync}" } @{ $settings->{redis} } ],
	[ ('yes/always') x 3 ],
	'every Redis instance reported as appendonly yes, appendfsync always');
is($settings->{postgresql}{synchronous_commit},
	'on', 'PostgreSQL reported with synchronous_commit on');
is_deeply($settings->{skipped}, [], 'no strategy skipped with --redis');

# The row's stock and ledger are what Redis and PostgreSQL hold.
$run = run_stress($node, '--strategy', 'redis', '--users', '60',
	'--coupons', '7', '--redis', $redis[0], '--json');
my $row = $run->{json}{results}[0];
ok($row->{correct} && $row->{ledger_rows} == 7 && $row->{counter} == 0,
	'redis alone: 7 of 7 granted, stock 0');
is(redis_cli($redis[0], 'GET', 'coupon_stress:stock'),
	$row->{counter}, 'redis alone: the stock reported is the Redis key');
is(ledger_count($node, 'coupon_stress.grants', 'redis'),
	$row->{ledger_rows}, 'redis alone: the ledger reported is the table');

# Without --redis the Redis strategies are left out, and said to be.
$run = run_stress($node, '--users', '20', '--coupons', '5', '--json');
is($run->{rc}, 0, 'without --redis: exit status 0');
is_deeply($run->{json}{settings}{skipped},
	[qw(redis redlock redlock-fenced)],
	'without --redis: the Redis strategies are reported skipped');
my %skipped = map { $_ => 1 } @{ $run->{json}{settings}{skipped} };
is_deeply(
	[ map { $_->{strategy} } @{ $run->{json}{results} } ],
	[ grep { !$skipped{$_} } strategy_names() ],
	'without --redis: a row for every other strategy');

# The port of a Redis that was stopped is closed.
my $closed = PostgreSQL::Test::Cluster::get_free_port();
$run = run_stress($node, '--strategy', 'redis', '--redis',
	"127.0.0.1:$closed", '--json');
is($run->{rc}, 2, 'unreachable Redis: exit status 2');
like(
	$run->{err},
	qr/^coupon-stress: could not connect to Redis at 127\.0\.0\.1:$closed: /m,
	'unreachable Redis: a clear message');
is($run->{out}, '', 'unreachable Redis: no results');

done_testing();
