# Objects planted in the extension's schema never run during CREATE
# EXTENSION coupon or ALTER EXTENSION coupon UPDATE (the CVE-2018-1058
# pattern).
#
# While a superuser runs an extension's script, search_path is the
# extension's schema then pg_temp, pg_catalog searched first implicitly.
# An unqualified operator or function of the script goes to whatever
# matches its argument types best in any of them: a planted = (oid,
# regclass) beats pg_catalog's oid = oid, which needs a cast, and a
# planted format(text, text, text, text) beats format(text, VARIADIC
# "any").  Who can plant in public: its owner, the database owner, on
# PostgreSQL 15 and later; and every role on a cluster upgraded from 14 or
# earlier, where PUBLIC keeps CREATE on it.
#
# First, without a server: every operator and function call of every
# script in the Makefiles' DATA (the proxy's too), DO blocks included, is
# schema-qualified, and so is every operator that BETWEEN, IN, NULLIF,
# LIKE, a simple CASE or a join USING implies.  Then, for each of those
# two planters, in schema public: operators and functions of the shapes
# the scripts use, each checked to be what an unqualified use resolves
# to, each recording who ran it and trying ALTER ROLE ... SUPERUSER.  (The
# proxy's script is only read: installing it needs PL/Proxy, which
# t/031_cluster.pl has.)  A superuser installs
# the default version into public, and in another database installs 1.0
# and updates to the default version; where the planter owns the database,
# and so public, the default version is refused there (55000: the owner of
# the schema could rename it while the install runs).  No planted object ran, nothing
# depends on one, the planter gained no attribute, membership or grant;
# and every function of the extension, called by the superuser with the
# plants on its path, runs none of them either.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use CouponTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = "$FindBin::RealBin/..";

# Words that may stand before "(" without being a call resolved through
# search_path: syntax, and type names with a modifier.
my %syntax = map { $_ => 1 } qw(
  all and any array as by cast char character check coalesce conflict
  decimal default distinct else elsif except exists extract filter float
  from greatest group having if include intersect interval into join key
  lateral least limit loop not numeric offset on only or order over
  overlay partition perform position primary query raise range return
  returning returns row rows select set some substring table then time
  timestamp timestamptz trim union unique values varchar when where while
  window with within);

# Constructs that compare with an operator they look up by its bare name.
my @implied = (
	[ qr/\bBETWEEN\b/i, 'BETWEEN uses bare >= and <=' ],
	[ qr/(?<!\bTAG )\bIN\s*\(/i, 'IN (...) uses a bare =; write OPERATOR(pg_catalog.=) ANY (...)' ],
	[ qr/\bNULLIF\s*\(/i, 'NULLIF uses a bare =' ],
	[ qr/\b(?:I?LIKE|SIMILAR)\b/i, 'LIKE and SIMILAR TO use bare operators' ],
	[ qr/\bIS\s+(?:NOT\s+)?DISTINCT\b/i, 'IS DISTINCT FROM uses a bare =' ],
	[ qr/\bUSING\s*\(|\bNATURAL\b/i, 'a join USING uses a bare =' ],
	[ qr/(?<!END)\s+CASE\b(?!\s+WHEN\b)/i, 'a simple CASE uses a bare =' ]);

# The code of a script, at the same offsets: comments, the \echo line and
# the insides of literals blanked, dollar quotes dropped so that DO and
# function bodies are read as code, @extschema@ and $n made names.
sub code_of
{
	my ($sql) = @_;
	my $code = '';
	while ($sql =~ m{\G(?:(?<blank>^\\echo[^\n]*|--[^\n]*|/\*.*?\*/|\$(?:[A-Za-z_]\w*)?\$)
	                   |(?<name>\@extschema\@|\$\d+|"(?:[^"]|"")*")
	                   |'(?<str>(?:[^']|'')*)'
	                   |(?<other>.))}gcsxm)
	{
		if (defined $+{blank}) { (my $b = $+{blank}) =~ s/[^\n]/ /g; $code .= $b; }
		elsif (defined $+{name}) { $code .= '_' x length $+{name}; }
		elsif (defined $+{str}) { (my $s = $+{str}) =~ s/[^\n]/_/g; $code .= "'$s'"; }
		else { $code .= $+{other}; }
	}
	return $code;
}

# What in a script is looked up through search_path: "LINE: WHAT".
sub unqualified
{
	my ($sql) = @_;
	my $code = code_of($sql);
	my @found;
	my $at = sub {
		my ($pos, $what) = @_;
		push @found, [ 1 + (substr($code, 0, $pos) =~ tr/\n//), scalar @found, $what ];
	};

	# Operators that are syntax, or qualified, become \x01.
	my $mark = sub { "\x01" x length $_[0] };
	$code =~ s/(\bOPERATOR\s*\(\s*pg_catalog\s*\.\s*[^\s)]+\s*\))/$mark->($1)/gie;
	$code =~ s/(:=|=>)/$mark->($1)/ge;
	$code =~ s/(\bSET\s+(?:LOCAL\s+|SESSION\s+)?[\w.]+\s*)=/$1\x01/gi;
	$code =~ s/(\b(?:ERRCODE|MESSAGE|DETAIL|HINT|LEFTARG|RIGHTARG|FUNCTION|COMMUTATOR|NEGATOR)\s*)=/$1\x01/gi;
	$code =~ s/(\bGET\s+(?:CURRENT\s+|STACKED\s+)?DIAGNOSTICS\b[^;]*)/(my $g = $1) =~ tr{=}{\x01}; $g/gie;
	$code =~ s/((?:[(.]|\bSELECT|\bRETURNING)\s*)\*/$1\x01/gi;
	$code =~ s/((?:[(,\[\x01=<>]|\b(?:DEFAULT|THEN|ELSE|SELECT|RETURN|WHEN|AND|OR)\b)\s*)-(?=\s*\d)/$1\x01/gi;

	while ($code =~ /([-+*\/<>=~!\@#%^&|`?]+)/g)
	{
		$at->($-[1], "bare operator $1: write OPERATOR(pg_catalog.$1)");
	}
	while ($code =~ /\b([A-Za-z_]\w*)\s*\(/g)
	{
		my ($name, $pos) = ($1, $-[1]);
		my $before = substr($code, 0, $pos);
		next if $syntax{ lc $name } || $before =~ /(?:\.|\bAS|\))\s*\z/i;
		next if grep { "$name(" =~ $_->[0] } @implied;
		$at->($pos, "call of $name through search_path: qualify it");
	}
	for my $c (@implied)
	{
		$at->($-[0], $c->[1]) while $code =~ /$c->[0]/g;
	}
	return map { "$_->[0]: $_->[2]" }
	  sort { $a->[0] <=> $b->[0] || $a->[1] <=> $b->[1] } @found;
}

my $makefile = slurp_file("$root/Makefile");
$makefile =~ s/\\\n/ /g;
my ($data) = $makefile =~ /^DATA\s*=\s*(.*)$/m;
my @scripts = split ' ', $data // '';
ok(@scripts >= 2, 'the Makefile lists the scripts: ' . join(' ', @scripts));
# The proxy's (coupon_proxy, proxy/Makefile), whose PL/Proxy bodies are
# read as code too: the SELECTs they send to the nodes name no function
# or operator through search_path either.
my ($proxy_data) = slurp_file("$root/proxy/Makefile") =~ /^DATA\s*=\s*(.*)$/m;
push @scripts, map { "proxy/$_" } split ' ', $proxy_data // '';
ok(grep(m{^proxy/}, @scripts), 'and the proxy\'s Makefile its script');
for my $script (@scripts)
{
	is(join("\n", unqualified(slurp_file("$root/$script"))),
		'', "$script: every operator and call is schema-qualified");
}

# The lint sees what it is meant to.
is( join("\n", unqualified(q{
SELECT format('%s', a.grantee = 0), x BETWEEN 1 AND 2, coalesce(y, 0),
       pg_catalog.sum(z) OPERATOR(pg_catalog.-) -1, count(*);
DO $$ BEGIN r := x || 'it''s'; END $$;  -- a = b
CREATE EVENT TRIGGER e ON ddl_command_end WHEN TAG IN ('ALTER SCHEMA') EXECUTE FUNCTION s.f();
SELECT 1 WHERE x IN (1);
})),
	"2: bare operator =: write OPERATOR(pg_catalog.=)\n"
	  . "2: call of format through search_path: qualify it\n"
	  . "2: BETWEEN uses bare >= and <=\n"
	  . "3: call of count through search_path: qualify it\n"
	  . "4: bare operator ||: write OPERATOR(pg_catalog.||)\n"
	  . "6: IN (...) uses a bare =; write OPERATOR(pg_catalog.=) ANY (...)",
	'the check finds bare operators, calls, BETWEEN and IN, and nothing else (an event trigger\'s WHEN TAG IN is no comparison)');

# Each plant: its function, the operator it implements (if any), and a use
# that resolves to it when unqualified.  The function records who ran it,
# tries to make the planter a superuser, and returns what the real one
# would, so that an install it hijacked would succeed.
my @plants = (
	[ 'eq_oid_int4(oid, integer) RETURNS boolean',
		'$1 OPERATOR(pg_catalog.=) $2::pg_catalog.oid', '=',
		'SELECT 1::pg_catalog.oid = 0' ],
	[ 'ne_oid_int4(oid, integer) RETURNS boolean',
		'$1 OPERATOR(pg_catalog.<>) $2::pg_catalog.oid', '<>',
		'SELECT 1::pg_catalog.oid <> 0' ],
	[ 'eq_oid_regprocedure(oid, regprocedure) RETURNS boolean',
		'$1 OPERATOR(pg_catalog.=) $2::pg_catalog.oid', '=',
		q{SELECT 1::pg_catalog.oid = 'pg_catalog.now()'::pg_catalog.regprocedure} ],
	[ 'eq_oid_regclass(oid, regclass) RETURNS boolean',
		'$1 OPERATOR(pg_catalog.=) $2::pg_catalog.oid', '=',
		q{SELECT 1::pg_catalog.oid = 'pg_catalog.pg_class'::pg_catalog.regclass} ],
	[ 'format(text, text, text, text, text) RETURNS text',
		'pg_catalog.format($1, $2, $3, $4, $5)', undef,
		q{SELECT format('%s%s%s%s', 'a'::text, 'b'::text, 'c'::text, 'd'::text)} ],
	[ 'format(text, text, text, text) RETURNS text',
		'pg_catalog.format($1, $2, $3, $4)', undef,
		q{SELECT format('%s%s%s', 'a'::text, 'b'::text, 'c'::text)} ],
	[ 'quote_ident(name) RETURNS text',
		'pg_catalog.quote_ident($1::pg_catalog.text)', undef,
		q{SELECT quote_ident('x'::pg_catalog.name)} ],
	[ 'nextval(text) RETURNS bigint',
		'pg_catalog.nextval($1::pg_catalog.regclass)', undef,
		q{SELECT nextval('public.planted_seq')} ],
	[ 'pg_extension_config_dump(text, text) RETURNS void', '', undef,
		q{SELECT pg_extension_config_dump('x', '')} ]);

sub plant
{
	my ($node, $db, $planter) = @_;
	my $sql = qq{
CREATE TABLE public.planted_ran (what text, who name);
CREATE SEQUENCE public.planted_seq;
};
	for my $p (@plants)
	{
		my ($signature, $result, $operator) = @$p;
		my ($what, $name, $args) = $signature =~ /^((\w+)\(([^)]*)\))/;
		$sql .= qq{
CREATE FUNCTION public.$signature LANGUAGE plpgsql AS \$\$
BEGIN
  INSERT INTO public.planted_ran VALUES ('$what', current_user);
  BEGIN
    ALTER ROLE $planter SUPERUSER;
  EXCEPTION WHEN insufficient_privilege THEN
    NULL;
  END;
  RETURN $result;
END \$\$;
};
		my ($left, $right) = split /,\s*/, $args;
		$sql .= "CREATE OPERATOR public.$operator (LEFTARG = $left,"
		  . " RIGHTARG = $right, FUNCTION = public.$name);\n"
		  if $operator;
	}
	$node->safe_psql($db, $sql, extra_params => [ '-U', $planter ]);

	# Each is what an unqualified use in a script would run.
	$node->safe_psql($db,
		join(";\n", 'SET search_path = public, pg_temp', map { $_->[3] } @plants),
		extra_params => [ '-U', $planter ]);
	my $ran = $node->safe_psql($db,
		q{SELECT string_agg(DISTINCT what COLLATE "C", ',' ORDER BY what COLLATE "C") FROM public.planted_ran},
		extra_params => [ '-U', $planter ]);
	is($ran, join(',', sort map { /^(\w+\([^)]*\))/ } map { $_->[0] } @plants),
		"$db: each plant is what an unqualified use resolves to");
	$node->safe_psql($db, 'TRUNCATE public.planted_ran',
		extra_params => [ '-U', $planter ]);

	# A cast between the scripts' built-in types is not the planter's to make.
	expect_state($node, $db, 'CREATE CAST (integer AS oid) WITHOUT FUNCTION',
		'42501', "$db: the planter cannot make a cast between built-in types",
		extra_params => [ '-U', $planter ]);
	return;
}

# The planter gained nothing: attributes, memberships and grants on the
# extension's objects; nothing depends on a planted object.  Asked with
# only pg_catalog on the path, where the plants are not.
sub check_nothing_gained
{
	my ($node, $db, $planter) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is( $node->safe_psql(
			$db, qq{
SET search_path = pg_catalog, pg_temp;
SELECT r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication OR r.rolbypassrls,
       (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid),
       (SELECT count(*)
          FROM pg_depend d
          JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'coupon'
          LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
          LEFT JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
         CROSS JOIN LATERAL aclexplode(COALESCE(c.relacl, p.proacl)) a
         WHERE d.deptype = 'e' AND a.grantee = r.oid)
  FROM pg_roles r WHERE r.rolname = '$planter'}),
		'f|0|0',
		"$db: $planter has no attribute, membership or grant on the extension");
	is( $node->safe_psql(
			$db, qq{
SET search_path = pg_catalog, pg_temp;
SELECT string_agg(pg_describe_object(d.classid, d.objid, d.objsubid), ', ')
  FROM pg_depend d
 WHERE d.classid <> 'pg_operator'::regclass
   AND (d.refclassid, d.refobjid) IN (
       SELECT 'pg_proc'::regclass, oid FROM pg_proc WHERE proowner = '$planter'::regrole
       UNION ALL
       SELECT 'pg_operator'::regclass, oid FROM pg_operator WHERE oprowner = '$planter'::regrole)}),
		'', "$db: nothing depends on a planted object");
	return;
}

sub planted_ran
{
	my ($node, $db) = @_;
	return $node->safe_psql($db,
		"SET search_path = pg_catalog, pg_temp;\n"
		  . "SELECT COALESCE(string_agg(DISTINCT what || ' as ' || who, ', '), '') FROM public.planted_ran");
}

my $node = coupon_node('install_hijack', bare => 1);
my $default = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'coupon'");
$node->safe_psql('postgres', 'CREATE ROLE app LOGIN; CREATE ROLE anyone LOGIN');

# The grants the update copies to the new claim functions, as 021_upgrade
# has them: the DO block that copies them calls format, quote_ident and
# compares with PUBLIC's 0 once for each.
my $grants = q{
GRANT EXECUTE ON FUNCTION coupon_claim(text, text, integer, interval) TO app WITH GRANT OPTION;
GRANT EXECUTE ON FUNCTION coupon_claim_detailed(text, text, integer, interval) TO PUBLIC;
GRANT SELECT ON coupon_pools TO app, PUBLIC;
};
my $granted = q{
SET search_path = pg_catalog, pg_temp;
SELECT has_function_privilege('app', 'public.coupon_claim(text,text,integer,interval,text)',
                              'EXECUTE WITH GRANT OPTION')
   AND has_function_privilege('anyone', 'public.coupon_claim_detailed(text,text,integer,interval,text)',
                              'EXECUTE')
   AND has_table_privilege('app', 'public.coupon_pools', 'SELECT')
   AND has_table_privilege('anyone', 'public.coupon_pools', 'SELECT')};

# Who plants: the database owner (public is its schema on 15 and later),
# or any role on a database whose public keeps PUBLIC's CREATE (upgraded
# from 14 or earlier).  A planter of its own for each database, so that
# one that became superuser in one cannot hide what happens in the next.
for my $planter (qw(owner squatter))
{
	for my $way (qw(install update))
	{
		my $db = "${way}_by_$planter";
		my $role = "${planter}_$way";
		$node->safe_psql('postgres', "CREATE ROLE $role LOGIN");
		if ($planter eq 'owner')
		{
			$node->safe_psql('postgres', "CREATE DATABASE $db OWNER $role");
		}
		else
		{
			$node->safe_psql('postgres', "CREATE DATABASE $db");
			$node->safe_psql($db, 'GRANT CREATE ON SCHEMA public TO PUBLIC');
		}
		plant($node, $db, $role);

		my @steps = $way eq 'install'
		  ? ('CREATE EXTENSION coupon SCHEMA public')
		  : ("CREATE EXTENSION coupon VERSION '1.0' SCHEMA public;\n$grants",
			'ALTER EXTENSION coupon UPDATE');
		# The database owner owns public: the last step, which would make
		# the current version there, is refused (55000), since the owner
		# could rename the schema as it commits.
		my $refused = $planter eq 'owner';
		for my $i (0 .. $#steps)
		{
			expect_state($node, $db, $steps[$i],
				$refused && $i == $#steps ? '55000' : '00000',
				"$db: " . (split /;/, $steps[$i])[0]);
		}
		is($node->safe_psql($db,
				"SELECT extversion FROM pg_extension WHERE extname = 'coupon'"),
			$refused ? ($way eq 'update' ? '1.0' : '') : $default,
			"$db: the extension is at " . ($refused ? 'the version before' : "the default version $default"));
		if ($refused)
		{
			is(planted_ran($node, $db), '', "$db: no planted object ran");
			check_nothing_gained($node, $db, $role);
			next;
		}
		is($node->safe_psql($db, $granted), 't',
			"$db: the grants of 1.0 are on the new claim functions")
		  if $way eq 'update';
		is(planted_ran($node, $db), '', "$db: no planted object ran");
		check_nothing_gained($node, $db, $role);

		# Every function, called by the superuser with the plants on its
		# path, works and runs none of them.
		my $holds = $node->safe_psql(
			$db, q{
SELECT coupon_pool_create('p', 5, 2);
SELECT coupon_claim('p', 'a') IS NOT NULL;
SELECT (coupon_claim_detailed('p', 'a2')).status;
SELECT coupon_hold('p', 'b', '1 hour') AS hold \gset
SELECT coupon_hold_extend(:hold, '2 hours') IS NOT NULL;
SELECT coupon_confirm(:hold);
SELECT coupon_release(:hold);
SELECT pg_catalog.array_length(coupon_claim_cart('{p}', '{1}', 'c'), 1);
SELECT (coupon_claim_cart_detailed('{p}', '{1}', 'c2')).status;
SELECT coupon_pool_resize('p', 7);
SELECT count(claim_id) FROM coupon_claim_many('p', '{d,e}');
SELECT count(*) FROM coupon_holds;
SELECT capacity || '/' || claimed || '/' || in_flight || '/' || available FROM coupon_pools;
SELECT coupon_pool_drop('p');
});
		is( $holds, "t\nt\ngranted\nt\nt\nt\n1\ngranted\n\n2\n0\n7/6/0/1\n",
			"$db: the superuser uses every function with the plants on its path");
		is(planted_ran($node, $db), '', "$db: no planted object ran in those calls");
		is($node->safe_psql('postgres',
				"SELECT rolsuper FROM pg_roles WHERE rolname = '$role'"),
			'f', "$db: $role is still no superuser");
	}
}

check_log($node, '023_install_hijack');
$node->stop;
done_testing();
