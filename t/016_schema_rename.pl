# Renaming the extension's schema: refused by the event trigger
# coupon_schema_rename (55000); the rest of this test is what a superuser
# gets who disables the trigger and renames it anyway.
#
# The statements the extension runs as the ledger's owner name its schema
# in their text.  The extension is in schema shop; a DBA renames it to
# shop2; a role with nothing but CREATE on the database ("evil") then makes
# a schema shop of its own, whose views coupon_pool and coupon_claims call
# a function of evil's: the function counts its calls in a sequence (which
# a rollback does not undo), notes who ran it, and tries ALTER ROLE evil
# SUPERUSER.  (Before the fix, a claim of the application made evil a
# superuser.)
#
# 1. Between calls.  An application session and a DBA session that used
#    every kind of call before the rename go on after it, through the
#    renamed schema: claims (one from a pool made after the rename, which
#    is loaded from the ledger), releases, holds, confirm, extend, a cart,
#    a bulk claim, a request id, resize and drop; the expiry worker returns
#    a hold.  Every call works, with exact results, and evil's function
#    never runs.
#
# 2. Inside a call.  gdb stops the application's backend inside a release,
#    after the call has checked the schema's name and before its statement
#    runs; the schema is renamed again (shop2 to shop3) and evil makes a
#    look-alike shop2.  The statement takes in the rename with its first
#    lock, before its plan is analyzed again: it reads the extension's
#    tables under their new name, never the look-alike, and the release
#    works.
#
# 3. The functions written in SQL and PL/pgSQL name the schema as it was
#    when they were created: after the renames each is refused (55000)
#    before it runs a statement, even with evil's look-alike functions and
#    views under that name; renamed back, they work; and a rename that
#    commits while one waits for a lock stops it at its next statement.
#
# At the end the pools balance, evil is no superuser and its function never
# ran, as anyone.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use CouponTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = coupon_node('rename', bare => 1);
$node->safe_psql(
	'postgres', q{
CREATE SCHEMA shop;
CREATE EXTENSION coupon SCHEMA shop;
CREATE ROLE app LOGIN;
GRANT USAGE ON SCHEMA shop TO app;
GRANT EXECUTE ON FUNCTION shop.coupon_claim(text, text, integer, interval, text),
      shop.coupon_hold(text, text, interval, integer, interval, text),
      shop.coupon_confirm(bigint), shop.coupon_hold_extend(bigint, interval),
      shop.coupon_claim_cart(text[], integer[], text, interval, interval, text),
      shop.coupon_claim_many(text, text[], integer),
      shop.coupon_release(bigint) TO app;
CREATE ROLE evil LOGIN;
GRANT CREATE ON DATABASE postgres TO evil;
SELECT shop.coupon_pool_create('p', 10, 3);
SELECT shop.coupon_pool_create('r', 2);
});
my $as_evil = $node->connstr('postgres') . ' user=evil';

# Nor installed in a schema whose owner is no superuser, who could rename
# it while the install runs, before the event trigger works:
# neither public of a database such a role owns, nor a schema of its.
$node->safe_psql('postgres', 'CREATE ROLE alice; CREATE DATABASE alices OWNER alice');
expect_state($node, 'alices', 'CREATE EXTENSION coupon', '55000',
	"not in public of a database that a role without superuser owns");
$node->safe_psql('alices', 'CREATE SCHEMA s AUTHORIZATION alice; CREATE SCHEMA t');
expect_state($node, 'alices', 'CREATE EXTENSION coupon SCHEMA s', '55000',
	'not in a schema that such a role owns');
expect_state($node, 'alices', 'CREATE EXTENSION coupon SCHEMA t', '00000',
	'but in a schema of a superuser there');

# The schema is not renamed: the event trigger refuses it.  What follows is
# what a superuser gets who disables the trigger and renames it anyway.
expect_state($node, 'postgres', 'ALTER SCHEMA shop RENAME TO shop2', '55000',
	'the schema of the extension cannot be renamed');
$node->safe_psql('postgres', 'ALTER EVENT TRIGGER coupon_schema_rename DISABLE');

# evil's function, and the rows its look-alikes show: pools of 1000
# coupons, 100 overdue holds.
$node->safe_psql(
	'postgres', q{
CREATE SCHEMA evil;
GRANT USAGE ON SCHEMA evil TO PUBLIC;
CREATE SEQUENCE evil.ran;
GRANT USAGE ON SEQUENCE evil.ran TO PUBLIC;
CREATE TABLE evil.hits (who name);
GRANT INSERT ON evil.hits TO PUBLIC;
CREATE FUNCTION evil.pwn() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  PERFORM nextval('evil.ran');
  INSERT INTO evil.hits VALUES (current_user);
  BEGIN
    ALTER ROLE evil SUPERUSER;
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
  RETURN true;
END $$;
CREATE TABLE evil.pools (name text, capacity bigint, per_customer int,
                         created_at timestamptz);
INSERT INTO evil.pools SELECT n, 1000, 1000, now() FROM unnest('{p,q,r}'::text[]) n;
CREATE TABLE evil.claims (id bigint, pool text, customer text, qty int,
                          claimed_at timestamptz, released_at timestamptz,
                          expires_at timestamptz, request_id text);
INSERT INTO evil.claims
SELECT g, 'p', 'x', 1, now(), NULL, now() - interval '1 hour', NULL
  FROM generate_series(1, 100) g;
GRANT SELECT, UPDATE ON evil.pools, evil.claims TO PUBLIC;
}, connstr => $as_evil);

# evil's look-alike of the extension's tables, in schema $schema.
sub make_lookalike
{
	my ($schema) = @_;
	$node->safe_psql(
		'postgres', qq{
CREATE SCHEMA $schema;
GRANT USAGE ON SCHEMA $schema TO PUBLIC;
CREATE VIEW $schema.coupon_pool AS
SELECT p.ctid, p.* FROM evil.pools p WHERE evil.pwn();
CREATE VIEW $schema.coupon_claims AS
SELECT c.ctid, c.* FROM evil.claims c WHERE evil.pwn();
GRANT SELECT, UPDATE ON $schema.coupon_pool, $schema.coupon_claims TO PUBLIC;
}, connstr => $as_evil);
	return;
}

# Run a statement in a background session and expect it to succeed.
sub call_ok
{
	my ($s, $sql, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	bg_send($s, $sql);
	my ($out, $state, $err) = bg_collect($s);
	is($state, '00000', $name) or diag($err);
	return $out;
}

############################################################################
# 1. Between calls.
############################################################################
my $app = bg_open($node, 'postgres', extra_params => [ '-U', 'app' ]);
my $dba = bg_open($node);
my $c1 = call_ok($app, "SELECT shop.coupon_claim('p', 'a1')", 'claim');
call_ok($app, "SELECT shop.coupon_release($c1)", 'release');
my $h1 = call_ok($app, "SELECT shop.coupon_hold('p', 'a2', '1 hour')", 'hold');
call_ok($app, "SELECT shop.coupon_confirm($h1)", 'confirm');
my $h2 = call_ok($app, "SELECT shop.coupon_hold('p', 'a3', '1 hour')",
	'another hold');
call_ok($app, "SELECT shop.coupon_hold_extend($h2, '2 hours')", 'extend');
my $c4 = call_ok($app, "SELECT (shop.coupon_claim_cart('{p}', '{1}', 'a4'))[1]",
	'cart');
call_ok($dba, "SELECT shop.coupon_pool_resize('r', 3)", 'resize');

$node->safe_psql('postgres',
	"ALTER SCHEMA shop RENAME TO shop2; SELECT shop2.coupon_pool_create('q', 5)");
make_lookalike('shop');

is(call_ok($app, "SELECT shop2.coupon_release($c4)", 'renamed: release'),
	't', 'renamed: the release returns true');
like(call_ok($app, "SELECT shop2.coupon_claim('q', 'b1')",
		'renamed: claim from a pool made after the rename'),
	qr/^\d+$/, 'renamed: the claim has an id');
call_ok($app, "SELECT shop2.coupon_claim('p', 'b2')", 'renamed: claim');
my $h3 = call_ok($app, "SELECT shop2.coupon_hold('q', 'b3', '1 hour')",
	'renamed: hold');
is(call_ok($app, "SELECT shop2.coupon_confirm($h3)", 'renamed: confirm'),
	't', 'renamed: the hold is confirmed');
call_ok($app, "SELECT shop2.coupon_hold_extend($h2, '3 hours')",
	'renamed: extend');
is(call_ok($app, "SELECT shop2.coupon_release($h2)", 'renamed: release a hold'),
	't', 'renamed: the hold is released');
like(call_ok($app, "SELECT shop2.coupon_claim_cart('{q,p}', '{1,1}', 'b4')",
		'renamed: cart'),
	qr/^\{\d+,\d+\}$/, 'renamed: the cart has two claims');
is( call_ok(
		$app,
		"SELECT string_agg(status, ',' ORDER BY customer) FROM shop2.coupon_claim_many('q', '{m1,m2}')",
		'renamed: bulk claim'),
	'granted,granted',
	'renamed: both customers of the bulk claim are granted');
my $r1 = call_ok($app, "SELECT shop2.coupon_claim('p', 'b5', 1, '0', 'rid-1')",
	'renamed: claim with a request id');
is(call_ok($app, "SELECT shop2.coupon_claim('p', 'b5', 1, '0', 'rid-1')",
		'renamed: the same request again'),
	$r1, 'renamed: the request id answers with its claim');
call_ok($dba, "SELECT shop2.coupon_pool_resize('q', 6)", 'renamed: resize');
call_ok($dba, "SELECT shop2.coupon_pool_drop('r')", 'renamed: drop');
call_ok($app, "SELECT shop2.coupon_hold('p', 'w1', '100 milliseconds')",
	'renamed: a short hold');
ok( $node->poll_query_until(
		'postgres',
		"SELECT released_at IS NOT NULL FROM shop2.coupon_claims WHERE customer = 'w1'"),
	'renamed: the expiry worker returns the hold');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(format('%s:%s/%s', pool, claimed, capacity), ',' ORDER BY pool) FROM shop2.coupon_pools"
	),
	'p:4/10,q:5/6',
	'renamed: p holds a2, b2, b4, b5 of 10; q holds b1, b3, b4, m1, m2 of 6');

############################################################################
# 2. Inside a call: the schema renamed between the check and the statement.
############################################################################
my $app_pid = bg_pid($app);
my $c6 = call_ok($app, "SELECT shop2.coupon_claim('p', 'c6')", 'claim before the window');
my $gdb = gdb_break($app_pid, 'coupon_sql_run');
bg_send($app, "SELECT shop2.coupon_release($c6)");
ok(gdb_wait_hit($gdb), 'the release stops before its statement runs');
$node->safe_psql('postgres', 'ALTER SCHEMA shop2 RENAME TO shop3');
make_lookalike('shop2');
gdb_continue($gdb);
my ($out, $state, $err) = bg_collect($app);
is($state, '00000', 'the release in the window works') or diag($err);
is($out, 't', 'the release in the window returns true');
is(call_ok($app, "SELECT shop3.coupon_release($c6)", 'a second release'),
	'f', 'a second release finds the claim released');
bg_close($_) for $app, $dba;

############################################################################
# 3. The functions written in SQL and PL/pgSQL.  They name the schema as
#    it was at CREATE EXTENSION (shop), where evil now has a look-alike
#    with the names they use.  After the renames every one of them is
#    refused with 55000 before it runs a statement, whatever its language
#    and rights (SECURITY DEFINER, invoker's, a procedure that commits);
#    named again as at its creation, each works; and one that is running
#    when a rename commits stops at its next statement.
############################################################################
my $evil_functions = q{
CREATE FUNCTION %1$s.coupon_spread_share(text, boolean, OUT spread_id text, OUT spread integer,
    OUT member integer, OUT total bigint, OUT capacity bigint, OUT per_customer integer,
    OUT dropping boolean, OUT partition integer, OUT partitions integer)
RETURNS SETOF record LANGUAGE sql AS $$ SELECT 's', 2, 0, 1::bigint, 1::bigint, 1, false, 0, 1 WHERE evil.pwn() $$;
CREATE VIEW %1$s.coupon_cluster_member AS
SELECT 'c'::text AS cluster, 0 AS partition, 1 AS partitions WHERE evil.pwn();
GRANT SELECT ON %1$s.coupon_cluster_member TO PUBLIC;
GRANT EXECUTE ON FUNCTION %1$s.coupon_spread_share(text, boolean) TO PUBLIC;
};
$node->safe_psql('postgres', sprintf($evil_functions, 'shop'), connstr => $as_evil);
my (undef, undef, $renamed_err) = expect_state($node, 'postgres',
	"SELECT shop3.coupon_share_available('p')", '55000',
	'renamed: a SECURITY DEFINER function in PL/pgSQL is refused');
like($renamed_err, qr/schema shop of extension coupon has been renamed to shop3/,
	'the error names the old and the new name');
like($renamed_err, qr/HINT:  Rename it back with ALTER SCHEMA shop3 RENAME TO shop/,
	'the hint says how to rename it back');
expect_state($node, 'postgres', "SELECT * FROM shop3.coupon_cart_request_lines('r1')",
	'55000', 'renamed: a SECURITY DEFINER function in SQL is refused');
expect_state($node, 'postgres', "SELECT shop3.coupon_cluster_join('c', 0, 1)",
	'55000', 'renamed: coupon_cluster_join (of 1.4) is refused');
expect_state($node, 'postgres', "CALL shop3.coupon_ledger_prune('0')",
	'55000', 'renamed: coupon_ledger_prune, which commits, is refused');
expect_state($node, 'postgres', "SET coupon.function_schema = 'shop'",
	'55000', 'nobody sets coupon.function_schema to a name that is not the schema');

# Named as at its creation again (evil's shop dropped by the DBA).
$node->safe_psql('postgres',
	'DROP SCHEMA shop CASCADE; ALTER SCHEMA shop3 RENAME TO shop');
is($node->safe_psql('postgres', "SELECT shop.coupon_share_available('p') IS NULL"),
	't', 'named as at creation: coupon_share_available works (p is not spread)');
expect_state($node, 'postgres', "CALL shop.coupon_ledger_prune('0')",
	'00000', 'named as at creation: coupon_ledger_prune works');
is($node->safe_psql('postgres',
	"SET quote_all_identifiers = on; SELECT shop.coupon_share_available('p') IS NULL"),
	't', 'and with quote_all_identifiers on');
# Installed with quote_all_identifiers on, the functions name "shop2": the
# same schema, called without it.
$node->safe_psql('postgres', 'CREATE DATABASE quoted');
$node->safe_psql('quoted', 'CREATE SCHEMA shop2; SET quote_all_identifiers = on; '
	  . 'CREATE EXTENSION coupon SCHEMA shop2');
is($node->safe_psql('quoted', "SELECT shop2.coupon_share_available('p') IS NULL"),
	't', 'installed with quote_all_identifiers on, the functions work without it');
# A value of the setting left in a session (a procedure's, or set by hand)
# when the schema is renamed keeps nothing from being set, reset, committed
# or renamed back.
my $leftover = bg_open($node);
call_ok($leftover, "SET coupon.function_schema = 'shop'", 'the setting set by hand');
call_ok($leftover, "BEGIN; SET LOCAL coupon.function_schema = 'shop'",
	'and in a transaction (as a prune in a transaction block leaves it)');
call_ok($leftover, 'ALTER SCHEMA shop RENAME TO shop9', 'the schema renamed in it');
call_ok($leftover, 'COMMIT', 'the transaction commits');
call_ok($leftover, 'ALTER SCHEMA shop9 RENAME TO shop', 'the schema renamed back');
call_ok($leftover, 'RESET coupon.function_schema', 'and the setting reset');
bg_close($leftover);

# Renamed while coupon_cluster_join waits for its first lock: it passed its
# check as it started, and stops at the next statement, which would read
# evil's coupon_cluster_member under the old name.
my $locker = bg_open($node);
call_ok($locker, 'BEGIN; LOCK TABLE shop.coupon_cluster_member IN EXCLUSIVE MODE',
	'a DBA holds the lock that coupon_cluster_join takes first');
my $joiner = bg_open($node);
my $joiner_pid = bg_pid($joiner);
bg_send($joiner, "SELECT shop.coupon_cluster_join('c', 0, 1)");
ok(wait_until_event($node, $joiner_pid, 'Lock', 'relation'),
	'coupon_cluster_join waits for its lock');
$node->safe_psql('postgres', 'ALTER SCHEMA shop RENAME TO shop3');
make_lookalike('shop');
$node->safe_psql('postgres', sprintf($evil_functions, 'shop'), connstr => $as_evil);
call_ok($locker, 'COMMIT', 'the DBA lets go');
($out, $state, $err) = bg_collect($joiner);
is($state, '55000', 'coupon_cluster_join stops at its next statement') or diag($err);
is($node->safe_psql('postgres', 'SELECT count(*) FROM shop3.coupon_cluster_member'),
	'0', 'and the node joined nothing');
bg_close($_) for $locker, $joiner;

############################################################################
# The end: nothing of evil's ran, the pools balance.
############################################################################
is($node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = 'evil'"),
	'f', 'evil is not a superuser');
is($node->safe_psql('postgres', 'SELECT is_called FROM evil.ran'),
	'f', "evil's function never ran");
is($node->safe_psql('postgres', 'SELECT count(*) FROM evil.hits'),
	'0', "nobody's run of evil's function is recorded");
$node->safe_psql('postgres', 'ALTER DATABASE postgres SET search_path = shop3');
check_pools($node, 'postgres', 'after the renames', loaded => 1);
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(format('%s:%s/%s', pool, claimed, capacity), ',' ORDER BY pool) FROM coupon_pools"
	),
	'p:4/10,q:5/6',
	'the pools hold exactly what the calls made');

check_log($node, '016_schema_rename');
$node->stop;
done_testing();
