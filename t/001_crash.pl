# Crash under load.
#
# Many clients claim from one pool, each for its own customers, while
#   (a) a claiming backend is killed with SIGKILL, so that the postmaster
#       kills every backend and reinitializes shared memory, and
#   (b) the server is stopped with -m immediate and started again,
# and, at each crash, other sessions hold a claim in flight, a release in
# flight and a claimer asleep on the wait queue.  Every client records the
# claim ids it saw acknowledged (an autocommit SELECT coupon_claim() that
# returned a row: its transaction committed) and, when its connection dies,
# reconnects and retries the claims it did not see answered, the claim in
# doubt included.
#
# Afterwards: committed unreleased claims <= capacity (invariant 2), every
# acknowledged id is in the ledger for its customer (invariant 4), each
# customer holds exactly one claim (no duplicate from a retry, invariant 5),
# nothing in flight at a crash survived, the semaphore reloads to
# capacity - claimed with nothing in flight (invariants 1 and 3), ids keep
# increasing across restarts, and claiming resumes until exactly the
# capacity is granted.
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

my $CLIENTS = 16;
my $MAX_PER_CLIENT = 60000;	# customers a client may get through (4x what
							# a fast machine claims before the stop)
my $CAPACITY = 1000000;		# more than the load can claim
my $STEP = 3000;			# ledger rows between the events below
my $FINAL_ROOM = 2000;		# left to claim after the load

my $t0 = time;
my $node = coupon_node('crash',
	conf => [ 'restart_after_crash = on', 'max_connections = 60' ]);

$node->safe_psql(
	'postgres', qq{
SELECT coupon_pool_create('crash', $CAPACITY);
SELECT coupon_pool_create('crashwait', 1);
SELECT coupon_pool_create('crashgrow', 5);
SELECT coupon_pool_create('crashdrop', 3);
SELECT coupon_claim('crashgrow', 'g' || g) FROM generate_series(1, 2) g;
SELECT coupon_claim('crashdrop', 'd1');
SELECT coupon_claim('crash', 'pre_' || g) FROM generate_series(1, 5) g;
SELECT coupon_release(id) FROM coupon_claims WHERE customer = 'pre_3';
});
my %pre = map { split /\|/ } split /\n/,
  $node->safe_psql('postgres',
	"SELECT customer, id FROM coupon_claims WHERE customer LIKE 'pre_%'");


# Rows in the ledger, or -1 while the server cannot answer.  (psql may
# die before reading its input while the server restarts: IPC::Run then
# throws a broken pipe, hence the eval.)
sub ledger_rows
{
	my ($ret, $out) = (1, -1);
	eval {
		($ret, $out) = $node->psql('postgres',
			"SELECT count(*) FROM coupon_claims WHERE pool = 'crash'");
		1;
	};
	return $ret == 0 ? $out : -1;
}

# Poll until the ledger has $n rows of the load; false after $HANG s, a
# guard against a hang only (the load claims thousands a second).
my $HANG = 120;

sub wait_rows
{
	my ($n) = @_;
	my $until = time + $HANG;
	while (time < $until)
	{
		return 1 if ledger_rows() >= $n;
		usleep(50_000);
	}
	return 0;
}

# The highest claim id in the ledger once the server is back: every claim
# with a higher id was made after the restart (ids only grow, and a crash
# makes the sequence jump ahead).
sub max_id
{
	return $node->safe_psql('postgres',
		"SELECT COALESCE(max(id), 0) FROM coupon_claims");
}

# Poll until every client has a claim above id $id in the ledger: all of
# them reconnected and went on.  False after $HANG s (a hang guard).
sub wait_every_client_above
{
	my ($id) = @_;
	my $until = time + $HANG;
	while (time < $until)
	{
		my $n = 0;
		eval {
			$n = $node->safe_psql('postgres',
				"SELECT count(DISTINCT substring(customer from '^k([0-9]+)_'))"
				  . " FROM coupon_claims WHERE pool = 'crash' AND id > $id");
			1;
		};
		return 1 if $n == $CLIENTS;
		usleep(50_000);
	}
	return 0;
}

# Sessions that are in the middle of something when the server dies: a
# claim in flight, a release in flight, a capacity change in flight (growth
# at the first crash, a shrink at the second), a pool drop in flight, and
# on the one-coupon pool a holder with its permit in flight and a claimer
# asleep on the wait queue.
sub open_doomed_sessions
{
	my ($tag, $release) = @_;
	my %s;
	$s{claim} = bg_open($node);
	bg_run($s{claim}, "BEGIN");
	bg_run($s{claim}, "SELECT coupon_claim('crash', 'doomed_$tag')");
	$s{release} = bg_open($node);
	bg_run($s{release}, "BEGIN");
	is(bg_run($s{release}, "SELECT coupon_release($release)"),
		't', "$tag: a release is in flight");
	$s{holder} = bg_open($node);
	bg_run($s{holder}, "BEGIN");
	bg_run($s{holder}, "SELECT coupon_claim('crashwait', 'holder_$tag')");
	$s{resize} = bg_open($node);
	bg_run($s{resize}, "BEGIN");
	bg_run($s{resize},
		"SELECT coupon_pool_resize('crashgrow', "
		  . ($tag eq 'kill' ? 10 : 2) . ")");
	$s{drop} = bg_open($node);
	bg_run($s{drop}, "BEGIN");
	bg_run($s{drop}, "SELECT coupon_pool_drop('crashdrop')");
	$s{waiter} = bg_open($node);
	my $wpid = bg_pid($s{waiter});
	bg_send($s{waiter},
		"SELECT coupon_claim('crashwait', 'waiter_$tag', 1, '10 min')");
	ok(wait_until_event($node, $wpid, 'Extension'),
		"$tag: a claimer sleeps on the wait queue");
	my $mem = memory_of($node, 'postgres', 'crashwait');
	is($mem->[1], 1, "$tag: crashwait has one permit in flight");
	return \%s;
}

sub close_sessions
{
	my ($s) = @_;
	bg_close($_) for values %$s;
}

# At the first crash these sessions are in the middle of something.
my $doomed1 = open_doomed_sessions('kill', $pre{pre_1});

my $claimers = start_claimers($node, pool => 'crash', prefix => 'k',
	clients => $CLIENTS, per_client => $MAX_PER_CLIENT, seconds => 900);

ok(wait_rows($STEP), "load reached $STEP ledger rows (hang guard $HANG s)");

# (a) SIGKILL one claiming backend, in a claim if one is: the postmaster
# then kills them all.  A client's backend lives for one psql run; retry if
# it is gone already.
my ($victim, $rows_at_kill);
my $log_offset = -s $node->logfile;
for (1 .. 200)
{
	my $pid = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE application_name = 'claim_client'"
		  . " ORDER BY state = 'active' DESC LIMIT 1");
	next unless $pid;
	$rows_at_kill = ledger_rows();
	if (kill('KILL', $pid))
	{
		$victim = $pid;
		last;
	}
}
ok($victim, "a claiming backend was sent SIGKILL");
note "killed backend $victim with SIGKILL at $rows_at_kill ledger rows";
ok( $node->wait_for_log(
		qr/(?:server process|client backend) \(PID $victim\) was terminated by signal 9/,
		$log_offset),
	'postmaster saw the SIGKILL');
# Every wait starts from the offset saved before the kill: wait_for_log()
# returns the end of the log at the time it found its line, which can be
# past the next line waited for (the server is back some 50 ms after
# "reinitializing", and the log is polled every 100 ms).
ok( $node->wait_for_log(
		qr/all server processes terminated; reinitializing/, $log_offset),
	'postmaster reinitialized shared memory');
ok( $node->wait_for_log(
		qr/database system is ready to accept connections/, $log_offset),
	'server accepts connections again after the backend crash');
close_sessions($doomed1);
my $id_after_kill = max_id();

# (b) immediate shutdown under load, again with sessions in the middle of
# something.
my $doomed2 = open_doomed_sessions('immediate', $pre{pre_2});
my $rows = ledger_rows();
ok(wait_rows($rows + $STEP),
	"load went on after the crash restart: $STEP more ledger rows (hang guard $HANG s)");
my $rows_at_stop = ledger_rows();
$node->stop('immediate');
note "stopped the server with -m immediate at $rows_at_stop ledger rows";
usleep(300_000);
$node->start;
close_sessions($doomed2);
my $id_after_stop = max_id();
ok(wait_rows($rows_at_stop + $STEP),
	"load went on after the immediate restart: $STEP more ledger rows (hang guard $HANG s)");
ok(wait_every_client_above($id_after_stop),
	"every client claimed again after the immediate restart (hang guard $HANG s)");

# Stop the load; the clients finish the claims they have started.
my $r = stop_claimers($claimers);
my $load_secs = time - $t0;
my %ack = %{ $r->{ack} };
my %by_id = %{ $r->{by_id} };
my @errors = @{ $r->{errors} };
my ($reconnects, $attempted) = ($r->{reconnects}, $r->{attempted});
for my $c (@{ $r->{clients} })
{
	ok($c->{answered} == $c->{attempted} && $c->{attempted} < $MAX_PER_CLIENT,
		"client $c->{n} got an answer for each of its $c->{attempted} customers")
	  or diag("answered $c->{answered} of $c->{attempted}");
	# Whether a crash cuts a client's connection depends on where it
	# stands at that instant (in a claim, or between two psql runs): what
	# the contract promises is that every client goes on after the
	# crashes, with acknowledged claims made after the last restart.
	my @after = grep { $_ ne '' && $_ > $id_after_stop }
	  map { $ack{$_} } grep { /^k$c->{n}_/ } keys %ack;
	ok(@after > 0,
		"client $c->{n} went on after both crashes: claims acknowledged after the last restart")
	  or diag("lost its connection $c->{failed} times");
}
cmp_ok($reconnects, '>=', 1,
	'the crashes cut the connection of the client whose backend was killed, and it reconnected');
cmp_ok($id_after_stop, '>', $id_after_kill, 'claims were made between the two crashes');
is_deeply(\@errors, [], 'clients saw no SQL error, only lost connections');
my $acked = grep { $_ ne '' } values %ack;
is($acked, $attempted,
	'every client claim was granted (demand is below capacity)');
is(scalar(grep { @{ $by_id{$_} } > 1 } keys %by_id),
	0, 'no claim id was acknowledged to two customers');

# Invariant 4: every acknowledged id is in the ledger, for its customer,
# unreleased.
check_acks($node, 'crash', \%ack,
	'every acknowledged claim id is in the ledger for its customer');

# Each client customer holds exactly one claim: the retries of claims in
# doubt answered with the existing claim instead of a second one.
is( $node->safe_psql(
		'postgres', q{
SELECT count(*), count(DISTINCT customer) FROM coupon_claims
 WHERE pool = 'crash' AND customer LIKE 'k%'}),
	"$attempted|$attempted",
	'one ledger row per client customer, none twice');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM coupon_claims c
 WHERE c.customer LIKE 'k%'
   AND NOT EXISTS (SELECT FROM acks a WHERE a.customer = c.customer AND a.id = c.id)}),
	'0',
	'no client customer has a ledger row other than the one acknowledged');

# What was in flight at the crashes is gone; the releases in flight did not
# happen; the release committed before the crashes did.
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM coupon_claims
 WHERE customer LIKE 'doomed_%' OR pool = 'crashwait'}),
	'0',
	'claims in flight (and the waiter) at the crashes left no ledger row');
is( $node->safe_psql(
		'postgres', q{
SELECT string_agg(customer || '=' || (released_at IS NOT NULL), ','
                  ORDER BY customer)
  FROM coupon_claims WHERE customer LIKE 'pre_%'}),
	'pre_1=false,pre_2=false,pre_3=true,pre_4=false,pre_5=false',
	'releases in flight at the crashes rolled back; the committed one stayed'
);

# Invariant 2 at the ledger.
my $claimed = $node->safe_psql('postgres',
	"SELECT sum(qty) FROM coupon_claims WHERE pool = 'crash' AND released_at IS NULL"
);
cmp_ok($claimed, '<=', $CAPACITY, 'committed unreleased claims <= capacity');
check_pools($node, 'postgres', 'right after the load',
	loaded => 1, pools => ['crash']);

# One more restart, idle, with a claim in flight: shared memory starts
# empty and the semaphore reloads from the ledger on first use.
my $holder = bg_open($node);
bg_run($holder, 'BEGIN');
bg_run($holder, "SELECT coupon_claim('crash', 'doomed_idle')");
is((memory_of($node, 'postgres', 'crash') // [])->[1],
	1, 'idle: one claim in flight before the restart');
$node->stop('immediate');
$node->start;
bg_close($holder);
is($node->safe_psql('postgres', 'SELECT count(*) FROM coupon_pool_memory()'),
	'0', 'shared memory is empty after the restart');
is( $node->safe_psql(
		'postgres',
		"SELECT status, available FROM coupon_claim_detailed('crash', 'after_restart')"
	),
	'granted|' . ($CAPACITY - $claimed - 1),
	'first claim after the restart loads available = capacity - claimed');
is( $node->safe_psql(
		'postgres',
		"SELECT status, available FROM coupon_claim_detailed('crashwait', 'after_restart')"
	),
	'granted|0',
	'the wait-queue pool lost nothing: its one permit is granted');
$claimed++;
is( $node->safe_psql(
		'postgres',
		"SELECT pool, capacity, claimed FROM coupon_pools WHERE pool IN ('crashgrow', 'crashdrop') ORDER BY pool"
	),
	"crashdrop|3|1\ncrashgrow|5|2",
	'the resizes and the drop in flight at the crashes did not happen');
is( $node->safe_psql(
		'postgres',
		"SELECT count(coupon_claim('crashgrow', 'after' || g)) + 100 * count(coupon_claim('crashdrop', 'after' || g)) FROM generate_series(1, 6) g"
	),
	'203',
	'those pools grant exactly their remaining 3 and 2');
check_pools($node, 'postgres', 'after the crashes', loaded => 1);

# Claiming resumes until exactly the capacity is granted.  The capacity is
# brought down first to leave room for a known number of claims.
my $capacity = $claimed + $FINAL_ROOM;
$node->safe_psql('postgres', "SELECT coupon_pool_resize('crash', $capacity)");
is( $node->safe_psql(
		'postgres',
		"SELECT count(coupon_claim('crash', 'fill_' || g)) FROM generate_series(1, $FINAL_ROOM + 50) g"
	),
	$FINAL_ROOM,
	"claiming resumes: exactly the remaining $FINAL_ROOM are granted");
is( $node->safe_psql(
		'postgres',
		"SELECT claim_id IS NULL, status, available FROM coupon_claim_detailed('crash', 'one_more')"
	),
	't|sold_out|0',
	'then the pool is sold out');
is( $node->safe_psql(
		'postgres',
		"SELECT sum(qty) FROM coupon_claims WHERE pool = 'crash' AND released_at IS NULL"
	),
	$capacity,
	'the ledger holds exactly the capacity');
check_pools($node, 'postgres', 'sold out after the crashes', loaded => 1);

# Claim ids keep increasing across crashes (fencing tokens).
is( $node->safe_psql(
		'postgres', q{
SELECT (SELECT min(id) FROM coupon_claims WHERE customer LIKE 'fill_%')
     > (SELECT max(id) FROM coupon_claims WHERE customer NOT LIKE 'fill_%')}),
	't',
	'claim ids issued after the crashes are above every earlier id');

note sprintf(
	"crash figures: %d clients, %d claims acknowledged, 3 server restarts "
	  . "(a SIGKILLed backend at %d ledger rows, -m immediate at %d rows "
	  . "under load, -m immediate idle), %d client reconnects, %d claims in "
	  . "doubt retried, 0 acknowledged claims lost, 0 duplicated, "
	  . "in_flight 0 after restart, %.1f s",
	$CLIENTS, $acked, $rows_at_kill, $rows_at_stop, $reconnects,
	scalar(@{ $r->{doubt} }), $load_secs);

check_log($node, '001_crash');
$node->stop;
done_testing();
