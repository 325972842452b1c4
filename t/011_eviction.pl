# Ten times more pools than slots, used round robin by concurrent claimers.
#
# A server with coupon.max_pools = 8 and two databases with 40 pools each.
# pgbench runs 4 clients in each database for a few seconds, each
# transaction on a pool picked at random: a claim, a claim rolled back, a
# release of one of the pool's claims.  Every transaction holds at most
# one slot, so 8 slots are always enough, and no call may fail; pools are
# evicted and loaded again from the ledger all the time.  Then every
# invariant holds for all 80 pools, each pool is loaded once more and
# filled to exactly its capacity, and claims of a database never found the
# slots taken by the other's idle pools.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use CouponTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $POOLS = 40;
my $SLOTS = 8;
my $CAPACITY = 60;

my $node = coupon_node('eviction', conf => ["coupon.max_pools = $SLOTS"]);
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', 'CREATE EXTENSION coupon');
for my $db (qw(postgres other))
{
	$node->safe_psql($db,
		"SELECT count(coupon_pool_create('rr' || g, $CAPACITY)) FROM generate_series(1, $POOLS) g");
}

my $dir = PostgreSQL::Test::Utils::tempdir;
append_to_file("$dir/claim.sql", qq{
\\set p random(1, $POOLS)
\\set n :n + 1
SELECT coupon_claim('rr' || :p, 'c' || :client_id || '-' || :n);
});
append_to_file("$dir/rollback.sql", qq{
\\set p random(1, $POOLS)
\\set n :n + 1
BEGIN;
SELECT coupon_claim('rr' || :p, 'r' || :client_id || '-' || :n);
ROLLBACK;
});
append_to_file("$dir/release.sql", qq{
\\set p random(1, $POOLS)
SELECT coupon_release(id) FROM coupon_claims
 WHERE pool = 'rr' || :p AND released_at IS NULL ORDER BY id LIMIT 1;
});

my @runs;
for my $db (qw(postgres other))
{
	push @runs,
	  pgbench_start($node, $db, $dir, $db,
		'-c', 4, '-j', 2, '-T', 6, '-D', 'n=0',
		'-f', "$dir/claim.sql\@6", '-f', "$dir/rollback.sql\@2",
		'-f', "$dir/release.sql\@2");
}
$_->finish for @runs;
for my $db (qw(postgres other))
{
	my ($done, $out, $err) = pgbench_result($dir, $db);
	cmp_ok($done, '>', 100, "$db: pgbench ran ($done transactions)");
	unlike($out . $err, qr/ERROR|aborted|too many coupon pools/,
		"$db: no call failed, none found every slot busy")
	  or diag($err);
	my $used = $node->safe_psql($db,
		"SELECT count(DISTINCT pool) FROM coupon_claims");
	cmp_ok($used, '>', $SLOTS, "$db: claims went to $used pools, more than $SLOTS slots");
	check_pools($node, $db, "$db after the load");
}
cmp_ok(
	$node->safe_psql('postgres', 'SELECT count(*) FROM coupon_pool_memory()')
	  + $node->safe_psql('other', 'SELECT count(*) FROM coupon_pool_memory()'),
	'<=', $SLOTS, "at most $SLOTS pools are loaded, of both databases");

# Each pool is loaded again and filled: it grants exactly what the ledger
# says is left.  One pool per statement (a transaction holds a slot per
# pool it claims from).
for my $db (qw(postgres other))
{
	my $left = $node->safe_psql($db,
		"SELECT sum(capacity - claimed) FROM coupon_pools");
	my $granted = 0;
	for my $p (1 .. $POOLS)
	{
		$granted += $node->safe_psql($db,
			"SELECT count(coupon_claim('rr$p', 'fill' || g)) FROM generate_series(1, $CAPACITY) g");
	}
	is($granted, $left, "$db: the pools granted exactly the $left coupons left");
	is( $node->safe_psql($db,
			"SELECT count(*) FROM coupon_pools WHERE claimed = capacity AND available = 0 AND in_flight = 0"),
		$POOLS, "$db: every pool is sold out, none over");
	check_pools($node, $db, "$db sold out");
}

check_log($node, '011_eviction');
$node->stop;
done_testing();
