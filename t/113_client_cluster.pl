# coupon-stress against a coupon cluster's proxy (README "Scaling past one
# server"): the claim strategy runs unchanged with the proxy's connection
# string, its pool on one node or spread over the nodes (--spread), and the
# client reads the truth from the nodes' own ledgers.  This test counts the
# ledgers itself and holds the client's figures to them; a client that
# believed its own grants, or counted one node only, would fail it.  Bad
# combinations are refused with exit status 2 and a message, before
# anything runs; a node that is down is reported at once.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use Time::HiRes qw(time);
use lib $FindBin::RealBin;
use ClientTest;
use CouponTest qw(coupon_cluster);

my ($proxy, @nodes) = coupon_cluster(2);
is($proxy->safe_psql('postgres', 'SELECT coupon_cluster_attach()'), '2', 'a cluster of two nodes');

# The pool's grants on each node, from the node itself.
sub node_rows
{
	return map {
		$_->safe_psql('postgres',
			q{SELECT count(*) FROM coupon_claims WHERE pool = 'stress_claim' AND released_at IS NULL})
	} @nodes;
}

# A burst through the proxy, the pool on one node, then spread over both.
for my $spread (1, 2)
{
	my $run = run_stress($proxy, '--strategy', 'claim', '--users', 60, '--coupons', 20,
		'--spread', $spread, '--json');
	is($run->{rc}, 0, "spread $spread: a burst of 60 users for 20 coupons through the proxy");
	my ($row) = @{ $run->{json}{results} // [ {} ] };
	my @rows = node_rows();
	my $sum = $rows[0] + $rows[1];
	is($sum, 20, "spread $spread: exactly 20 grants on the nodes' ledgers (@rows)");
	is(join(' ', map { $row->{$_} // 'none' } qw(granted ledger_rows counter oversold correct)),
		"20 $sum 0 0 1", "spread $spread: the client's row says what the ledgers say");
	is($run->{json}{settings}{cluster}{spread} // 'none', $spread,
		"spread $spread: the settings name it");
	if ($spread == 1)
	{
		is(scalar(grep { $_ > 0 } @rows), 1, 'a pool of spread 1 lives on one node');
	}
	else
	{
		is(scalar(grep { $_ > 0 } @rows), 2, 'a spread pool sells on both nodes');
	}
}

# Back to back through the proxy: every acknowledged claim, and no other,
# in the nodes' ledgers.
my $run = run_stress($proxy, qw(--strategy claim -T 1 -c 4 --spread 2 --json));
my ($row) = @{ $run->{json}{results} // [ {} ] };
my @rows = node_rows();
is($run->{rc}, 0, 'throughput through the proxy');
ok(($row->{granted} // 0) > 0, 'claims were granted');
is(join(' ', map { $row->{$_} // 'none' } qw(ledger_rows errors correct)),
	($rows[0] + $rows[1]) . ' 0 1', 'ledger rows are the nodes\' and the row is correct');
is($row->{ledger_rows}, $row->{granted}, 'as many as the clients saw granted');

# A pool of the client's name made on a node directly, where the proxy's
# drop does not reach it, would be counted as the point's: refused, naming
# the node.
my $stray = 1 - $proxy->safe_psql('postgres', q{SELECT coupon_proxy_home('stress_claim')});
$proxy->safe_psql('postgres', q{SELECT coupon_pool_drop('stress_claim')});
$nodes[$stray]->safe_psql('postgres', q{SELECT coupon_pool_create('stress_claim', 5)});
$run = run_stress($proxy, qw(--strategy claim --users 10 --coupons 5));
is($run->{rc}, 2, 'a pool of its name left on a node outside the proxy\'s reach stops the client');
like($run->{err}, qr/pool "stress_claim" is left on node $stray of the cluster/, 'naming the node');
$nodes[$stray]->safe_psql('postgres', q{SELECT coupon_pool_drop('stress_claim')});

# A node that is down is reported at once, not waited for as a node whose
# slots a burst still holds (the client's patience with those is 60 s).
$nodes[$stray]->stop;
my $t0 = time;
$run = run_stress($proxy, qw(--strategy claim --users 10 --coupons 5));
my $took = time - $t0;
isnt($run->{rc}, 0, 'a node down stops the client');
like($run->{err}, qr/could not connect to node $stray of the cluster/, 'naming the node');
ok($took < 40, "at once, without waiting for the node ($took s)");
$nodes[$stray]->start;

# The client reads the nodes as PL/Proxy does, with the user mapping PL/Proxy
# takes: the proxy user's own before PUBLIC's.  Here PUBLIC's names a user the
# nodes do not have, the proxy user's names shop with its password, and the
# nodes refuse the proxy's user and ask shop for its password (SCRAM): a client
# that connected as the proxy's user, took PUBLIC's mapping or left out the
# password fails.  Each node's pg_hba.conf gets the two lines first, and back
# without them; the test waits for each reload to show before it goes on.
my $superuser = $nodes[0]->safe_psql('postgres', 'SELECT current_user');
$_->safe_psql('postgres', q{SET password_encryption = 'scram-sha-256';
CREATE ROLE shop LOGIN SUPERUSER PASSWORD 'shop-secret'}) for @nodes;
$proxy->safe_psql('postgres', qq{
ALTER USER MAPPING FOR PUBLIC SERVER coupon_cluster OPTIONS (ADD user 'nobody');
CREATE USER MAPPING FOR "$superuser" SERVER coupon_cluster OPTIONS (user 'shop', password 'shop-secret');
});
my $hba_lines = "local all shop scram-sha-256\nlocal all $superuser reject\n";
sub refuse_superuser
{
	my ($refuse) = @_;
	for my $node (@nodes)
	{
		my $hba = $node->data_dir . '/pg_hba.conf';
		my $conf = PostgreSQL::Test::Utils::slurp_file($hba);
		$conf =~ s/^\Q$hba_lines\E//m;
		$conf = $hba_lines . $conf if $refuse;
		open(my $fh, '>', $hba) or die "$hba: $!";
		print $fh $conf;
		close($fh);
		$node->reload;
		my $deadline = time + 60;
		while (time < $deadline)
		{
			my ($rc) = $node->psql('postgres', 'SELECT 1');
			last if ($rc != 0) == $refuse;
			Time::HiRes::sleep(0.1);
		}
		my ($rc) = $node->psql('postgres', 'SELECT 1');
		is($rc != 0 ? 1 : 0, $refuse ? 1 : 0,
			$node->name . ($refuse ? ' refuses' : ' takes') . " user $superuser");
	}
}
refuse_superuser(1);
$run = run_stress($proxy, qw(--strategy claim --users 30 --coupons 10 --json));
($row) = @{ $run->{json}{results} // [ {} ] };
refuse_superuser(0);
is($run->{rc}, 0, 'the client reads the nodes as the user mapping\'s user, with its password');
@rows = node_rows();
is(join(' ', map { $row->{$_} // 'none' } qw(granted ledger_rows correct)),
	'10 ' . ($rows[0] + $rows[1]) . ' 1', 'and counts their ledgers');
$proxy->safe_psql('postgres', qq{
DROP USER MAPPING FOR "$superuser" SERVER coupon_cluster;
ALTER USER MAPPING FOR PUBLIC SERVER coupon_cluster OPTIONS (DROP user);
});

# What cannot run is refused before anything runs.
my @refused = (
	[ $proxy, ['--strategy', 'naive,claim'], qr/strategy naive cannot run through a coupon cluster's proxy/,
		'a strategy other than claim through the proxy' ],
	[ $proxy, [qw(--strategy claim --spread 4)], qr/--spread \(4\) exceeds the cluster's 2 nodes/,
		'a spread above the nodes' ],
	[ $proxy, [qw(--strategy claim --hold 1)], qr/--hold cannot run through a coupon cluster's proxy/,
		'holds through the proxy' ],
	[ $nodes[0], [qw(--strategy claim --spread 2)], qr/--spread needs a coupon cluster's proxy/,
		'--spread against a node' ],
	[ $proxy, [qw(--strategy naive --spread 2)], qr/--spread applies to the claim strategy only/,
		'--spread with another strategy' ]);
for my $case (@refused)
{
	my ($target, $args, $message, $what) = @$case;
	my $before = $proxy->safe_psql('postgres', 'SELECT count(*) FROM coupon_pools');
	my $r = run_stress($target, @$args, qw(--users 5 --coupons 2));
	is($r->{rc}, 2, "refused: $what");
	like($r->{err}, $message, "with a message: $what");
	is($proxy->safe_psql('postgres', 'SELECT count(*) FROM coupon_pools'), $before,
		"and no pool made or dropped: $what");
}

done_testing();
