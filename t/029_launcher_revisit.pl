# The expiry launcher's visit of every database, every
# coupon.expiry_revisit_interval: it finds the holds that no commit
# announced, here those of a database restored from a dump after the
# launcher made its visit at start.
#   - the setting refuses values out of its range (22023), and a session
#     cannot SET it (55P02);
#   - with the default (10 minutes), the restored database waits; a reload
#     to 2 s makes the launcher visit it, and its hold is returned at its
#     expiry or within the interval of the reload, whichever is later;
#   - a second database restored afterwards is visited within the next
#     interval: the launcher does not sleep past its next visit.
# Every pool stays balanced.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use CouponTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $GUC = 'coupon.expiry_revisit_interval';
# The interval the test sets, in seconds.
my $INTERVAL = 2;
# How long the restored hold has left when it is dumped, in seconds: long
# enough for it to fall due after the reload, usually, so that the visit
# has to hand its expiry to the launcher rather than return it at once.
my $TTL = 4;
# What a visit that fell due may take to return an overdue hold: the
# launcher's wake-up, a worker's start, its transactions, on a loaded
# machine.  Well under the launcher's 60 s look-around, so a launcher that
# sleeps past its visit fails.
my $VISIT_LAG = 8;
# Hang guard only: how long to poll for a return before calling it lost
# (the property is the bound above, measured by the server's clock).  Short,
# so that a launcher that never visits fails in seconds, not minutes.
my $RETURN_HANG_GUARD = 3 * ($TTL + $INTERVAL + $VISIT_LAG);

my $node = coupon_node('revisit');

############################################################################
# The setting: its default, its range, its context.
############################################################################
is($node->safe_psql('postgres', "SHOW $GUC"), '10min', "$GUC is 10 minutes by default");
for my $bad ('0', '-1', '86401', "'2d'", "'soon'")
{
	expect_state($node, 'postgres', "ALTER SYSTEM SET $GUC = $bad",
		'22023', "ALTER SYSTEM SET $GUC = $bad is refused");
}
expect_state($node, 'postgres', "SET $GUC = 5", '55P02',
	"a session cannot SET $GUC");
is($node->safe_psql('postgres',
		"SELECT count(*) FROM pg_file_settings WHERE name = '$GUC'"),
	'0', 'nothing refused was written to postgresql.auto.conf');

############################################################################
# A database restored after the launcher's visit at its start.
############################################################################
# The launcher waits on its latch (wait event Extension) only in its loop,
# after it took the list of databases to visit at its start.
ok( $node->poll_query_until(
		'postgres',
		"SELECT wait_event = 'Extension' FROM pg_stat_activity WHERE backend_type = 'coupon expiry launcher'"
	),
	'the launcher has listed the databases to visit at its start');

# A hold that falls due in $TTL s, announced to no one (the UPDATE goes
# around the extension), dumped.
$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src',
	"CREATE EXTENSION coupon; SELECT coupon_pool_create('p', 2)");
my $id = $node->safe_psql('src', "SELECT coupon_hold('p', 'h', '1 hour')");
$node->safe_psql('src',
	"UPDATE coupon_claims SET expires_at = clock_timestamp() + interval '$TTL s' WHERE id = $id");
my $dump = PostgreSQL::Test::Utils::tempdir . '/src.sql';
command_ok(
	[ 'pg_dump', '-h', $node->host, '-p', $node->port, '-Fp', '-f', $dump, 'src' ],
	'pg_dump of the database with the hold');

# Restore the dump into a new database; returns when it was done, by the
# server's clock.
sub restore
{
	my ($db) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	command_ok(
		[
			'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', $node->host,
			'-p', $node->port, '-d', $db, '-f', $dump
		],
		"the dump restores into $db");
	return $node->safe_psql($db, 'SELECT clock_timestamp()');
}

# The restored hold in $db is returned within the interval and the
# visit's lag of $since, or of its expiry if that is later ($what says
# what $since is).
sub served_within
{
	my ($db, $since, $what) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	local $PostgreSQL::Test::Utils::timeout_default = $RETURN_HANG_GUARD;
	my $bound = $INTERVAL + $VISIT_LAG;
	my $lag = 'never';
	$lag = $node->safe_psql($db,
		"SELECT extract(epoch FROM released_at - greatest(expires_at, '$since'::timestamptz)) FROM coupon_claims WHERE id = $id"
	) if wait_returned($node, $db, $id);
	ok($lag ne 'never' && $lag < $bound,
		"$db: the hold is returned within the interval ($INTERVAL s) and "
		  . "the visit's lag ($VISIT_LAG s) of $what or its expiry")
	  or diag("returned: $lag (s after $what or the expiry; "
		  . "$RETURN_HANG_GUARD s hang guard)");
	note("$db: returned $lag s after $what or its expiry");
	check_pools($node, $db, "$db after the visit");
	return;
}

restore('restored1');
is($node->safe_psql('restored1',
		"SELECT released_at IS NULL FROM coupon_claims WHERE id = $id"),
	't', 'restored1: the restored hold is live, nobody announced it');

############################################################################
# A reload to $INTERVAL s: the launcher visits within the interval.
############################################################################
$node->safe_psql('postgres',
	"ALTER SYSTEM SET $GUC = '${INTERVAL}s'; SELECT pg_reload_conf()");
served_within('restored1',
	$node->safe_psql('postgres', 'SELECT clock_timestamp()'),
	'the reload');

############################################################################
# The next visit comes by itself, within the interval.
############################################################################
served_within('restored2', restore('restored2'), 'the restore');

check_log($node, '029_launcher_revisit');
$node->stop;
done_testing();
