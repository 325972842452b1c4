# --ack-log: every claim id acknowledged to the claim strategy is written,
# once, and every one is in the extension's ledger under the client's pool.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use ClientTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = client_node('client_ack_log');
my $log = PostgreSQL::Test::Utils::tempdir . '/ack.log';

my $run = run_stress($node, '--strategy', 'claim', '--users', '40',
	'--coupons', '25', '--ack-log', $log, '--json');
is($run->{rc}, 0, 'exit status 0');
is($run->{json}{results}[0]{granted}, 25, '25 grants');

my @ids = split /\n/, slurp_file($log);
my %seen = map { $_ => 1 } @ids;
is(scalar @ids, 25, 'the ack log has 25 lines');
is(scalar keys %seen, 25, 'all distinct');
ok((grep { /^\d+$/ } @ids) == 25, 'each a claim id');
is( $node->safe_psql(
		'postgres', "SELECT count(*) FROM coupon_claims
		  WHERE pool = 'stress_claim' AND id IN (" . join(',', @ids) . ')'),
	'25',
	'every acknowledged id is in the ledger, under the pool stress_claim');

done_testing();
