# A ledger with the farthest expiries an application role can ask for
# dumps and restores.
#
# An application role with the documented grants holds and extends with
# ttls a few microseconds short of the last timestamp PostgreSQL can store
# (294276-12-31 23:59:59.999999+00), hundreds of times, so that the clock
# moves past the ttl's check between some of them; every attempt is either
# refused (22008) or stores a valid timestamp.  The database is dumped
# (plain format) in sessions whose time zone is UTC, 14 hours east of it
# and 10 hours west of it, and each dump is restored into a fresh
# database: the restore succeeds, the ledger is identical, and the pool
# counts the holds (a ledger that failed to restore would look empty and
# oversell).  On the code before the fix, an expiry of END_TIMESTAMP was
# stored, pg_dump wrote it and COPY refused it on restore.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use CouponTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = coupon_node('farexpiry');
$node->safe_psql(
	'postgres', q{
CREATE ROLE app LOGIN;
GRANT EXECUTE ON FUNCTION coupon_hold(text, text, interval, integer, interval, text),
      coupon_hold_extend(bigint, interval) TO app;
SELECT coupon_pool_create('far', 2000);
});

# Each attempt in its own statement: a refused one must not undo the rest.
my $attempts = $node->psql(
	'postgres', q{
DO $$
DECLARE
  last constant timestamptz := '294276-12-31 23:59:59.999999+00';
  id bigint;
BEGIN
  FOR i IN 1 .. 400 LOOP
    BEGIN
      id := coupon_hold('far', 'h' || i, (last - clock_timestamp()) - (i % 8) * interval '1 us', request_id => 'r' || i);
      PERFORM coupon_hold_extend(id, (last - clock_timestamp()) - (i % 5) * interval '1 us');
    EXCEPTION WHEN datetime_field_overflow THEN
      NULL;
    END;
  END LOOP;
END $$;},
	extra_params => [ '-U', 'app' ]);
is($attempts, 0, 'the application role made 400 attempts at the last timestamp');

my $ledger_sql = q{
SELECT count(*), string_agg(format('%s|%s|%s|%s', id, customer, request_id,
                                   expires_at AT TIME ZONE 'UTC'), ',' ORDER BY id)
  FROM coupon_claims};
my $ledger = $node->safe_psql('postgres', $ledger_sql);
my ($stored) = split /\|/, $ledger;
cmp_ok($stored, '>', 0, "$stored holds were stored");
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM coupon_claims WHERE NOT expires_at <= '294276-12-31 23:59:59.999999+00'"),
	'0',
	'every stored expiry is a valid timestamp');

my $dir = PostgreSQL::Test::Utils::tempdir;
for my $tz ('UTC', 'Pacific/Kiritimati', 'Pacific/Honolulu')
{
	(my $db = lc "restored_$tz") =~ s{[^a-z0-9_]}{_}g;
	local $ENV{PGTZ} = $tz;
	command_ok(
		[
			'pg_dump', '-h', $node->host, '-p', $node->port, '-Fp',
			'-f', "$dir/$db.sql", 'postgres'
		],
		"pg_dump in time zone $tz");
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	command_ok(
		[
			'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', $node->host,
			'-p', $node->port, '-d', $db, '-f', "$dir/$db.sql"
		],
		"the dump made in time zone $tz restores");
	is($node->safe_psql($db, $ledger_sql), $ledger,
		"time zone $tz: the restored ledger is identical");
	is( $node->safe_psql($db,
			"SELECT claimed, held, available FROM coupon_pools WHERE pool = 'far'"),
		"$stored|$stored|" . (2000 - $stored),
		"time zone $tz: the restored pool counts every hold");
}
check_log($node, 'farexpiry');
done_testing();
