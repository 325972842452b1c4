# Without shared_preload_libraries = 'coupon': CREATE EXTENSION, pool
# creation and the OCC trigger work; everything that needs the semaphore
# fails with SQLSTATE 55000, a clear message and a hint, and changes
# nothing.  The extension's schema cannot be renamed there (55000).
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use CouponTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('nopreload');
$node->init;
$node->start;
my $db = 'postgres';

is($node->safe_psql($db, 'SHOW shared_preload_libraries'),
	'', 'the server does not preload coupon');
$node->safe_psql($db, 'CREATE EXTENSION coupon');
is($node->safe_psql($db, "SELECT coupon_pool_create('p', 10)"),
	't', 'coupon_pool_create works');

my $before = fingerprint_ledger();
for my $call (
	"SELECT coupon_claim('p', 'c')",
	"SELECT * FROM coupon_claim_detailed('p', 'c')",
	"SELECT coupon_pool_resize('p', 5)",
	"SELECT coupon_pool_drop('p')",
	"SELECT * FROM coupon_pools",
	"SELECT coupon_release(1)")
{
	my (undef, undef, $err) = expect_state($node, $db, $call, '55000',
		"$call: refused with 55000");
	like($err,
		qr/ERROR:  55000: coupon must be loaded via shared_preload_libraries\n.*HINT:  Add coupon to shared_preload_libraries in postgresql.conf and restart the server\./s,
		"$call: the message and the hint say how to fix it");
}
is(fingerprint_ledger(), $before, 'the refused calls changed nothing');
is($before, 'pools: p|10|1; ledger rows: 0',
	'one pool of capacity 10, no ledger row');

# The optimistic-concurrency trigger needs no shared memory.
$node->safe_psql(
	$db, q{
CREATE TABLE stock (id int PRIMARY KEY, remaining int, version int NOT NULL);
INSERT INTO stock VALUES (1, 5, 1);
CREATE TRIGGER stock_version BEFORE UPDATE ON stock
  FOR EACH ROW EXECUTE FUNCTION coupon_occ_version();
UPDATE stock SET remaining = 4, version = 1 WHERE id = 1;});
my (undef, undef, $err) = expect_state($node, $db,
	'UPDATE stock SET remaining = 3, version = 1 WHERE id = 1',
	'40001', 'a stale version is refused with 40001');
like($err, qr/stale version/, 'the error names the stale version');
is($node->safe_psql($db, 'SELECT remaining, version FROM stock'),
	'4|2', 'the current version was bumped once, the stale write lost');

# Without the library, nothing checks the schema that the functions written
# in SQL and PL/pgSQL name: the schema cannot be renamed.
$node->safe_psql($db, 'CREATE DATABASE renamed');
$node->safe_psql('renamed', 'CREATE SCHEMA shop; CREATE EXTENSION coupon SCHEMA shop');
expect_state($node, 'renamed', 'ALTER SCHEMA shop RENAME TO shop2', '55000',
	'the schema of the extension cannot be renamed');
expect_state($node, 'renamed', 'CREATE ROLE o; ALTER SCHEMA shop OWNER TO o', '00000',
	'but can be given to another owner');

$node->stop;
done_testing();

# The pool table and the ledger, read without the semaphore.
sub fingerprint_ledger
{
	return $node->safe_psql(
		$db, q{
SELECT 'pools: ' || string_agg(format('%s|%s|%s', name, capacity, per_customer), ', ' ORDER BY name)
    || '; ledger rows: ' || (SELECT count(*) FROM coupon_claims)
  FROM coupon_pool});
}
