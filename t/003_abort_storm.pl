# Abort storms.
#
# pgbench at 32 clients mixes, at random, on three pools (per_customer 1
# with a large customer universe, per_customer 2 with 40 customers, and
# per_customer 3 with 30 customers and a capacity that never binds):
#   commit          one autocommit claim
#   rollback        BEGIN; claim; ROLLBACK
#   savepoint       BEGIN; claim; SAVEPOINT; claim; ROLLBACK TO; claim; COMMIT
#   sub-abort       a claim inside a PL/pgSQL block that fails and catches it
#   release         release one of the latest unreleased claims
#   release-abort   BEGIN; release; ROLLBACK
#   repeat          the same customer twice in one transaction: a claim
#                   granted by the first call is the answer to the second
#   rr, serializable  a claim in a REPEATABLE READ or SERIALIZABLE
#                   transaction whose snapshot was taken before
#   wait            a claim that may sleep 20 ms on the wait queue
# while psql clients abort transactions with an error after a claim (1/0,
# in the same statement and in the next one), and another one resizes a
# pool up and down, sometimes rolling the resize back.  The ledger is
# sampled meanwhile for invariants 2 and 5.  At the end every invariant
# holds for every pool: in_flight = 0, available = capacity - claimed,
# claimed = the ledger's sum of unreleased qty, no customer over its limit,
# no aborted claim in the ledger, and the count of committed grants kept in
# shared memory equals the ledger's rows.
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

my $CLIENTS = 32;
my $SECONDS = 12;

my $t0 = time;
my $node = coupon_node('storm', conf => ['max_connections = 80']);
$node->safe_psql(
	'postgres', q{
SELECT coupon_pool_create('storm_a', 150, 1);
SELECT coupon_pool_create('storm_b', 50, 2);
SELECT coupon_pool_create('storm_c', 1000000, 3);

CREATE FUNCTION storm_pool(p int) RETURNS text LANGUAGE sql IMMUTABLE
AS $$ SELECT (ARRAY['storm_a', 'storm_b', 'storm_c'])[p + 1] $$;

-- x in 0 .. 999999 maps monotonically onto the pool's customers, so that a
-- transaction claiming for x < y < z locks customers in one global order
-- (no deadlock).  Doomed customers (prefix x) are only ever claimed by
-- transactions or subtransactions that abort.
CREATE FUNCTION storm_customer(p int, x int, doomed bool DEFAULT false)
RETURNS text LANGUAGE sql IMMUTABLE
AS $$ SELECT CASE WHEN doomed THEN 'x' ELSE '' END
             || (ARRAY['a', 'b', 'c'])[p + 1]
             || (1 + x::bigint * (ARRAY[1000, 40, 30])[p + 1] / 1000000) $$;

CREATE FUNCTION storm_qty(p int, x int) RETURNS int LANGUAGE sql IMMUTABLE
AS $$ SELECT CASE p WHEN 0 THEN 1 WHEN 1 THEN 1 + x % 2 ELSE 1 + x % 3 END $$;

CREATE FUNCTION storm_sub_abort(p int, x int) RETURNS void LANGUAGE plpgsql
AS $$
BEGIN
    BEGIN
        PERFORM coupon_claim(storm_pool(p), storm_customer(p, x, true),
                             storm_qty(p, x));
        PERFORM 1 / (p - p);
    EXCEPTION WHEN division_by_zero THEN
        NULL;
    END;
END $$;

CREATE FUNCTION repeat_mismatch(a bigint, b bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'repeat mismatch: first claim % then %', a, b;
END $$;
});

my %scripts = (
	'commit.sql@6' => q{
\set p random(0, 2)
\set x random(0, 999999)
SELECT coupon_claim(storm_pool(:p), storm_customer(:p, :x), storm_qty(:p, :x));
},
	'rollback.sql@2' => q{
\set p random(0, 2)
\set x random(0, 999999)
BEGIN;
SELECT coupon_claim(storm_pool(:p), storm_customer(:p, :x), storm_qty(:p, :x));
ROLLBACK;
},
	'savepoint.sql@2' => q{
\set p random(0, 2)
\set x random(0, 333332)
\set y random(333333, 666665)
\set z random(666666, 999999)
BEGIN;
SELECT coupon_claim(storm_pool(:p), storm_customer(:p, :x), storm_qty(:p, :x));
SAVEPOINT s;
SELECT coupon_claim(storm_pool(:p), storm_customer(:p, :y, true), storm_qty(:p, :y));
ROLLBACK TO SAVEPOINT s;
SELECT coupon_claim(storm_pool(:p), storm_customer(:p, :z), storm_qty(:p, :z));
COMMIT;
},
	'subabort.sql@1' => q{
\set p random(0, 2)
\set x random(0, 999999)
SELECT storm_sub_abort(:p, :x);
},
	'release.sql@1' => q{
\set p random(0, 2)
\set o random(0, 20)
SELECT coupon_release(id) FROM coupon_claims
 WHERE pool = storm_pool(:p) AND released_at IS NULL
 ORDER BY id DESC OFFSET :o LIMIT 1;
},
	'releaseabort.sql@1' => q{
\set p random(0, 2)
\set o random(0, 20)
BEGIN;
SELECT coupon_release(id) FROM coupon_claims
 WHERE pool = storm_pool(:p) AND released_at IS NULL
 ORDER BY id DESC OFFSET :o LIMIT 1;
ROLLBACK;
},
	'wait.sql@1' => q{
\set p random(0, 1)
\set x random(0, 999999)
SELECT coupon_claim(storm_pool(:p), storm_customer(:p, :x), storm_qty(:p, :x), '20 ms');
},
	'rr.sql@1' => q{
\set x random(0, 999999)
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) FROM coupon_pool;
SELECT coupon_claim('storm_c', storm_customer(2, :x), storm_qty(2, :x));
COMMIT;
},
	'serializable.sql@1' => q{
\set x random(0, 999999)
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT count(*) FROM coupon_pool;
SELECT coupon_claim('storm_b', storm_customer(1, :x), storm_qty(1, :x));
COMMIT;
},
	'repeat.sql@2' => q{
\set x random(0, 999999)
BEGIN;
SELECT COALESCE(claim_id, 0) AS r1, (status = 'granted')::int AS granted
  FROM coupon_claim_detailed('storm_a', storm_customer(0, :x)) \gset
SELECT COALESCE(coupon_claim('storm_a', storm_customer(0, :x)), 0) AS r2 \gset
\if :granted = 1 and :r1 != :r2
SELECT repeat_mismatch(:r1, :r2);
\endif
COMMIT;
},);

my $dir = PostgreSQL::Test::Utils::tempdir;
my @files;
for my $name (sort keys %scripts)
{
	my ($file, $weight) = split /@/, $name;
	append_to_file("$dir/$file", $scripts{$name});
	push @files, '-f', "$dir/$file\@$weight";
}

# Top-level aborts after a claim, which pgbench cannot do without aborting
# its client: psql goes on after errors.
my @pools = qw(storm_a storm_b storm_c);
my @sizes = (1000, 40, 30);
my $ERROR_ROUNDS = 1500;
my @error_clients;
for my $c (1 .. 2)
{
	my $sql = '';
	for my $i (1 .. $ERROR_ROUNDS)
	{
		my $p = int(rand(3));
		my $cust = "x" . substr($pools[$p], -1) . (1 + int(rand($sizes[$p])));
		my $qty = $p == 0 ? 1 : 1 + int(rand($p + 1));
		$sql .=
		  $i % 2
		  ? "BEGIN;\nSELECT coupon_claim('$pools[$p]', '$cust', $qty);\nSELECT 1/0;\nROLLBACK;\n"
		  : "SELECT coupon_claim('$pools[$p]', '$cust', $qty), 1/(random() * 0)::int;\n";
	}
	append_to_file("$dir/errors$c.sql", $sql);
	push @error_clients,
	  IPC::Run::start(
		[
			'psql', '-X', '-q', '-h', $node->host, '-p', $node->port,
			'-d', 'postgres', '-f', "$dir/errors$c.sql"
		],
		'>', "$dir/errors$c.out", '2>', "$dir/errors$c.err");
}

# Capacity changes in the middle of it all: growth published at commit,
# shrinks taking permits (and failing when they cannot), both rolled back
# now and then.
my $resize_sql = '';
for my $i (1 .. 150)
{
	$resize_sql .= "SELECT coupon_pool_resize('storm_b', 60);\nSELECT pg_sleep(0.02);\n";
	$resize_sql .= "BEGIN;\nSELECT coupon_pool_resize('storm_b', 70);\nROLLBACK;\n";
	$resize_sql .= "BEGIN;\nSELECT coupon_pool_resize('storm_b', 45);\nSELECT pg_sleep(0.01);\nROLLBACK;\n";
	$resize_sql .= "SELECT coupon_pool_resize('storm_b', 50);\nSELECT pg_sleep(0.02);\n";
}
append_to_file("$dir/resize.sql", $resize_sql);
my $resizer = IPC::Run::start(
	[
		'psql', '-X', '-q', '-h', $node->host, '-p', $node->port,
		'-d', 'postgres', '-f', "$dir/resize.sql"
	],
	'>', "$dir/resize.out", '2>', "$dir/resize.err");

my $pgbench = pgbench_start($node, 'postgres', $dir, 'pgbench',
	'-c', $CLIENTS, '-j', 2, '-T', $SECONDS, @files);

# Sample invariants 2 and 5 from the ledger while the storm blows.
my ($samples, $bad_samples) = (0, 0);
my $sample_sql = q{
SELECT (SELECT count(*) FROM coupon_pools WHERE claimed > capacity)
     + (SELECT count(*) FROM (
          SELECT 1 FROM coupon_claims c JOIN coupon_pool p ON p.name = c.pool
           WHERE c.released_at IS NULL
           GROUP BY c.pool, c.customer, p.per_customer
          HAVING sum(c.qty) > p.per_customer) x)};
# From one open session: a psql started for each sample can take a second
# on a loaded machine.
my $sampler = bg_open($node);
while (running($pgbench))
{
	bg_send($sampler, $sample_sql);
	my ($out, $state) = bg_collect($sampler);
	if ($state eq '00000')
	{
		$samples++;
		$bad_samples++ if $out ne '0';
	}
	usleep(200_000);
}
$pgbench->finish;
my $pgbench_rc = $? >> 8;
bg_close($sampler);
$_->finish for @error_clients;
$resizer->finish;

my ($processed, $pgout, $pgerr) = pgbench_result($dir, 'pgbench');
is($pgbench_rc, 0, 'pgbench finished without an aborted client')
  or diag("stdout:\n$pgout\nstderr:\n$pgerr");
unlike($pgerr, qr/repeat mismatch/,
	'a repeated claim in one transaction always got the same id');
my ($failed) = $pgout =~ /number of failed transactions: (\d+)/;
cmp_ok($processed, '>', 1000, 'pgbench processed transactions')
  or diag($pgout);
is($failed // 0, 0, 'no pgbench transaction failed');
my %per_script;
while ($pgout =~
	/SQL script \d+: \S*\/(\w+)\.sql\n - weight[^\n]*\n - (\d+) transactions/g)
{
	$per_script{$1} = $2;
}
is(scalar(keys %per_script), 10, 'all ten scripts ran')
  or diag($pgout);

cmp_ok($samples, '>=', 5, "invariants were sampled during the storm ($samples samples)");
is($bad_samples, 0, 'no sample saw claims over capacity or a customer over its limit');

# The psql error clients: every claim was followed by its error.
for my $c (1 .. 2)
{
	my $err = slurp_file("$dir/errors$c.err");
	my $zero = () = $err =~ /division by zero/g;
	my $other = () = grep { /ERROR/ && !/division by zero/ } split /\n/, $err;
	is($zero, $ERROR_ROUNDS, "error client $c: $ERROR_ROUNDS aborts after a claim");
	is($other, 0, "error client $c: no other error");
}
my $rerr = slurp_file("$dir/resize.err");
my $shrink_refused = () = $rerr =~ /cannot shrink/g;
my $resize_other = () =
  grep { /ERROR/ && !/cannot shrink|current transaction is aborted/ }
  split /\n/, $rerr;
is($resize_other, 0, 'resizes failed only for lack of permits')
  or diag($rerr);

# The invariants, once everything has ended.
my $pools = check_pools($node, 'postgres', 'after the storm',
	loaded => 1, grants => 1);
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM coupon_claims WHERE customer LIKE 'x%'"),
	'0',
	'no claim of an aborted transaction or subtransaction is in the ledger');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM (SELECT 1 FROM coupon_claims c JOIN coupon_pool p ON p.name = c.pool
                       WHERE c.released_at IS NULL
                       GROUP BY c.pool, c.customer, p.per_customer
                      HAVING sum(c.qty) > p.per_customer) x}),
	'0',
	'no customer holds more than the per-customer limit');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM coupon_claims WHERE pool = 'storm_a' AND released_at IS NULL GROUP BY customer HAVING count(*) > 1"),
	'', 'per_customer 1: nobody holds two claims');

# The pools are still exact: each one can be filled to exactly its capacity.
for my $p (qw(storm_a storm_b))
{
	my $room = $pools->{$p}{capacity} - $pools->{$p}{claimed};
	is( $node->safe_psql(
			'postgres',
			"SELECT count(coupon_claim('$p', 'fill' || g)) FROM generate_series(1, $room + 10) g"
		),
		$room,
		"$p: exactly the remaining $room coupons can be claimed");
}
check_pools($node, 'postgres', 'after filling', loaded => 1, grants => 1);

my $ledger = $node->safe_psql(
	'postgres', q{
SELECT count(*), count(*) FILTER (WHERE released_at IS NOT NULL) FROM coupon_claims});
my ($rows, $released) = split /\|/, $ledger;
my $stats = $node->safe_psql('postgres',
	"SELECT sum(grants), sum(sold_out) FROM coupon_pools");
my ($grants, $sold_out) = split /\|/, $stats;
note sprintf(
	"storm figures: %d pgbench clients for %d s, %d transactions (%s), "
	  . "0 failed; %d top-level aborts after a claim from psql; "
	  . "%d shrinks refused; %d ledger rows (%d released), %d sold-out "
	  . "answers; %d invariant samples, 0 violations; %.1f s",
	$CLIENTS, $SECONDS, $processed // 0,
	join(', ', map { "$_ $per_script{$_}" } sort keys %per_script),
	2 * $ERROR_ROUNDS, $shrink_refused, $rows, $released, $sold_out,
	$samples, time - $t0);

check_log($node, '003_abort_storm');
$node->stop;
done_testing();
