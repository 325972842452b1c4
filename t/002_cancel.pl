# Cancel and timeout.
#
# pg_cancel_backend, statement_timeout, lock_timeout, pg_terminate_backend,
# idle_in_transaction_session_timeout, a deadlock and an error at COMMIT
# hit claimers
#   A. while they sleep on a pool's wait queue (permits in flight held by
#      another open transaction),
#   B. while they are inside a claim, blocked on the customer lock held by
#      another session claiming for the same customer (and a REPEATABLE
#      READ or SERIALIZABLE claimer whose snapshot predates the other
#      claim gets the same claim),
#   C. while they are inside a claim after the permit was taken, blocked
#      writing the ledger row (a test trigger holds them there), or blocked
#      on the ledger's table lock,
#   D. during a long transaction after the claim, after a savepoint, idle
#      in transaction, or failing at COMMIT,
#   E. in a herd of sleepers, some cancelled, one timed out,
#   F. as the victim of a deadlock between two claimers,
#   H. and a pool drop waiting for a release in flight is cancelled.
# After each hit: no permit is lost or duplicated (the semaphore's in_flight
# and available are exactly what the open transactions hold), and at the
# end every pool balances and the ledger holds exactly the claims that
# committed.
#
#   G. checks that a wait on the queue cannot hang on a cycle the deadlock
#      detector does not see: the transaction whose permits a claimer
#      sleeps for claims for the sleeper's customer; and a transaction
#      waits for permits only it holds.  Each must be answered promptly,
#      not after the whole wait.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use CouponTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

# The wait time of every claim that the test wakes, cancels or times out
# while it sleeps: the bound each such claim is checked against (a lost
# wake-up, or a cancel that does not interrupt the sleep, makes it run
# out), and so the seconds after which such a bug fails the test.
my $WAIT = 20;
# The statement_timeout that ends a sleeping claim in A2.
my $TIMEOUT = 2;

my $t0 = time;
my $node = coupon_node('cancel');
$node->safe_psql(
	'postgres', q{
SELECT coupon_pool_create('q', 2, 2);
SELECT coupon_pool_create('cl', 10, 1);
SELECT coupon_pool_create('herd', 1, 1);
CREATE TABLE parent (id int PRIMARY KEY);
CREATE TABLE child (id int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);
});

my %hits;

# Shared-memory state of a pool as "available/in_flight".
sub mem
{
	my ($pool) = @_;
	my $m = memory_of($node, 'postgres', $pool);
	return $m ? "$m->[0]/$m->[1]" : 'not loaded';
}

sub cancel
{
	my ($pid) = @_;
	$hits{'pg_cancel_backend'}++;
	return $node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
}

sub customers
{
	my ($pool) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(customer, ',' ORDER BY customer) FROM coupon_claims"
		  . " WHERE pool = '$pool' AND released_at IS NULL");
}

############################################################################
# A. Claimers asleep on the wait queue.
############################################################################
my $h = bg_open($node);
bg_run($h, 'BEGIN');
ok(bg_run($h, "SELECT coupon_claim('q', 'holder', 2)") =~ /^\d+$/,
	'queue: the holder claims both coupons in an open transaction');
is(mem('q'), '0/2', 'queue: 0 available, 2 in flight');

my $w = bg_open($node);
my $wpid = bg_pid($w);

# A1: pg_cancel_backend while asleep.
bg_send($w, "SELECT coupon_claim('q', 'w1', 1, '$WAIT s')");
ok(wait_until_event($node, $wpid, 'Extension'),
	'queue: claimer sleeps on the wait queue (wait_event_type Extension)');
is(cancel($wpid), 't', 'queue: pg_cancel_backend sent');
my ($out, $state, $err, $took) = bg_collect($w);
is($state, '57014', 'queue: the sleeping claim is cancelled (57014)');
cmp_ok($took, '<', $WAIT,
	"queue: the cancel ended the sleep before its $WAIT s wait time ran out");
is(mem('q'), '0/2', 'queue: after the cancel, still 0 available, 2 in flight');

# A2: statement_timeout while asleep.
my $waits_before = memory_of($node, 'postgres', 'q')->[4];
bg_run($w, "SET statement_timeout = '${TIMEOUT}s'");
bg_send($w, "SELECT coupon_claim('q', 'w2', 1, '$WAIT s')");
($out, $state, $err, $took) = bg_collect($w);
$hits{statement_timeout}++;
is($state, '57014', 'queue: statement_timeout ends the sleeping claim');
ok($took >= $TIMEOUT && $took < $WAIT,
	"queue: ended after its $TIMEOUT s statement_timeout, before its $WAIT s wait time ($took s)");
is(memory_of($node, 'postgres', 'q')->[4],
	$waits_before + 1, 'queue: the timed-out claim had slept on the queue');
bg_run($w, 'RESET statement_timeout');
is(mem('q'), '0/2', 'queue: after the timeout, still 0 available, 2 in flight');

# A3: the claim's own wait time runs out: timed_out, not sold_out.
($out, $state, $err, $took) = (
	bg_run($w,
		"SELECT claim_id IS NULL, status, available FROM coupon_claim_detailed('q', 'w3', 1, '300ms')"
	),
	'', '', 0);
is($out, 't|timed_out|0', 'queue: wait time runs out: timed_out, nothing granted');
is(mem('q'), '0/2', 'queue: still 0 available, 2 in flight');

# A4: pg_terminate_backend while asleep.
my $wt = bg_open($node);
my $wtpid = bg_pid($wt);
bg_send($wt, "SELECT coupon_claim('q', 'w_term', 1, '$WAIT s')");
ok(wait_until_event($node, $wtpid, 'Extension'),
	'queue: another claimer sleeps on the queue');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($wtpid)");
$hits{pg_terminate_backend}++;
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE pid = $wtpid", '0'),
	'queue: the sleeping claimer is terminated');
bg_close($wt);
is(mem('q'), '0/2', 'queue: after the termination, still 0 available, 2 in flight');

# A5: after all that, a sleeper is still woken by an abort.
bg_send($w,
	"SELECT status, available FROM coupon_claim_detailed('q', 'w4', 1, '$WAIT s')");
ok(wait_until_event($node, $wpid, 'Extension'),
	'queue: a new claimer sleeps on the queue');
bg_run($h, 'ROLLBACK');
($out, $state, $err, $took) = bg_collect($w);
is($out, 'granted|1', 'queue: the holder\'s abort wakes it and it is granted');
cmp_ok($took, '<', $WAIT,
	"queue: woken by the abort, before its $WAIT s wait time ran out");
is(mem('q'), '1/0', 'queue: 1 available, nothing in flight');
is(customers('q'), 'w4', 'queue: the ledger holds only the granted claim');

############################################################################
# B. Inside a claim: blocked on the customer lock.
############################################################################
my $s1 = bg_open($node);
bg_run($s1, 'BEGIN');
my $id_same = bg_run($s1, "SELECT coupon_claim('cl', 'same')");
like($id_same, qr/^\d+$/, 'customer lock: first session claims for "same"');
my $s2 = bg_open($node);
my $s2pid = bg_pid($s2);

bg_send($s2, "SELECT coupon_claim('cl', 'same')");
ok(wait_until_event($node, $s2pid, 'Lock', 'advisory'),
	'customer lock: second session waits on the customer lock');
is(mem('cl'), '9/1', 'customer lock: only the first claim is in flight');
cancel($s2pid);
($out, $state) = bg_collect($s2);
is($state, '57014', 'customer lock: the waiting claim is cancelled');

bg_run($s2, "SET statement_timeout = '300ms'");
bg_send($s2, "SELECT coupon_claim('cl', 'same')");
($out, $state, $err, $took) = bg_collect($s2);
$hits{statement_timeout}++;
is($state, '57014', 'customer lock: statement_timeout ends the waiting claim');
bg_run($s2, 'RESET statement_timeout');

bg_run($s2, "SET lock_timeout = '200ms'");
bg_send($s2, "SELECT coupon_claim('cl', 'same')");
($out, $state) = bg_collect($s2);
$hits{lock_timeout}++;
is($state, '55P03', 'customer lock: lock_timeout ends the waiting claim');
bg_run($s2, 'RESET lock_timeout');
is(mem('cl'), '9/1', 'customer lock: still exactly one permit in flight');

bg_run($s1, 'COMMIT');
is(bg_run($s2, "SELECT coupon_claim('cl', 'same')"),
	$id_same, 'customer lock: afterwards the same customer gets the same claim');
is(mem('cl'), '9/0', 'customer lock: 9 available, nothing in flight');

# The customer lock also serializes transactions whose snapshot is older
# than the other's claim: REPEATABLE READ and SERIALIZABLE get the repeat.
for my $iso ('REPEATABLE READ', 'SERIALIZABLE')
{
	(my $cust = lc $iso) =~ s/ /_/;
	bg_run($s1, "BEGIN ISOLATION LEVEL $iso");
	bg_run($s1, 'SELECT count(*) FROM coupon_pool');    # takes the snapshot
	my $id = bg_run($s2, "SELECT coupon_claim('cl', '$cust')");
	is(bg_run($s1, "SELECT coupon_claim('cl', '$cust')"),
		$id, "$iso: a claim committed after the snapshot is seen: same id");
	bg_run($s1, 'COMMIT');
}
is(mem('cl'), '7/0', 'isolation levels: one claim each, nothing in flight');

############################################################################
# C. Inside a claim, after the permit was taken, while the ledger row is
# written.  The fault injector: an AFTER INSERT trigger on the ledger (the
# extension refuses BEFORE ROW triggers) that, for customers named block*,
# waits for an advisory lock the test holds.
# And, without it, a claimer blocked on the ledger's table lock.
############################################################################
$node->safe_psql(
	'postgres', q{
CREATE FUNCTION block_claim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.customer LIKE 'block%' THEN
        PERFORM pg_advisory_xact_lock_shared(4242);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER block_claim AFTER INSERT ON coupon_claims
    FOR EACH ROW EXECUTE FUNCTION block_claim();
});
my $locker = bg_open($node);
bg_run($locker, 'SELECT pg_advisory_lock(4242)');
my $s3 = bg_open($node);
my $s3pid = bg_pid($s3);

bg_send($s3, "SELECT coupon_claim('cl', 'block3')");
ok(wait_until_event($node, $s3pid, 'Lock', 'advisory'),
	'ledger write: claimer blocks writing its ledger row');
is(mem('cl'), '6/1', 'ledger write: its permit is taken and in flight');
cancel($s3pid);
($out, $state) = bg_collect($s3);
is($state, '57014', 'ledger write: the claim is cancelled');
is(mem('cl'), '7/0', 'ledger write: the permit is back at once');

bg_run($s3, "SET statement_timeout = '500ms'");
bg_send($s3, "SELECT coupon_claim('cl', 'block3b')");
($out, $state) = bg_collect($s3);
$hits{statement_timeout}++;
is($state, '57014', 'ledger write: statement_timeout ends the claim');
bg_run($s3, 'RESET statement_timeout');
is(mem('cl'), '7/0', 'ledger write: the permit is back after the timeout');

my $s4 = bg_open($node);
my $s4pid = bg_pid($s4);
bg_send($s4, "SELECT coupon_claim('cl', 'block4')");
ok(wait_until_event($node, $s4pid, 'Lock', 'advisory'),
	'ledger write: another claimer blocks writing its ledger row');
is(mem('cl'), '6/1', 'ledger write: its permit is in flight');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($s4pid)");
$hits{pg_terminate_backend}++;
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE pid = $s4pid", '0'),
	'ledger write: the terminated backend is gone');
bg_close($s4);
is(mem('cl'), '7/0', 'ledger write: the terminated claim gave its permit back');
bg_run($locker, 'SELECT pg_advisory_unlock(4242)');
$node->safe_psql('postgres',
	'DROP TRIGGER block_claim ON coupon_claims; DROP FUNCTION block_claim()');

# Blocked on the ledger's table lock, wherever in the claim that is.
bg_run($locker, 'BEGIN');
bg_run($locker, 'LOCK TABLE coupon_claims IN SHARE MODE');
bg_send($s3, "SELECT coupon_claim('cl', 'c3')");
ok(wait_until_event($node, $s3pid, 'Lock', 'relation'),
	'table lock: claimer blocks on the ledger table lock');
cancel($s3pid);
($out, $state) = bg_collect($s3);
is($state, '57014', 'table lock: the claim is cancelled');
is(mem('cl'), '7/0', 'table lock: no permit lost or kept');
bg_run($locker, 'ROLLBACK');
bg_close($locker);

is(bg_run($s3, "SELECT coupon_claim('cl', 'c3') IS NOT NULL"),
	't', 'the cancelled customer can claim afterwards');
is(mem('cl'), '6/0', 'ledger write: 6 available, nothing in flight');

############################################################################
# D. A long transaction after the claim.
############################################################################
my $s5 = bg_open($node);
my $s5pid = bg_pid($s5);

# D1: cancelled in pg_sleep after the claim.
bg_run($s5, 'BEGIN');
bg_run($s5, "SELECT coupon_claim('cl', 'long1')");
bg_send($s5, "SELECT pg_sleep($WAIT)");
ok(wait_until_event($node, $s5pid, 'Timeout', 'PgSleep'),
	'long transaction: sleeping after its claim');
is(mem('cl'), '5/1', 'long transaction: its permit is in flight');
cancel($s5pid);
($out, $state) = bg_collect($s5);
is($state, '57014', 'long transaction: cancelled');
is(mem('cl'), '6/0', 'long transaction: the permit is back as the transaction aborts');
bg_run($s5, 'ROLLBACK');

# D2: statement_timeout in one autocommit statement that claims then sleeps.
bg_run($s5, "SET statement_timeout = '300ms'");
bg_send($s5, "SELECT coupon_claim('cl', 'long2'), pg_sleep(5)");
($out, $state) = bg_collect($s5);
$hits{statement_timeout}++;
is($state, '57014', 'claim then sleep in one statement: statement_timeout');
bg_run($s5, 'RESET statement_timeout');
is(mem('cl'), '6/0', 'claim then sleep: the permit is back');

# D3: cancelled after a savepoint; ROLLBACK TO the savepoint, then COMMIT.
bg_run($s5, 'BEGIN');
bg_run($s5, "SELECT coupon_claim('cl', 'sp1')");
bg_run($s5, 'SAVEPOINT a');
bg_run($s5, "SELECT coupon_claim('cl', 'sp2')");
bg_send($s5, "SELECT pg_sleep($WAIT)");
ok(wait_until_event($node, $s5pid, 'Timeout', 'PgSleep'),
	'savepoint: sleeping after two claims');
is(mem('cl'), '4/2', 'savepoint: two permits in flight');
cancel($s5pid);
($out, $state) = bg_collect($s5);
is($state, '57014', 'savepoint: cancelled');
bg_run($s5, 'ROLLBACK TO SAVEPOINT a');
is(mem('cl'), '5/1', 'savepoint: ROLLBACK TO gave the second permit back');
bg_run($s5, 'COMMIT');
is(mem('cl'), '5/0', 'savepoint: COMMIT kept the first claim');

# D4: idle_in_transaction_session_timeout terminates a session holding a
# claim.
my $s6 = bg_open($node);
my $s6pid = bg_pid($s6);
bg_run($s6, 'BEGIN');
bg_run($s6, "SELECT coupon_claim('cl', 'idle')");
# Armed once the claim is in: the timer starts when the session goes idle.
bg_run($s6, "SET idle_in_transaction_session_timeout = '300ms'");
$hits{idle_in_transaction_session_timeout}++;
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE pid = $s6pid", '0'),
	'idle in transaction: the session is terminated');
bg_close($s6);
is(mem('cl'), '5/0', 'idle in transaction: the permit is back');

# D5: an error at COMMIT (a deferred foreign key) after the claim.
bg_run($s5, 'BEGIN');
bg_run($s5, "SELECT coupon_claim('cl', 'deferred')");
bg_run($s5, 'INSERT INTO child VALUES (42)');
is(mem('cl'), '4/1', 'error at commit: the permit is in flight');
bg_send($s5, 'COMMIT');
($out, $state) = bg_collect($s5);
$hits{'error at COMMIT'}++;
is($state, '23503', 'error at commit: COMMIT fails on the deferred constraint');
is(mem('cl'), '5/0', 'error at commit: the permit is back');

is(customers('cl'), 'c3,repeatable_read,same,serializable,sp1',
	'the ledger of cl holds exactly the committed claims');

############################################################################
# E. A herd on the wait queue, some cancelled, one timed out.
############################################################################
my $hh = bg_open($node);
bg_run($hh, 'BEGIN');
bg_run($hh, "SELECT coupon_claim('herd', 'holder')");
my (@herd, @hpid);
for my $i (1 .. 8)
{
	push @herd, bg_open($node);
	push @hpid, bg_pid($herd[-1]);
	bg_run($herd[-1], "SET statement_timeout = '3s'") if $i == 4;
}
bg_send($herd[ $_ - 1 ], "SELECT coupon_claim('herd', 'h$_', 1, '$WAIT s')")
  for 1 .. 8;
# Claimer 4 may time out before the others are seen asleep; that it slept
# too is counted below (8 claims waited).
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Extension'"
		  . " AND pid IN (" . join(',', @hpid[ 0 .. 2, 4 .. 7 ]) . ")",
		'7'),
	'herd: the 7 claimers without a timeout sleep on the queue');
cancel($hpid[$_]) for 0 .. 2;
for my $i (0 .. 3)
{
	($out, $state) = bg_collect($herd[$i]);
	is($state, '57014', 'herd: claimer ' . ($i + 1) . ' cancelled or timed out');
}
$hits{statement_timeout}++;
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Extension'"
		  . " AND pid IN (" . join(',', @hpid) . ")",
		'4'),
	'herd: the other 4 still sleep');
is(mem('herd'), '0/1', 'herd: one permit in flight, none available');
bg_run($hh, 'ROLLBACK');
my @got;
for my $i (4 .. 7)
{
	($out, $state) = bg_collect($herd[$i]);
	is($state, '00000', 'herd: claimer ' . ($i + 1) . ' answered');
	push @got, $out if $out ne '';
}
is(scalar(@got), 1, 'herd: exactly one sleeper got the coupon, three got NULL');
is(mem('herd'), '0/0', 'herd: none available, nothing in flight');
is(memory_of($node, 'postgres', 'herd')->[4], 8, 'herd: 8 claims waited');
($out, $state, $err, $took) = (
	bg_run($herd[0],
		"SELECT status FROM coupon_claim_detailed('herd', 'late', 1, '$WAIT s')"),
	'', '', 0);
is($out, 'sold_out', 'herd: sold out with nothing in flight: told at once');
is(memory_of($node, 'postgres', 'herd')->[4], 8, 'herd: without sleeping');

############################################################################
# F. A deadlock between two claimers (customer locks in opposite order) is
# detected; the victim's permits come back.
############################################################################
$node->safe_psql('postgres', "SELECT coupon_pool_create('dl', 10)");
bg_run($s1, 'BEGIN');
bg_run($s1, "SELECT coupon_claim('dl', 'x')");
bg_run($s2, 'BEGIN');
bg_run($s2, "SELECT coupon_claim('dl', 'y')");
my $s1pid = bg_pid($s1);
bg_send($s1, "SELECT coupon_claim('dl', 'y')");
ok(wait_until_event($node, $s1pid, 'Lock', 'advisory'),
	'deadlock: the first session waits for the second\'s customer');
bg_send($s2, "SELECT coupon_claim('dl', 'x')");
my ($out1, $state1) = bg_collect($s1);
my ($out2, $state2) = bg_collect($s2);
is(join(',', sort($state1, $state2)), '00000,40P01',
	'deadlock: detected, one claimer is the victim');
$hits{'deadlock victim'}++;
is(mem('dl'), '8/2', 'deadlock: the victim\'s permit is back, the survivor holds 2');
bg_run($s1, $state1 eq '00000' ? 'COMMIT' : 'ROLLBACK');
bg_run($s2, $state2 eq '00000' ? 'COMMIT' : 'ROLLBACK');
is(mem('dl'), '8/0', 'deadlock: the survivor committed its 2 claims');

############################################################################
# G. A claimer asleep on the wait queue must not hold its customer's lock:
# if the transaction whose permits it waits for then claims for that
# customer, the two would wait for each other, unseen by the deadlock
# detector, until the sleeper's wait time ran out.
############################################################################
$node->safe_psql('postgres', "SELECT coupon_pool_create('dq', 1)");
my $qa = bg_open($node);
my $qb = bg_open($node);
my $qapid = bg_pid($qa);
bg_run($qb, 'BEGIN');
bg_run($qb, "SELECT coupon_claim('dq', 'b1')");
bg_send($qa, "SELECT status FROM coupon_claim_detailed('dq', 'X', 1, '$WAIT s')");
ok(wait_until_event($node, $qapid, 'Extension'),
	'queue and customer lock: A sleeps on the queue for B\'s permit');
bg_send($qb, "SELECT coupon_claim('dq', 'X')");
my ($outb, $stateb, $errb, $tookb) = bg_collect($qb);
# B's answer, against the instant A's wait time runs out (counted from
# before A's statement was sent, so never later than the server's).
my $b_late = $qb->{coupon_started} + $tookb - ($qa->{coupon_started} + $WAIT);
my ($outa, $statea, $erra, $tooka) = bg_collect($qa);
cmp_ok($b_late, '<', 0,
	"queue and customer lock: B is answered before A's $WAIT s wait runs out")
  or diag("B waited $tookb s ($stateb $outb $errb); A: $statea $outa after $tooka s");
bg_run($qb, $stateb eq '00000' ? 'COMMIT' : 'ROLLBACK');
is(mem('dq'), '0/0', 'queue and customer lock: nothing in flight afterwards');

# The smallest such cycle: a transaction waiting for permits that only it
# holds in flight.  They cannot come back while it waits.
$node->safe_psql('postgres', "SELECT coupon_pool_create('selfwait', 1)");
bg_run($qa, 'BEGIN');
bg_run($qa, "SELECT coupon_claim('selfwait', 'a')");
bg_send($qa,
	"SELECT status FROM coupon_claim_detailed('selfwait', 'b', 1, '$WAIT s')");
($outa, $statea, $erra, $tooka) = bg_collect($qa);
is($statea, '00000', 'self wait: answered');
cmp_ok($tooka, '<', $WAIT,
	"self wait: a transaction does not sleep out its $WAIT s wait on permits only it holds")
  or diag("it slept $tooka s and got: $outa");
bg_run($qa, 'ROLLBACK');
is(mem('selfwait'), '1/0', 'self wait: nothing in flight afterwards');
bg_close($_) for $qa, $qb;

############################################################################
# H. A drop that waits (for a release in flight to end) is cancelled: the
# pool refuses claims while the drop runs and takes them again afterwards.
############################################################################
$node->safe_psql('postgres',
	"SELECT coupon_pool_create('dropme', 3); SELECT coupon_claim('dropme', 'r1')");
my $rid = $node->safe_psql('postgres',
	"SELECT id FROM coupon_claims WHERE pool = 'dropme'");
bg_run($s1, 'BEGIN');
is(bg_run($s1, "SELECT coupon_release($rid)"), 't',
	'drop: a release is in flight');
my $dpid = bg_pid($s2);
bg_send($s2, "SELECT coupon_pool_drop('dropme')");
ok(wait_until_event($node, $dpid, 'Lock'),
	'drop: the drop waits for the release in flight');
expect_state($node, 'postgres', "SELECT coupon_claim('dropme', 'during')",
	'55006', 'drop: claims are refused while it runs');
cancel($dpid);
($out, $state) = bg_collect($s2);
is($state, '57014', 'drop: cancelled');
is($node->safe_psql('postgres',
		"SELECT status FROM coupon_claim_detailed('dropme', 'after')"),
	'granted', 'drop: after the cancel the pool takes claims again');
bg_run($s1, 'COMMIT');
is(mem('dropme'), '2/0', 'drop: the release committed: 2 available');
is(customers('dropme'), 'after', 'drop: the ledger of the pool is intact');

bg_close($_) for @herd, $hh, $h, $w, $s1, $s2, $s3, $s5;

check_pools($node, 'postgres', 'after cancels and timeouts',
	loaded => 1, grants => 1);
is( $node->safe_psql(
		'postgres',
		"SELECT pool || ':' || count(*) FROM coupon_claims GROUP BY pool ORDER BY pool"
	),
	"cl:5\ndl:2\ndq:1\ndropme:2\nherd:1\nq:1",
	'the ledger holds exactly the claims that committed');

note sprintf(
	"cancel figures: %s; 0 permits lost, 0 duplicated, in_flight 0 at the end, %.1f s",
	join(', ', map { "$hits{$_} $_" } sort keys %hits), time - $t0);

check_log($node, '002_cancel');
$node->stop;
done_testing();
