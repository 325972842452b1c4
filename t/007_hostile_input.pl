# Hostile and broken input, table-driven.
#
# Every case runs in a session of its own and states the SQLSTATE it must
# get; "changes nothing" is proven by comparing a fingerprint of
# coupon_pools, the ledger, the pool table, the id sequence and the loaded
# semaphores before and after.  Cases: NULLs in every argument, empty,
# over-long (128 bytes, 1025 bytes, 10 kB) and multibyte names, injection
# strings, negative, zero and huge numbers, values out of range, unknown
# pools and claims, repeats and limits (no error, no change), savepoints
# and PL/pgSQL blocks rolled back, read-only transactions, PREPARE
# TRANSACTION after a claim, a release or a resize, dropping a pool while
# a claim is in flight, claiming while a drop is in flight.  Then what must
# work does: unicode and quote characters in names, names at the byte
# limits, capacities up to 9223372036854775807 with quantities up to
# 2147483647 (no overflow of capacity plus quantity or of a customer's
# holdings), a pool of capacity 0.  Arrays of the 1.1 functions that can
# be empty: an empty customer array is zero rows, an empty cart an error.  Finally a server started with
# coupon.max_pools = 3: pools of two databases, more than 3, share the 3
# slots of shared memory round robin; 53400 only while all 3 are held by
# open transactions (nothing changed, and a bad qty still 22023).
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
my $node = coupon_node('hostile', conf => ['max_prepared_transactions = 2']);
$node->safe_psql(
	'postgres', q{
SELECT coupon_pool_create('h1', 5);
SELECT coupon_pool_create('h2', 10, 3);
SELECT coupon_claim('h1', 'k' || g) FROM generate_series(1, 3) g;
SELECT coupon_claim('h2', 'm', 2);
SELECT coupon_release(id) FROM coupon_claims WHERE customer = 'k3';
});
my %id = map { split /\|/ } split /\n/,
  $node->safe_psql('postgres', 'SELECT customer, id FROM coupon_claims');

# [ SQL, expected SQLSTATE, expected output (for cases that succeed) ]
my @cases = (
	# NULL arguments
	[ "SELECT coupon_pool_create(NULL, 5)", '22004' ],
	[ "SELECT coupon_pool_create('n', NULL)", '22004' ],
	[ "SELECT coupon_pool_create('n', 5, NULL)", '22004' ],
	[ "SELECT coupon_pool_resize(NULL, 5)", '22004' ],
	[ "SELECT coupon_pool_resize('h1', NULL)", '22004' ],
	[ "SELECT coupon_pool_drop(NULL)", '22004' ],
	[ "SELECT coupon_claim(NULL, 'c')", '22004' ],
	[ "SELECT coupon_claim('h1', NULL)", '22004' ],
	[ "SELECT coupon_claim('h1', 'c', NULL)", '22004' ],
	[ "SELECT coupon_claim('h1', 'c', 1, NULL)", '22004' ],
	[ "SELECT coupon_claim(NULL::text, NULL::text, NULL::int, NULL::interval)", '22004' ],
	[ "SELECT * FROM coupon_claim_detailed(NULL, 'c')", '22004' ],
	[ "SELECT * FROM coupon_claim_detailed('h1', NULL)", '22004' ],
	[ "SELECT * FROM coupon_claim_detailed('h1', 'c', NULL)", '22004' ],
	[ "SELECT * FROM coupon_claim_detailed('h1', 'c', 1, NULL)", '22004' ],
	[ "SELECT coupon_release(NULL)", '22004' ],

	# empty and over-long names
	[ "SELECT coupon_pool_create('', 5)", '22023' ],
	[ "SELECT coupon_pool_create(repeat('x', 128), 5)", '22023' ],
	[ "SELECT coupon_pool_create(repeat('é', 64), 5)", '22023' ], # 128 bytes
	[ "SELECT coupon_pool_create(repeat('x', 10240), 5)", '22023' ],
	[ "SELECT coupon_pool_resize('', 5)", '22023' ],
	[ "SELECT coupon_pool_resize(repeat('x', 10240), 5)", '22023' ],
	[ "SELECT coupon_pool_drop('')", '22023' ],
	[ "SELECT coupon_pool_drop(repeat('x', 10240))", '22023' ],
	[ "SELECT coupon_claim('', 'c')", '22023' ],
	[ "SELECT coupon_claim(repeat('x', 10240), 'c')", '22023' ],
	[ "SELECT coupon_claim('h1', '')", '22023' ],
	[ "SELECT coupon_claim('h1', repeat('c', 1025))", '22023' ],
	[ "SELECT coupon_claim('h1', repeat('ü', 513))", '22023' ], # 1026 bytes
	[ "SELECT coupon_claim('h1', repeat('c', 10240))", '22023' ],
	[ "SELECT * FROM coupon_claim_detailed('', 'c')", '22023' ],
	[ "SELECT * FROM coupon_claim_detailed('h1', repeat('c', 10240))", '22023' ],

	# unknown pools and claims, look-alike and injection names
	[ "SELECT coupon_claim('nope', 'c')", '42704' ],
	[ "SELECT coupon_claim('H1', 'c')", '42704' ],
	[ "SELECT coupon_claim('h1 ', 'c')", '42704' ],
	[ "SELECT coupon_claim(\$q\$h1'; DROP TABLE coupon_claims; --\$q\$, 'c')", '42704' ],
	[ "SELECT * FROM coupon_claim_detailed('nope', 'c')", '42704' ],
	[ "SELECT coupon_pool_resize('nope', 5)", '42704' ],
	[ "SELECT coupon_pool_drop('nope')", '42704' ],
	[ "SELECT coupon_pool_drop(\$q\$h1' OR '1'='1\$q\$)", '42704' ],
	[ "SELECT coupon_release(0)", '42704' ],
	[ "SELECT coupon_release(-1)", '42704' ],
	[ "SELECT coupon_release(9223372036854775807)", '42704' ],
	[ "SELECT coupon_release(-9223372036854775808)", '42704' ],

	# numbers: negative, zero, huge, out of range
	[ "SELECT coupon_pool_create('n', -1)", '22023' ],
	[ "SELECT coupon_pool_create('n', -9223372036854775808)", '22023' ],
	[ "SELECT coupon_pool_create('n', '9223372036854775808'::bigint)", '22003' ],
	[ "SELECT coupon_pool_create('n', 5, 0)", '22023' ],
	[ "SELECT coupon_pool_create('n', 5, -1)", '22023' ],
	[ "SELECT coupon_pool_create('n', 5, -2147483648)", '22023' ],
	[ "SELECT coupon_pool_resize('h1', -1)", '22023' ],
	[ "SELECT coupon_pool_resize('h1', -9223372036854775808)", '22023' ],
	[ "SELECT coupon_claim('h1', 'c', 0)", '22023' ],
	[ "SELECT coupon_claim('h1', 'c', -1)", '22023' ],
	[ "SELECT coupon_claim('h1', 'c', -2147483648)", '22023' ],
	[ "SELECT coupon_claim('h1', 'c', 2147483647)", '22023' ],
	[ "SELECT coupon_claim('h1', 'c', '2147483648'::int)", '22003' ],
	[ "SELECT coupon_claim('h1', 'c', 6)", '22023' ],    # above capacity
	[ "SELECT coupon_claim('h1', 'c', 2)", '22023' ],    # above per_customer 1
	[ "SELECT coupon_claim('h2', 'c', 4)", '22023' ],    # above per_customer 3
	[ "SELECT coupon_claim('h1', 'c', 1, '-1 second')", '22023' ],
	[ "SELECT coupon_claim('h1', 'c', 1, '-1 microsecond')", '22023' ],
	[ "SELECT coupon_claim('h1', 'c', 1, '1 month -31 days')", '22023' ],
	[ "SELECT coupon_claim('h1', 'c', 1, '178000000 years')", '22008' ],

	# settings that clash
	[ "SELECT coupon_pool_create('h1', 6)", '42710' ],
	[ "SELECT coupon_pool_create('h1', 5, 2)", '42710' ],
	[ "SELECT coupon_pool_resize('h1', 1)", '55000' ],    # 2 claimed
	[ "SELECT coupon_pool_resize('h2', 1)", '55000' ],

	# no error and no change: same settings, repeats, limits, releases
	[ "SELECT coupon_pool_create('h1', 5)", '00000', 'f' ],
	[ "SELECT coupon_pool_create('h2', 10, 3)", '00000', 'f' ],
	[ "SELECT coupon_pool_resize('h1', 5)", '00000', '' ],
	[ "SELECT coupon_claim('h1', 'k1')", '00000', $id{k1} ],
	[ "SELECT coupon_claim('h1', 'k1', 1, '1 hour')", '00000', $id{k1} ],
	[ "SELECT coupon_claim('h1', 'k1') FROM generate_series(1, 3)", '00000', join("\n", ($id{k1}) x 3) ],
	[ "SELECT claim_id, status FROM coupon_claim_detailed('h1', 'k2')", '00000', "$id{k2}\x{1f}repeat" ],
	[ "SELECT claim_id IS NULL, status, available FROM coupon_claim_detailed('h2', 'm', 2)", '00000', "t\x{1f}limit_reached\x{1f}8" ],
	[ "SELECT coupon_release($id{k3})", '00000', 'f' ],
	[ "BEGIN; SELECT coupon_claim('h1', 'rolled back'); ROLLBACK", '00000', undef, 'no_sequence' ],
	[ "BEGIN; SELECT coupon_release($id{k1}); ROLLBACK", '00000', 't' ],
	[ "BEGIN; SELECT coupon_pool_resize('h1', 1000); ROLLBACK", '00000', '' ],
	[ "BEGIN; SELECT coupon_pool_resize('h1', 2); ROLLBACK", '00000', '' ],
	[ "BEGIN; SELECT coupon_pool_drop('h1'); ROLLBACK", '00000', '' ],
	[ "BEGIN; SAVEPOINT a; SAVEPOINT b; SELECT coupon_claim('h1', 'nested'); RELEASE SAVEPOINT b; ROLLBACK TO SAVEPOINT a; COMMIT", '00000', undef, 'no_sequence' ],
	[ "BEGIN; SAVEPOINT a; SELECT coupon_release($id{k1}); ROLLBACK TO SAVEPOINT a; COMMIT", '00000', 't' ],
	[ "BEGIN; SAVEPOINT a; SELECT coupon_pool_resize('h1', 1000); ROLLBACK TO SAVEPOINT a; COMMIT", '00000', '' ],
	[ "BEGIN; SAVEPOINT a; SELECT coupon_pool_resize('h1', 2); ROLLBACK TO SAVEPOINT a; COMMIT", '00000', '' ],
	[ "DO \$\$ BEGIN PERFORM coupon_claim('h1', 'in_do'); RAISE EXCEPTION 'boom'; END \$\$", 'P0001', undef, 'no_sequence' ],

	# read-only transactions
	[ "BEGIN READ ONLY; SELECT coupon_claim('h1', 'read only')", '25006' ],
	# Refused at once, even where the answer would change nothing.
	[ "BEGIN READ ONLY; SELECT coupon_claim('h1', 'k1')", '25006' ],
	[ "BEGIN READ ONLY; SELECT coupon_release($id{k1})", '25006' ],
	[ "BEGIN READ ONLY; SELECT coupon_pool_resize('h1', 6)", '25006' ],
	[ "BEGIN READ ONLY; SELECT coupon_pool_create('ro', 6)", '25006' ],
	[ "BEGIN READ ONLY; SELECT coupon_pool_drop('h1')", '25006' ],

	# arrays and counts that can be empty or zero (1.1): an empty customer
	# array is zero rows, an empty cart an error; neither changes anything
	[ "SELECT * FROM coupon_claim_many('h1', '{}'::text[])", '00000', '' ],
	[ "SELECT count(*) FROM coupon_claim_many('h1', ARRAY[]::text[], 1)", '00000', '0' ],
	[ "SELECT count(*) FROM coupon_claim_many('h2', '{}', 3)", '00000', '0' ],
	[ "SELECT * FROM coupon_claim_many('nope', '{}'::text[])", '42704' ],
	[ "SELECT * FROM coupon_claim_many('h1', '{}'::text[], 0)", '22023' ],
	[ "SELECT * FROM coupon_claim_many('h1', NULL::text[])", '22004' ],
	[ "SELECT * FROM coupon_claim_many('h1', '{NULL}'::text[])", '22004' ],
	[ "SELECT * FROM coupon_claim_many('h1', '{\"\"}'::text[])", '22023' ],
	[ "SELECT * FROM coupon_claim_many('h1', '{{a},{b}}'::text[])", '2202E' ],
	[ "SELECT coupon_claim_cart('{}'::text[], '{}'::integer[], 'c')", '22023' ],
	[ "SELECT * FROM coupon_claim_cart_detailed('{}'::text[], '{}'::integer[], 'c')", '22023' ],
	[ "SELECT coupon_claim_cart('{h1}', '{}'::integer[], 'c')", '22023' ],
	[ "SELECT coupon_claim_cart('{}'::text[], '{1}', 'c')", '22023' ],
	[ "SELECT coupon_claim_cart('{h1}', '{0}', 'c')", '22023' ],
	[ "SELECT coupon_claim_cart('{h1}', '{1}', 'c', '0')", '22023' ],
	[ "SELECT coupon_hold('h1', 'c', '0')", '22023' ],
	[ "SELECT coupon_hold('h1', 'c', '1 hour', 0)", '22023' ],
	[ "SELECT coupon_hold('h1', 'c', '106742200 days')", '22008' ],    # past the last timestamp
	[ "SELECT coupon_hold_extend($id{k1}, '0')", '22023' ],
	[ "SELECT coupon_hold_extend(0, '1 hour')", '42704' ],
	[ "SELECT coupon_confirm(0)", '42704' ],
	[ "SELECT coupon_confirm(NULL)", '22004' ],

	# PREPARE TRANSACTION after something that holds or publishes permits
	[ "BEGIN; SELECT coupon_claim('h1', 'prepared'); PREPARE TRANSACTION 'p1'", '0A000', undef, 'no_sequence' ],
	[ "BEGIN; SELECT coupon_release($id{k1}); PREPARE TRANSACTION 'p2'", '0A000' ],
	[ "BEGIN; SELECT coupon_pool_resize('h2', 20); PREPARE TRANSACTION 'p3'", '0A000' ],
	[ "BEGIN; SELECT coupon_pool_resize('h2', 9); PREPARE TRANSACTION 'p4'", '0A000' ],
	[ "BEGIN; SELECT coupon_pool_drop('h1'); PREPARE TRANSACTION 'p5'", '0A000' ],
);

my $n = 0;
for my $case (@cases)
{
	my ($sql, $want, $want_out, $opt) = @$case;
	my %fp_opt = defined $opt && $opt eq 'no_sequence' ? (no_sequence => 1) : ();
	my $label = length($sql) > 100 ? substr($sql, 0, 100) . '...' : $sql;
	my $before = fingerprint($node, 'postgres', %fp_opt);
	my ($state, $out, $err) = expect_state($node, 'postgres', $sql, $want,
		"[$want] $label");
	if (defined $want_out)
	{
		is($out, $want_out, "output of: $label");
	}
	elsif ($want eq '00000')
	{
		pass("(no output to check) $label");
	}
	else
	{
		# An error must be a clear one: a message, not an internal error.
		unlike($err, qr/XX000|cache lookup|unexpected|SPI_/,
			"error is not internal: $label");
	}
	is(fingerprint($node, 'postgres', %fp_opt), $before,
		"changes nothing: $label");
	$n++;
}
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'),
	'0', 'no transaction was prepared');
check_pools($node, 'postgres', 'after the error cases', loaded => 1);

############################################################################
# Dropping a pool while a claim is in flight; claiming while a drop is in
# flight.
############################################################################
my $holder = bg_open($node);
bg_run($holder, 'BEGIN');
bg_run($holder, "SELECT coupon_claim('h2', 'hold')");
my $before = fingerprint($node, 'postgres');
like($before, qr/semaphores: .*\|1(,|$)/m, 'drop: a permit of h2 is in flight');
expect_state($node, 'postgres', "SELECT coupon_pool_drop('h2')", '55006',
	'drop while a claim is in flight: 55006');
is(fingerprint($node, 'postgres'), $before, 'drop refused: nothing changed');
$n++;
is( $node->safe_psql('postgres',
		"SELECT status FROM coupon_claim_detailed('h2', 'after_refused_drop')"),
	'granted',
	'drop refused: the pool still takes claims');
bg_run($holder, 'ROLLBACK');

my $dropper = bg_open($node);
bg_run($dropper, 'BEGIN');
bg_run($dropper, "SELECT coupon_pool_drop('h2')");
$before = fingerprint($node, 'postgres');
expect_state($node, 'postgres', "SELECT coupon_claim('h2', 'during_drop')",
	'55006', 'claim while a drop is in flight: 55006');
is(fingerprint($node, 'postgres'), $before, 'claim refused: nothing changed');
$n++;
bg_run($dropper, 'ROLLBACK');
is( $node->safe_psql('postgres',
		"SELECT status FROM coupon_claim_detailed('h2', 'after_rolled_back_drop')"),
	'granted',
	'drop rolled back: the pool takes claims again');
bg_close($holder);
bg_close($dropper);
check_pools($node, 'postgres', 'after the drop cases', loaded => 1);

# The id sequence at its maximum: the claim fails after taking its permit,
# which must come back.
$node->safe_psql('postgres',
	"SELECT setval('coupon_claims_id_seq', 9223372036854775807)");
$before = fingerprint($node, 'postgres');
expect_state($node, 'postgres', "SELECT coupon_claim('h1', 'seqmax')",
	'2200H', 'claim with the id sequence exhausted: 2200H');
is(fingerprint($node, 'postgres'), $before, 'sequence exhausted: nothing changed');
$n++;
$node->safe_psql('postgres',
	"SELECT setval('coupon_claims_id_seq', (SELECT max(id) FROM coupon_claims))");
check_pools($node, 'postgres', 'after the sequence case', loaded => 1);

############################################################################
# What must work: unicode, quotes, byte limits, huge numbers, capacity 0.
############################################################################
my $name127 = '$v$' . ('😀' x 31) . 'abc$v$';    # 127 bytes
my $cust1024 = '$v$' . ('ü' x 512) . '$v$';      # 1024 bytes
my $quoted = q{$v$p'o"o;l\\ -- 😀	tab$v$};
my $cquoted = q{$v$O'Brien "x" \\ 😀 $$ --$v$};
is($node->safe_psql('postgres', "SELECT coupon_pool_create($name127, 2)"),
	't', 'a pool name of exactly 127 bytes is accepted');
like($node->safe_psql('postgres', "SELECT coupon_claim($name127, $cust1024)"),
	qr/^\d+$/, 'a customer name of exactly 1024 bytes is accepted');
is($node->safe_psql('postgres', "SELECT coupon_pool_create($quoted, 3, 2)"),
	't', 'a pool name with quotes, backslash, tab and emoji is accepted');
like($node->safe_psql('postgres', "SELECT coupon_claim($quoted, $cquoted, 2)"),
	qr/^\d+$/, 'a customer name with quotes and emoji is accepted');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM coupon_claims WHERE (pool = $name127 AND customer = $cust1024)"
		  . " OR (pool = $quoted AND customer = $cquoted AND qty = 2)"),
	'2',
	'the names are stored byte for byte');
is( $node->safe_psql(
		'postgres',
		"SELECT claim_id IS NULL, status FROM coupon_claim_detailed($quoted, $cquoted)"),
	't|limit_reached',
	'the quoted customer is recognised again (limit reached)');

is( $node->safe_psql(
		'postgres',
		"SELECT coupon_release(coupon_claim('h1', 'claim_and_release'))"),
	't',
	'a claim released in the same statement');
is( $node->safe_psql(
		'postgres',
		"SELECT released_at IS NOT NULL FROM coupon_claims WHERE customer = 'claim_and_release'"),
	't',
	'it is in the ledger, released');
check_pools($node, 'postgres', 'after claim and release in one statement',
	loaded => 1);

my $MAX8 = '9223372036854775807';
my $MAX4 = 2147483647;
$node->safe_psql('postgres', "SELECT coupon_pool_resize('h2', $MAX8)");
is( $node->safe_psql(
		'postgres', qq{
SELECT d.status,
       d.available = $MAX8 - 3 - (SELECT sum(qty) FROM coupon_claims
                                  WHERE pool = 'h2' AND released_at IS NULL)
  FROM coupon_claim_detailed('h2', 'big', 3) d}),
	'granted|t',
	'capacity 9223372036854775807: a claim of 3 leaves capacity - claimed');
is($node->safe_psql('postgres', "SELECT coupon_pool_create('big', $MAX8, $MAX4)"),
	't', 'a pool of capacity 9223372036854775807, per_customer 2147483647');
is( $node->safe_psql(
		'postgres',
		"SELECT status, available FROM coupon_claim_detailed('big', 'w1', $MAX4)"),
	'granted|9223372034707292160',
	'a claim of 2147483647 is granted');
is( $node->safe_psql(
		'postgres',
		"SELECT claim_id IS NULL, status FROM coupon_claim_detailed('big', 'w1', 1)"),
	't|limit_reached',
	'holding 2147483647, one more is over the limit (no int32 overflow)');
is( $node->safe_psql(
		'postgres',
		"SELECT claim_id IS NULL, status FROM coupon_claim_detailed('big', 'w1', $MAX4)"),
	't|limit_reached',
	'holding 2147483647, 2147483647 more is over the limit');
is( $node->safe_psql(
		'postgres',
		"SELECT status, available FROM coupon_claim_detailed('big', 'w2', $MAX4)"),
	'granted|9223372032559808513',
	'another customer gets 2147483647 more');
is( $node->safe_psql(
		'postgres', "SELECT claimed FROM coupon_pools WHERE pool = 'big'"),
	'4294967294', 'coupon_pools: 4294967294 claimed');
$node->safe_psql('postgres', "SELECT coupon_pool_resize('big', 4294967294)");
is( $node->safe_psql(
		'postgres',
		"SELECT status, available FROM coupon_claim_detailed('big', 'w3', 1)"),
	'sold_out|0',
	'shrunk from 9223372036854775807 to exactly what is claimed: sold out');
$before = fingerprint($node, 'postgres');
expect_state($node, 'postgres', "SELECT coupon_pool_resize('big', 4294967293)",
	'55000', 'shrinking below what is claimed: 55000');
expect_state($node, 'postgres', "SELECT coupon_pool_resize('big', 0)",
	'55000', 'shrinking to 0 below what is claimed: 55000');
is(fingerprint($node, 'postgres'), $before, 'refused shrinks changed nothing');
$node->safe_psql('postgres', "SELECT coupon_pool_resize('h2', 10)");

is($node->safe_psql('postgres', "SELECT coupon_pool_create('zero', 0)"),
	't', 'a pool of capacity 0');
# Load its semaphore first (a claim, sold out), so that the fingerprint
# compares state, not whether the cache was filled.
$node->safe_psql('postgres', "SELECT coupon_claim('zero', 'loader')");
$before = fingerprint($node, 'postgres');
is( $node->safe_psql('postgres',
		"SELECT claim_id IS NULL, status FROM coupon_claim_detailed('zero', 'c')"),
	't|sold_out', 'claiming from capacity 0: sold out, not an error');
is(fingerprint($node, 'postgres'), $before, 'and nothing changed');
$node->safe_psql('postgres', "SELECT coupon_pool_resize('zero', 1)");
is( $node->safe_psql('postgres',
		"SELECT status FROM coupon_claim_detailed('zero', 'c')"),
	'granted', 'grown to 1, it grants one');
check_pools($node, 'postgres', 'after the edge values', loaded => 1);
check_log($node, 'hostile');
$node->stop;

############################################################################
# coupon.max_pools = 3: a cache of three pools for all databases.  Any
# number of pools can be created and used, round robin across databases;
# 53400 only when all three slots are held by open transactions, and then
# a bad argument is still told as such (22023), and nothing changes.
############################################################################
my $mp = coupon_node('maxpools', conf => ['coupon.max_pools = 3']);
is($mp->safe_psql('postgres', 'SHOW coupon.max_pools'), '3',
	'a server with coupon.max_pools = 3');
is( $mp->safe_psql('postgres',
		"SELECT count(coupon_pool_create('p' || g, 5)) FROM generate_series(1, 6) g"),
	'6', 'max_pools: a database creates six pools');
$mp->safe_psql('postgres', 'CREATE DATABASE db2');
$mp->safe_psql('db2', 'CREATE EXTENSION coupon');
$mp->safe_psql('db2',
	"SELECT coupon_pool_create('q' || g, 5) FROM generate_series(1, 3) g");
for my $round (1 .. 2)
{
	is( join('', map { $mp->safe_psql('postgres', "SELECT coupon_claim('p$_', 'r$round') IS NOT NULL") } 1 .. 6),
		'tttttt', "max_pools: round $round: each of the six pools grants");
	is( join('', map { $mp->safe_psql('db2', "SELECT coupon_claim('q$_', 'r$round') IS NOT NULL") } 1 .. 3),
		'ttt', "max_pools: round $round: and each pool of db2");
}
cmp_ok($mp->safe_psql('postgres', 'SELECT count(*) FROM coupon_pool_memory()'),
	'<=', 3, 'max_pools: at most 3 pools are loaded at once');

sub refused
{
	my ($db, $sql, $label, $state, @also) = @_;
	my @dbs = ($db, @also);
	my %before = map { $_ => fingerprint($mp, $_) } @dbs;
	expect_state($mp, $db, $sql, $state, "max_pools: $label: $state");
	is_deeply({ map { $_ => fingerprint($mp, $_) } @dbs },
		\%before, "max_pools: $label: nothing changed");
	$n++;
}

# Three open transactions hold a claim each, in three pools: every slot
# is busy.
my @holders = map { bg_open($mp, $_) } qw(postgres postgres db2);
bg_run($_, 'BEGIN') for @holders;
bg_run($holders[0], "SELECT coupon_claim('p1', 'busy')");
bg_run($holders[1], "SELECT coupon_claim('p2', 'busy')");
bg_run($holders[2], "SELECT coupon_claim('q1', 'busy')");
refused('postgres', "SELECT coupon_claim('p3', 'a')",
	'every slot is busy', '53400', 'db2');
refused('db2', "SELECT * FROM coupon_claim_detailed('q2', 'a', 1, '1 s')",
	'with a wait time too', '53400', 'postgres');
refused('postgres', "SELECT coupon_claim('p3', 'a', 6)",
	'a qty above the capacity is told as such', '22023', 'db2');
refused('db2', "SELECT coupon_claim('q3', 'a', 2)",
	'a qty above the limit is told as such', '22023', 'postgres');
like($mp->safe_psql('postgres', "SELECT coupon_claim('p1', 'same-pool')"),
	qr/^\d+$/, 'max_pools: a pool that is loaded still grants');
bg_run($holders[2], 'COMMIT');
like($mp->safe_psql('postgres', "SELECT coupon_claim('p3', 'a')"),
	qr/^\d+$/, 'max_pools: once one transaction ends, its slot is reused');
bg_run($_, 'COMMIT') for @holders[0 .. 1];
bg_close($_) for @holders;

# DROP EXTENSION and DROP DATABASE forget their pools' slots; what is
# left loads and grants exactly.
$mp->safe_psql('db2', 'DROP EXTENSION coupon');
$mp->safe_psql('db2', 'CREATE EXTENSION coupon');
$mp->safe_psql('db2', "SELECT coupon_pool_create('q1', 5)");
is($mp->safe_psql('db2', 'SELECT count(*) FROM coupon_claims'),
	'0', 'max_pools: the recreated extension starts with an empty ledger');
like($mp->safe_psql('db2', "SELECT coupon_claim('q1', 'new')"),
	qr/^\d+$/, 'max_pools: and its pool of an old name grants');
$mp->safe_psql('postgres', 'DROP DATABASE db2');
# One pool per statement: a transaction holds a slot per pool it claims
# from.
$mp->safe_psql('postgres',
	"SELECT count(coupon_claim('p$_', 'fill' || f)) FROM generate_series(1, 5) f")
  for 1 .. 6;
check_pools($mp, 'postgres', 'max_pools');
is( $mp->safe_psql('postgres',
		"SELECT count(*) FROM coupon_pools WHERE claimed = capacity AND available = 0"),
	'6', 'max_pools: all six pools sold out, none over');
check_log($mp, 'max_pools');
$mp->stop;

note sprintf(
	"hostile-input figures: %d cases (NULLs, empty, 128-byte, 1025-byte "
	  . "and 10 kB names, injection strings, negative, zero, huge and "
	  . "out-of-range numbers, unknown pools and claims, clashing settings, "
	  . "repeats and limits, PREPARE after a claim, a release, a resize or "
	  . "a drop, drops and claims racing, coupon.max_pools = 3 across two "
	  . "databases), each with its SQLSTATE and an unchanged fingerprint; "
	  . "capacity 9223372036854775807 with qty 2147483647 exact; %.1f s",
	$n, time - $t0);

done_testing();
