# Expiry under the conditions a review found it failing:
#   - the launcher with more databases than fit its first list (it crashed
#     at start with six connectable databases);
#   - more pools with overdue holds than coupon.max_pools (the worker
#     pinned a slot per pool in one transaction and failed for ever);
#   - an AFTER trigger on the ledger that fails in the worker's session:
#     the other pools' holds are still returned, and that pool's once the
#     trigger is fixed;
#   - an extend that moves a hold's expiry earlier while the pool is being
#     loaded (the slot kept the later expiry, and claimers never looked);
#   - a hold granted after a wait expires ttl after the grant.
# Every pool stays balanced and every hold is returned exactly once.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use CouponTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = coupon_node('expiry_attacks', conf => ['coupon.max_pools = 3']);

sub returned
{
	my ($db, $id, $label) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	ok(wait_returned($node, $db, $id), "$db: $label");
	return;
}

sub wait_for_log
{
	my ($re) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		return 1 if slurp_file($node->logfile) =~ $re;
		select(undef, undef, undef, 0.1);
	}
	return 0;
}

############################################################################
# Six or more connectable databases: the launcher visits them all and
# keeps running.
############################################################################
for my $i (1 .. 5)
{
	$node->safe_psql('postgres', "CREATE DATABASE visit$i");
}
$node->safe_psql('visit5',
	"CREATE EXTENSION coupon; SELECT coupon_pool_create('p', 1)");
my $in_visit5 = $node->safe_psql('visit5',
	"SELECT coupon_hold('p', 'h', '1 hour')");
$node->safe_psql('visit5',
	"UPDATE coupon_claims SET expires_at = clock_timestamp() - interval '1 second' WHERE id = $in_visit5");
# The update announced nothing: only the launcher's visit at its start
# finds the overdue hold.
$node->restart;
returned('visit5', $in_visit5,
	'the launcher visits seven databases at its start and the overdue hold is returned');
my $launcher = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'coupon expiry launcher'");
like($launcher, qr/^\d+$/, 'the launcher runs');
check_log($node, 'after the visit of seven databases');

############################################################################
# Overdue holds in more pools than coupon.max_pools (3).
############################################################################
$node->safe_psql('postgres',
	"ALTER SYSTEM SET coupon.expiry_workers = off; SELECT pg_reload_conf()");
ok($node->poll_query_until('postgres', 'SHOW coupon.expiry_workers', 'off'),
	'workers off');
my @ids;
for my $p (1 .. 5)
{
	$node->safe_psql('postgres', "SELECT coupon_pool_create('many$p', 1)");
	push @ids, $node->safe_psql('postgres',
		"SELECT coupon_hold('many$p', 'h', '100 milliseconds')");
}
wait_due($node, 'postgres', @ids)
  or die 'the five holds never fell due';
$node->safe_psql('postgres',
	"ALTER SYSTEM RESET coupon.expiry_workers; SELECT pg_reload_conf()");
returned('postgres', $_, "hold $_ of five pools over three slots is returned")
  for @ids;
is( $node->safe_psql('postgres',
		"SELECT string_agg(format('%s:%s', pool, available), ',' ORDER BY pool) FROM coupon_pools WHERE pool LIKE 'many%'"),
	'many1:1,many2:1,many3:1,many4:1,many5:1',
	'every coupon is available again');

############################################################################
# A failing AFTER trigger holds up its own pool only.
############################################################################
$node->safe_psql(
	'postgres', q{
CREATE TABLE public.claim_audit (id bigint, who text);
CREATE FUNCTION public.audit_claim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.pool = 'audited' THEN
    INSERT INTO claim_audit VALUES (NEW.id, current_user);  -- unqualified
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER audit_claim AFTER UPDATE ON coupon_claims
  FOR EACH ROW EXECUTE FUNCTION public.audit_claim();
SELECT coupon_pool_create('audited', 1), coupon_pool_create('plain', 1);
});
# The worker's search_path is pg_catalog, pg_temp: claim_audit is not found.
my $audited = $node->safe_psql('postgres',
	"SELECT coupon_hold('audited', 'h', '1 second')");
my $plain = $node->safe_psql('postgres',
	"SELECT coupon_hold('plain', 'h', '1 second')");
returned('postgres', $plain, 'the other pool\'s hold is returned');
ok(wait_for_log(qr/returning the expired holds of coupon pool "audited"/),
	'the failing pool is named in the log');
is($node->safe_psql('postgres',
		"SELECT released_at IS NULL FROM coupon_claims WHERE id = $audited"),
	't', 'the audited pool\'s hold waits while its trigger fails');
$node->safe_psql('postgres',
	"ALTER FUNCTION public.audit_claim() SET search_path = public");
returned('postgres', $audited,
	'once the trigger is fixed, the audited pool\'s hold is returned');
is($node->safe_psql('postgres', "SELECT count(*) FROM claim_audit WHERE id = $audited"),
	'1', 'the trigger ran once for it');
$node->safe_psql('postgres', 'DROP TRIGGER audit_claim ON coupon_claims');

############################################################################
# An extend that moves the expiry earlier, committed after a load of the
# pool: claimers look for the hold when it is due.
############################################################################
$node->safe_psql('postgres',
	"ALTER SYSTEM SET coupon.expiry_workers = off; SELECT pg_reload_conf()");
ok($node->poll_query_until('postgres', 'SHOW coupon.expiry_workers', 'off'),
	'workers off again');
$node->safe_psql('postgres', "SELECT coupon_pool_create('moved', 1)");
my $moved = $node->safe_psql('postgres',
	"SELECT coupon_hold('moved', 'x', '1 hour')");
$node->restart;
my $extender = bg_open($node);
bg_run($extender, "BEGIN; SELECT coupon_hold_extend($moved, '1 second')");
is($node->safe_psql('postgres',
		"SELECT status FROM coupon_claim_detailed('moved', 'y')"),
	'sold_out', 'a claim loads the pool while the extend is open');
bg_run($extender, 'COMMIT');
bg_close($extender);
wait_due($node, 'postgres', $moved)
  or die 'the moved hold never fell due';
is($node->safe_psql('postgres',
		"SELECT status FROM coupon_claim_detailed('moved', 'y')"),
	'granted', 'once the moved expiry passes, a claimer returns the hold');

############################################################################
# A hold granted after a wait lives ttl from the grant.
############################################################################
# The hold's ttl, and the claimer's wait time: the blocker gives its coupon
# up once the waiting hold has slept past its ttl, and a lost wake-up lets
# the wait run out instead.
my ($TTL, $WAIT) = (1, 20);
$node->safe_psql('postgres', "SELECT coupon_pool_create('waited', 1)");
my $blocker = bg_open($node);
bg_run($blocker, "BEGIN; SELECT coupon_claim('waited', 'a')");
my $waiter = bg_open($node);
my $waiter_pid = bg_pid($waiter);
bg_send($waiter,
	"SELECT coupon_hold('waited', 'b', '$TTL second', 1, '$WAIT seconds')");
ok(wait_until_event($node, $waiter_pid, 'Extension'), 'the hold waits');
# Hold the coupon past the ttl (and half as long again), then give it up.
my $slept = 1.5 * $TTL;
$node->poll_query_until('postgres',
	"SELECT clock_timestamp() > query_start + interval '$slept seconds' FROM pg_stat_activity WHERE pid = $waiter_pid")
  or die "the waiting hold did not stay asleep for $slept s";
my $given_up = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
bg_run($blocker, 'ROLLBACK');
my ($held, $state, $err, $took) = bg_collect($waiter);
is($state, '00000', 'the waiting hold is granted');
cmp_ok($took, '<', $WAIT, "woken by the rollback, before its $WAIT s wait ran out");
# Granted after the blocker gave up, so it lives until the ttl after that
# at least (from the call, it would have been over before).
is( $node->safe_psql('postgres',
		"SELECT expires_at >= '$given_up'::timestamptz + interval '$TTL second' FROM coupon_claims WHERE id = $held"
	),
	't',
	'its ttl counts from the grant, not from the call');
bg_close($_) for ($blocker, $waiter);

check_pools($node, 'postgres', 'at the end');
check_log($node, 'at the end');
done_testing();
