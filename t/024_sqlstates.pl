# README's error table and the SQLSTATEs the code raises agree.
#
# Without a server: every errcode(ERRCODE_...) of extension/*.c, mapped to
# its SQLSTATE through the installed server's errcodes.txt and the
# extension's own MAKE_SQLSTATE definitions (extension/*.h), has a row in
# README's table under "### Errors", with the condition name PostgreSQL
# gives it, and so has every ERRCODE of a RAISE in the SQL scripts of
# extension/ and proxy/ (a SQLSTATE or a condition name); and every row
# of the table is a SQLSTATE the code raises, or one of the few that
# PostgreSQL raises for the extension (listed below with the reason).
# elog() is left out: it raises XX000 for states that cannot happen, which
# the table does not list.
use strict;
use warnings FATAL => 'all';

use FindBin;
use PostgreSQL::Test::Utils;
use Test::More;

my $root = "$FindBin::RealBin/..";

# Rows of the table for SQLSTATEs that PostgreSQL raises, not the code.
my %raised_by_postgres = (
	# code => 'why the table lists it',
	'2200H' => "the ledger's sequence at the MAXVALUE of a node's claim ids (coupon_cluster_member_changed)",
);

# SQLSTATE => condition name (undef if it has none), macro => SQLSTATE,
# and condition name => SQLSTATE.
my (%name_of, %state_of, %state_named);
chomp(my $sharedir = `pg_config --sharedir`);
for my $line (split /\n/, slurp_file("$sharedir/errcodes.txt"))
{
	next unless $line =~ /^(\w{5})\s+[EWS]\s+(ERRCODE_\w+)(?:\s+(\w+))?/;
	$state_of{$2} = $1;
	$name_of{$1} //= $3;
	$state_named{$3} //= $1 if defined $3;
}
ok(keys %state_of > 200, "read the SQLSTATEs of $sharedir/errcodes.txt");
for my $h (glob("$root/extension/*.h"))
{
	my $text = slurp_file($h);
	while ($text =~ /#define\s+(ERRCODE_\w+)\s+MAKE_SQLSTATE\(\s*'(.)'\s*,\s*'(.)'\s*,\s*'(.)'\s*,\s*'(.)'\s*,\s*'(.)'\s*\)/g)
	{
		$state_of{$1} = "$2$3$4$5$6";
	}
}

# What the code raises: SQLSTATE => [where].
my (%raised, @unknown);
for my $c (glob("$root/extension/*.c"))
{
	(my $file = $c) =~ s{.*/}{};
	my $text = slurp_file($c);
	while ($text =~ /\berrcode\s*\(\s*([^)]*?)\s*\)/g)
	{
		my $code = $1;
		my $line = 1 + (substr($text, 0, $-[0]) =~ tr/\n//);
		if (my $state = $state_of{$code})
		{
			push @{ $raised{$state} }, "$file:$line";
		}
		else
		{
			push @unknown, "$file:$line: errcode($code)";
		}
	}
}
for my $script (glob("$root/extension/*.sql"), glob("$root/proxy/*.sql"))
{
	(my $file = $script) =~ s{.*/(?=[^/]+/[^/]+$)}{};
	my $text = slurp_file($script);
	while ($text =~ /\bERRCODE\s*=\s*'([^']*)'/g)
	{
		my $code = $1;
		my $line = 1 + (substr($text, 0, $-[0]) =~ tr/\n//);
		my $state = $code =~ /^[0-9A-Z]{5}$/ ? $code : $state_named{$code};
		if ($state)
		{
			push @{ $raised{$state} }, "$file:$line";
		}
		else
		{
			push @unknown, "$file:$line: ERRCODE = '$code'";
		}
	}
}
is(join("\n", @unknown), '', 'every errcode() and ERRCODE of the code is a known SQLSTATE');
ok(keys %raised >= 10, 'the code raises ' . scalar(keys %raised) . ' SQLSTATEs');

# The table: SQLSTATE => condition name as written ('' if none).
my $readme = slurp_file("$root/README.md");
my ($errors) = $readme =~ /^### Errors\n(.*?)^#/ms;
my %table;
for my $row (split /\n/, $errors // '')
{
	next unless $row =~ /^\|\s*`(\w{5})`\s*([a-z_]*)\s*\|/;
	ok(!exists $table{$1}, "the table has one row for $1");
	$table{$1} = $2;
}
ok(keys %table >= 10, 'README has an error table of ' . scalar(keys %table) . ' rows');

for my $state (sort keys %raised)
{
	my $where = join(', ', @{ $raised{$state} });
	ok(exists $table{$state}, "$state ($where) is in README's error table");
}
for my $state (sort keys %table)
{
	ok($raised{$state} || $raised_by_postgres{$state},
		"$state of README's error table is raised by the code");
	is($table{$state}, $name_of{$state} // '',
		"$state: README names it as PostgreSQL does");
}

done_testing();
