# The per-customer check counts a customer's earlier claims from the index
# alone where the visibility map says their heap page is all-visible; a
# hold whose time is up is then still counted, and the claim's id is not
# known, so that count is only an upper bound: enough to grant, never to
# refuse.  Here every check runs with the ledger's pages all-visible (the
# test vacuums until pg_visibility says so) and must give the exact
# answer: an expired hold does not count, a repeat and a live hold answer
# with their own claim's id, for single claims and bulk claims.  And an
# index of unreleased claims in another shape is refused, not read.
#
# Loading a pool counts its live claims the same way, from the index of
# live claims (pool, qty): after a restart, with the ledger all-visible or
# not, with claims of several coupons, releases and holds, the count is
# exact, and read from that index exactly when it is the script's; one in
# another shape, invalid, on another table, or none: the holders' index is
# counted instead, as exactly.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use CouponTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# No expiry worker: an expired hold stays unreturned in the ledger, as it
# does until a worker gets to it.
my $node = coupon_node('visible', conf => ['coupon.expiry_workers = off']);
$node->safe_psql('postgres', q{
CREATE EXTENSION pg_visibility;
SELECT coupon_pool_create('p', 100);
SELECT coupon_pool_create('m', 100, 2);
});
my $ann = query_value($node, 'postgres', "SELECT coupon_claim('p', 'ann')");
my $bob = query_value($node, 'postgres', "SELECT coupon_hold('p', 'bob', '1 s')");
my $carl = query_value($node, 'postgres', "SELECT coupon_hold('p', 'carl', '1 hour')");
my $dora = query_value($node, 'postgres', "SELECT coupon_hold('m', 'dora', '1 s')");
my $eve = query_value($node, 'postgres', "SELECT coupon_hold('m', 'eve', '1 s')");
my $fay = query_value($node, 'postgres', "SELECT coupon_claim('m', 'fay')");
ok( $node->poll_query_until('postgres',
		"SELECT bool_and(expires_at <= now()) FROM coupon_claims"
		  . " WHERE id IN ($bob, $dora, $eve)"),
	'the short holds ran out');

# Vacuum until every page of the ledger is all-visible; false if it never
# gets there.
sub all_visible
{
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		$node->safe_psql('postgres', 'VACUUM coupon_claims');
		return 1
		  if $node->safe_psql('postgres', q{
SELECT all_visible = pg_relation_size('coupon_claims') / current_setting('block_size')::int
  FROM pg_visibility_map_summary('coupon_claims')}) eq 't';
		usleep(100_000);
	}
	return 0;
}

# One check with the ledger all-visible.
sub check
{
	my ($sql, $want, $name) = @_;
	ok(all_visible(), "the ledger is all-visible before: $name");
	is($node->safe_psql('postgres', $sql), $want, $name);
}

check("SELECT claim_id, status FROM coupon_claim_detailed('p', 'ann')",
	"$ann|repeat", 'a repeat answers with the first claim\'s id');
check("SELECT claim_id, status FROM coupon_claim_detailed('p', 'carl')",
	"$carl|held", 'a live hold answers held with its id');
check(
	"SELECT status, claim_id > $carl FROM coupon_claim_detailed('p', 'bob')",
	'granted|t', 'a hold whose time is up does not count: granted');
check(
	qq{SELECT string_agg(customer || ':' || status || ':'
	                     || CASE WHEN claim_id > $fay THEN 'new' ELSE claim_id::text END,
	                     ',' ORDER BY customer)
	    FROM coupon_claim_many('p', '{ann,carl,gus}')},
	"ann:repeat:$ann,carl:held:$carl,gus:granted:new",
	'a bulk claim answers repeats and holds with their ids');
check(
	q{SELECT string_agg(status, ',' ORDER BY claim_id)
	    FROM coupon_claim_many('m', '{dora,dora}')},
	'granted,granted',
	'a bulk claim does not count a hold whose time is up: both granted');
check(
	q{SELECT string_agg(status, ',' ORDER BY claim_id NULLS LAST)
	    FROM coupon_claim_many('m', '{fay,fay}')},
	'granted,limit_reached',
	'a bulk claim counts a live claim: one of two granted at a limit of 2');
check("SELECT status FROM coupon_claim_detailed('m', 'eve', 2)",
	'granted', 'a single claim of 2 does not count a hold whose time is up');
check("SELECT status FROM coupon_claim_detailed('m', 'fay')",
	'limit_reached', 'and refuses at the limit');

# check_pools would count the unreturned expired holds: the limit, by the
# clock, and the balance of each pool.
is( $node->safe_psql('postgres', q{
SELECT count(*) FROM (
  SELECT 1 FROM coupon_claims c JOIN coupon_pools v USING (pool)
   WHERE c.released_at IS NULL AND (c.expires_at IS NULL OR c.expires_at > now())
   GROUP BY c.pool, c.customer, v.per_customer HAVING sum(c.qty) > v.per_customer) x}),
	'0', 'no customer holds more than the limit');
is( $node->safe_psql('postgres', q{
SELECT string_agg(pool || ':' || (capacity = claimed + in_flight + available), ',' ORDER BY pool)
  FROM coupon_pools}),
	'm:true,p:true', 'both pools balance');
# The shortcut trusts the index's shape: one recreated in another shape
# (its third column an int8 id, no longer qty) is refused by every call,
# not read.
$node->safe_psql('postgres', q{
DROP INDEX coupon_claims_holder;
CREATE INDEX coupon_claims_holder ON coupon_claims (pool, customer)
  INCLUDE (id) WHERE released_at IS NULL;
});
my ($rc, $out, $err) = $node->psql('postgres',
	"SELECT coupon_claim('p', 'hal')", extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/55000: index "coupon_claims_holder" has been altered/,
	'a claim refuses an index of unreleased claims in another shape');
is(ledger_count($node, 'postgres', "customer = 'hal'"), '0', 'and claims nothing');
$node->safe_psql('postgres', q{
DROP INDEX coupon_claims_holder;
CREATE INDEX coupon_claims_holder ON coupon_claims (pool, customer)
  INCLUDE (qty) WHERE released_at IS NULL;
});
is($node->safe_psql('postgres', "SELECT status FROM coupon_claim_detailed('p', 'hal')"),
	'granted', 'the index made again as the script makes it serves again');

# What a pool loads after a restart: its capacity less the ledger's live
# claims, whatever their qty and wherever the visibility map stands.
# The planner may use no index here, so that an index of live claims is
# read by loading alone, and its idx_scan says whether loading read it.
$node->append_conf('postgresql.conf', q{
enable_indexscan = off
enable_indexonlyscan = off
enable_bitmapscan = off
});
$node->safe_psql('postgres', q{
SELECT coupon_pool_create('q', 100000, 10);
SELECT count(coupon_claim('q', 'one' || g)) FROM generate_series(1, 3000) g;
SELECT count(coupon_claim('q', 'three' || g, 3)) FROM generate_series(1, 200) g;
SELECT count(coupon_claim('q', 'five' || g, 5)) FROM generate_series(1, 50) g;
SELECT count(coupon_release(id)) FROM coupon_claims
 WHERE pool = 'q' AND customer ~ '^(one|three)[0-9]*7$';
SELECT count(coupon_hold('q', 'held' || g, '1 hour', 2)) FROM generate_series(1, 20) g;
});

# How often an index named coupon_claims_live of the ledger was scanned.
sub live_scans
{
	return $node->safe_psql('postgres', q{
SELECT COALESCE(sum(idx_scan), 0) FROM pg_stat_user_indexes
 WHERE relid = 'coupon_claims'::regclass AND indexrelname = 'coupon_claims_live'});
}

# After a restart the first claim loads the pool: what it leaves must be
# the capacity less every live claim before it (the statement's snapshot
# does not see the probe's own) and the probe's one; and loading read the
# index of live claims, or did not.
sub loaded_exact
{
	my ($probe, $reads_live, $name) = @_;
	my $before = live_scans();
	$node->restart;
	is( $node->safe_psql('postgres', qq{
SELECT (SELECT 100000 - sum(qty) - 1 FROM coupon_claims
         WHERE pool = 'q' AND released_at IS NULL) - available
  FROM coupon_claim_detailed('q', '$probe')}),
		'0', "$name: exact");
	is(live_scans() > $before ? 'read' : 'not read',
		$reads_live ? 'read' : 'not read',
		"$name: the index of live claims " . ($reads_live ? 'read' : 'not read'));
}

ok(all_visible(), 'the ledger is all-visible');
loaded_exact('probe1', 1, 'loaded, the ledger all-visible');
$node->safe_psql('postgres', q{
SELECT count(coupon_release(id)) FROM coupon_claims
 WHERE pool = 'q' AND customer ~ '^(five|three)[0-9]*[13]$';
SELECT count(coupon_claim('q', 'late' || g, 1 + g % 4)) FROM generate_series(1, 500) g;
});
is( $node->safe_psql('postgres', q{
SELECT all_visible < pg_relation_size('coupon_claims') / current_setting('block_size')::int
  FROM pg_visibility_map_summary('coupon_claims')}),
	't', 'later claims and releases left pages not all-visible');
loaded_exact('probe2', 1, 'loaded, pages not all-visible');

# An index of that name that is not the script's is not read, and stops
# nothing: in another shape, left invalid by a failed concurrent build,
# on another table (whose rows would count), or none at all.
$node->safe_psql('postgres', q{
DROP INDEX coupon_claims_live;
CREATE INDEX coupon_claims_live ON coupon_claims (pool, customer) WHERE released_at IS NULL;
});
loaded_exact('probe3', 0, 'an index of live claims in another shape');
$node->safe_psql('postgres', 'DROP INDEX coupon_claims_live');
($rc, $out, $err) = $node->psql('postgres', q{
CREATE UNIQUE INDEX CONCURRENTLY coupon_claims_live ON coupon_claims (pool, qty)
 WHERE released_at IS NULL});
like($err, qr/could not create unique index/, 'a failed concurrent build');
is( $node->safe_psql('postgres', q{
SELECT indisvalid FROM pg_index WHERE indexrelid = 'coupon_claims_live'::regclass}),
	'f', 'left the index of live claims invalid');
loaded_exact('probe4', 0, 'an invalid index of live claims');
$node->safe_psql('postgres', q{
DROP INDEX coupon_claims_live;
CREATE TABLE claims_copy (LIKE coupon_claims);
INSERT INTO claims_copy (id, pool, customer, qty, claimed_at)
  SELECT g, 'q', 'copy' || g, 7, now() FROM generate_series(1, 100) g;
CREATE INDEX coupon_claims_live ON claims_copy (pool, qty) WHERE released_at IS NULL;
});
loaded_exact('probe5', 0, 'an index of live claims on another table');
$node->safe_psql('postgres', 'DROP TABLE claims_copy');
loaded_exact('probe6', 0, 'no index of live claims, the holders\' index counted');
$node->safe_psql('postgres', q{
CREATE INDEX CONCURRENTLY coupon_claims_live ON coupon_claims (pool, qty)
 WHERE released_at IS NULL});
loaded_exact('probe7', 1, 'the index of live claims built again concurrently');

done_testing();
