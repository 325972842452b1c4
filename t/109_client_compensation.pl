# The redis strategy's compensation: when the grant row cannot be written
# after Redis gave the coupon, the client gives it back to Redis.  While
# 8 clients claim with --reconnect, the test terminates their PostgreSQL
# sessions several times; every call that loses its session after its
# decrement fails, and its coupon must go back: nothing leaks.  A call
# whose insert had committed just before its session died is given back
# too (the shop cannot know), which shows as a lost update, never a leak.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use ClientTest;
use CouponTest qw(running);
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

my $STOCK = 1000000000;
my $node = client_node('client_compensation');
my ($redis) = redis_servers(1);

my ($out, $err) = ('', '');
my $client = IPC::Run::start(
	[
		stress_binary(), '--strategy', 'redis', '-T', '20', '-c', '8',
		'--reconnect', '--redis', $redis, '--json'
	],
	'>', \$out, '2>', \$err,
	init => sub { client_env($node) });

# Terminate the client's sessions three times, each time once they are
# back (they reconnect within a second), while the client runs.
my $sessions = q{SELECT count(*) FROM pg_stat_activity
  WHERE application_name = 'coupon-stress' AND backend_type = 'client backend'
    AND pid <> pg_backend_pid() AND query LIKE 'INSERT%'};
my ($terminated, $rounds) = (0, 0);
while ($rounds < 3 && sessions_back())
{
	$terminated += $node->safe_psql(
		'postgres', q{SELECT count(pg_terminate_backend(pid))
		  FROM pg_stat_activity
		 WHERE application_name = 'coupon-stress'
		   AND backend_type = 'client backend'
		   AND pid <> pg_backend_pid()});
	$rounds++;
	usleep(300_000);
}
$client->finish;
is($rounds, 3, 'three rounds of terminations while the client ran')
  or diag("client stderr:\n$err");

# Are the client's sessions back?  False once the client has ended, or
# after the default timeout.
sub sessions_back
{
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline && running($client))
	{
		return 1
		  if $node->safe_psql('postgres', "SELECT ($sessions) >= 1") eq 't';
		usleep(100_000);
	}
	return 0;
}
my $row = decode_json($out)->{results}[0];
note("terminated $terminated sessions; stderr:\n$err");

cmp_ok($terminated, '>=', 3, "terminated $terminated client sessions");
ok($row->{errors} > 0, "calls failed ($row->{errors})");
is($row->{leaked}, 0, 'no coupon leaked: every failed call gave its coupon back');
is(redis_cli($redis, 'GET', 'coupon_stress:stock'),
	$row->{counter}, 'the stock reported is the Redis key');
is($row->{counter} + $row->{ledger_rows} - $row->{lost_updates},
	$STOCK, 'stock + ledger - given back twice = the coupons');
cmp_ok($row->{lost_updates}, '<=', $row->{errors},
	"given back while committed ($row->{lost_updates}) only among the failed calls");

done_testing();
