# One bulk statement for 100,000 customers, with the server's default lock
# settings, and the per-customer limit exact while it runs.
#
# Each claim holds its customer's lock to the end of the transaction; one
# transaction claiming for 100,000 customers held 100,000 locks and filled
# the server's shared lock table ("out of shared memory").  Here: the
# statement of the issue (1,000 calls of coupon_claim_many() with 100
# customers each) grants all 100,000; the transaction holds a bounded
# number of the extension's locks; and a claim from another session for
# one of its customers, sent while the bulk's transaction is open, waits
# for it and is answered with the bulk's claim, never a second one.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use CouponTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# The defaults of a new server, whatever the test framework sets.
my $node = coupon_node('bulk_locks',
	conf => [ 'max_connections = 100', 'max_locks_per_transaction = 64' ]);
$node->safe_psql('postgres',
	"SELECT coupon_pool_create('campaign', 200000)");

my $bulk = bg_open($node);
bg_run($bulk, 'BEGIN');
bg_send(
	$bulk, q{
SELECT count(*) FILTER (WHERE m.status = 'granted') AS granted
  FROM generate_series(0, 999) j,
       LATERAL coupon_claim_many('campaign',
         ARRAY(SELECT 'c' || (j * 100 + i) FROM generate_series(1, 100) i)) m});
my ($out, $state, $err) = bg_collect($bulk, 120);
is("$state $out", '00000 100000',
	'one statement granted 100,000 customers with the default lock settings');
cmp_ok(
	bg_run(
		$bulk, q{SELECT count(*) FROM pg_locks
		 WHERE pid = pg_backend_pid() AND locktype = 'advisory'}),
	'<=', 1100,
	'the transaction holds a bounded number of the extension\'s locks');

# Another session claims for one of the bulk's customers: it waits for the
# bulk's transaction, then finds the customer's claim.
my $single = bg_open($node);
my $pid = bg_pid($single);
bg_send($single,
	"SELECT status FROM coupon_claim_detailed('campaign', 'c4242')");
ok( $node->poll_query_until(
		'postgres',
		"SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $pid"),
	'a claim of one of its customers waits for the bulk');
bg_run($bulk, 'COMMIT');
($out, $state) = bg_collect($single, 60);
is("$state $out", '00000 repeat',
	'and is answered with the bulk\'s claim once it commits');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*), count(DISTINCT customer) FROM coupon_claims
 WHERE pool = 'campaign'}),
	'100000|100000', 'one claim per customer');
bg_close($single);
bg_close($bulk);
check_pools($node, 'postgres', 'after the campaign', loaded => 1);
check_log($node, '027_bulk_lock_table');
$node->stop;
done_testing();
