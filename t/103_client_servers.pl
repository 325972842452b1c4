# The same race as 102_client_burst (60 users for 6 coupons), split over
# three application server processes (--servers 3) behind one barrier, as
# the seed's "three servers behind a load balancer": every verdict must be
# the same.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use ClientTest;
use Test::More;

my $node = client_node('client_servers');
my @redis = redis_servers(3);

my ($USERS, $COUPONS) = (60, 6);
my $run = run_stress($node, '--race-window', '20000', '--servers', '3',
	'--users', $USERS, '--coupons', $COUPONS, '--redis', join(',', @redis),
	'--json');
check_burst($run, '--servers 3', $USERS, $COUPONS);
is($run->{json}{settings}{servers}, 3, 'the run reports 3 server processes');

done_testing();
