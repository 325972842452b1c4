# Failover to a synchronous standby.
#
# A primary with coupon and a streaming standby that it waits for at
# commit (synchronous_standby_names, synchronous_commit = on: a commit is
# acknowledged once the standby has flushed it).
#
# On the standby, every function that claims, holds, releases or changes
# pools fails at once with 25006 and a message that names the function and
# says the server is a standby; the views answer.
#
# Clients claim on the primary, recording every claim id acknowledged,
# while holds and releases are in flight; the primary's postmaster is
# killed with SIGKILL; the standby is promoted.  On it: every acknowledged
# claim is in the ledger, none twice, no pool oversold; the pools load to
# capacity - claimed and fill exactly; holds that were live are there,
# and expire; claim ids go on above the old ones.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use CouponTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

my $CAPACITY = 100000;
my $FINAL_ROOM = 500;

my $primary = coupon_node('primary', allows_streaming => 1);
$primary->safe_psql(
	'postgres', qq{
SELECT coupon_pool_create('fo', $CAPACITY);
SELECT coupon_pool_create('fo_small', 3);
SELECT coupon_claim('fo_small', 'before');
});
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
$primary->append_conf('postgresql.conf',
	"synchronous_standby_names = 'standby'\nsynchronous_commit = on");
$primary->reload;
ok( $primary->poll_query_until(
		'postgres',
		"SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby'",
		'sync'),
	'the standby is synchronous');

############################################################################
# The standby refuses every state-changing function, at once.
############################################################################
$primary->wait_for_catchup($standby);
my $claim_id = $standby->safe_psql('postgres',
	"SELECT id FROM coupon_claims WHERE customer = 'before'");
my @refused = (
	[ coupon_claim => "SELECT coupon_claim('fo', 'x')" ],
	[ coupon_claim_detailed => "SELECT * FROM coupon_claim_detailed('fo', 'x')" ],
	[ coupon_hold => "SELECT coupon_hold('fo', 'x', '1 minute')" ],
	[ coupon_confirm => "SELECT coupon_confirm($claim_id)" ],
	[ coupon_hold_extend => "SELECT coupon_hold_extend($claim_id, '1 minute')" ],
	[ coupon_release => "SELECT coupon_release($claim_id)" ],
	[ coupon_claim_cart => "SELECT coupon_claim_cart('{fo}', '{1}', 'x')" ],
	[ coupon_claim_cart_detailed => "SELECT * FROM coupon_claim_cart_detailed('{fo}', '{1}', 'x')" ],
	[ coupon_claim_many => "SELECT * FROM coupon_claim_many('fo', '{x,y}')" ],
	[ coupon_pool_create => "SELECT coupon_pool_create('new', 1)" ],
	[ coupon_pool_resize => "SELECT coupon_pool_resize('fo', 1)" ],
	[ coupon_pool_drop => "SELECT coupon_pool_drop('fo')" ],);
for my $r (@refused)
{
	my ($function, $sql) = @$r;
	my ($state, $out, $err) = sql_state($standby, 'postgres', $sql);
	is($state, '25006', "standby: $function refused with 25006");
	like($err, qr/cannot execute \Q$function\E\(\) on a standby server/,
		"standby: the message names $function and the standby");
}
is( $standby->safe_psql('postgres',
		"SELECT capacity, claimed, available FROM coupon_pools WHERE pool = 'fo_small'"),
	'3|1|2', 'standby: coupon_pools answers from the ledger');

############################################################################
# Load on the primary, then SIGKILL it and promote the standby.
############################################################################
my $held = $primary->safe_psql('postgres',
	"SELECT coupon_hold('fo_small', 'holder', '1 hour')");
my $inflight = bg_open($primary);
bg_run($inflight, 'BEGIN');
bg_run($inflight, "SELECT coupon_claim('fo_small', 'doomed')");
bg_run($inflight, "SELECT coupon_release($held)");

my $claimers = start_claimers($primary, pool => 'fo', prefix => 'f',
	clients => 8, per_client => 20000, seconds => 120);
# 2100: up to one claim per client is committed but not yet answered.
ok( $primary->poll_query_until(
		'postgres', "SELECT count(*) >= 2100 FROM coupon_claims WHERE pool = 'fo'"),
	'the load reached 2100 claims');
$primary->kill9;
my $r = stop_claimers($claimers);
bg_close($inflight);
$standby->promote;
ok( $standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'),
	'the standby is promoted');

my %ack = %{ $r->{ack} };
my $acked = grep { defined $_ && $_ ne '' } values %ack;
cmp_ok($acked, '>=', 2000, "$acked claims were acknowledged before the kill");
is(scalar(grep { @{ $r->{by_id}{$_} } > 1 } keys %{ $r->{by_id} }),
	0, 'no claim id was acknowledged twice');
check_acks($standby, 'fo', \%ack,
	'every acknowledged claim is on the promoted standby');
is( $standby->safe_psql(
		'postgres',
		"SELECT count(*) = count(DISTINCT customer) FROM coupon_claims WHERE pool = 'fo'"),
	't', 'no customer claimed twice');
is( $standby->safe_psql(
		'postgres',
		"SELECT string_agg(customer || '=' || (released_at IS NOT NULL), ',' ORDER BY customer)"
		  . " FROM coupon_claims WHERE pool = 'fo_small'"),
	'before=false,holder=false',
	'the claim and the release in flight at the kill did not happen');
is( $standby->safe_psql('postgres',
		"SELECT claim_id = $held AND NOT expired FROM coupon_holds"),
	't', 'the live hold is there, with its expiry');
check_pools($standby, 'postgres', 'after the failover');

my $claimed = $standby->safe_psql('postgres',
	"SELECT claimed FROM coupon_pools WHERE pool = 'fo'");
cmp_ok($claimed, '<=', $CAPACITY, 'no pool oversold');
is( $standby->safe_psql(
		'postgres',
		"SELECT status, available FROM coupon_claim_detailed('fo', 'first_after')"),
	'granted|' . ($CAPACITY - $claimed - 1),
	'the pool loads to capacity - claimed on the new primary');
$claimed++;
my $capacity = $claimed + $FINAL_ROOM;
$standby->safe_psql('postgres', "SELECT coupon_pool_resize('fo', $capacity)");
is( $standby->safe_psql(
		'postgres',
		"SELECT count(coupon_claim('fo', 'fill' || g)) FROM generate_series(1, $FINAL_ROOM + 20) g"),
	$FINAL_ROOM, "claiming resumes: exactly the remaining $FINAL_ROOM");
is( $standby->safe_psql(
		'postgres',
		"SELECT (SELECT min(id) FROM coupon_claims WHERE customer LIKE 'fill%') > (SELECT max(id) FROM coupon_claims WHERE customer NOT LIKE 'fill%')"),
	't', 'claim ids go on above every id of the old primary');

# The hold expires on the new primary: moved to expire in a second, its
# expiry worker returns it.
$standby->safe_psql('postgres', "SELECT coupon_hold_extend($held, '1 second')");
ok( $standby->poll_query_until(
		'postgres',
		"SELECT released_at IS NOT NULL FROM coupon_claims WHERE id = $held"),
	'the new primary expires the hold');
check_pools($standby, 'postgres', 'after filling', loaded => 1);
check_log($standby, '013_failover');
$standby->stop;
done_testing();
