# A coupon cluster: one proxy (extension coupon_proxy over PL/Proxy) and
# four nodes, pools sharded by name.  Every count is taken on the nodes'
# own ledgers, not through the proxy alone.
#
# The schema of coupon_proxy cannot be renamed (55000: its functions name
# it), though it can be altered otherwise, and an update from 1.0 after a
# rename is refused until it has its name back; nor can a node's, once
# attached (the proxy calls its functions by bare names).  Before attach every call is
# refused (UC007), and so is an attach that
# would put a node stamped as another partition (UC005) or a node whose
# ledger has ids that would not name it (UC006) in the cluster; neither
# stamps any node.  Attach returns 4, twice, and stamps node i as
# partition i of 4, whose claim ids are (i << 48) | n.  Pools land on the
# node coupon_node() names, and ten pools on more than one node.  A burst
# of 500 users for 50 coupons over those ten pools, through the proxy,
# grants exactly each pool's capacity on its node's ledger.  Release,
# confirm and extend by id reach the id's node; an id naming no node is
# refused (UC008); a request id's retry through the proxy returns the
# first claim; a cart on one node works.  A cart over two nodes is
# claimed on both, its retry returns the first claims, one sold out on
# its second node releases what the first held, bad input changes
# nothing, and the retry of a cart cut after its first node held
# finishes it; claim_many, cart_detailed and drop run on
# the pool's node, and coupon_holds gathers every node's holds.  An
# application role with the documented grants claims through the proxy;
# attach is not its.  A node stopped: the calls for its pools fail in
# seconds naming it, pools on the other nodes keep working, and once it
# starts again its ledger has every claim it had, and it serves again;
# given its last id (partition << 48) + 2^48 - 1, it refuses the next
# claim (2200H) rather than give an id that names another node.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use CouponTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

chomp(my $sharedir = `pg_config --sharedir`);
# Not skipped: a cluster test that quietly does not run proves nothing
# (.ci/deps installs PL/Proxy).
BAIL_OUT('PL/Proxy is not installed: apt-get install postgresql-'
	  . (split /\//, $sharedir)[-1] . '-plproxy')
  unless -f "$sharedir/extension/plproxy.control";

my $t0 = time;
# One initdb for the four nodes: the others are copies of the first, with
# coupon created (a copy keeps the system identifier, which no part of a
# cluster reads).
my ($proxy, @nodes) = coupon_cluster(4);

sub on_proxy { return $proxy->safe_psql('postgres', $_[0]); }
sub members
{
	return join ' ', map {
		$_->safe_psql('postgres',
			q{SELECT coalesce(string_agg(partition || '/' || partitions, ','), '-') FROM coupon_cluster_member})
	} @nodes;
}

# pool => index of every node that has it; a pool on two nodes dies.
sub pools_by_node
{
	my %on;
	for my $i (0 .. 3)
	{
		for my $p (split /\n/, $nodes[$i]->safe_psql('postgres', 'SELECT name FROM coupon_pool'))
		{
			die "pool $p is on nodes $on{$p} and $i" if exists $on{$p};
			$on{$p} = $i;
		}
	}
	return %on;
}

# The connection string of node i, from the proxy's server.
sub node_connstr
{
	my ($i) = @_;
	return $proxy->safe_psql('postgres',
		"SELECT option_value FROM pg_foreign_server, pg_options_to_table(srvoptions) WHERE option_name = 'p$i'");
}

# The number of ledger rows of every node.
sub ledgers { return join ',', map { ledger_count($_, 'postgres') } @nodes; }

# Before attach.
expect_state($proxy, 'postgres', q{SELECT coupon_claim('a', 'c')}, 'UC007',
	'a claim before attach is refused');
expect_state($proxy, 'postgres', q{SELECT * FROM coupon_pools}, 'UC007',
	'the view before attach is refused');
expect_state($proxy, 'postgres', q{SELECT coupon_release(1, 'c')}, 'UC007',
	'a release before attach is refused');
expect_state($proxy, 'postgres', q{SELECT coupon_node('a')}, 'UC007',
	'coupon_node before attach is refused');
my ($rename_state, undef, $rename_err) = sql_state($proxy, 'postgres',
	'ALTER SCHEMA public RENAME TO shop');
is($rename_state, '55000', "coupon_proxy's schema cannot be renamed")
  or diag($rename_err);
is($proxy->safe_psql('postgres',
	"SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'coupon_proxy'"),
	'public', 'and is not: the rename rolled back');
on_proxy('CREATE ROLE schema_owner; ALTER SCHEMA public OWNER TO schema_owner');
is($proxy->safe_psql('postgres', "SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'public'"),
	'schema_owner', 'another ALTER SCHEMA of it is not refused');
on_proxy('ALTER SCHEMA public OWNER TO pg_database_owner; DROP ROLE schema_owner');
# Renamed under coupon_proxy 1.0, whose functions name the old name: the
# update is refused until the schema has it back.
check_update_after_rename($proxy, 'proxy10', 'coupon_proxy', '1.0', '1.1');
on_proxy('CREATE ROLE alice; CREATE DATABASE alices OWNER alice');
expect_state($proxy, 'alices', 'CREATE EXTENSION coupon_proxy CASCADE', '55000',
	'coupon_proxy is not installed in a schema that a role without superuser owns');
expect_state($proxy, 'proxy10', 'ALTER SCHEMA was RENAME TO now', '55000',
	'after which the schema cannot be renamed');
on_proxy('ALTER SERVER coupon_cluster RENAME TO coupon_elsewhere');
expect_state($proxy, 'postgres', q{SELECT coupon_cluster_attach()}, '42704',
	'attach without the server is refused');
on_proxy('ALTER SERVER coupon_elsewhere RENAME TO coupon_cluster');

# A node stamped as another partition, and a node with claims, are refused
# before any node is stamped.
is($nodes[2]->safe_psql('postgres', q{SELECT coupon_cluster_join('other', 1, 4)}),
	'1', 'a node joins a cluster by hand');
is($nodes[2]->safe_psql('postgres', q{SELECT coupon_cluster_join('other', 1, 4)}),
	'1', 'and again: idempotent');
expect_state($nodes[2], 'postgres', q{SELECT coupon_cluster_join('other', 2, 4)},
	'UC005', 'the node refuses another partition');
expect_state($nodes[2], 'postgres', q{SELECT coupon_cluster_join('another', 1, 4)},
	'UC005', 'and another cluster');
my (undef, undef, $err) = expect_state($proxy, 'postgres',
	q{SELECT coupon_cluster_attach()}, 'UC005',
	'attach refuses a node stamped as another partition');
like($err, qr/node p2 is partition 1 of 4 of cluster "other"/, 'naming the node');
is(members(), '- - 1/4 -', 'and stamps no node');
$nodes[2]->safe_psql('postgres', 'DELETE FROM coupon_cluster_member');

$nodes[3]->safe_psql('postgres',
	q{SELECT coupon_pool_create('old', 3); SELECT coupon_claim('old', 'c')});
expect_state($nodes[3], 'postgres', q{SELECT coupon_cluster_join('x', 3, 4)},
	'UC006', 'a node whose ledger has ids of its own is refused');
($err) = (expect_state($proxy, 'postgres', q{SELECT coupon_cluster_attach()},
		'UC006', 'attach refuses it'))[2];
like($err, qr/node p3 has claims whose ids do not name it/, 'naming the node');
is(members(), '- - - -', 'and stamps no node');
$nodes[3]->safe_psql('postgres', q{
SELECT coupon_release(id) FROM coupon_claims;
SELECT coupon_pool_drop('old');
DELETE FROM coupon_claims;
SELECT setval('coupon_claims_id_seq', 1, false);
});

# Attach.
is(on_proxy('SELECT coupon_cluster_attach()'), '4', 'attach returns the number of nodes');
is(on_proxy('SELECT coupon_cluster_attach()'), '4', 'and again: idempotent');
# The proxy calls a node's functions by their bare names, through its
# role's search_path, which names the schema: a node's cannot be renamed.
expect_state($nodes[1], 'postgres', 'ALTER SCHEMA public RENAME TO shop', '55000',
	"a node's schema cannot be renamed");
is(members(), '0/4 1/4 2/4 3/4', 'node i is partition i of 4');
is( join(' ', map { $_->safe_psql('postgres', 'SELECT cluster FROM coupon_cluster_member') } @nodes),
	join(' ', (on_proxy('SELECT cluster FROM coupon_proxy_cluster')) x 4),
	'of one cluster');
# As PL/Proxy's RUN ON, a node takes a number for the partition it is
# modulo the partitions (the proxy's claim sends the pool's hash); any
# other is refused.
is( $nodes[1]->safe_psql('postgres',
		q{SELECT coupon_routed_here(1, NULL, NULL), coupon_routed_here(1 + 4 * 12345, NULL, NULL)}),
	'1|1', 'node 1 takes any number that is 1 modulo 4');
($err) = (expect_state($nodes[1], 'postgres', q{SELECT coupon_routed_here(2 + 4 * 12345, NULL, NULL)},
		'UC005', 'and refuses one that is not'))[2];
like($err, qr/this node is partition 1, not partition 2/, 'naming the partition it was meant for');

# Pools, by name.
is(on_proxy(q{SELECT string_agg(coupon_pool_create('burst' || i, 5)::text, '') FROM generate_series(0, 9) i}),
	'true' x 10, 'ten pools created through the proxy');
my %node_of = pools_by_node();    # pool => node index
is(join(' ', sort keys %node_of), join(' ', sort map { "burst$_" } 0 .. 9),
	'each is on one node');
is( on_proxy(q{SELECT string_agg(n.p || '=' || coupon_node(n.p), ' ' ORDER BY n.p)
	             FROM (SELECT 'burst' || i AS p FROM generate_series(0, 9) i) n}),
	do { my @c = map { node_connstr($_) } 0 .. 3; join(' ', map { "$_=$c[$node_of{$_}]" } sort keys %node_of) },
	'coupon_node() names the node of each');
my %used = map { $_ => 1 } values %node_of;
cmp_ok(scalar keys %used, '>=', 3, 'ten pools are spread over ' . scalar(keys %used) . ' nodes');
is(on_proxy('SELECT count(*), sum(capacity) FROM coupon_pools'), '10|50',
	'coupon_pools gathers every node');

# The burst: 500 users for 50 coupons over ten pools, through the proxy.
my $dir = PostgreSQL::Test::Utils::tempdir;
PostgreSQL::Test::Utils::append_to_file("$dir/burst.sql", q{
\set u random(1, 500)
\set p random(0, 9)
SELECT * FROM coupon_claim_detailed('burst' || :p, 'u' || :u);
});
my $run = pgbench_start($proxy, 'postgres', $dir, 'burst',
	'-c', '10', '-t', '150', '-f', "$dir/burst.sql");
pgbench_wait($run, 150, 'the burst ended');
my ($done, $out, $berr) = pgbench_result($dir, 'burst');
is($done, 1500, 'every call of the burst answered') or diag($berr);
for my $i (0 .. 3)
{
	my @mine = sort grep { $node_of{$_} == $i } keys %node_of;
	my $want = join ' ', map { "$_=5" } @mine;
	is( $nodes[$i]->safe_psql('postgres',
			q{SELECT coalesce(string_agg(pool || '=' || n, ' ' ORDER BY pool), '')
			    FROM (SELECT pool, sum(qty) n FROM coupon_claims
			           WHERE released_at IS NULL GROUP BY pool) s}),
		$want, "node ${i}'s ledger: exactly the capacity of each of its pools");
	is( $nodes[$i]->safe_psql('postgres',
			qq{SELECT count(*) FROM coupon_claims WHERE id >> 48 <> $i}),
		'0', "node ${i}'s claim ids name it");
}
is(on_proxy(q{SELECT sum(claimed), sum(available) FROM coupon_pools WHERE pool LIKE 'burst%'}),
	'50|0', 'the proxy sees the 50 granted');

# Release, confirm and extend by id reach the id's node.
on_proxy(q{SELECT coupon_pool_create('life' || i, 10, 5) FROM generate_series(0, 15) i});
my %life_node = pools_by_node();
my @life;
for my $p (map { "life$_" } 0 .. 15)
{
	my $n = $life_node{$p};
	next if $n == 0 || grep { $_->[1] == $n } @life;
	push @life, [ $p, $n ];
	last if @life == 2;
}
is(scalar @life, 2, 'two pools on two nodes other than p0');
for my $l (@life)
{
	my ($p, $n) = @$l;
	my $node = $nodes[$n];
	my $hold = on_proxy(qq{SELECT coupon_hold('$p', 'h', '1 hour')});
	is($hold >> 48, $n, "a hold of $p has an id naming node $n");
	like(on_proxy(qq{SELECT coupon_hold_extend($hold, '2 hours', 'h')}), qr/^\d{4}-/,
		"extend by id through the proxy");
	is($node->safe_psql('postgres',
			qq{SELECT expires_at > now() + interval '90 minutes' FROM coupon_claims WHERE id = $hold}),
		't', "the node's ledger has the extended hold");
	is(on_proxy(qq{SELECT coupon_confirm($hold, 'h')}), 't', 'confirm by id through the proxy');
	is($node->safe_psql('postgres', qq{SELECT expires_at IS NULL FROM coupon_claims WHERE id = $hold}),
		't', "the node's ledger has the confirmed claim");
	my $claim = on_proxy(qq{SELECT coupon_claim('$p', 'r')});
	is(on_proxy(qq{SELECT coupon_release($claim, 'r')}), 't', 'release by id through the proxy');
	is($node->safe_psql('postgres', qq{SELECT released_at IS NOT NULL FROM coupon_claims WHERE id = $claim}),
		't', "the node's ledger has the release");

	# A request id's retry returns the first claim.
	my $first = on_proxy(qq{SELECT coupon_claim('$p', 'q', 1, '0', 'req-$p')});
	is(on_proxy(qq{SELECT coupon_claim('$p', 'q', 1, '0', 'req-$p')}), $first,
		'a retry with the request id returns the first claim');
	is($node->safe_psql('postgres', qq{SELECT count(*) FROM coupon_claims WHERE request_id = 'req-$p'}),
		'1', 'one claim on the node');
}
my $before = ledgers();
for my $bad ((7 << 48) + 1, (4 << 48), -5)
{
	expect_state($proxy, 'postgres', qq{SELECT coupon_release($bad, 'h')}, 'UC008',
		"release of id $bad, which names no node, is refused");
	expect_state($proxy, 'postgres', qq{SELECT coupon_confirm($bad)}, 'UC008',
		"so is confirm");
}
is(ledgers(), $before, 'and they changed nothing');

# Carts: on one node, or refused.
my ($a_pool, $b_pool) = ($life[0][0], $life[1][0]);
my ($same) = grep { $node_of{$_} == $life[0][1] } sort keys %node_of;
on_proxy(qq{SELECT coupon_pool_resize('$same', 6)}) if defined $same;
SKIP:
{
	skip 'no burst pool on the first life pool\'s node', 2 unless defined $same;
	my $ids = on_proxy(qq{SELECT coupon_claim_cart(ARRAY['$a_pool', '$same'], ARRAY[1, 1], 'cart')});
	like($ids, qr/^\{\d+,\d+\}$/, 'a cart of two pools of one node is granted');
	is($nodes[$life[0][1]]->safe_psql('postgres', q{SELECT count(*) FROM coupon_claims WHERE customer = 'cart'}),
		'2', 'on that node');
}
# Carts over two nodes: pools sa and sb, sa's node first in partition
# order.  Node n's live rows of customer c: id:pool:qty:hold|claim.
my ($sa, $sb) = split /\|/, on_proxy(q{
WITH c AS (SELECT 'span' || i AS p, coupon_proxy_home('span' || i) AS h FROM generate_series(0, 31) i)
SELECT a.p || '|' || b.p FROM c a, c b WHERE a.h < b.h ORDER BY a.p, b.p LIMIT 1});
my ($ha, $hb) = map { on_proxy("SELECT coupon_proxy_home('$_')") } $sa, $sb;
on_proxy("SELECT coupon_pool_create('$sa', 5, 5); SELECT coupon_pool_create('$sb', 3, 5)");
sub live
{
	my ($n, $c) = @_;
	return $nodes[$n]->safe_psql('postgres', qq{
SELECT coalesce(string_agg(id || ':' || pool || ':' || qty || ':'
                           || CASE WHEN expires_at IS NULL THEN 'claim' ELSE 'hold' END, ',' ORDER BY id), '-')
  FROM coupon_claims WHERE customer = '$c' AND released_at IS NULL});
}
my $span = on_proxy(qq{SELECT claim_ids::text || ':' || status FROM coupon_claim_cart_detailed(
    ARRAY['$sa', '$sb', '$sa'], ARRAY[2, 1, 1], 'c1', NULL, '0', 'span-1')});
my ($x, $y, $x2) = $span =~ /^\{(\d+),(\d+),(\d+)\}:granted$/;
ok(defined $x && $x == $x2, "a cart over nodes p$ha and p$hb is granted, one id per pool ($span)");
is(($x >> 48) . ' ' . ($y >> 48), "$ha $hb", 'each id names its pool\'s node');
is(live($ha, 'c1') . ' ' . live($hb, 'c1'), "$x:$sa:3:claim $y:$sb:1:claim",
	'each node has its lines as one permanent claim (confirmed)');
$before = ledgers();
is(on_proxy(qq{SELECT claim_ids::text || ':' || status FROM coupon_claim_cart_detailed(
    ARRAY['$sb', '$sa'], ARRAY[1, 3], 'c1', NULL, '0', 'span-1')}), "{$y,$x}:repeat",
	'a retry with the request id (lines in another order) returns the first claims');
is(ledgers(), $before, 'and takes nothing');

expect_state($proxy, 'postgres', qq{SELECT coupon_claim_cart(ARRAY['$sa', '$b_pool'], ARRAY[3, 1], 'c1',
    NULL, '0', 'span-1')}, '23505', 'the request id of that cart for another one is refused');
expect_state($proxy, 'postgres', qq{SELECT coupon_claim_cart(ARRAY['$sa', '$sb'], ARRAY[3, 1], 'c9',
    NULL, '0', 'span-1')}, '23505', 'and for another customer');
expect_state($proxy, 'postgres', qq{SELECT coupon_claim_cart(ARRAY['$sa', '$sb'], ARRAY[1, 1], 'c9',
    NULL, NULL)}, '22004', 'a NULL wait is refused');
is(ledgers(), $before, 'and none of them takes or releases anything');

is(on_proxy(qq{SELECT coalesce(claim_ids::text, '-') || ':' || status || ':' || line
                 FROM coupon_claim_cart_detailed(ARRAY['$sa', '$sb'], ARRAY[1, 3], 'c2')}),
	'-:sold_out:2', "a cart whose line on p$hb is sold out: sold_out, that line");
is(live($ha, 'c2') . ' ' . live($hb, 'c2'), '- -', "and the hold it got on p$ha was released");

$before = ledgers();
expect_state($proxy, 'postgres', qq{SELECT coupon_claim_cart(ARRAY['$sa', '$sb'], ARRAY[1, 0], 'c5')},
	'22023', 'a bad qty on the second node\'s line is refused');
is(ledgers(), $before, 'before anything is held anywhere');
my $nosuch = on_proxy(qq{SELECT 'nosuch' || i FROM generate_series(0, 63) i
                          WHERE coupon_proxy_home('nosuch' || i) > $ha ORDER BY i LIMIT 1});
expect_state($proxy, 'postgres', qq{SELECT coupon_claim_cart(ARRAY['$sa', '$nosuch'], ARRAY[1, 1], 'c6')},
	'42704', 'a pool that does not exist on a later node: its error');
is(live($ha, 'c6'), '-', 'and the first node\'s hold was released');

# A cart cut after its first node held (as the proxy does it, then
# gone): the retry with its request id confirms that hold and claims
# the rest.
my $cut = on_proxy(qq{SELECT claim_ids[1] FROM coupon_proxy_routed_cart($ha, ARRAY['$sa'], ARRAY[1], 'c4',
    '1 minute', '0', 'span-4')});
is(live($ha, 'c4'), "$cut:$sa:1:hold", 'a cut cart left a hold on its first node');
is(on_proxy(qq{SELECT claim_ids[1] = $cut AND claim_ids[2] >> 48 = $hb AND status = 'granted'
                 FROM coupon_claim_cart_detailed(ARRAY['$sa', '$sb'], ARRAY[1, 1], 'c4', NULL, '0', 'span-4')}),
	't', 'its retry finds that hold and grants the other line');
like(live($ha, 'c4') . ' ' . live($hb, 'c4'), qr/^$cut:$sa:1:claim \d+:$sb:1:claim$/,
	'both now permanent claims');

# A cart cancelled while its second node waits for the customer's lock
# (held by a session on that node): the first node's hold is released.
my $blocker = bg_open($nodes[$hb]);
bg_run($blocker, 'BEGIN');
bg_run($blocker, qq{SELECT coupon_claim('$sb', 'c8')});
my $canceled = bg_open($proxy);
my $cpid = bg_pid($canceled);
bg_send($canceled, qq{SELECT coupon_claim_cart(ARRAY['$sa', '$sb'], ARRAY[1, 1], 'c8', '1 day')});
ok($nodes[$hb]->poll_query_until('postgres', q{SELECT count(*) > 0 FROM pg_stat_activity
                   WHERE wait_event_type = 'Lock' AND query LIKE '%coupon_routed_claim_cart%'}),
	'a cart waits on its second node');
like(live($ha, 'c8'), qr/^\d+:$sa:1:hold$/, 'holding its line on the first');
on_proxy("SELECT pg_cancel_backend($cpid)");
my (undef, $cstate) = bg_collect($canceled);
is($cstate, '57014', 'the cart is cancelled');
is(live($ha, 'c8'), '-', 'and the first node\'s hold was released');
bg_run($blocker, 'ROLLBACK');
bg_close($_) for $blocker, $canceled;

# A cart of holds over two nodes stays holds.
like(on_proxy(qq{SELECT status FROM coupon_claim_cart_detailed(ARRAY['$sb', '$sa'], ARRAY[1, 1], 'c3',
    '1 hour')}), qr/^granted$/, 'a cart of holds over two nodes is granted');
like(live($ha, 'c3') . ' ' . live($hb, 'c3'), qr/^\d+:$sa:1:hold \d+:$sb:1:hold$/, 'as a hold on each');
is(on_proxy(qq{SELECT coalesce(claim_ids::text, '-') || ':' || status
                 FROM coupon_claim_cart_detailed(ARRAY['$sa', '$sb'], ARRAY[1, 1], 'c7')}),
	'-:sold_out', "with $sb now sold out, another cart gets nothing");
is(live($ha, 'c7'), '-', 'and leaves nothing held');

# The rest of the API, each on its node.
my ($l0, $n0) = @{ $life[0] };
is( on_proxy(qq{
SELECT string_agg(customer || ':' || status || ':' || (claim_id >> 48), ' ' ORDER BY customer)
  FROM coupon_claim_many('$l0', ARRAY['m1', 'm2']);
SELECT status || ':' || (claim_ids[1] >> 48)
  FROM coupon_claim_cart_detailed(ARRAY['$l0'], ARRAY[1], 'cd', '1 hour');
SELECT coupon_pool_drop('life15');
}),
	"m1:granted:$n0 m2:granted:$n0\ngranted:$n0\n", 'claim_many, cart_detailed and drop through the proxy');
my $holds = on_proxy(q{SELECT string_agg(claim_id::text, ',' ORDER BY claim_id) FROM coupon_holds});
like($holds, qr/^\d+(,\d+)*$/, "coupon_holds through the proxy lists holds ($holds)");
is( $holds,
	join(',', sort { $a <=> $b } map {
		split /\n/, $_->safe_psql('postgres', 'SELECT claim_id FROM coupon_holds') } @nodes),
	'coupon_holds gathers the holds of every node');
is(join('', map { $_->safe_psql('postgres', q{SELECT count(*) FROM coupon_pool WHERE name = 'life15'}) } @nodes),
	'0000', 'the dropped pool is gone from its node');

# An application role: the documented grants on the proxy and the nodes.
my $grants = q{
GRANT EXECUTE ON FUNCTION coupon_claim(text, text, integer, interval, text),
      coupon_release(bigint, text) TO app;
GRANT SELECT ON coupon_pools TO app;
};
for my $node (@nodes)
{
	$node->safe_psql('postgres', "CREATE ROLE app LOGIN; $grants GRANT EXECUTE ON FUNCTION coupon_pool_memory() TO app;
GRANT EXECUTE ON FUNCTION coupon_routed_claim(integer, text, text, integer, interval, text, boolean),
    coupon_routed_here(integer, text, text), coupon_share_available(text),
    coupon_transfers_pending(), coupon_transfers_taken(text[]),
    coupon_spread_pools() TO app;");
}
on_proxy("CREATE ROLE app LOGIN; $grants
GRANT EXECUTE ON FUNCTION coupon_proxy_pools(),
    coupon_proxy_claim(text, text, integer, interval, text, boolean),
    coupon_proxy_routed_claim(integer, text, text, integer, interval, text, boolean),
    coupon_proxy_refill(text, integer, bigint, bigint) TO app;
GRANT USAGE ON FOREIGN SERVER coupon_cluster TO app;");
my $as_app = $proxy->connstr('postgres') . ' user=app';
is($proxy->safe_psql('postgres', qq{SELECT coupon_claim('$a_pool', 'app1') >> 48}, connstr => $as_app),
	$life[0][1], 'the application role claims through the proxy');
is($proxy->safe_psql('postgres', q{SELECT count(*) > 0 FROM coupon_pools}, connstr => $as_app),
	't', 'and reads coupon_pools');
# With the documented grants of carts, it claims a cart over two nodes.
for my $node (@nodes)
{
	$node->safe_psql('postgres', q{GRANT EXECUTE ON FUNCTION
    coupon_claim_cart_detailed(text[], integer[], text, interval, interval, text),
    coupon_confirm(bigint, text),
    coupon_routed_claim_cart(integer, text[], integer[], text, interval, interval, text),
    coupon_cart_request_lines(text) TO app});
}
on_proxy(q{GRANT EXECUTE ON FUNCTION
    coupon_claim_cart(text[], integer[], text, interval, interval, text),
    coupon_claim_cart_detailed(text[], integer[], text, interval, interval, text),
    coupon_confirm(bigint, text),
    coupon_proxy_routed_cart(integer, text[], integer[], text, interval, interval, text),
    coupon_proxy_cart_release(bigint[], text), coupon_proxy_cart_lines(text) TO app});
is($proxy->safe_psql('postgres', qq{SELECT array_agg(i >> 48 ORDER BY o)
    FROM unnest(coupon_claim_cart(ARRAY['$a_pool', '$b_pool'], ARRAY[1, 1], 'appcart', NULL, '0',
                                  'app-cart')) WITH ORDINALITY u(i, o)},
		connstr => $as_app),
	"{$life[0][1],$life[1][1]}", 'and a cart over two nodes');
is(live($life[0][1], 'appcart') =~ /:claim$/ && live($life[1][1], 'appcart') =~ /:claim$/ ? 'yes' : 'no',
	'yes', 'confirmed on both');
expect_state($proxy, 'postgres', 'SELECT coupon_cluster_attach()', '42501',
	'attach is not the application\'s', connstr => $as_app);
expect_state($proxy, 'postgres', q{SELECT coupon_pool_create('x', 1)}, '42501',
	'nor is pool administration', connstr => $as_app);

# A node stopped.
my $down = $life[1][1];
my ($down_pool) = $life[1][0];
my ($up_pool) = $life[0][0];
my $ledger_sql = q{SELECT string_agg(id || ':' || pool || ':' || customer || ':' || coalesce(released_at::text, '-'), ',' ORDER BY id) FROM coupon_claims};
my $ledger_before = $nodes[$down]->safe_psql('postgres', $ledger_sql);
$nodes[$down]->stop('immediate');
my $t = time;
my ($state, undef, $derr) = sql_state($proxy, 'postgres', qq{SELECT coupon_claim('$down_pool', 'x')});
my $took = time - $t;
isnt($state, '00000', 'a claim of a pool of the stopped node fails');
my $port = $nodes[$down]->port;
like($derr, qr/$port/, 'naming the node') or diag($derr);
cmp_ok($took, '<', 10, sprintf('in %.1f s', $took));
($state, undef, $derr) = sql_state($proxy, 'postgres', 'SELECT count(*) FROM coupon_pools');
isnt($state, '00000', 'coupon_pools fails rather than leaving the node out');
like($derr, qr/$port/, 'naming the node');
like(on_proxy(qq{SELECT coupon_claim('$up_pool', 'while-down')}), qr/^\d+$/,
	'a pool on another node keeps working');
$nodes[$down]->start;
is($nodes[$down]->safe_psql('postgres', $ledger_sql), $ledger_before,
	'the restarted node has every claim it had');
like(on_proxy(qq{SELECT coupon_claim('$down_pool', 'x')}), qr/^\d+$/, 'and serves again');

# A node's ids end where the next partition's begin: with its last id
# given, the next claim is refused (2200H) and writes nothing.
my $last_id = (($down + 1) << 48) - 1;
$nodes[$down]->safe_psql('postgres',
	"SELECT setval('coupon_claims_id_seq', $last_id - 1)");
is(on_proxy(qq{SELECT coupon_claim('$down_pool', 'last-id')}), $last_id,
	"partition $down gives its last id");
my $rows_before = ledger_count($nodes[$down], 'postgres');
expect_state($proxy, 'postgres', qq{SELECT coupon_claim('$down_pool', 'past-it')}, '2200H',
	'and refuses the claim after it');
is(ledger_count($nodes[$down], 'postgres'), $rows_before, 'which wrote nothing');
check_pools($nodes[$down], 'postgres', 'after the refused claim');

note sprintf('%.1f s', time - $t0);
$_->stop for @nodes, $proxy;
done_testing();
