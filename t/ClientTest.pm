# Helpers shared by the client's TAP tests, t/1NN_client_*.pl: where the
# coupon-stress binary is, a node with coupon preloaded and room for a
# 500-user burst, throwaway Redis servers, running the client and reading
# its --json output, and the checks more than one test makes.
#
# The binary is $ENV{COUPON_STRESS} if set, else coupon-stress from PATH
# (make install puts it in /usr/local/bin).  Redis servers are started
# with client/redisserver (appendonly yes, appendfsync always, DEBUG
# allowed locally) on ports from PostgreSQL::Test::Cluster::get_free_port,
# or upward from $ENV{COUPON_TEST_REDIS_PORT} when that is set, and
# stopped when the test ends.
package ClientTest;

use strict;
use warnings FATAL => 'all';

use Exporter 'import';
use File::Basename qw(dirname);
use File::Spec;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(
  stress_binary strategy_names client_node client_env redis_servers
  redis_cli run_stress rows_of
  check_burst ledger_count check_holds
);

my $REDISSERVER =
  File::Spec->rel2abs(dirname(__FILE__) . '/../client/redisserver');
my @redis_dirs;
my $next_redis_port = $ENV{COUPON_TEST_REDIS_PORT};

# The binary under test.
sub stress_binary
{
	return $ENV{COUPON_STRESS} if $ENV{COUPON_STRESS};
	foreach my $dir (split /:/, $ENV{PATH})
	{
		return "$dir/coupon-stress" if -x "$dir/coupon-stress";
	}
	BAIL_OUT('coupon-stress is neither in PATH nor in $COUPON_STRESS');
}

# A node with coupon preloaded and the extension created, allowing a
# 500-user burst.
sub client_node
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		join("\n",
			"shared_preload_libraries = 'coupon'",
			"max_connections = 600",
			"log_min_messages = warning"));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION coupon');
	return $node;
}

sub redis_port
{
	return PostgreSQL::Test::Cluster::get_free_port()
	  unless defined $next_redis_port;
	while (!PostgreSQL::Test::Cluster::can_bind('127.0.0.1', $next_redis_port))
	{
		$next_redis_port++;
	}
	return $next_redis_port++;
}

# Start $n Redis servers; extra directives (such as "appendfsync everysec")
# go to each one's configuration.  Returns their "127.0.0.1:PORT" addresses.
sub redis_servers
{
	my ($n, @directives) = @_;
	my @addresses;
	for (1 .. $n)
	{
		my $dir = PostgreSQL::Test::Utils::tempdir;
		my $port = redis_port();
		system('bash', $REDISSERVER, 'start', $dir, $port, @directives) == 0
		  or BAIL_OUT("could not start redis-server on port $port");
		push @redis_dirs, $dir;
		push @addresses, "127.0.0.1:$port";
	}
	return @addresses;
}

END
{
	my $rc = $?;
	system('bash', $REDISSERVER, 'stop', $_) foreach @redis_dirs;
	$? = $rc;
}

# Run redis-cli against an address; returns its output without the newline.
sub redis_cli
{
	my ($address, @command) = @_;
	my ($host, $port) = split /:/, $address;
	my ($out, $err);
	IPC::Run::run([ 'redis-cli', '-h', $host, '-p', $port, @command ],
		'>', \$out, '2>', \$err);
	chomp $out;
	return $out;
}

# Point libpq at the node, and let the client's sessions carry their own
# application_name, coupon-stress (the TAP framework sets PGAPPNAME).
sub client_env
{
	my ($node) = @_;
	$ENV{PGHOST} = $node->host;
	$ENV{PGPORT} = $node->port;
	$ENV{PGDATABASE} = 'postgres';
	delete $ENV{PGAPPNAME};
	return;
}

# Run coupon-stress against the node; returns { rc, out, err, json }
# (json: the decoded --json output, undef when there is none).
sub run_stress
{
	my ($node, @args) = @_;
	my ($out, $err) = ('', '');
	local %ENV = %ENV;
	client_env($node);
	note('coupon-stress ' . join(' ', @args));
	IPC::Run::run([ stress_binary(), @args ], '>', \$out, '2>', \$err);
	my $rc = $? >> 8;
	my $json = eval { decode_json($out) };
	note("exit status $rc; stderr:\n$err") if $rc != 0 || $err ne '';
	return { rc => $rc, out => $out, err => $err, json => $json };
}

# strategy => [rows] of a run's results.
sub rows_of
{
	my ($run) = @_;
	my %by;
	push @{ $by{ $_->{strategy} } }, $_ foreach @{ $run->{json}{results} };
	return \%by;
}

# Rows of the ledger or the client's grants table of a pool.
sub ledger_count
{
	my ($node, $table, $pool) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM $table WHERE pool = '$pool'");
}

my @KEYS = qw(strategy exact clients granted ledger_rows counter oversold
  lost_updates leaked correct claims_per_s attempts_per_s p50_ms p95_ms
  p99_ms max_ms retries errors);

# The strategies, in the order of the client's table, as --help lists them.
sub strategy_names
{
	my ($help, $err);
	IPC::Run::run([ stress_binary(), '--help' ], '>', \$help, '2>', \$err);
	my ($list) = $help =~ /^  --strategy=LIST\N*\n((?: {27}\N*\n)+)/m;
	return map { /^ {27}(\S+) {2,}\S/ ? $1 : () } split /\n/, $list // '';
}

# The checks of a burst of $users users for $coupons coupons (fewer
# coupons than users) over every strategy.
sub check_burst
{
	my ($run, $label, $users, $coupons) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $by = rows_of($run);
	my @rows = @{ $run->{json}{results} // [] };

	is($run->{rc}, 0, "$label: exit status 0, every correct strategy exact");
	is_deeply(
		[ map { $_->{strategy} } @rows ],
		[ strategy_names() ],
		"$label: one row per strategy of --help, in its order");
	ok( (grep { $by->{$_} } qw(naive claim redis redlock redlock-fenced)) == 5,
		"$label: the strategies compared include claim, redis and Redlock");
	is_deeply([ sort keys %{ $rows[0] // {} } ],
		[ sort @KEYS ], "$label: the documented keys");

	my $naive = $by->{naive}[0];
	ok( $naive->{ledger_rows} > $coupons
		  && $naive->{oversold} == $naive->{ledger_rows} - $coupons
		  && $naive->{lost_updates} > 0
		  && !$naive->{correct},
		"$label: naive oversells ($naive->{oversold}) and loses updates "
		  . "($naive->{lost_updates})");
	foreach my $r (grep { $_->{exact} } @rows)
	{
		my $s = $r->{strategy};
		ok( $r->{granted} == $coupons
			  && $r->{ledger_rows} == $coupons
			  && $r->{counter} == 0
			  && $r->{oversold} == 0
			  && $r->{lost_updates} == 0
			  && $r->{leaked} == 0
			  && $r->{errors} == 0
			  && $r->{correct},
			"$label: $s grants exactly the $coupons coupons "
			  . "(granted $r->{granted}, ledger $r->{ledger_rows}, "
			  . "counter $r->{counter})");
	}
	ok($by->{occ}[0]{retries} > 0, "$label: occ retried its conflicts");
	ok( $by->{redlock}[0]{retries} > 0
		  && $by->{'redlock-fenced'}[0]{retries} > 0,
		"$label: the redlock strategies waited for the lock (retries)");
	my $io = $by->{'insert-only'}[0];
	ok( $io->{ledger_rows} == $users
		  && $io->{granted} == $users
		  && !defined $io->{counter}
		  && !$io->{exact}
		  && !$io->{correct},
		"$label: insert-only writes one row per user, with no stock");
	return;
}

# The checks of a run of --hold, against the database, right after the
# client exited: every hold settled (none held or in flight), the pool
# balanced (confirmed + available = coupons, and claimed = confirmed), no
# customer over the limit, and the client's row is what the database holds.
# Returns the row.
sub check_holds
{
	my ($node, $run, $coupons, $label) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $r = $run->{json}{results}[0] // {};
	my $pool = "pool = 'stress_claim'";
	my ($claimed, $held, $in_flight, $available) = split /\|/,
	  $node->safe_psql('postgres',
		"SELECT claimed, held, in_flight, available FROM coupon_pools WHERE $pool");
	my ($rows, $confirmed, $expired) = split /\|/, $node->safe_psql(
		'postgres', "SELECT count(*),
		   count(*) FILTER (WHERE released_at IS NULL AND expires_at IS NULL),
		   count(*) FILTER (WHERE released_at IS NOT NULL AND expires_at IS NOT NULL)
		   FROM coupon_claims WHERE $pool");
	my $over = $node->safe_psql(
		'postgres', "SELECT count(*) FROM (SELECT customer FROM coupon_claims
		   WHERE $pool AND released_at IS NULL GROUP BY customer
		   HAVING sum(qty) > (SELECT per_customer FROM coupon_pools WHERE $pool)) o");

	is($run->{rc}, 0, "$label: exit status 0");
	is("$held $in_flight", '0 0', "$label: no hold left, none in flight");
	is($confirmed + $available, $coupons,
		"$label: confirmed ($confirmed) + available ($available) = coupons");
	is($claimed, $confirmed, "$label: what the pool counts claimed is confirmed");
	is($over, '0', "$label: no customer over the limit");
	is_deeply(
		[ @$r{qw(ledger_rows confirmed expired available held)} ],
		[ $rows, $confirmed, $expired, $available, 0 ],
		"$label: the client's ledger, confirmed, expired, available and held "
		  . 'are the database\'s');
	ok( $r->{correct}
		  && $r->{confirms} == $confirmed
		  && $r->{granted} == $rows
		  && $r->{errors} == 0,
		"$label: correct; every confirm and hold the clients saw, and no "
		  . "other, is in the ledger ($r->{confirms} confirms, $r->{granted} holds)");
	return $r;
}

1;
