# Throughput mode: a short sweep of every strategy at 1 and 8 clients on a
# stock that does not run out, with progress lines.  Every correct
# strategy is exact and grants; percentiles are ordered; progress lines
# have pgbench's format and count retries per interval, like every other
# field, not since the start.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use ClientTest;
use List::Util qw(sum0);
use Test::More;

my $STOCK = 1000000000;
my $node = client_node('client_throughput');
my @redis = redis_servers(3);

my $run = run_stress($node, '-T', '2', '-c', '1,8', '-P', '1', '--redis',
	join(',', @redis), '--json');
my @rows = @{ $run->{json}{results} // [] };

my @names = strategy_names();
is($run->{rc}, 0, 'exit status 0');
is_deeply(
	[ map { "$_->{strategy} $_->{clients}" } @rows ],
	[ (map { "$_ 1" } @names), (map { "$_ 8" } @names) ],
	'one row per strategy and client count, client counts outside');
my @exact = grep { $_->{exact} } @rows;
cmp_ok(scalar @exact, '>=', 14,
	'seven strategies or more claim to be correct, at 2 points');
foreach my $r (@exact)
{
	ok( $r->{correct}
		  && $r->{granted} > 0
		  && $r->{granted} == $r->{ledger_rows}
		  && $r->{counter} == $STOCK - $r->{ledger_rows}
		  && $r->{claims_per_s} > 0,
		"$r->{strategy} at $r->{clients}: exact, granted $r->{granted}");
}
ok( (grep { 0 < $_->{p50_ms} && $_->{p50_ms} <= $_->{p95_ms}
			  && $_->{p95_ms} <= $_->{p99_ms} && $_->{p99_ms} <= $_->{max_ms} }
		  @rows) == @rows,
	'percentiles are positive and ordered');

my $line = qr/^progress: (\d+\.\d) s, ([\d.]+) tps, lat ([\d.]+) ms stddev ([\d.]+), (\d+) failed, (\d+) retried \(([a-z-]+), (\d+) clients\)$/m;
like($run->{err}, $line, 'progress lines in pgbench\'s format on stderr');

# occ at 8 clients retries all the time: shown per interval, the retries of
# its progress lines add up to no more than the row's total.
$run = run_stress($node, '--strategy', 'occ', '-T', '3', '-c', '8', '-P',
	'0.5', '--json');
my @retried;
while ($run->{err} =~ /$line/g)
{
	push @retried, $6 if $7 eq 'occ';
}
my $total = $run->{json}{results}[0]{retries};
cmp_ok(scalar(grep { $_ > 0 } @retried), '>=', 2,
	'occ: at least two progress lines with retries');
cmp_ok(sum0(@retried), '<=', $total,
	"occ: retried per interval (@retried) adds up to at most the total $total");

done_testing();
