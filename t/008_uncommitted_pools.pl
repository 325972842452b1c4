# Shared memory is filled from committed data only.  A pool that an open
# transaction created, or dropped and created again, is never loaded from
# data that could still roll back, and pools made after DROP EXTENSION and
# CREATE EXTENSION never meet the old extension's shared memory.  Every
# case below once oversold.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use CouponTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = coupon_node('uncommitted');
my $db = 'postgres';

# 1. Created, claimed and rolled back in one transaction; then created for
# real with a smaller capacity.  The claim is refused, so nothing of the
# rolled-back pool can linger in shared memory.
expect_state(
	$node, $db, q{
BEGIN;
SELECT coupon_pool_create('flash', 100);
SELECT coupon_claim('flash', 'tester');
}, '55000', 'a pool created in the transaction refuses claims');
$node->safe_psql($db, "SELECT coupon_pool_create('flash', 2)");
is( $node->safe_psql(
		$db,
		"SELECT count(coupon_claim('flash', 'customer-' || i)) FROM generate_series(1, 10) i"
	),
	'2',
	'created again with capacity 2: exactly 2 granted');
check_pools($node, $db, 'flash', loaded => 1, pools => ['flash']);

# 2. Dropped and created again in one transaction, the pool not loaded (a
# restart emptied shared memory): the claim is refused, and after the
# rollback the old pool is exact.
$node->safe_psql($db,
	"SELECT coupon_pool_create('sold', 2); SELECT coupon_claim('sold', 'a'), coupon_claim('sold', 'b')"
);
$node->safe_psql($db, "SELECT coupon_pool_create('kept', 3)");
$node->restart;
is( $node->safe_psql(
		$db, q{
BEGIN;
DO $$ BEGIN PERFORM coupon_pool_resize('kept', 3); END $$;
SELECT count(coupon_claim('kept', 'customer-' || i)) FROM generate_series(1, 5) i;
COMMIT;
}),
	'3',
	'an unloaded pool resized to its capacity in the transaction still loads: exactly 3 granted');
expect_state(
	$node, $db, q{
BEGIN;
SELECT coupon_pool_drop('sold');
SELECT coupon_pool_create('sold', 100);
SELECT coupon_claim('sold', 'c');
}, '55000', 'an unloaded pool dropped and created again refuses claims');
is( $node->safe_psql(
		$db,
		"SELECT count(coupon_claim('sold', 'late-' || i)) FROM generate_series(1, 5) i"
	),
	'0',
	'after the rollback the old pool is still sold out');
check_pools($node, $db, 'sold', loaded => 1, pools => ['sold']);
check_pools($node, $db, 'kept', loaded => 1, pools => ['kept']);

# 3. Two sessions: one creates a pool and claims from it, uncommitted; the
# other cannot see the pool at all; the creator rolls back.  No ledger row
# and no slot of a pool that never existed.
my $s1 = bg_open($node);
bg_run($s1, 'BEGIN');
bg_run($s1, "SELECT coupon_pool_create('ghost', 10)");
bg_send($s1, "SELECT coupon_claim('ghost', 'x')");
my ($out1, $state1) = bg_collect($s1);
is($state1, '55000', 'ghost: the creating session cannot claim');
expect_state($node, $db, "SELECT coupon_claim('ghost', 'y')",
	'42704', 'ghost: another session does not know the pool');
bg_run($s1, 'ROLLBACK');
bg_close($s1);
is($node->safe_psql($db, "SELECT count(*) FROM coupon_claims WHERE pool = 'ghost'"),
	'0', 'ghost: no ledger row');
is($node->safe_psql($db, "SELECT count(*) FROM coupon_pool_memory() WHERE pool = 'ghost'"),
	'0', 'ghost: no slot in shared memory');

# 4. DROP EXTENSION and CREATE EXTENSION in one transaction, with the old
# pool loaded: the new pool of the same name takes no claim from the old
# one's shared memory, in the transaction or after it.
$node->safe_psql($db,
	"SELECT coupon_pool_create('redeploy', 100); SELECT coupon_claim('redeploy', 'old')");
expect_state(
	$node, $db, q{
BEGIN;
DROP EXTENSION coupon;
CREATE EXTENSION coupon;
SELECT coupon_pool_create('redeploy', 1);
SELECT coupon_claim('redeploy', 'inside');
}, '55000', 'the new extension\'s pool refuses claims before the transaction commits');
$node->safe_psql(
	$db, q{
BEGIN;
DROP EXTENSION coupon;
CREATE EXTENSION coupon;
SELECT coupon_pool_create('redeploy', 1);
COMMIT;
});
is( $node->safe_psql(
		$db,
		"SELECT count(coupon_claim('redeploy', 'new-' || i)) FROM generate_series(1, 5) i"
	),
	'1',
	'after DROP and CREATE EXTENSION in one transaction: exactly 1 granted');
check_pools($node, $db, 'redeploy', loaded => 1);

# 5. The same across sessions: another session keeps claiming from the old
# extension's pool while it is dropped and made anew.
$node->safe_psql($db, "SELECT coupon_pool_drop('redeploy')");
$node->safe_psql($db,
	"SELECT coupon_pool_create('across', 100); SELECT coupon_claim('across', 'old')");
my $s2 = bg_open($node);
bg_run($s2, "SELECT coupon_claim('across', 'before')");
$node->safe_psql($db,
	"DROP EXTENSION coupon; CREATE EXTENSION coupon; SELECT coupon_pool_create('across', 2)");
bg_run($s2, "SELECT count(coupon_claim('across', 'after-' || i)) FROM generate_series(1, 5) i");
bg_close($s2);
is( $node->safe_psql($db, "SELECT count(*) FROM coupon_claims WHERE pool = 'across'"),
	'2', 'across sessions: the new pool granted exactly its 2');
check_pools($node, $db, 'across', loaded => 1);

# 6. Dropped and created again in one transaction, and dropped once more in
# a savepoint that rolls back: the pool made anew still takes no claims
# before commit, and afterwards grants exactly its capacity.
$node->safe_psql($db,
	"SELECT coupon_pool_create('twice', 100); SELECT coupon_claim('twice', 'warm')");
expect_state(
	$node, $db, q{
BEGIN;
SELECT coupon_pool_drop('twice');
SELECT coupon_pool_create('twice', 1);
SAVEPOINT a;
SELECT coupon_pool_drop('twice');
ROLLBACK TO a;
SELECT coupon_claim('twice', 'inside');
}, '55000', 'a pool made anew after a rolled-back second drop refuses claims');
$node->safe_psql(
	$db, q{
BEGIN;
SELECT coupon_pool_drop('twice');
SELECT coupon_pool_create('twice', 10);
SAVEPOINT a;
SELECT coupon_pool_drop('twice');
ROLLBACK TO a;
SELECT coupon_pool_resize('twice', 3);
COMMIT;
});
is( $node->safe_psql(
		$db,
		"SELECT count(coupon_claim('twice', 'c' || i)) FROM generate_series(1, 10) i"
	),
	'3',
	'made anew and resized in one transaction: exactly 3 granted afterwards');
check_pools($node, $db, 'twice', loaded => 1, pools => ['twice']);

check_log($node, "uncommitted pools");
done_testing();
