# Spread pools: one pool over several nodes of a coupon cluster (one proxy,
# four nodes), its capacity moved between the shares by journaled
# transfers.  Every count is taken on the nodes' own ledgers and tables.
#
# The invariant (README, "The contract"): the shares' capacities plus the
# capacity in flight (given, not yet taken) add up to the pool's capacity,
# and the grants on the ledgers never exceed it, whatever was cut where.
#
# Bad spreads are refused and create nothing.  A pool of 1,000 over four
# nodes, claimed through the proxy by 3,000 customers from eight clients,
# grants exactly 1,000, each customer at most once over all nodes, the
# last coupons to customers of any share.  A transfer cut after its give
# (the proxy gone), a giver killed with SIGKILL after it, a receiver
# killed after its take: capacity is in flight or taken twice never, and
# coupon_cluster_recover() makes the sums exact; a drain then reaches the
# capacity exactly.  A node down: customers of the other shares are still
# served and refills skip it; when it is back, nothing it granted is
# lost.  A transfer cut after its give, then every share drained by claims:
# the claims' refill completes it, and the last coupons are granted, not
# sold out.  Resize grows and shrinks a spread pool (refusing a shrink
# below what is claimed, changing no sum); two resizes at once each find
# an exact pool.  Creates that meet a pool of the name on any node, or
# left-overs of another create, are refused before anything is created;
# a create cut half-way is finished by the call again; a drop cut
# half-way blocks creates until the drop is called again.  A quantity
# above a share's capacity is served by a refill, one above the pool's
# and a customer at its limit move no capacity.  Drop drops every share, a pool of the same
# name created again plain is served by its one node, and an application
# role with the documented grants claims through the proxy but cannot
# give or take capacity on a node, nor a role without them refill.
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
BAIL_OUT('PL/Proxy is not installed: apt-get install postgresql-'
	  . (split /\//, $sharedir)[-1] . '-plproxy')
  unless -f "$sharedir/extension/plproxy.control";

my ($proxy, @nodes) = coupon_cluster(4);
sub on_proxy { return $proxy->safe_psql('postgres', $_[0]); }
is(on_proxy('SELECT coupon_cluster_attach()'), '4', 'a cluster of four nodes');

# Per node: the share's capacity ('-' if none), live grants, what it gave
# and has not seen taken.
sub share
{
	my ($i, $pool) = @_;
	return $nodes[$i]->safe_psql('postgres', qq{
SELECT coalesce((SELECT capacity FROM coupon_pool WHERE name = '$pool')::text, '-')
       || '/' || (SELECT coalesce(sum(qty), 0) FROM coupon_claims
                   WHERE pool = '$pool' AND released_at IS NULL)
       || '/' || (SELECT coalesce(sum(qty), 0) FROM coupon_transfers
                   WHERE pool = '$pool' AND outgoing AND settled_at IS NULL)});
}

# The sums over the nodes: capacity of the shares, what is in flight
# (given, and not taken by its receiver, asked on the receiver), grants.
sub sums
{
	my ($pool) = @_;
	my ($cap, $granted, $flight) = (0, 0, 0);
	my (%taken, @given);
	for my $i (0 .. $#nodes)
	{
		my ($c, $g) = split /\//, share($i, $pool);
		$cap += $c eq '-' ? 0 : $c;
		$granted += $g;
		$taken{$_} = 1 for split /\n/, $nodes[$i]->safe_psql('postgres',
			qq{SELECT transfer_id FROM coupon_transfers WHERE pool = '$pool' AND NOT outgoing});
		push @given, split /\n/, $nodes[$i]->safe_psql('postgres',
			qq{SELECT transfer_id || ' ' || qty FROM coupon_transfers WHERE pool = '$pool' AND outgoing});
	}
	for (@given)
	{
		my ($id, $qty) = split / /;
		$flight += $qty unless $taken{$id};
	}
	return "$cap+$flight granted $granted";
}

# Kill node i's postmaster and all its processes with SIGKILL, as a crash
# of its machine, and start it again (crash recovery).
sub crash
{
	my ($node) = @_;
	my $pid = $node->{_pid};
	my @procs = ($pid, split(/\s+/, `pgrep -P $pid`));
	kill 'KILL', grep { /^\d+$/ } @procs;
	$node->{_pid} = undef;
	my $deadline = time + 60;
	usleep(20_000) while (grep { kill 0, $_ } grep { /^\d+$/ } @procs) && time < $deadline;
	$node->start;
}

# No customer holds a coupon of pool on two nodes, or two on one.
sub customers_once
{
	my ($pool) = @_;
	my %seen;
	my $twice = 0;
	for my $node (@nodes)
	{
		for my $c (split /\n/, $node->safe_psql('postgres',
			qq{SELECT customer FROM coupon_claims WHERE pool = '$pool' AND released_at IS NULL}))
		{
			$twice++ if $seen{$c}++;
		}
	}
	return $twice;
}

# Bad spreads: refused, nothing created anywhere.
expect_state($proxy, 'postgres', q{SELECT coupon_pool_create('bad', 10, 1, 5)}, '22023',
	'a spread larger than the cluster is refused');
expect_state($proxy, 'postgres', q{SELECT coupon_pool_create('bad', 10, 1, 0)}, '22023',
	'a spread below 1 is refused');
expect_state($proxy, 'postgres', q{SELECT coupon_pool_create('bad', 10, 1, NULL)}, '22004',
	'a NULL spread is refused');
expect_state($proxy, 'postgres', q{SELECT coupon_pool_create('bad', -1, 1, 2)}, '22023',
	'a negative capacity is refused');
is(join(' ', map { $_->safe_psql('postgres', q{SELECT count(*) FROM coupon_pool WHERE name = 'bad'}) } @nodes),
	'0 0 0 0', 'and none creates a share');

# A pool of 1,000 over the four nodes.
is(on_proxy(q{SELECT coupon_pool_create('giant', 1000, 1, 4)}), 't', 'a spread pool is created');
is(on_proxy(q{SELECT coupon_pool_create('giant', 1000, 1, 4)}), 'f', 'and again: nothing new');
expect_state($proxy, 'postgres', q{SELECT coupon_pool_create('giant', 900, 1, 4)}, '42710',
	'the same name with another capacity is refused');
is(join(' ', map { share($_, 'giant') } 0 .. 3), '250/0/0 250/0/0 250/0/0 250/0/0',
	'each node holds a share of 250');
is(on_proxy(q{SELECT capacity, available, spread, transferring FROM coupon_pools WHERE pool = 'giant'}),
	'1000|1000|4|0', 'coupon_pools on the proxy shows one pool of 1,000 over 4 nodes');
is(on_proxy(q{SELECT count(DISTINCT coupon_node('giant', 'c' || i)) FROM generate_series(1, 40) i}),
	'4', 'coupon_node() sends customers of the pool to all four nodes');

# A routed claim asks coupon_spread's primary key whether the node has a
# share of the pool before it reads the share (route.c).  A key in another
# shape (a superuser's doing) is not used: the share is read as before,
# and every claim still lands on its customer's node.  Then the key is
# made again.
sub misplaced
{
	my ($pool) = @_;
	my $wrong = 0;
	for my $n (0 .. 3)
	{
		my $list = join(',', map { "'$_'" } split /\n/, $nodes[$n]->safe_psql('postgres',
			qq{SELECT customer FROM coupon_claims WHERE pool = '$pool'}));
		next if $list eq '';
		my $port = $nodes[$n]->port;
		$wrong += on_proxy(qq{SELECT count(*) FROM unnest(ARRAY[$list]) c
		                       WHERE coupon_node('$pool', c) !~ 'port=$port(\\D|\$)'});
	}
	return $wrong;
}
on_proxy(q{SELECT coupon_pool_create('keyed', 120, 1, 4)});
$_->safe_psql('postgres', q{ALTER TABLE coupon_spread DROP CONSTRAINT coupon_spread_pkey;
                            CREATE INDEX coupon_spread_pkey ON coupon_spread (spread_id)})
  for @nodes;
is(on_proxy(q{SELECT count(coupon_claim('keyed', 'k' || i)) FROM generate_series(1, 40) i}),
	'40', 'with the key of coupon_spread on another column, 40 claims are granted');
is(misplaced('keyed'), 0, 'each on its customer\'s node');
# On the right column but partial: it has no row of a pool that is not
# dropping, and would send every customer to the home.
$_->safe_psql('postgres', q{DROP INDEX coupon_spread_pkey;
                            CREATE INDEX coupon_spread_pkey ON coupon_spread (pool) WHERE dropping})
  for @nodes;
is(on_proxy(q{SELECT count(coupon_claim('keyed', 'k' || i)) FROM generate_series(41, 80) i}),
	'40', 'with a partial key of coupon_spread, 40 more');
is(misplaced('keyed'), 0, 'each on its customer\'s node, too');
$_->safe_psql('postgres', q{DROP INDEX coupon_spread_pkey;
                            ALTER TABLE coupon_spread ADD PRIMARY KEY (pool)})
  for @nodes;
is(on_proxy(q{SELECT count(coupon_claim('keyed', 'k' || i)) FROM generate_series(81, 120) i}),
	'40', 'with the key made again, 40 more');
is(misplaced('keyed'), 0, 'and each on its customer\'s node');

# 3,000 customers from eight clients.  Each claim starts at the pool's
# home, goes on to the customer's share, and refills it when it is sold
# out.
my $dir = PostgreSQL::Test::Utils::tempdir;
PostgreSQL::Test::Utils::append_to_file("$dir/burst.sql", q{
\set c random(1, 3000)
SELECT * FROM coupon_claim_detailed('giant', 'c' || :c);
});
my $run = pgbench_start($proxy, 'postgres', $dir, 'burst',
	'-c', '8', '-t', '250', '-f', "$dir/burst.sql");
pgbench_wait($run, 240, 'the burst ended');
my ($done, undef, $berr) = pgbench_result($dir, 'burst');
is($done, 2000, 'every call of the burst answered') or diag($berr);
is(customers_once('giant'), 0, 'no customer holds two coupons, on one node or two');

# Drain: every customer once more, in one bulk call per 500.
on_proxy(qq{SELECT count(*) FROM coupon_claim_many('giant',
	ARRAY(SELECT 'c' || i FROM generate_series($_, $_ + 499) i))})
  for map { 1 + 500 * $_ } 0 .. 5;
is(sums('giant'), '1000+0 granted 1000', 'drained: exactly 1,000 granted, the shares add up to 1,000');
is(customers_once('giant'), 0, 'still each customer once');
my @per_node = map { (split /\//, share($_, 'giant'))[1] } 0 .. 3;
is(scalar(grep { $_ > 0 } @per_node), 4, "every share granted some (@per_node)");
is(on_proxy(q{SELECT claimed, available FROM coupon_pools WHERE pool = 'giant'}), '1000|0',
	'coupon_pools: all claimed');
is(on_proxy(q{SELECT * FROM coupon_claim_detailed('giant', 'late')}), '|sold_out|0',
	'sold out means sold out everywhere');

# The same customer twice through the proxy: one claim, the same id.
on_proxy(q{SELECT coupon_pool_create('twice', 100, 1, 4)});
my $first = on_proxy(q{SELECT coupon_claim('twice', 'alice', 1, '0', 'req-1')});
like($first, qr/^\d+$/, 'a claim with a request id');
is(on_proxy(q{SELECT coupon_claim('twice', 'alice', 1, '0', 'req-1')}), $first,
	'its retry returns the first claim');
is(on_proxy(q{SELECT claim_id, status FROM coupon_claim_detailed('twice', 'alice')}), "$first|repeat",
	'the customer again: a repeat');
is(on_proxy(qq{SELECT coupon_release($first, 'alice')}), 't', 'released by id through the proxy');

# Transfers cut at every point.  A pool of 100 over two nodes; the
# transfers are run step by step as the proxy runs them.
on_proxy(q{SELECT coupon_pool_create('cut', 100, 1, 2)});
my ($home, $sid) = split /\|/, on_proxy(q{SELECT home, spread_id FROM coupon_proxy_home_share('cut')});
my $peer = ($home + 1) % 4;
is(sums('cut'), '100+0 granted 0', 'the pool of 100 over two nodes');

# 1. The proxy is gone after the give.
is(on_proxy(qq{SELECT coupon_proxy_give($peer, 't1', 'cut', '$sid', $home, 10)}), '25',
	'a give of half the peer\'s available');
is(on_proxy(qq{SELECT coupon_proxy_give($peer, 't1', 'cut', '$sid', $home, 10)}), '25',
	'its repeat gives nothing more');
is(sums('cut'), '75+25 granted 0', 'cut after the give: 25 in flight, none counted twice');
is(on_proxy(q{SELECT transferring FROM coupon_pools WHERE pool = 'cut'}), '25',
	'coupon_pools shows them in flight');

# 2. The giver killed with SIGKILL after a second give.
is(on_proxy(qq{SELECT coupon_proxy_give($peer, 't2', 'cut', '$sid', $home, 5)}), '12',
	'a second give');
crash($nodes[$peer]);
is(sums('cut'), '63+37 granted 0', 'the giver killed and back: 37 in flight');

# 3. The receiver killed after a take, before the giver settled it.
is(on_proxy(qq{SELECT coupon_proxy_take($home, 't2', 'cut', '$sid', $peer, 12)}), 't', 'a take');
is(on_proxy(qq{SELECT coupon_proxy_take($home, 't2', 'cut', '$sid', $peer, 12)}), 'f',
	'its repeat takes nothing');
crash($nodes[$home]);
is(sums('cut'), '75+25 granted 0', 'the receiver killed and back: its take kept, once');
is(on_proxy(q{SELECT available || '+' || transferring FROM coupon_pools WHERE pool = 'cut'}), '75+25',
	'coupon_pools counts the taken transfer in its receiver\'s share only, not in flight too');
is(on_proxy('SELECT coupon_cluster_recover()'), '2', 'recover completes both transfers');
is(on_proxy('SELECT coupon_cluster_recover()'), '0', 'and again: nothing left');
is(sums('cut'), '100+0 granted 0', 'the shares add up to 100 again');
is(share($home, 'cut') . ' ' . share($peer, 'cut'), '87/0/0 13/0/0', 'the capacity moved once');

# A drain over both shares reaches the capacity exactly.
on_proxy(q{SELECT count(*) FROM coupon_claim_many('cut', ARRAY(SELECT 'd' || i FROM generate_series(1, 300) i))});
is(sums('cut'), '100+0 granted 100', 'a drain grants exactly 100');

# Resize: grow, a refused shrink, a shrink.
on_proxy(q{SELECT coupon_pool_resize('cut', 120)});
is(sums('cut'), '120+0 granted 100', 'grown to 120');
expect_state($proxy, 'postgres', q{SELECT coupon_pool_resize('cut', 90)}, '55000',
	'a shrink below what is claimed is refused');
is(sums('cut'), '120+0 granted 100', 'and changes nothing');
on_proxy(q{SELECT coupon_pool_resize('cut', 105)});
is(sums('cut'), '105+0 granted 100', 'shrunk to 105');
is(on_proxy(q{SELECT capacity, claimed FROM coupon_pools WHERE pool = 'cut'}), '105|100',
	'as coupon_pools says');
on_proxy(q{SELECT count(*) FROM coupon_claim_many('cut', ARRAY(SELECT 'e' || i FROM generate_series(1, 300) i))});
is(sums('cut'), '105+0 granted 105', 'the last five went to new customers');

# Two resizes at once: the second waits for the first at the home and
# finds the total it left (a grow does not add to a stale total, a second
# equal shrink takes nothing more).
on_proxy(q{SELECT coupon_pool_create('both', 1000, 1, 4)});
my ($bhome, $bsid) = split /\|/, on_proxy(q{SELECT home, spread_id FROM coupon_proxy_home_share('both')});
for my $step ([ 1200, 1500, '1500+0 granted 0', 'a grow beside another grow' ],
	[ 1100, 1100, '1100+0 granted 0', 'a shrink beside the same shrink' ])
{
	my ($first, $second, $want, $what) = @$step;
	my $held = bg_open($nodes[$bhome]);
	bg_run($held, 'BEGIN');
	bg_run($held, qq{SELECT coupon_spread_resize($bhome, 'both', '$bsid', $first)});
	my $other = bg_open($proxy);
	bg_send($other, qq{SELECT coupon_pool_resize('both', $second)});
	ok($nodes[$bhome]->poll_query_until('postgres', q{SELECT count(*) > 0 FROM pg_stat_activity
	                   WHERE wait_event_type = 'Lock' AND query LIKE '%coupon_spread_resize%'}),
		"$what: the second waits for the first");
	bg_run($held, 'COMMIT');
	my (undef, $state, $err) = bg_collect($other);
	is($state, '00000', "$what: the second succeeds") or diag($err);
	bg_close($_) for $held, $other;
	is(sums('both'), $want, "$what: the shares add up to the last capacity");
	is(on_proxy(q{SELECT capacity FROM coupon_pools WHERE pool = 'both'}), $second,
		"$what: coupon_pools agrees");
}

# A transfer cut after its give, and no one runs recover: claims that
# drain every share find the capacity in flight through their refill.
on_proxy(q{SELECT coupon_pool_create('flight', 20, 1, 2)});
my ($fhome, $fsid) = split /\|/, on_proxy(q{SELECT home, spread_id FROM coupon_proxy_home_share('flight')});
my $fpeer = ($fhome + 1) % 4;
is(on_proxy(qq{SELECT coupon_proxy_give($fpeer, 'f1', 'flight', '$fsid', $fhome, 5)}), '5',
	'a give, cut before its take');
is(on_proxy(q{SELECT count(coupon_claim('flight', 'k' || i)) FROM generate_series(1, 80) i}), '20',
	'claims alone grant all 20: the refill completed the transfer in flight');
is(sums('flight'), '20+0 granted 20', 'nothing in flight, exactly 20 granted');

# A quantity above one share's capacity: shares of 3, 3, 2, 2.
on_proxy(q{SELECT coupon_pool_create('qty', 10, 4, 4)});
my $qhome = on_proxy(q{SELECT home FROM coupon_proxy_home_share('qty')});
my $small = on_proxy(qq{SELECT 'q' || i FROM generate_series(1, 200) i
                         WHERE coupon_proxy_serve_partition($qhome, 'qty', 'q' || i) = ($qhome + 3) % 4
                         LIMIT 1});
like(on_proxy(qq{SELECT coupon_claim('qty', '$small', 4)}), qr/^\d+$/,
	'4 for a customer of a share of 2: granted after a refill');
is(sums('qty'), '10+0 granted 4', 'the shares still add up to 10');
expect_state($proxy, 'postgres', qq{SELECT coupon_claim('qty', '$small', 5)}, '22023',
	'above the per-customer limit it is bad input');
# The same through the routed hold: 4 for another customer of that share
# (now of 2 again at most), then a hold the pool cannot serve.
my $small2 = on_proxy(qq{SELECT 'q' || i FROM generate_series(1, 400) i
                          WHERE coupon_proxy_serve_partition($qhome, 'qty', 'q' || i) = ($qhome + 3) % 4
                            AND 'q' || i <> '$small' LIMIT 1});
like(on_proxy(qq{SELECT coupon_hold('qty', '$small2', '1 hour', 4)}), qr/^\d+$/,
	'a hold of 4 for a customer of a small share: held after a refill');
is(sums('qty'), '10+0 granted 8', 'the shares still add up to 10, 8 taken');
is(on_proxy(qq{SELECT coupon_hold('qty', 'q-late', '1 hour', 4) IS NULL}), 't',
	'a hold of 4 where 2 are left: nothing held');
is(sums('qty'), '10+0 granted 8', 'and nothing changed');
on_proxy(q{SELECT coupon_pool_create('over', 10, 20, 4)});
is(on_proxy(q{SELECT coupon_claim('over', 'greedy', 15) IS NULL}), 't',
	'15 of a spread pool of 10: sold out');
is(join('', map { $_->safe_psql('postgres', q{SELECT count(*) FROM coupon_transfers WHERE pool = 'over'}) } @nodes),
	'0000', 'and no capacity was moved for it (no share could serve it)');
my $cartmate = on_proxy(q{SELECT 'mate' || i FROM generate_series(0, 63) i
                           WHERE coupon_proxy_home('mate' || i) <> coupon_proxy_home('over') ORDER BY i LIMIT 1});
on_proxy("SELECT coupon_pool_create('$cartmate', 5)");
expect_state($proxy, 'postgres', qq{SELECT coupon_claim_cart(ARRAY['$cartmate', 'over'], ARRAY[1, 1], 'cm')},
	'0A000', 'a cart with a spread pool and a pool of another node is refused');
is(join('', map { $_->safe_psql('postgres', q{SELECT count(*) FROM coupon_claims WHERE customer = 'cm' AND released_at IS NULL}) } @nodes),
	'0000', 'and holds nothing anywhere');

# A customer at its limit moves no capacity: nothing is sold out.
on_proxy(q{SELECT coupon_pool_create('limit', 40, 2, 2)});
on_proxy(q{SELECT coupon_claim('limit', 'once', 2)});
is(on_proxy(q{SELECT coupon_claim('limit', 'once') IS NULL}), 't',
	'a customer at its limit of 2: no claim (limit_reached)');
on_proxy(q{SELECT coupon_pool_create('limit1', 40, 1, 2)});
on_proxy(q{SELECT coupon_hold('limit1', 'holder', '1 hour')});
is(on_proxy(q{SELECT coupon_claim('limit1', 'holder') IS NULL}), 't',
	'a customer with a live hold: no claim from coupon_claim (held)');
is(join('', map { $_->safe_psql('postgres', q{SELECT count(*) FROM coupon_transfers WHERE pool IN ('limit', 'limit1')}) } @nodes),
	'0000', 'and no transfer was made for either');

# Creates that meet another pool of the name change nothing anywhere.
my $plain_home = on_proxy(q{SELECT coupon_proxy_home('taken')});
on_proxy(q{SELECT coupon_pool_create('taken', 5)});
expect_state($proxy, 'postgres', q{SELECT coupon_pool_create('taken', 100, 1, 4)}, '42710',
	'a spread create over a plain pool is refused');
is(join(' ', map { share($_, 'taken') } 0 .. 3),
	join(' ', map { $_ == $plain_home ? '5/0/0' : '-/0/0' } 0 .. 3),
	'before any share was created');
on_proxy(q{SELECT coupon_pool_drop('taken')});
# A create cut half-way: member 1 joined, nothing else.
my $thome = $plain_home;
on_proxy(qq{SELECT coupon_proxy_spread_join(($thome + 1) % 4, 'taken', 'cut-create', 100, 25, 1, 4, 1)});
expect_state($proxy, 'postgres', q{SELECT coupon_pool_create('taken', 10, 1, 4)}, '42710',
	'a create with other settings than the one cut half-way is refused');
is(on_proxy(q{SELECT coupon_pool_create('taken', 100, 1, 4)}), 't',
	'the create with the same settings finishes it');
is(on_proxy(q{SELECT spread_id FROM coupon_proxy_home_share('taken')}), 'cut-create', 'under its spread id');
is(sums('taken'), '100+0 granted 0', 'the shares add up to 100');
on_proxy(q{SELECT coupon_pool_drop('taken')});
# What a cut create left, dropped by coupon_pool_drop.
on_proxy(qq{SELECT coupon_proxy_spread_join(($thome + 2) % 4, 'taken', 'left', 100, 25, 1, 4, 2)});
on_proxy(q{SELECT coupon_pool_drop('taken')});
is(join(' ', map { share($_, 'taken') } 0 .. 3), '-/0/0 -/0/0 -/0/0 -/0/0',
	'a drop removes the shares a cut create left');

# A drop cut half-way: the home marked, one share dropped.  A create must
# not bring the dropped share back with new capacity.
on_proxy(q{SELECT coupon_pool_create('half', 100, 1, 4)});
my ($hhome, $hsid) = split /\|/, on_proxy(q{SELECT home, spread_id FROM coupon_proxy_home_share('half')});
on_proxy(qq{SELECT coupon_claim('half', 'h' || i) FROM generate_series(1, 10) i});
on_proxy(qq{SELECT coupon_proxy_spread_dropping($hhome, 'half', '$hsid'),
                   coupon_proxy_spread_drop(($hhome + 3) % 4, 'half', '$hsid')});
expect_state($proxy, 'postgres', q{SELECT coupon_pool_create('half', 100, 1, 4)}, '55000',
	'a create during a drop cut half-way is refused');
expect_state($proxy, 'postgres', q{SELECT coupon_pool_resize('half', 200)}, '55000',
	'and so is a resize');
on_proxy(q{SELECT coupon_pool_drop('half')});
is(join(' ', map { share($_, 'half') } 0 .. 3), '-/0/0 -/0/0 -/0/0 -/0/0',
	'the drop called again finishes');
is(on_proxy(q{SELECT coupon_pool_create('half', 100, 1, 4)}), 't', 'then the name is free');
isnt(on_proxy(q{SELECT spread_id FROM coupon_proxy_home_share('half')}), $hsid, 'under a new spread id');

# A create of a pool whose home has it joins nothing again: a share that
# is gone (a drop under way, or dropped on its node) does not come back.
on_proxy(q{SELECT coupon_pool_create('gone', 100, 1, 4)});
my ($ghome, $gsid) = split /\|/, on_proxy(q{SELECT home, spread_id FROM coupon_proxy_home_share('gone')});
on_proxy(qq{SELECT coupon_proxy_spread_drop(($ghome + 3) % 4, 'gone', '$gsid')});
is(on_proxy(q{SELECT coupon_pool_create('gone', 100, 1, 4)}), 'f', 'the create again: nothing new');
is(sums('gone'), '75+0 granted 0', 'and the dropped share stays dropped');

# A node down: the other shares serve; refills skip it.
on_proxy(q{SELECT coupon_pool_create('down', 40, 1, 4)});
my $dead = on_proxy(q{SELECT (home + 2) % 4 FROM coupon_proxy_home_share('down')});
on_proxy(q{SELECT count(coupon_claim('down', 'pre' || i)) FROM generate_series(1, 12) i});
my $before = share($dead, 'down');
like($before, qr{^10/[1-9]\d*/0$}, "its share has granted some ($before)");
$nodes[$dead]->stop('immediate');
my $dead_conn = on_proxy(qq{SELECT option_value FROM pg_foreign_server, pg_options_to_table(srvoptions)
                             WHERE option_name = 'p$dead'});
my $victim = on_proxy(qq{SELECT 'f' || i FROM generate_series(1, 100) i
                          WHERE coupon_node('down', 'f' || i) = '$dead_conn' LIMIT 1});
my (undef, undef, $derr) = $proxy->psql('postgres', qq{SELECT coupon_claim('down', '$victim')});
my $dead_port = $nodes[$dead]->port;
like($derr, qr/\Q$dead_port\E/, 'a customer of the node that is down fails, naming it');
is( on_proxy(q{
CREATE TEMP TABLE answered (ok boolean);
DO $$
BEGIN
    FOR i IN 1 .. 60 LOOP
        BEGIN
            PERFORM coupon_claim('down', 'f' || i);
            INSERT INTO answered VALUES (true);
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO answered VALUES (false);
        END;
    END LOOP;
END
$$;
SELECT count(*) FILTER (WHERE ok) > 0 AND count(*) FILTER (WHERE NOT ok) > 0 FROM answered}),
	't', 'with a node down, its customers fail, the others are served');
$nodes[$dead]->start;
is(share($dead, 'down'), $before, 'the node back has all it had');
my $down = sums('down');
like($down, qr/^40\+0 granted (\d+)$/, "the shares add up to 40 ($down)");
on_proxy(q{SELECT count(*) FROM coupon_claim_many('down', ARRAY(SELECT 'g' || i FROM generate_series(1, 400) i))});
is(sums('down'), '40+0 granted 40', 'and a drain with all nodes up reaches 40');

# Drop every share; the name again as a plain pool.
on_proxy(q{SELECT coupon_pool_drop('giant')});
is(join(' ', map { share($_, 'giant') } 0 .. 3), '-/0/0 -/0/0 -/0/0 -/0/0', 'drop drops every share');
on_proxy(q{SELECT coupon_pool_create('giant', 3)});
is(on_proxy(q{SELECT count(coupon_claim('giant', 'h' || i)) FROM generate_series(1, 10) i}), '3',
	'the name created again as a plain pool is served by its node alone');
is(on_proxy(q{SELECT spread, capacity FROM coupon_pools WHERE pool = 'giant'}), '1|3', 'one node');

# Create, resize and drop take turns at the pool's home: a call that finds
# the lock of another (here held by hand, as the proxy takes it) fails at
# once with 55P03 and changes nothing; an error half-way lets go of it.
my $lhome = on_proxy(q{SELECT coupon_proxy_home('turns')});
my $locker = bg_open($nodes[$lhome]);
bg_run($locker, q{SELECT pg_advisory_lock(3090, hashtext('turns'))});
expect_state($proxy, 'postgres', q{SELECT coupon_pool_create('turns', 100, 1, 4)}, '55P03',
	'a create while another call holds the pool: 55P03');
is(sums('turns'), '0+0 granted 0', 'and no node has the pool');
bg_run($locker, q{SELECT pg_advisory_unlock(3090, hashtext('turns'))});
is(on_proxy(q{SELECT coupon_pool_create('turns', 100, 1, 4)}), 't', 'the lock let go of, the create runs');
bg_run($locker, q{SELECT pg_advisory_lock(3090, hashtext('turns'))});
expect_state($proxy, 'postgres', q{SELECT coupon_pool_resize('turns', 200)}, '55P03',
	'a resize while another call holds the pool: 55P03');
expect_state($proxy, 'postgres', q{SELECT coupon_pool_drop('turns')}, '55P03',
	'a drop while another call holds the pool: 55P03');
is(sums('turns'), '100+0 granted 0', 'and the shares are unchanged');
bg_run($locker, q{SELECT pg_advisory_unlock(3090, hashtext('turns'))});
bg_close($locker);
# The failing call's session stays open, and with it its sessions on the
# nodes: a lock it kept would show.
my $failing = bg_open($proxy);
bg_send($failing, q{SELECT coupon_pool_create('turns', 999, 1, 4)});
is((bg_collect($failing))[1], '42710', 'a create with other settings fails on its own error');
is($nodes[$lhome]->safe_psql('postgres', q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'}),
	'0', 'and lets go of the lock while its session lives on');
expect_state($proxy, 'postgres', q{SELECT coupon_pool_create('turns', 999, 1, 4)}, '42710',
	'so another session meets the same error, not 55P03');
bg_close($failing);
on_proxy(q{SELECT coupon_pool_resize('turns', 200)});
is(sums('turns'), '200+0 granted 0', 'a resize after the errors runs');
on_proxy(q{SELECT coupon_pool_drop('turns')});
is(sums('turns'), '0+0 granted 0', 'and a drop');
is(join(',', map { $_->safe_psql('postgres', q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'}) } @nodes),
	'0,0,0,0', 'no node keeps an advisory lock');

# An application role with the documented grants.
for my $node (@nodes)
{
	$node->safe_psql('postgres', q{
CREATE ROLE app LOGIN;
GRANT EXECUTE ON FUNCTION coupon_claim(text, text, integer, interval, text),
    coupon_routed_claim(integer, text, text, integer, interval, text, boolean),
    coupon_routed_here(integer, text, text), coupon_share_available(text) TO app;
});
}
$proxy->safe_psql('postgres', q{
CREATE ROLE app LOGIN;
CREATE ROLE other LOGIN;
GRANT USAGE ON FOREIGN SERVER coupon_cluster TO app, other;
GRANT EXECUTE ON FUNCTION coupon_claim(text, text, integer, interval, text),
    coupon_proxy_claim(text, text, integer, interval, text, boolean),
    coupon_proxy_routed_claim(integer, text, text, integer, interval, text, boolean),
    coupon_proxy_refill(text, integer, bigint, bigint) TO app;
});
on_proxy(q{SELECT coupon_pool_create('app', 8, 1, 4)});
my $as_app = $proxy->connstr('postgres') . ' user=app';
is( $proxy->safe_psql('postgres',
		q{SELECT count(coupon_claim('app', 'a' || i)) FROM generate_series(1, 30) i},
		connstr => $as_app),
	'8', 'the application role drains a spread pool through the proxy, refills included');
is(sums('app'), '8+0 granted 8', 'exactly its capacity');
my $some = $nodes[0]->connstr('postgres') . ' user=app';
# The routed hold stands for coupon_hold: granted the one and not the
# other, the role cannot hold (the check is the routed hold's own, in C).
$_->safe_psql('postgres', q{GRANT EXECUTE ON FUNCTION
    coupon_routed_hold(integer, text, text, interval, integer, interval, text) TO app}) for @nodes;
my $app_home = on_proxy(q{SELECT home FROM coupon_proxy_home_share('app')});
expect_state($nodes[$app_home], 'postgres',
	qq{SELECT * FROM coupon_routed_hold($app_home, 'app', 'h1', '1 hour', 1, '0', NULL)}, '42501',
	'the routed hold without the grant of coupon_hold', connstr => $nodes[$app_home]->connstr('postgres') . ' user=app');
for my $call (q{SELECT * FROM coupon_routed_claim(0, 'app', 'a1', 1, '0', NULL, true)},
	q{SELECT coupon_transfer_take(0, 'x', 'app', 'y', 1, 100)},
	q{SELECT coupon_transfer_give(0, 'x', 'app', 'y', 1, 100)},
	q{SELECT coupon_transfer_settle(0, 'x')},
	q{SELECT coupon_spread_resize(0, 'app', 'y', 100)},
	q{SELECT coupon_spread_join(0, 'app', 'y', 100, 100, 1, 2, 1)},
	q{SELECT coupon_spread_drop(0, 'app', 'y')},
	q{SELECT coupon_spread_dropping(0, 'app', 'y')})
{
	expect_state($nodes[0], 'postgres', $call, '42501', "the role cannot call on a node: $call",
		connstr => $some);
}
# A role without the grants of the claim cannot claim or move capacity
# through the steps of the proxy's claim.
my $as_other = $proxy->connstr('postgres') . ' user=other';
for my $call (q{SELECT coupon_claim('app', 'o')},
	q{SELECT * FROM coupon_proxy_claim('app', 'o', 1, '0', NULL, false)},
	q{SELECT * FROM coupon_proxy_routed_claim(0, 'app', 'o', 1, '0', NULL, false)},
	q{SELECT coupon_proxy_refill('app', 0, 100, 1)},
	q{SELECT coupon_cluster_recover()})
{
	expect_state($proxy, 'postgres', $call, '42501', "a role without grants on the proxy: $call",
		connstr => $as_other);
}

done_testing();
