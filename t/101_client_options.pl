# coupon-stress's command line, without a server, as pgbench's
# 002_pgbench_no_server.pl tests pgbench's: --help and --version, every
# kind of bad argument (one line saying what is wrong, then where to look,
# exit status 2, nothing on stdout), and a server that cannot be reached.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use ClientTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $bin = stress_binary();
my $TRY = qr/^Try "coupon-stress --help" for more information\.$/m;

command_checks_all([ $bin, '--help' ], 0,
	[ qr/^Usage:/m, qr/--strategy=LIST/, qr/redlock-fenced/, qr/--redis=/,
	  qr/--pause-ms=MS/, qr/--kill-server=N/, qr/--restart-redis=N/ ],
	[qr/^$/], '--help lists every strategy and fault');
command_checks_all([ $bin, '--version' ], 0,
	[qr/^coupon-stress \d+\.\d+$/], [qr/^$/], '--version');

# [arguments, what the one line must say]
my @bad = (
	[ [ '--strategy', 'bogus' ], qr/unknown strategy "bogus"/ ],
	[ [ '--strategy', '' ], qr/--strategy needs at least one strategy/ ],
	[ [ '-c', '4' ], qr/-c applies to throughput mode/ ],
	[ [ '-T', '1', '--users', '5' ], qr/--users applies to burst mode/ ],
	[ [ '--users', '0' ], qr/invalid value "0" for --users/ ],
	[ [ '-T', '0' ], qr/invalid value "0" for -T/ ],
	[ [ '--servers', '3', '--users', '2' ], qr/--servers \(3\) exceeds --users \(2\)/ ],
	[ [ 'extra-argument' ], qr/unexpected argument "extra-argument"/ ],
	[ [ '--no-such-option' ], qr/unknown option --no-such-option/ ],
	[ [ '--max-tries' ], qr/option --max-tries needs a value/ ],
	[ [ '--strategy', 'redis' ], qr/strategy redis needs 1 Redis instance: give --redis=HOST:PORT$/m ],
	[ [ '--strategy', 'redlock', '--redis', '127.0.0.1:1' ],
	  qr/strategy redlock needs 3 Redis instances/ ],
	[ [ '--redis', 'localhost' ], qr/invalid Redis address "localhost": expected HOST:PORT/ ],
	[ [ '--redis', 'localhost:http' ], qr/invalid value "http" for --redis/ ],
	[ [ '--pause-ms', '-1' ], qr/invalid value "-1" for --pause-ms/ ],
	[ [ '--pause-every', '0' ], qr/invalid value "0" for --pause-every/ ],
	[ [ '--lease-ms', '0' ], qr/invalid value "0" for --lease-ms/ ],
	[ [ '--kill-server', '0' ], qr/invalid value "0" for --kill-server/ ],
	[ [ '--restart-redis', 'x' ], qr/invalid value "x" for --restart-redis/ ],);
foreach my $case (@bad)
{
	my ($args, $says) = @$case;
	command_checks_all([ $bin, @$args ], 2, [qr/^$/],
		[ qr/\A[^\n]*\n[^\n]*\n\z/, qr/^coupon-stress: /, $says, $TRY ],
		"bad argument @$args: one line, the hint, exit 2");
}

# Nothing listens on a socket in a directory that does not exist.
my $nowhere = PostgreSQL::Test::Utils::tempdir . '/no-such-socket-dir';
command_checks_all([ $bin, '--dsn', "host=$nowhere port=1", '--json' ], 2,
	[qr/^$/], [qr/^coupon-stress: could not connect to server: /],
	'unreachable server: exit 2, a clear message, no results');

done_testing();
