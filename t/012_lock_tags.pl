# Who is claiming does not leak through pg_locks.
#
# A claim holds its customer's lock, an advisory lock that anyone can see
# in pg_locks, from any database.  Its tag must not be something a role
# could compute from a guess of the pool and the customer: not the unkeyed
# hash of them (hashtextextended() in SQL gives what that was), and not
# the same after the server restarts (the tag is keyed by a secret drawn
# at every start).  Within one server life it is stable, so that two
# sessions of the same customer still meet on one lock; and two customers
# get different tags.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use CouponTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = coupon_node('locktags');
$node->safe_psql('postgres', "SELECT coupon_pool_create('tags', 10)");

# The customer locks a session holds: (classid, objid) of its advisory
# locks of the coupon customer class (objsubid 0x0C0F).
sub tags_of
{
	my ($customers) = @_;
	my $s = bg_open($node);
	bg_run($s, 'BEGIN');
	bg_run($s, "SELECT coupon_claim('tags', '$_')") for @$customers;
	my $out = bg_run($s,
		"SELECT string_agg(classid || ':' || objid, ',' ORDER BY classid, objid) FROM pg_locks"
		  . " WHERE locktype = 'advisory' AND objsubid = 3087 AND pid = pg_backend_pid()");
	bg_run($s, 'ROLLBACK');
	bg_close($s);
	return $out;
}

my $unkeyed = $node->safe_psql(
	'postgres', q{
SELECT ((h >> 32) & 4294967295) || ':' || (h & 4294967295)
  FROM (SELECT hashtextextended('alice', hashtextextended('tags', 0)) AS h) x});

my $first = tags_of(['alice']);
like($first, qr/^\d+:\d+$/, 'a claim holds one customer lock');
isnt($first, $unkeyed, 'its tag is not the unkeyed hash of pool and customer');
is(tags_of(['alice']), $first,
	'the same customer gets the same tag while the server runs');
my $two = tags_of([ 'alice', 'bob' ]);
my @two = split /,/, $two;
is(scalar(@two), 2, 'two customers, two locks');
isnt($two[0], $two[1], 'two customers, two different tags');

$node->restart;
my $after = tags_of(['alice']);
like($after, qr/^\d+:\d+$/, 'after a restart, a claim still holds one lock');
isnt($after, $first, 'after a restart, the same customer gets another tag');

check_log($node, '012_lock_tags');
$node->stop;
done_testing();
