# The semaphore's take is a compare-and-swap: a fast check.
#
# Eight sessions claim from one pool for three seconds, as fast as they
# can: most claims are rolled back to a savepoint at once (a take and a
# give-back), one in ten is kept, so that takes of different sessions
# overlap all the time.  A take that read "available" and wrote it back
# without a compare-and-swap would lose or invent permits.  Then the
# ledger against the semaphore: available is exactly the capacity minus
# the claimed, nothing is in flight, the grants counter is the number of
# ledger rows, and the pool grants exactly its available coupons, not one
# more.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use CouponTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $CAPACITY = 1_000_000;
my $node = coupon_node('cas_race');
$node->safe_psql(
	'postgres', qq{
SELECT coupon_pool_create('race', $CAPACITY, $CAPACITY);
CREATE FUNCTION churn(rounds int) RETURNS void LANGUAGE plpgsql AS \$\$
BEGIN
  FOR i IN 1 .. rounds LOOP
    IF i % 10 = 0 THEN
      PERFORM coupon_claim('race', pg_backend_pid() || '-' || i);
    ELSE
      BEGIN
        PERFORM coupon_claim('race', pg_backend_pid() || '-' || i);
        RAISE EXCEPTION 'give it back';
      EXCEPTION WHEN raise_exception THEN
        NULL;
      END;
    END IF;
  END LOOP;
END \$\$;
});

my $dir = PostgreSQL::Test::Utils::tempdir;
append_to_file("$dir/churn.sql", "SELECT churn(100);\n");
# pgbench's -T bounds the run (the loops of 100 claims end within it).
my $run = pgbench_start($node, 'postgres', $dir, 'churn',
	'-c', 8, '-j', 2, '-T', 3, '-f', "$dir/churn.sql");
$run->finish;
my ($done, $out, $err) = pgbench_result($dir, 'churn');
cmp_ok($done, '>=', 8, "the sessions claimed ($done loops of 100 takes)");
unlike($out . $err, qr/ERROR|aborted/, 'no claim failed');

my $claimed = ledger_count($node, 'postgres', "pool = 'race'");
my $m = memory_of($node, 'postgres', 'race');
is( "available $m->[0], in flight $m->[1], grants $m->[2]",
	"available " . ($CAPACITY - $claimed) . ", in flight 0, grants $claimed",
	"the semaphore agrees with the ledger's $claimed claims");
is( $node->safe_psql(
		'postgres', qq{
SELECT coupon_claim('race', 'rest', $CAPACITY - $claimed) IS NOT NULL,
       coupon_claim('race', 'one more') IS NULL}),
	't|t',
	'the pool grants exactly its available coupons, and then nothing');
check_pools($node, 'postgres', 'after the race', loaded => 1, grants => 1);
check_log($node, '026_cas_race');
$node->stop;
done_testing();
