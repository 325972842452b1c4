# Privilege escalation through what a DBA attaches to the ledger.
#
# A DBA audits the ledger with a naive AFTER trigger: PL/pgSQL, no pinned
# search_path, unqualified names (a table, a function, the = operator).
# An application role with only the documented grants (plus CREATE on the
# database, so that it can own a schema) puts its own objects in the way
# of each name, in three ways:
#
#   temporary table   a temporary claim_audit whose trigger runs the
#                     role's function
#   own schema        evil.note_claim() first in its search_path
#   operator          evil.= (text, text) before pg_catalog in its
#                     search_path
#
# and claims.  The trigger runs as whoever writes the ledger row; the
# extension writes it as the caller, so the role's code runs with the
# role's own rights: each planted function records current_user, tries to
# make the role a superuser, and must be seen to have run as "app" only,
# with the role still no superuser and the pool exact.  (Writing the row as
# the ledger's owner ran it as the superuser.)
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use CouponTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = coupon_node('escalation');
$node->safe_psql(
	'postgres', q{
CREATE ROLE app LOGIN;
GRANT EXECUTE ON FUNCTION
    coupon_claim(text, text, integer, interval, text),
    coupon_claim_detailed(text, text, integer, interval, text),
    coupon_release(bigint), coupon_pool_memory() TO app;
GRANT SELECT ON coupon_pools TO app;
GRANT CREATE ON DATABASE postgres TO app;
SELECT coupon_pool_create('audited', 10);

-- The DBA's audit, as many write it.
CREATE TABLE public.claim_audit (claim_id bigint, customer text, vip boolean);
GRANT INSERT ON public.claim_audit TO app;
CREATE FUNCTION public.note_claim(customer text) RETURNS void
LANGUAGE sql AS 'SELECT NULL::void';
GRANT EXECUTE ON FUNCTION public.note_claim(text) TO app;
CREATE FUNCTION public.audit_claim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO claim_audit VALUES (NEW.id, NEW.customer, NEW.customer = 'vip');
  PERFORM note_claim(NEW.customer);
  RETURN NULL;
END $$;
CREATE TRIGGER audit_claim AFTER INSERT ON coupon_claims
  FOR EACH ROW EXECUTE FUNCTION public.audit_claim();
});

# The role's planted code: records who ran it and tries to escalate.
my $plant = q{
CREATE FUNCTION %s RETURNS %s LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO app_log VALUES (current_user, '%s');
  BEGIN
    ALTER ROLE app SUPERUSER;
    INSERT INTO app_log VALUES (current_user, 'escalated');
  EXCEPTION WHEN insufficient_privilege THEN
    NULL;
  END;
  %s
END $$;
};

my %variants = (
	'temporary table' => q{
CREATE TEMP TABLE app_log (who name, what text);
CREATE TEMP TABLE claim_audit (claim_id bigint, customer text, vip boolean);
} . sprintf($plant, 'pg_temp.planted()', 'trigger', 'temp table', 'RETURN NULL;')
	  . q{
CREATE TRIGGER planted AFTER INSERT ON pg_temp.claim_audit
  FOR EACH ROW EXECUTE FUNCTION pg_temp.planted();
},
	'own schema' => q{
CREATE SCHEMA evil_fn;
CREATE TABLE evil_fn.app_log (who name, what text);
SET search_path = evil_fn, public;
} . sprintf($plant, 'evil_fn.note_claim(customer text)', 'void', 'function',
		'RETURN;'),
	'operator' => q{
CREATE SCHEMA evil_op;
CREATE TABLE evil_op.app_log (who name, what text);
SET search_path = evil_op, pg_catalog, public;
} . sprintf($plant, 'evil_op.text_eq(a text, b text)', 'boolean', 'operator',
		'RETURN a OPERATOR(pg_catalog.=) b;')
	  . q{
CREATE OPERATOR evil_op.= (LEFTARG = text, RIGHTARG = text,
                           FUNCTION = evil_op.text_eq);
},);

my $n = 0;
for my $variant (sort keys %variants)
{
	$n++;
	my ($state, $out, $err) = sql_state(
		$node, 'postgres', $variants{$variant} . qq{
SELECT coupon_claim('audited', 'vip-$n') IS NOT NULL AS granted;
SELECT 'log:' || coalesce(string_agg(who || '/' || what, ',' ORDER BY what), '')
  FROM app_log;
},
		extra_params => [ '-U', 'app' ]);
	is($state, '00000', "$variant: the role plants its code and claims")
	  or diag($err);
	my ($log) = $out =~ /log:(.*)/;
	$log //= '';
	isnt($log, '', "$variant: the DBA's trigger reached the planted code");
	unlike($log, qr{^(?!app/)|,(?!app/)}, "$variant: it ran as app only")
	  or diag("log: $log");
	unlike($log, qr/escalated/, "$variant: the role did not escalate")
	  or diag("log: $log");
	is($node->safe_psql('postgres',
			"SELECT rolsuper FROM pg_roles WHERE rolname = 'app'"),
		'f', "$variant: app is still no superuser");
}

is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM coupon_claims WHERE pool = 'audited'"),
	$n, 'each claim wrote its one ledger row');
check_pools($node, 'postgres', 'after the attempts', loaded => 1);
check_log($node, '010_escalation');
$node->stop;
done_testing();
