# Dump and restore.
#
# A database with several pools (per_customer 1, 2 and 3, one sold out,
# one never used, one with a unicode and quoted name, one resized, one
# dropped so that claim ids have a gap) and claims, some released, with one
# claim in flight while pg_dump runs, is dumped with pg_dump (custom and
# plain format) and restored into fresh databases on a fresh server, where
# CREATE EXTENSION comes from the dump.  There: the pool table, the ledger
# and the sequence are identical to the source at dump time, the function
# privileges too; the semaphore is not loaded until first use and then
# loads to capacity - claimed; new claims get ids above every old one,
# repeats of old customers get their old claim, customers at their limit
# stay there, and each pool grants exactly up to its capacity.  The two
# restored databases, on one server, with the same pool names, do not
# share semaphores.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use CouponTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $t0 = time;
my $src = coupon_node('dumpsrc');
my $UNI = q{ünïcödé 'q' "d" 😀};
(my $uni_sql = $UNI) =~ s/'/''/g;
$src->safe_psql(
	'postgres', qq{
SELECT coupon_pool_create('d1', 10);
SELECT coupon_pool_create('d2', 20, 3);
SELECT coupon_pool_create('d3', 5);
SELECT coupon_pool_create('d_empty', 7);
SELECT coupon_pool_create('dropped', 4);
SELECT coupon_pool_create('$uni_sql', 6, 2);
SELECT coupon_claim('d1', 'c' || g) FROM generate_series(1, 6) g;
SELECT coupon_claim('dropped', 'z' || g) FROM generate_series(1, 2) g;
SELECT coupon_claim('d2', 'alice', 3);
SELECT coupon_claim('d2', 'bob', 2);
SELECT coupon_claim('d2', 'carol', 1);
SELECT coupon_claim('d2', 'bob', 1);
SELECT coupon_claim('d3', 's' || g) FROM generate_series(1, 5) g;
SELECT coupon_claim('$uni_sql', 'ö ''quoted''', 2);
SELECT coupon_claim('$uni_sql', 'plain', 1);
SELECT coupon_release(id) FROM coupon_claims
 WHERE (pool, customer) IN (('d1', 'c2'), ('d1', 'c5'), ('d2', 'carol'));
SELECT coupon_pool_resize('d1', 12);
SELECT coupon_pool_drop('dropped');
});

# A claim in flight while the dump runs: not in the dump.
my $holder = bg_open($src);
bg_run($holder, 'BEGIN');
bg_run($holder, "SELECT coupon_claim('d1', 'inflight')");

my $ledger_sql = q{
SELECT string_agg(format('%s|%s|%s|%s|%s|%s', id, pool, customer, qty,
                         claimed_at, released_at), E'\n' ORDER BY id)
  FROM coupon_claims};
my $pools_sql = q{
SELECT string_agg(format('%s|%s|%s|%s', name, capacity, per_customer,
                         created_at), E'\n' ORDER BY name)
  FROM coupon_pool};
my $view_sql = q{
SELECT string_agg(format('%s|%s|%s|%s', pool, capacity, claimed,
                         per_customer), E'\n' ORDER BY pool)
  FROM coupon_pools};
my $acl_sql = q{
SELECT string_agg(p.oid::regprocedure || ' ' || COALESCE(p.proacl::text, '-'),
                  E'\n' ORDER BY p.oid::regprocedure::text)
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid
  JOIN pg_extension e ON e.oid = d.refobjid
 WHERE d.deptype = 'e' AND e.extname = 'coupon'};
my $seq_sql = 'SELECT last_value FROM coupon_claims_id_seq';

my $dir = PostgreSQL::Test::Utils::tempdir;
command_ok(
	[
		'pg_dump', '-h', $src->host, '-p', $src->port, '-Fc',
		'-f', "$dir/coupon.dump", 'postgres'
	],
	'pg_dump -Fc of the source database');
command_ok(
	[
		'pg_dump', '-h', $src->host, '-p', $src->port, '-Fp',
		'-f', "$dir/coupon.sql", 'postgres'
	],
	'pg_dump -Fp of the source database');
my %want = (
	ledger => $src->safe_psql('postgres', $ledger_sql),
	pools => $src->safe_psql('postgres', $pools_sql),
	view => $src->safe_psql('postgres', $view_sql),
	acl => $src->safe_psql('postgres', $acl_sql),
	seq => $src->safe_psql('postgres', $seq_sql),);
my $max_old_id = $src->safe_psql('postgres',
	"SELECT max(id) FROM coupon_claims");
bg_run($holder, 'COMMIT');
bg_close($holder);
unlike($want{ledger}, qr/inflight/, 'the claim in flight is not in the dump');
my $inflight_id = $src->safe_psql('postgres',
	"SELECT id FROM coupon_claims WHERE customer = 'inflight'");

# A fresh server; the databases are created empty, without the extension.
my $dst = coupon_node('dumpdst', bare => 1);
$dst->safe_psql('postgres', 'CREATE DATABASE restored');
$dst->safe_psql('postgres', 'CREATE DATABASE restored_plain');
is( $dst->safe_psql('restored',
		"SELECT count(*) FROM pg_extension WHERE extname = 'coupon'"),
	'0',
	'the target database has no coupon extension before the restore');
command_ok(
	[
		'pg_restore', '-h', $dst->host, '-p', $dst->port,
		'--exit-on-error', '-d', 'restored', "$dir/coupon.dump"
	],
	'pg_restore into a fresh database on a fresh server');
command_ok(
	[
		'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', $dst->host,
		'-p', $dst->port, '-d', 'restored_plain', '-f', "$dir/coupon.sql"
	],
	'psql restore of the plain dump into another fresh database');

for my $db (qw(restored restored_plain))
{
	is( $dst->safe_psql($db,
			"SELECT extversion FROM pg_extension WHERE extname = 'coupon'"),
		$src->safe_psql('postgres',
			"SELECT extversion FROM pg_extension WHERE extname = 'coupon'"),
		"$db: CREATE EXTENSION came from the dump, same version");
	is($dst->safe_psql($db, $pools_sql), $want{pools},
		"$db: the pool table survived, created_at included");
	is($dst->safe_psql($db, $ledger_sql), $want{ledger},
		"$db: the ledger survived row for row, timestamps included");
	is($dst->safe_psql($db, $view_sql), $want{view},
		"$db: coupon_pools shows the same capacity, claimed, per_customer");
	is($dst->safe_psql($db, $seq_sql), $want{seq},
		"$db: the id sequence survived");
	is($dst->safe_psql($db, $acl_sql), $want{acl},
		"$db: the functions' privileges survived (nothing granted to PUBLIC)");
	is($dst->safe_psql($db, 'SELECT count(*) FROM coupon_pool_memory()'),
		'0', "$db: no semaphore loaded before first use");
}

# In the custom-format restore: the semaphore loads to capacity - claimed,
# old customers keep their claims and limits, new ids are above the old.
my $db = 'restored';
my %claimed = map { split /\|/ } split /\n/,
  $dst->safe_psql($db, 'SELECT pool, claimed FROM coupon_pools');
is( $dst->safe_psql(
		$db,
		"SELECT status, available FROM coupon_claim_detailed('d1', 'new1')"),
	'granted|' . (12 - $claimed{d1} - 1),
	'd1: the first claim loads available = capacity - claimed');
my $new_id = $dst->safe_psql($db,
	"SELECT id FROM coupon_claims WHERE customer = 'new1'");
cmp_ok($new_id, '>', $max_old_id, 'd1: the new claim id is above every old one');
cmp_ok($new_id, '>', $inflight_id,
	'd1: and above the id the claim in flight at dump time drew');
my $c1 = $dst->safe_psql($db,
	"SELECT id FROM coupon_claims WHERE pool = 'd1' AND customer = 'c1'");
is( $dst->safe_psql(
		$db, "SELECT claim_id, status FROM coupon_claim_detailed('d1', 'c1')"),
	"$c1|repeat",
	'd1: an old customer gets its old claim back');
like( $dst->safe_psql(
		$db, "SELECT status FROM coupon_claim_detailed('d1', 'c2')"),
	qr/^granted$/,
	'd1: a customer whose claim was released can claim again');
is( $dst->safe_psql(
		$db,
		"SELECT claim_id IS NULL, status FROM coupon_claim_detailed('d2', 'bob')"),
	't|limit_reached',
	'd2: a customer holding its limit of 3 stays at its limit');
is( $dst->safe_psql(
		$db,
		"SELECT status, available FROM coupon_claim_detailed('d3', 'late')"),
	'sold_out|0',
	'd3: a sold-out pool is still sold out');
is( $dst->safe_psql(
		$db,
		"SELECT claim_id IS NULL, status FROM coupon_claim_detailed('$uni_sql', 'ö ''quoted''')"
	),
	't|limit_reached',
	'unicode pool: its quoted customer holds its limit of 2');
is( $dst->safe_psql(
		$db,
		"SELECT status, available FROM coupon_claim_detailed('$uni_sql', 'plain')"
	),
	'granted|2',
	'unicode pool: the other customer gets a second coupon, 2 left');

# Every pool grants exactly up to its capacity.
my %view = map { my @f = split /\|/; ($f[0] => \@f) } split /\n/,
  $dst->safe_psql($db, 'SELECT pool, capacity, claimed FROM coupon_pools');
for my $pool (sort keys %view)
{
	my ($name, $cap, $cl) = @{ $view{$pool} };
	my $room = $cap - $cl;
	(my $q = $pool) =~ s/'/''/g;
	is( $dst->safe_psql(
			$db,
			"SELECT count(coupon_claim('$q', 'fill' || g)) FROM generate_series(1, $room + 3) g"
		),
		$room,
		"$pool: exactly the remaining $room are granted");
}
check_pools($dst, $db, 'restored, filled', loaded => 1);
is( $dst->safe_psql(
		$db,
		"SELECT count(*) FROM coupon_pools WHERE claimed <> capacity"),
	'0',
	'every restored pool is exactly at capacity');

# The other restored database, same pool names, same server: untouched.
is($dst->safe_psql('restored_plain', $view_sql), $want{view},
	'restored_plain: filling the other database changed nothing here');
is( $dst->safe_psql(
		'restored_plain',
		"SELECT status, available FROM coupon_claim_detailed('d1', 'new1')"),
	'granted|' . (12 - $claimed{d1} - 1),
	'restored_plain: its own semaphore loads from its own ledger');
check_pools($dst, 'restored_plain', 'plain restore', pools => ['d1'],
	loaded => 1);

# The extension in a schema of its own survives a dump and restore too.
$src->safe_psql('postgres', 'CREATE DATABASE sch');
$src->safe_psql(
	'sch', q{
CREATE SCHEMA "Coupon Schema";
CREATE EXTENSION coupon SCHEMA "Coupon Schema";
SET search_path = "Coupon Schema";
SELECT coupon_pool_create('s', 4, 2);
SELECT coupon_claim('s', 'a', 2);
SELECT coupon_claim('s', 'b', 1);
SELECT coupon_release(id) FROM coupon_claims WHERE customer = 'b';
});
my $sch_ledger = qq{SET search_path = "Coupon Schema";\n$ledger_sql};
my $sch_want = $src->safe_psql('sch', $sch_ledger);
command_ok(
	[
		'pg_dump', '-h', $src->host, '-p', $src->port, '-Fc',
		'-f', "$dir/sch.dump", 'sch'
	],
	'pg_dump of a database with the extension in its own schema');
$dst->safe_psql('postgres', 'CREATE DATABASE restored_sch');
command_ok(
	[
		'pg_restore', '-h', $dst->host, '-p', $dst->port,
		'--exit-on-error', '-d', 'restored_sch', "$dir/sch.dump"
	],
	'pg_restore of it');
is($dst->safe_psql('restored_sch', $sch_ledger), $sch_want,
	'own schema: the ledger survived');
is( $dst->safe_psql(
		'restored_sch',
		q{SELECT status, available FROM "Coupon Schema".coupon_claim_detailed('s', 'c', 2)}
	),
	'granted|0',
	'own schema: the semaphore loads to capacity - claimed (4 - 2), 2 more granted');
is( $dst->safe_psql(
		'restored_sch',
		q{SELECT claim_id IS NULL, status FROM "Coupon Schema".coupon_claim_detailed('s', 'd')}
	),
	't|sold_out',
	'own schema: then sold out');

my @rows = split /\n/, $want{ledger};
note sprintf(
	"dump figures: 6 pools (1 dropped), %d ledger rows (3 released) dumped "
	  . "with a claim in flight; restored with pg_restore -Fc and psql -Fp "
	  . "into 2 databases of a fresh server, plus a database with the "
	  . "extension in its own schema: pools, ledger, sequence and grants "
	  . "identical, semaphores reloaded exactly; %.1f s",
	scalar(@rows), time - $t0);

check_log($src, '005_dump_restore');
$src->stop;
check_log($dst, '005_dump_restore');
$dst->stop;
done_testing();
