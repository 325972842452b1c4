# Load: 500 simultaneous connections.
#
# Round 1: 500 connections (pgbench -c 500 -t 1), all connected and
# waiting at a barrier (an advisory lock the test holds), are released at
# once onto a 50-coupon pool.  Exactly 50 are granted, 450 answered NULL
# (sold_out), the ledger holds exactly the 50 granted ids.
#
# Round 2: the same 500 onto a 25-coupon pool whose 25 permits are all in
# flight in an open transaction, with a wait time: all 500 sleep on the
# pool's wait queue; the holder rolls back; exactly 25 are granted and the
# other 475 are told sold_out once the winners have committed.
#
# Afterwards the server is healthy: it accepts connections and queries,
# nothing crashed, every pool balances, and claiming goes on.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use CouponTest;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

my $USERS = 500;
# Round 2's wait time: its sleepers must be woken by the holder's rollback,
# which comes once all of them sleep; a lost wake-up lets it run out, and
# the sleepers then answer timed_out instead of 25 granted.  Also the
# bound of a round's pgbench run, a guard against a hang.
my $WAIT = 90;
my $t0 = time;
my $node = coupon_node('load500', conf => ['max_connections = 600']);
$node->safe_psql(
	'postgres', q{
SELECT coupon_pool_create('burst', 50);
SELECT coupon_pool_create('burst2', 25, 25);
CREATE TABLE burst_result (round int, client int, claim_id bigint,
                           status text, answered_at timestamptz,
                           PRIMARY KEY (round, client));
});
my $dir = PostgreSQL::Test::Utils::tempdir;
my $barrier = bg_open($node);

sub waiting_at_barrier
{
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
		  . " AND objid = 4242 AND NOT granted");
}

# Start pgbench with 500 clients that wait at the barrier, then run the
# claim; returns the harness once all 500 wait.
sub start_round
{
	my ($round, $claim) = @_;
	bg_run($barrier, 'SELECT pg_advisory_lock(4242)');
	append_to_file(
		"$dir/round$round.sql", qq{
SELECT pg_advisory_lock_shared(4242);
SELECT pg_advisory_unlock_shared(4242);
INSERT INTO burst_result
SELECT $round, :client_id, d.claim_id, d.status, clock_timestamp()
  FROM $claim d;
});
	my $h = IPC::Run::start(
		[
			'pgbench', '-n', '-c', $USERS, '-j', 4, '-t', 1,
			'-h', $node->host, '-p', $node->port,
			'-f', "$dir/round$round.sql", 'postgres'
		],
		'>', "$dir/round$round.out", '2>', "$dir/round$round.err",
		IPC::Run::timeout(
			$PostgreSQL::Test::Utils::timeout_default + $WAIT,
			name => "the pgbench of round $round (hang guard)"));
	my $until = time + $PostgreSQL::Test::Utils::timeout_default;
	my $n = 0;
	while (time < $until)
	{
		$n = waiting_at_barrier();
		last if $n == $USERS;
		usleep(100_000);
	}
	is($n, $USERS, "round $round: $USERS connections wait at the barrier");
	return $h;
}

sub finish_round
{
	my ($round, $h) = @_;
	$h->finish;
	my $rc = $? >> 8;
	my $out = slurp_file("$dir/round$round.out");
	is($rc, 0, "round $round: pgbench succeeded")
	  or diag($out . slurp_file("$dir/round$round.err"));
	like($out,
		qr/number of transactions actually processed: $USERS\/$USERS/,
		"round $round: all $USERS clients got an answer");
}

############################################################################
# Round 1: 500 at once on 50 coupons.
############################################################################
my $h = start_round(1, "coupon_claim_detailed('burst', 'u' || :client_id)");
my $released = time;
bg_run($barrier, 'SELECT pg_advisory_unlock(4242)');
finish_round(1, $h);
my $round1_secs = time - $released;

# Without a wait, a claimer that finds nothing available is told sold_out,
# or timed_out if permits were still in flight (the winners' transactions
# not yet committed): both are NULL.
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FILTER (WHERE status = 'granted' AND claim_id IS NOT NULL), "
		  . "count(*) FILTER (WHERE status IN ('sold_out', 'timed_out') AND claim_id IS NULL) "
		  . "FROM burst_result WHERE round = 1"),
	'50|450',
	'round 1: exactly 50 granted, the other 450 got NULL');
my $timed_out1 = $node->safe_psql('postgres',
	"SELECT count(*) FROM burst_result WHERE round = 1 AND status = 'timed_out'");
is( $node->safe_psql(
		'postgres', q{
SELECT count(*), count(DISTINCT c.customer)
  FROM coupon_claims c
  JOIN burst_result r ON r.round = 1 AND r.claim_id = c.id
                     AND c.customer = 'u' || r.client
 WHERE c.pool = 'burst' AND c.released_at IS NULL}),
	'50|50',
	'round 1: the ledger holds the 50 granted ids, for their customers');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM coupon_claims WHERE pool = 'burst'"),
	'50', 'round 1: and nothing else');
my $p = check_pools($node, 'postgres', 'round 1', pools => ['burst'],
	loaded => 1, grants => 1);
is($p->{burst}{sold_out}, 450, 'round 1: 450 sold-out answers counted');
my $spread1 = $node->safe_psql('postgres',
	"SELECT round(extract(epoch FROM max(answered_at) - min(answered_at))::numeric * 1000) FROM burst_result WHERE round = 1"
);

############################################################################
# Round 2: 500 asleep on the wait queue of a pool whose permits are all in
# flight; the holder rolls back.
############################################################################
my $holder = bg_open($node);
bg_run($holder, 'BEGIN');
bg_run($holder, "SELECT coupon_claim('burst2', 'holder', 25)");
$h = start_round(2,
	"coupon_claim_detailed('burst2', 'v' || :client_id, 1, '$WAIT s')");
bg_run($barrier, 'SELECT pg_advisory_unlock(4242)');
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Extension'"
		  . " AND backend_type = 'client backend'",
		$USERS),
	"round 2: all $USERS claimers sleep on the wait queue");
is(memory_of($node, 'postgres', 'burst2')->[0],
	0, 'round 2: nothing available while they sleep');
$released = time;
bg_run($holder, 'ROLLBACK');
finish_round(2, $h);
my $round2_secs = time - $released;

is( $node->safe_psql(
		'postgres',
		"SELECT status || ':' || count(*) FROM burst_result WHERE round = 2 GROUP BY status ORDER BY status"
	),
	"granted:25\nsold_out:475",
	'round 2: exactly 25 granted after the rollback, 475 sold out');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM coupon_claims c
  JOIN burst_result r ON r.round = 2 AND r.claim_id = c.id
                     AND c.customer = 'v' || r.client
 WHERE c.pool = 'burst2' AND c.released_at IS NULL}),
	'25',
	'round 2: the ledger holds the 25 granted ids');
$p = check_pools($node, 'postgres', 'round 2', pools => ['burst2'],
	loaded => 1, grants => 1);
is($p->{burst2}{waits}, $USERS, "round 2: all $USERS claims waited");
bg_close($holder);
bg_close($barrier);

############################################################################
# The server is healthy afterwards.
############################################################################
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
		'0'),
	'all 1000 sessions are gone');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server answers queries');
$node->safe_psql('postgres', "SELECT coupon_pool_create('after', 3)");
is( $node->safe_psql(
		'postgres',
		"SELECT count(coupon_claim('after', 'w' || g)) FROM generate_series(1, 5) g"
	),
	'3',
	'claiming goes on: a new pool grants exactly its 3');
check_pools($node, 'postgres', 'after the load', loaded => 1, grants => 1);
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|PANIC|out of memory|too many clients/,
	'the server log shows no crash and no refused connection');

note sprintf(
	"load figures: %d simultaneous connections (max_connections 600); "
	  . "round 1: 50 of %d granted, %d NULL (%d of them while permits "
	  . "were still in flight), answers within %d ms of each "
	  . "other, %.2f s from barrier to last answer; round 2: %d claimers "
	  . "asleep on the wait queue, 25 granted, %d sold out, %.2f s from the "
	  . "holder's rollback to the last answer; %.1f s in all",
	$USERS, $USERS, $USERS - 50, $timed_out1, $spread1, $round1_secs, $USERS,
	$USERS - 25, $round2_secs, time - $t0);

check_log($node, '004_load500');
$node->stop;
done_testing();
