# The compare-and-swap under contention.
#
# Eight sessions take and give back the last three coupons of a pool as
# fast as they can: a PL/pgSQL loop claims, then rolls the claim back to a
# savepoint, hundreds of times a second per session, so that takes and
# give-backs of different sessions overlap all the time.  A take that read
# "available" and wrote it back without a compare-and-swap would lose or
# invent permits within a fraction of a second.  Checked meanwhile,
# sampled from a ninth session: available never exceeds the capacity and
# in_flight never exceeds the capacity; checked at the end: nothing is in
# flight, available is exactly the capacity, and the pool still grants
# exactly 3.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use CouponTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

my $CAPACITY = 3;
my $node = coupon_node('cas');
$node->safe_psql(
	'postgres', qq{
SELECT coupon_pool_create('hot', $CAPACITY, 1000000);
CREATE FUNCTION churn(rounds int) RETURNS int LANGUAGE plpgsql AS \$\$
DECLARE
  granted int := 0;
BEGIN
  FOR i IN 1 .. rounds LOOP
    BEGIN
      IF coupon_claim('hot', pg_backend_pid() || '-' || i) IS NOT NULL THEN
        granted := granted + 1;
      END IF;
      RAISE EXCEPTION 'give it back';
    EXCEPTION WHEN raise_exception THEN
      NULL;
    END;
  END LOOP;
  RETURN granted;
END \$\$;
});

my $dir = PostgreSQL::Test::Utils::tempdir;
append_to_file("$dir/churn.sql", "SELECT churn(200);\n");
my $run = pgbench_start($node, 'postgres', $dir, 'churn',
	'-c', 8, '-j', 2, '-T', 8, '-f', "$dir/churn.sql");

# Sample the semaphore while the sessions churn, from one open session
# (a psql started for each sample can take a second on a loaded machine).
my $sampler = bg_open($node);
my ($samples, @bad) = (0);
while (running($run) && $samples < 100_000)
{
	my $row = bg_run($sampler,
		"SELECT available, in_flight FROM coupon_pool_memory() WHERE pool = 'hot'");
	my $m = $row eq '' ? undef : [ split /\|/, $row ];
	$samples++;
	# (Each is read alone and never passes the capacity: whatever ends
	# permits in flight lowers in_flight before it raises available.  Their
	# sum may, read one after the other while permits move.)
	push @bad, "available $m->[0], in_flight $m->[1]"
	  if $m && ($m->[0] > $CAPACITY || $m->[1] > $CAPACITY);
	usleep(20_000);
}
$run->finish;
bg_close($sampler);
my ($done, $out, $err) = pgbench_result($dir, 'churn');
cmp_ok($done, '>=', 16, "the sessions churned ($done loops of 200 takes)");
unlike($out . $err, qr/ERROR|aborted/,
	'no take failed');
cmp_ok($samples, '>', 10, "the semaphore was sampled $samples times");
is_deeply(\@bad, [],
	'no sample had more available or in flight than the capacity');

my $m = memory_of($node, 'postgres', 'hot');
is("$m->[0]/$m->[1]", "$CAPACITY/0",
	'afterwards: all 3 available, nothing in flight');
is( $node->safe_psql(
		'postgres',
		"SELECT count(coupon_claim('hot', 'final' || g)) FROM generate_series(1, 10) g"),
	$CAPACITY, 'the pool still grants exactly its 3');
check_pools($node, 'postgres', 'after the churn', loaded => 1);
check_log($node, '014_cas_contention');
$node->stop;
done_testing();
