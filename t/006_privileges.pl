# Privileges.
#
# An application role "app" with exactly the documented grants
#   GRANT EXECUTE ON FUNCTION coupon_claim(text, text, integer, interval, text),
#     coupon_claim_detailed(text, text, integer, interval, text),
#     coupon_hold(text, text, interval, integer, interval, text),
#     coupon_confirm(bigint, text), coupon_hold_extend(bigint, interval, text),
#     coupon_claim_cart(text[], integer[], text, interval, interval, text),
#     coupon_claim_cart_detailed(text[], integer[], text, interval, interval, text),
#     coupon_claim_many(text, text[], integer),
#     coupon_release(bigint, text), coupon_pool_memory() TO app;
#   GRANT SELECT ON coupon_pools, coupon_holds TO app;
# can claim, hold, confirm, release (its customers' claims, by naming the
# customer: another customer's claim is UC004) and read the views; it cannot
# release, confirm or extend by claim id alone, nor prune the ledger.  It cannot write (or read) the
# ledger, the pool table or the sequence, cannot create, resize or drop a
# pool, cannot alter, replace or drop the extension's objects, and a role
# without the grants cannot even claim.  Each refusal is 42501 (55000 for
# writes to the view, which is not updatable) and changes nothing.  No
# function of the extension but the trigger function is executable by
# PUBLIC: a role without grants calling any of them gets 42501.
#
# Then app tries to hijack the extension through search_path: its own
# schema early in search_path (before pg_catalog; after pg_temp, where its
# temporary look-alike tables are), with tables, a sequence, a view,
# functions, aggregates and operators named like the ones the extension
# uses, each of which records that it ran: the claims still land in the
# real ledger, none of the hijackers ever runs, and the pool stays exact.
#
# Finally the same with the extension in a schema of its own ("Coupon
# Schema"): the documented grants plus USAGE on the schema are needed and
# enough.
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
my $node = coupon_node('privileges');
$node->safe_psql(
	'postgres', q{
CREATE ROLE app LOGIN;
CREATE ROLE nobody LOGIN;
GRANT EXECUTE ON FUNCTION coupon_claim(text, text, integer, interval, text),
      coupon_claim_detailed(text, text, integer, interval, text),
      coupon_hold(text, text, interval, integer, interval, text),
      coupon_confirm(bigint, text), coupon_hold_extend(bigint, interval, text),
      coupon_claim_cart(text[], integer[], text, interval, interval, text),
      coupon_claim_cart_detailed(text[], integer[], text, interval, interval, text),
      coupon_claim_many(text, text[], integer),
      coupon_release(bigint, text), coupon_pool_memory() TO app;
GRANT SELECT ON coupon_pools, coupon_holds TO app;
CREATE SCHEMA evil AUTHORIZATION app;
SELECT coupon_pool_create('priv', 3);
SELECT coupon_pool_create('other', 5, 2);
SELECT coupon_claim('other', 'owner', 2);
});
my $as_app = $node->connstr('postgres') . ' user=app';
my $as_nobody = $node->connstr('postgres') . ' user=nobody';

# What app may execute.
is( $node->safe_psql(
		'postgres', q{
SELECT string_agg(f || '=' || has_function_privilege('app', f, 'EXECUTE'),
                  ' ' ORDER BY f)
  FROM unnest(ARRAY['coupon_claim(text,text,integer,interval,text)',
                    'coupon_claim_detailed(text,text,integer,interval,text)',
                    'coupon_hold(text,text,interval,integer,interval,text)',
                    'coupon_confirm(bigint)', 'coupon_hold_extend(bigint,interval)',
                    'coupon_confirm(bigint,text)', 'coupon_hold_extend(bigint,interval,text)',
                    'coupon_claim_cart(text[],integer[],text,interval,interval,text)',
                    'coupon_claim_many(text,text[],integer)',
                    'coupon_release(bigint)', 'coupon_release(bigint,text)',
                    'coupon_ledger_prune(interval,integer)', 'coupon_pool_memory()',
                    'coupon_pool_create(text,bigint,integer)',
                    'coupon_pool_resize(text,bigint)',
                    'coupon_pool_drop(text)']) f}),
	'coupon_claim(text,text,integer,interval,text)=true '
	  . 'coupon_claim_cart(text[],integer[],text,interval,interval,text)=true '
	  . 'coupon_claim_detailed(text,text,integer,interval,text)=true '
	  . 'coupon_claim_many(text,text[],integer)=true '
	  . 'coupon_confirm(bigint)=false '
	  . 'coupon_confirm(bigint,text)=true '
	  . 'coupon_hold(text,text,interval,integer,interval,text)=true '
	  . 'coupon_hold_extend(bigint,interval)=false '
	  . 'coupon_hold_extend(bigint,interval,text)=true '
	  . 'coupon_ledger_prune(interval,integer)=false '
	  . 'coupon_pool_create(text,bigint,integer)=false '
	  . 'coupon_pool_drop(text)=false '
	  . 'coupon_pool_memory()=true '
	  . 'coupon_pool_resize(text,bigint)=false '
	  . 'coupon_release(bigint)=false '
	  . 'coupon_release(bigint,text)=true',
	'app can execute exactly the claim and hold functions and the statistics');

############################################################################
# What app can do.
############################################################################
my ($state, $out, $err) = expect_state($node, 'postgres',
	"SELECT coupon_claim('priv', 'a1')", '00000', 'app can claim',
	connstr => $as_app);
my $a1 = $out;
like($a1, qr/^\d+$/, 'app got a claim id');
($state, $out) = expect_state($node, 'postgres',
	"SELECT status, available FROM coupon_claim_detailed('priv', 'a2')",
	'00000', 'app can claim with details', connstr => $as_app);
is($out, "granted\x{1f}1", 'app: granted, 1 left');
($state, $out) = expect_state($node, 'postgres',
	"SELECT claimed, available, in_flight FROM coupon_pools WHERE pool = 'priv'",
	'00000', 'app can read coupon_pools', connstr => $as_app);
is($out, "2\x{1f}1\x{1f}0", 'app sees 2 claimed, 1 available');
($state, $out) = expect_state($node, 'postgres',
	"SELECT count(*) FROM coupon_pool_memory()", '00000',
	'app can read the semaphores', connstr => $as_app);
expect_state($node, 'postgres',
	"SELECT coupon_release($a1, 'a2')", 'UC004',
	'app cannot release another customer\'s claim', connstr => $as_app);
($state, $out) = expect_state($node, 'postgres',
	"SELECT coupon_release($a1, 'a1')", '00000', 'app can release',
	connstr => $as_app);
is($out, 't', 'app: the release returns true');
($state, $out) = expect_state($node, 'postgres',
	"SELECT coupon_release($a1, 'a1')", '00000', 'app can release twice',
	connstr => $as_app);
is($out, 'f', 'app: the second release returns false');
check_pools($node, 'postgres', 'after app claimed and released',
	loaded => 1, grants => 1);

############################################################################
# What app and a role without grants cannot do: 42501, nothing changed.
############################################################################
my @refused = (
	[ app => "INSERT INTO coupon_claims (pool, customer, qty) VALUES ('priv', 'x', 1)" ],
	[ app => "INSERT INTO coupon_claims (id, pool, customer, qty) VALUES (1000, 'priv', 'x', 1)" ],
	[ app => "UPDATE coupon_claims SET released_at = now()" ],
	[ app => "UPDATE coupon_claims SET qty = 1000" ],
	[ app => "DELETE FROM coupon_claims" ],
	[ app => "TRUNCATE coupon_claims" ],
	[ app => "SELECT * FROM coupon_claims" ],
	[ app => "COPY coupon_claims FROM STDIN" ],
	[ app => "INSERT INTO coupon_pool VALUES ('new', 10, 1, now())" ],
	[ app => "UPDATE coupon_pool SET capacity = 1000" ],
	[ app => "DELETE FROM coupon_pool" ],
	[ app => "TRUNCATE coupon_pool" ],
	[ app => "SELECT nextval('coupon_claims_id_seq')" ],
	[ app => "SELECT setval('coupon_claims_id_seq', 1)" ],
	[ app => "SELECT coupon_pool_create('new', 10)" ],
	[ app => "SELECT coupon_pool_resize('priv', 1000)" ],
	[ app => "SELECT coupon_pool_resize('priv', 0)" ],
	[ app => "SELECT coupon_pool_drop('priv')" ],
	# The view is not updatable at all: 55000 comes before the privilege.
	[ app => "UPDATE coupon_pools SET capacity = 1000", '55000' ],
	[ app => "DELETE FROM coupon_pools", '55000' ],
	[ app => "ALTER TABLE coupon_claims DISABLE TRIGGER ALL" ],
	[ app => "ALTER TABLE coupon_pool DROP CONSTRAINT coupon_pool_capacity_check" ],
	[ app => "ALTER FUNCTION coupon_claim(text, text, integer, interval, text) SET search_path = evil" ],
	[ app => "ALTER FUNCTION coupon_claim(text, text, integer, interval, text) SECURITY DEFINER" ],
	[ app => "CREATE OR REPLACE FUNCTION public.coupon_claim(text, text, integer, interval, text) RETURNS bigint LANGUAGE sql AS 'SELECT 1::bigint'" ],
	[ app => "CREATE TABLE public.coupon_claims2 (a int)" ],
	[ app => "GRANT SELECT ON coupon_claims TO app" ],
	[ app => "DROP EXTENSION coupon" ],
	[ app => "DROP TABLE coupon_claims" ],
	[ app => "DROP FUNCTION coupon_claim(text, text, integer, interval, text)" ],
	[ nobody => "SELECT coupon_claim('priv', 'n1')" ],
	[ nobody => "SELECT * FROM coupon_claim_detailed('priv', 'n1')" ],
	[ nobody => "SELECT coupon_release($a1)" ],
	[ app => "SELECT coupon_release($a1)" ],
	[ app => "SELECT coupon_confirm($a1)" ],
	[ app => "SELECT coupon_hold_extend($a1, '1 hour')" ],
	[ app => "CALL coupon_ledger_prune('0')" ],
	[ nobody => "SELECT * FROM coupon_pools" ],
	[ nobody => "SELECT * FROM coupon_pool_memory()" ],
	[ nobody => "SELECT coupon_pool_create('new', 10)" ],);
my $refusals = 0;
for my $case (@refused)
{
	my ($role, $sql, $want) = @$case;
	my $before = fingerprint($node, 'postgres');
	expect_state($node, 'postgres', $sql, $want // '42501', "$role refused: $sql",
		connstr => $role eq 'app' ? $as_app : $as_nobody);
	is(fingerprint($node, 'postgres'), $before, "$role: nothing changed");
	$refusals++;
}

my $functions = check_no_public_execute($node, 'postgres', $as_nobody,
	'fresh 1.1');
cmp_ok($functions, '>=', 13,
	'every function of the extension but the trigger function was called');

############################################################################
# Hijack attempts through search_path.
############################################################################
my $evil = bg_open($node, 'postgres', extra_params => [ '-U', 'app' ]);
bg_run(
	$evil, q{
CREATE TABLE evil.hits (what text);
CREATE TABLE evil.coupon_claims (id bigint, pool text, customer text,
    qty int, claimed_at timestamptz, released_at timestamptz);
CREATE TABLE evil.coupon_pool (name text, capacity bigint,
    per_customer int, created_at timestamptz);
CREATE VIEW evil.coupon_pools AS SELECT * FROM evil.coupon_pool;
CREATE SEQUENCE evil.coupon_claims_id_seq;
CREATE FUNCTION evil.hit(what text) RETURNS void LANGUAGE sql
    AS $$ INSERT INTO evil.hits VALUES (what) $$;
CREATE FUNCTION evil.coupon_claim(text, text, integer DEFAULT 1,
    interval DEFAULT '0') RETURNS bigint LANGUAGE sql
    AS $$ SELECT evil.hit('coupon_claim'); SELECT -1::bigint $$;
CREATE FUNCTION evil.nextval(regclass) RETURNS bigint LANGUAGE sql
    AS $$ SELECT evil.hit('nextval'); SELECT -1::bigint $$;
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql
    AS $$ SELECT evil.hit('now'); SELECT '2000-01-01'::timestamptz $$;
CREATE FUNCTION evil.count() RETURNS bigint LANGUAGE sql
    AS $$ SELECT evil.hit('count'); SELECT 0::bigint $$;
CREATE FUNCTION evil.octet_length(text) RETURNS int LANGUAGE sql
    AS $$ SELECT evil.hit('octet_length'); SELECT 1 $$;
CREATE FUNCTION evil.eq(text, text) RETURNS boolean LANGUAGE sql
    AS $$ SELECT evil.hit('='); SELECT true $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.eq);
CREATE FUNCTION evil.eq8(bigint, bigint) RETURNS boolean LANGUAGE sql
    AS $$ SELECT evil.hit('= bigint'); SELECT true $$;
CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.eq8);
CREATE FUNCTION evil.plus(bigint, integer) RETURNS bigint LANGUAGE sql
    AS $$ SELECT evil.hit('+'); SELECT 0::bigint $$;
CREATE OPERATOR evil.+ (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = evil.plus);
CREATE FUNCTION evil.minus(bigint, bigint) RETURNS bigint LANGUAGE sql
    AS $$ SELECT evil.hit('-'); SELECT 1000::bigint $$;
CREATE OPERATOR evil.- (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.minus);
CREATE FUNCTION evil.le(bigint, integer) RETURNS boolean LANGUAGE sql
    AS $$ SELECT evil.hit('<='); SELECT true $$;
CREATE OPERATOR evil.<= (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = evil.le);
CREATE FUNCTION evil.sum_step(bigint, integer) RETURNS bigint LANGUAGE sql
    AS $$ SELECT evil.hit('sum'); SELECT 0::bigint $$;
CREATE AGGREGATE evil.sum(integer) (SFUNC = evil.sum_step, STYPE = bigint);
CREATE AGGREGATE evil.min(bigint) (SFUNC = evil.minus, STYPE = bigint);
CREATE TEMP TABLE coupon_claims (id bigint, pool text, customer text,
    qty int, claimed_at timestamptz, released_at timestamptz);
CREATE TEMP TABLE coupon_pool (name text, capacity bigint,
    per_customer int, created_at timestamptz);
SET search_path = pg_temp, evil, pg_catalog, public;
});

# The hijackers are live in this session: unqualified operators and
# functions resolve to them.
is(bg_run($evil, "SELECT 'a' = 'b', now() = '2000-01-01', 1::bigint + 1"),
	't|t|0', 'hijack: the evil operators and functions are live in the session');
bg_run($evil, 'DELETE FROM evil.hits');

my $claims = bg_run($evil,
	"SELECT string_agg(COALESCE(public.coupon_claim('priv', 'h' || g)::text, 'NULL'), ',' ORDER BY g) FROM generate_series(1, 5) g"
);
like($claims, qr/^\d+,\d+,NULL,NULL,NULL$/,
	'hijack: 2 claims granted (the pool has 3, one held), 3 NULL');
my ($h1, $h2) = split /,/, $claims;
is( bg_run(
		$evil,
		"SELECT claim_id, status FROM public.coupon_claim_detailed('priv', 'h1')"),
	"$h1|repeat",
	'hijack: the repeat returns the real claim');
is(bg_run($evil, "SELECT public.coupon_release($h1, 'h1')"),
	't', 'hijack: release works');
my $h9 = bg_run($evil, "SELECT public.coupon_claim('priv', 'h9')");
cmp_ok($h9, '>', $h2, 'hijack: a new claim gets a real, increasing id');
is( bg_run(
		$evil,
		"SELECT capacity, claimed, in_flight, available FROM public.coupon_pools"
		  . " WHERE pool OPERATOR(pg_catalog.=) 'priv'"
	),
	'3|3|0|0',
	'hijack: coupon_pools reads the real pool: 3 of 3 claimed');
is(bg_run($evil, "SELECT public.coupon_claim('priv', 'h10') IS NULL"),
	't', 'hijack: the pool is sold out');
is( bg_run(
		$evil,
		'SELECT (SELECT pg_catalog.count(*) FROM pg_temp.coupon_claims)'
		  . ' OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_temp.coupon_pool)'
	),
	'0',
	'hijack: nothing was written to the temporary look-alike tables');
bg_close($evil);

is($node->safe_psql('postgres', 'SELECT count(*) FROM evil.hits'),
	'0', 'hijack: none of the hijacking functions or operators ever ran');
is( $node->safe_psql('postgres',
		'SELECT (SELECT count(*) FROM evil.coupon_claims) + (SELECT count(*) FROM evil.coupon_pool)'),
	'0',
	'hijack: nothing was written to the look-alike tables');

is( $node->safe_psql(
		'postgres', q{
SELECT string_agg(customer || ':' || (released_at IS NOT NULL), ','
                  ORDER BY customer)
  FROM coupon_claims WHERE pool = 'priv'}),
	'a1:true,a2:false,h1:true,h2:false,h9:false',
	'the real ledger holds exactly the claims made, releases included');
is($node->safe_psql('postgres',
		"SELECT last_value, is_called FROM evil.coupon_claims_id_seq"),
	'1|f', 'the look-alike sequence was never used');
check_pools($node, 'postgres', 'after the hijack attempts',
	loaded => 1, grants => 1);

############################################################################
# The extension in a schema of its own: the same grants plus USAGE on it.
############################################################################
$node->safe_psql('postgres', 'CREATE DATABASE sch');
$node->safe_psql(
	'sch', q{
CREATE SCHEMA "Coupon Schema";
CREATE EXTENSION coupon SCHEMA "Coupon Schema";
SELECT "Coupon Schema".coupon_pool_create('s', 2);
GRANT EXECUTE ON FUNCTION
      "Coupon Schema".coupon_claim(text, text, integer, interval, text),
      "Coupon Schema".coupon_claim_detailed(text, text, integer, interval, text),
      "Coupon Schema".coupon_release(bigint, text),
      "Coupon Schema".coupon_pool_memory() TO app;
GRANT SELECT ON "Coupon Schema".coupon_pools TO app;
});
my $sch_app = $node->connstr('sch') . ' user=app';
expect_state($node, 'sch',
	q{SELECT "Coupon Schema".coupon_claim('s', 'x')}, '42501',
	'own schema: without USAGE on the schema app cannot claim',
	connstr => $sch_app);
$node->safe_psql('sch', 'GRANT USAGE ON SCHEMA "Coupon Schema" TO app');
($state, $out) = expect_state(
	$node, 'sch', q{
SET search_path = public;
SELECT "Coupon Schema".coupon_claim('s', 'x');
SELECT "Coupon Schema".coupon_release("Coupon Schema".coupon_claim('s', 'y'), 'y');
SELECT "Coupon Schema".coupon_claim('s', 'z');
SELECT "Coupon Schema".coupon_claim('s', 'w') IS NULL;
SELECT claimed || '/' || capacity FROM "Coupon Schema".coupon_pools},
	'00000',
	'own schema: with USAGE app claims, releases and reads the view',
	connstr => $sch_app);
like($out, qr/^\d+\nt\n\d+\nt\n2\/2$/,
	'own schema: 2 of 2 granted, then NULL, the release counted');
for my $sql (
	q{INSERT INTO "Coupon Schema".coupon_claims (pool, customer, qty) VALUES ('s', 'x', 1)},
	q{UPDATE "Coupon Schema".coupon_pool SET capacity = 100},
	q{SELECT "Coupon Schema".coupon_pool_resize('s', 100)},
	q{SELECT "Coupon Schema".coupon_pool_drop('s')})
{
	my $before = fingerprint($node, 'sch', schema => 'Coupon Schema');
	expect_state($node, 'sch', $sql, '42501', "own schema: app refused: $sql",
		connstr => $sch_app);
	is(fingerprint($node, 'sch', schema => 'Coupon Schema'),
		$before, 'own schema: nothing changed');
	$refusals++;
}

note sprintf(
	"privilege figures: app with the documented grants claimed, released "
	  . "and read coupon_pools; %d forbidden statements refused (42501, or "
	  . "55000 for writes to the view) and changed nothing; search_path hijack with 2 look-alike tables, "
	  . "a sequence, a view, 6 functions, 2 aggregates, 5 operators and 2 "
	  . "temporary tables: 0 hijacker calls, claims exact; %.1f s",
	$refusals, time - $t0);

check_log($node, '006_privileges');
$node->stop;
done_testing();
