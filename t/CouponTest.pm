# Copyright: part of the coupon extension's fault-injection tests.
#
# Helpers shared by the TAP tests in t/: a node with coupon preloaded, the
# invariants of the claim path (README, "How it works") as assertions, a fingerprint of
# everything the extension keeps (to prove "changes nothing"), SQLSTATE
# capture, and non-blocking control of background psql sessions.
#
# The invariants (numbers as in the design):
#   1. available + in_flight + claimed = capacity for every pool
#   2. committed, unreleased ledger rows never exceed capacity
#   3. after all transactions end, available = capacity - claimed
#   4. an acknowledged grant is in the ledger after any crash
#   5. no customer holds more than the pool's per-customer limit
package CouponTest;

use strict;
use warnings FATAL => 'all';

use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

our @EXPORT = qw(
  coupon_node check_pools fingerprint sql_state expect_state check_update_after_rename
  bg_open bg_send bg_collect bg_run bg_pid bg_close wait_until_event
  query_value ledger_count memory_of check_log start_claimers stop_claimers
  check_acks pgbench_start pgbench_result wait_due wait_returned
  check_no_public_execute gdb_break gdb_wait_hit gdb_continue
  run_across_update running coupon_cluster pgbench_wait
);

# The field separator of every psql call made here: pool names in the
# hostile-input test contain '|', tabs and quotes, but not this.
my $FS = "\x1f";

# A node with coupon in shared_preload_libraries and the extension created
# in database postgres (unless bare => 1).  conf => [lines] is appended to
# postgresql.conf; allows_streaming => 1 makes it a primary that a
# standby can stream from.
sub coupon_node
{
	my ($name, %opt) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => $opt{allows_streaming} // 0);
	$node->append_conf('postgresql.conf',
		join("\n",
			"shared_preload_libraries = 'coupon'",
			"log_min_messages = warning",
			"log_statement = none",
			"log_line_prefix = '%m [%p] %q%a '",
			@{ $opt{conf} // [] }));
	$node->start;
	$node->safe_psql($opt{db} // 'postgres', 'CREATE EXTENSION coupon')
	  unless $opt{bare};
	return $node;
}

# A coupon cluster of $n nodes (coupon_node, one initdb copied) and a
# proxy with coupon_proxy, the server coupon_cluster over the nodes
# (connect_timeout=3) and a user mapping for PUBLIC: everything of
# README "Set-up" but coupon_cluster_attach().  Returns ($proxy, @nodes).
sub coupon_cluster
{
	my ($n) = @_;
	my @nodes = (coupon_node('node0'));
	$nodes[0]->stop;
	$nodes[0]->backup_fs_cold('fresh');
	$nodes[0]->start;
	for my $i (1 .. $n - 1)
	{
		my $node = PostgreSQL::Test::Cluster->new("node$i");
		$node->init_from_backup($nodes[0], 'fresh');
		$node->start;
		push @nodes, $node;
	}
	my $proxy = PostgreSQL::Test::Cluster->new('proxy');
	$proxy->init;
	$proxy->append_conf('postgresql.conf', "log_min_messages = warning\n");
	$proxy->start;
	my $options = join ', ',
	  map { "p$_ 'host=" . $nodes[$_]->host . ' port=' . $nodes[$_]->port
		  . " dbname=postgres connect_timeout=3'" } 0 .. $n - 1;
	$proxy->safe_psql('postgres', qq{
CREATE EXTENSION coupon_proxy CASCADE;
CREATE SERVER coupon_cluster FOREIGN DATA WRAPPER plproxy OPTIONS ($options);
CREATE USER MAPPING FOR PUBLIC SERVER coupon_cluster;
});
	return ($proxy, @nodes);
}

# One value (first line of output) of a query, dies on error.
sub query_value
{
	my ($node, $db, $sql, %params) = @_;
	my $out = $node->safe_psql($db, $sql, %params);
	return $out;
}

sub ledger_count
{
	my ($node, $db, $where) = @_;
	$where //= 'true';
	return query_value($node, $db,
		"SELECT count(*) FROM coupon_claims WHERE $where");
}

# The shared-memory half of a pool: [available, in_flight, grants,
# sold_out, waits], or undef when the pool is not loaded.
sub memory_of
{
	my ($node, $db, $pool) = @_;
	my $q = $pool;
	$q =~ s/'/''/g;
	my $out = $node->safe_psql($db,
		"SELECT available, in_flight, grants, sold_out, waits"
		  . " FROM coupon_pool_memory() WHERE pool = '$q'",
		extra_params => [ '-F', $FS ]);
	return undef if $out eq '';
	return [ split /$FS/, $out ];
}

# Check invariants 1, 2, 3 and 5 for every pool of a database, once all
# transactions have ended, and return { pool => { column => value } }.
#
#   loaded => 1     also require every pool to be loaded in shared memory
#                   (otherwise the view computes available from the ledger
#                   and the check of invariant 3 proves nothing)
#   pools => [..]   only these pools
#   grants => 1     also require the shared grants counter to equal the
#                   number of ledger rows (every committed claim counted
#                   once, no aborted claim counted)
sub check_pools
{
	my ($node, $db, $label, %opt) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;

	my $out = $node->safe_psql(
		$db, q{
SELECT encode(convert_to(v.pool, 'UTF8'), 'hex'), v.capacity, v.claimed, v.in_flight, v.available,
       v.per_customer, v.grants, v.sold_out, v.waits,
       (SELECT COALESCE(sum(c.qty), 0) FROM coupon_claims c
         WHERE c.pool = v.pool AND c.released_at IS NULL) AS held,
       (SELECT count(*) FROM coupon_claims c WHERE c.pool = v.pool) AS rows,
       (SELECT count(*) FROM (SELECT c.customer FROM coupon_claims c
                               WHERE c.pool = v.pool AND c.released_at IS NULL
                               GROUP BY c.customer
                              HAVING sum(c.qty) > v.per_customer) x) AS over,
       m.pool IS NOT NULL AS loaded,
       COALESCE(m.available, -1) AS mem_available,
       COALESCE(m.in_flight, -1) AS mem_in_flight
  FROM coupon_pools v
  LEFT JOIN coupon_pool_memory() m ON m.pool = v.pool
 ORDER BY v.pool},
		extra_params => [ '-F', $FS ]);

	my @cols = qw(pool capacity claimed in_flight available per_customer
	  grants sold_out waits held rows over loaded mem_available
	  mem_in_flight);
	my %pools;
	for my $line (split /\n/, $out)
	{
		my %r;
		@r{@cols} = split /$FS/, $line, -1;
		$r{pool} = pack('H*', $r{pool});
		$pools{ $r{pool} } = \%r;
	}
	my @names = $opt{pools} ? @{ $opt{pools} } : sort keys %pools;
	my @bad;
	for my $p (@names)
	{
		my $r = $pools{$p};
		if (!$r) { push @bad, "$p: missing from coupon_pools"; next; }
		my $desc = join(' ', map { "$_=$r->{$_}" } @cols);
		push @bad, "$p: in_flight $r->{in_flight} != 0 ($desc)"
		  if $r->{in_flight} != 0;
		push @bad, "$p: available != capacity - claimed ($desc)"
		  if $r->{available} != $r->{capacity} - $r->{claimed};
		push @bad,
		  "$p: available + in_flight + claimed != capacity ($desc)"
		  if $r->{available} + $r->{in_flight} + $r->{claimed} !=
		  $r->{capacity};
		push @bad, "$p: claimed != ledger sum of unreleased qty ($desc)"
		  if $r->{claimed} != $r->{held};
		push @bad, "$p: unreleased ledger qty above capacity ($desc)"
		  if $r->{held} > $r->{capacity};
		push @bad, "$p: $r->{over} customers over the limit ($desc)"
		  if $r->{over} != 0;
		if ($opt{loaded})
		{
			if ($r->{loaded} ne 't')
			{
				push @bad, "$p: not loaded in shared memory";
			}
			elsif ($r->{mem_available} != $r->{capacity} - $r->{held})
			{
				push @bad,
				  "$p: semaphore available $r->{mem_available} != capacity - ledger ($desc)";
			}
		}
		push @bad,
		  "$p: grants counter $r->{grants} != ledger rows $r->{rows}"
		  if $opt{grants} && $r->{grants} != $r->{rows};
	}
	ok(!@bad && @names > 0,
		"$label: invariants hold for " . scalar(@names) . " pools")
	  or diag(join("\n", @bad));
	return \%pools;
}

# pgbench -n in the background against database $db of the node, with
# @args (clients, time, scripts); its output goes to $dir/$name.out and
# $dir/$name.err, for pgbench_result once it has finished.
sub pgbench_start
{
	my ($node, $db, $dir, $name, @args) = @_;
	return IPC::Run::start(
		[ 'pgbench', '-n', '-h', $node->host, '-p', $node->port, @args, $db ],
		'>', "$dir/$name.out", '2>', "$dir/$name.err");
}

# Whether the IPC::Run harness $run (a pgbench, a psql, a client) still
# runs, after handing it what it has written.  pump_nb dies when the
# process ends between pumpable and it, a race a loaded machine wins now
# and then: ask under eval, and ask again after.
sub running
{
	my ($run) = @_;
	return 0 unless $run->pumpable;
	return 0 unless eval { $run->pump_nb; 1 };
	return $run->pumpable ? 1 : 0;
}

# Wait for a pgbench started by pgbench_start to end, at most $seconds
# (a hang guard, not a timing): ok if it ended, else it is killed.
sub pgbench_wait
{
	my ($run, $seconds, $label) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $deadline = time + $seconds;
	usleep(20_000) while running($run) && time < $deadline;
	ok(!running($run), $label) or $run->kill_kill;
	$run->finish;
	return;
}

# What a finished pgbench_start run wrote: the number of transactions it
# processed (0 if it never said), its stdout and its stderr.
sub pgbench_result
{
	my ($dir, $name) = @_;
	my $out = slurp_file("$dir/$name.out");
	my $err = slurp_file("$dir/$name.err");
	my ($done) = $out =~ /number of transactions actually processed: (\d+)/;
	return ($done // 0, $out, $err);
}

# Wait until the holds @ids of $db (every claim of its ledger if none is
# named) have fallen due.  Asks the ledger, not coupon_holds, which drops a
# hold once it is returned: a worker may return them all before the first
# look.  False if they never are.
sub wait_due
{
	my ($node, $db, @ids) = @_;
	my $which = @ids ? ' WHERE id IN (' . join(',', @ids) . ')' : '';
	return $node->poll_query_until($db,
		"SELECT bool_and(expires_at <= now()) FROM coupon_claims$which");
}

# Wait until claim $id is returned in $db: the ledger says so, and no expiry
# worker of the database is still between its commit (visible at once) and
# the callback that gives the permits back.  False if it never is.
sub wait_returned
{
	my ($node, $db, $id) = @_;
	return $node->poll_query_until($db,
		"SELECT released_at IS NOT NULL FROM coupon_claims WHERE id = $id"
		  . " AND NOT EXISTS (SELECT FROM pg_stat_activity"
		  . " WHERE backend_type = 'coupon expiry worker' AND datname = current_database())");
}

# Invariant 4: every claim id acknowledged to a client (%$ack: customer =>
# id, '' for no answer) is in the ledger of the pool, for its customer,
# unreleased.  Leaves the table acks (customer, id) for further checks.
sub check_acks
{
	my ($node, $pool, $ack, $label) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $copy = join('',
		map { "$_\t$ack->{$_}\n" }
		  grep { defined $ack->{$_} && $ack->{$_} ne '' } keys %$ack);
	$node->safe_psql('postgres',
		"CREATE TABLE acks (customer text, id bigint);\nCOPY acks FROM STDIN;\n${copy}\\.\n");
	is( $node->safe_psql(
			'postgres', qq{
SELECT count(*) FROM acks a
 WHERE NOT EXISTS (SELECT FROM coupon_claims c
                    WHERE c.id = a.id AND c.customer = a.customer
                      AND c.pool = '$pool' AND c.released_at IS NULL)}),
		'0', $label);
	return;
}

# The server log shows no PANIC, failed assertion or crash other than the
# SIGKILLs a test sends itself.
sub check_log
{
	my ($node, $label) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $log = slurp_file($node->logfile);
	my @bad = grep {
		/PANIC|TRAP:|terminated by signal (?!9\b)|terminated by exception|corrupt/
	} split /\n/, $log;
	is_deeply(\@bad, [], "$label: no PANIC, assertion failure or crash in the server log");
	return;
}

# Everything the extension keeps, as text: coupon_pools (without the
# counters since start), the ledger, the pool table, the sequence and the
# loaded semaphores.  Equal before and after a call = the call changed
# nothing.  no_sequence => 1 leaves the sequence out (for a claim that got
# as far as nextval before its transaction aborted: sequences are not
# transactional in PostgreSQL).  schema => NAME reads the extension's
# objects in that schema.
sub fingerprint
{
	my ($node, $db, %opt) = @_;
	my $seq =
	  $opt{no_sequence}
	  ? "'-'"
	  : "(SELECT last_value || '/' || is_called FROM coupon_claims_id_seq)";
	my $path = '';
	if ($opt{schema})
	{
		(my $s = $opt{schema}) =~ s/"/""/g;
		$path = qq{SET search_path = "$s";\n};
	}
	return $node->safe_psql(
		$db, $path . qq{
SELECT 'pools: ' || COALESCE((SELECT string_agg(format('%s|%s|%s|%s|%s|%s',
          md5(pool), capacity, claimed, in_flight, available, per_customer),
          ', ' ORDER BY pool) FROM coupon_pools), '')
 || E'\\nledger: ' || COALESCE((SELECT string_agg(format('%s|%s|%s|%s|%s|%s',
          id, md5(pool), md5(customer), qty, claimed_at, released_at),
          ', ' ORDER BY id) FROM coupon_claims), '')
 || E'\\npool table: ' || COALESCE((SELECT string_agg(format('%s|%s|%s|%s',
          md5(name), capacity, per_customer, created_at), ', ' ORDER BY name)
          FROM coupon_pool), '')
 || E'\\nsequence: ' || $seq
 || E'\\nsemaphores: ' || COALESCE((SELECT string_agg(format('%s|%s|%s',
          md5(pool), available, in_flight), ', ' ORDER BY pool)
          FROM coupon_pool_memory()), '')});
}

# The functions the README documents as executable by PUBLIC: the trigger
# function, which runs only as a trigger and which CREATE TRIGGER needs.
my %public_functions = ('coupon_occ_version()' => 1);

# No other function of extension coupon in database db is executable by
# PUBLIC: its ACL (the default one, if it has none) has no entry for
# PUBLIC, and a role without grants (connstr) calling it gets 42501 and
# changes nothing.  Returns the number of functions checked.
sub check_no_public_execute
{
	my ($node, $db, $connstr, $label) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $out = $node->safe_psql(
		$db, q{
SELECT p.oid::regprocedure,
       format('%s %I.%I(%s)', CASE p.prokind WHEN 'p' THEN 'CALL' ELSE 'SELECT' END,
              n.nspname, p.proname,
              (SELECT string_agg('NULL::' || format_type(t, NULL), ', ' ORDER BY i)
                 FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY u(t, i))),
       EXISTS (SELECT FROM aclexplode(COALESCE(p.proacl, acldefault('f', p.proowner))) a
                WHERE a.grantee = 0)
  FROM pg_depend d
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'coupon'
  JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
  JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE d.deptype = 'e'
 ORDER BY 1},
		extra_params => [ '-F', $FS ]);
	my $checked = 0;
	for my $line (split /\n/, $out)
	{
		my ($function, $call, $public) = split /$FS/, $line;
		next if $public_functions{$function};
		is($public, 'f', "$label: $function has no grant to PUBLIC");
		my $before = fingerprint($node, $db);
		expect_state($node, $db, $call, '42501',
			"$label: a role without grants cannot execute $function",
			connstr => $connstr);
		is(fingerprint($node, $db), $before, "$label: $function changed nothing");
		$checked++;
	}
	return $checked;
}

# Run SQL in a new session; returns (sqlstate or '00000', stdout, stderr).
# The SQLSTATE is that of the first error.
sub sql_state
{
	my ($node, $db, $sql, %params) = @_;
	my ($ret, $out, $err) = $node->psql(
		$db, "\\set VERBOSITY verbose\n$sql",
		on_error_stop => 1,
		extra_params => [ '-F', $FS, @{ $params{extra_params} // [] } ],
		$params{connstr} ? (connstr => $params{connstr}) : ());
	my ($state) = $err =~ /(?:ERROR|FATAL):\s+([0-9A-Z]{5}):/;
	$state //= '00000';
	return ($state, $out, $err);
}

# Extension $ext installed at $version in schema $was (default "was") of a
# new database $db, the schema renamed to $now (default "now"): ALTER
# EXTENSION UPDATE is refused (55000, the functions of $version name the
# old name) until the schema has its name back, and then goes through to
# $latest.  Names are given as SQL identifiers.
sub check_update_after_rename
{
	my ($node, $db, $ext, $version, $latest, $was, $now) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	$was //= 'was';
	$now //= 'now';
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, "CREATE SCHEMA $was; "
		  . "CREATE EXTENSION $ext VERSION '$version' SCHEMA $was CASCADE; "
		  . "ALTER SCHEMA $was RENAME TO $now");
	expect_state($node, $db, "ALTER EXTENSION $ext UPDATE", '55000',
		"$ext: an update after a rename of $was to $now under $version is refused");
	$node->safe_psql($db, "ALTER SCHEMA $now RENAME TO $was; ALTER EXTENSION $ext UPDATE");
	is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = '$ext'"),
		$latest, "$ext: and goes through once the schema has its name back");
	return;
}

# Assert that SQL fails with the given SQLSTATE (or succeeds: '00000').
sub expect_state
{
	my ($node, $db, $sql, $want, $name, %params) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my ($state, $out, $err) = sql_state($node, $db, $sql, %params);
	is($state, $want, $name) or diag("stderr: $err\nstdout: $out");
	return ($state, $out, $err);
}

# A call started in background session $session while the background
# session $updater holds ALTER EXTENSION coupon UPDATE uncommitted: it
# waits for the update's lock; once the update commits, it goes through
# or fails with 40001 (hint: retry), never with the error that asks to
# drop the extension, and is retried then.  Returns what the call, or its
# retry, returned.
sub run_across_update
{
	my ($node, $session, $updater, $sql, $what) = @_;
	my $pid = bg_pid($session);
	bg_send($session, $sql);
	ok(wait_until_event($node, $pid, 'Lock'),
		"$what started during the update waits for it");
	bg_run($updater, 'COMMIT');
	my ($out, $state, $err) = bg_collect($session);
	ok($state eq '00000' || $state eq '40001',
		"$what during the update succeeded or failed with 40001")
	  or diag($err);
	unlike($err, qr/DROP EXTENSION/, "$what: no hint to drop the extension");
	if ($state eq '40001')
	{
		like($err, qr/HINT:  Retry the call\./, "$what: the hint says to retry");
		$out = bg_run($session, $sql);
	}
	return $out;
}

# A background psql session we can drive without blocking: send a
# statement, do something else, collect its result later.
sub bg_open
{
	my ($node, $db, %params) = @_;
	my $s = $node->background_psql(
		$db // 'postgres',
		on_error_stop => 0,
		extra_params => [ '-F', $FS, @{ $params{extra_params} // [] } ]);
	$s->{coupon_seq} = 0;
	$s->query_safe("\\set VERBOSITY verbose");
	return $s;
}

sub bg_send
{
	my ($s, $sql) = @_;
	my $n = ++$s->{coupon_seq};
	$s->{coupon_banner} = "coupon_bg_done_$n";
	$s->{coupon_started} = time;
	$s->{stdin} .= "$sql\n;\n\\echo '$s->{coupon_banner}'\n\\warn '$s->{coupon_banner}'\n";
	$s->{run}->pump_nb;
	return;
}

# Wait for the statement sent last; returns (stdout, sqlstate or '00000',
# stderr, seconds it took).
sub bg_collect
{
	my ($s, $timeout) = @_;
	$timeout //= $PostgreSQL::Test::Utils::timeout_default;
	my $banner = $s->{coupon_banner};
	my $deadline = time + $timeout;
	while (!($s->{stdout} =~ /$banner\n/ && $s->{stderr} =~ /$banner\n/))
	{
		die "background psql: no answer within $timeout s:"
		  . " stdout '$s->{stdout}' stderr '$s->{stderr}'"
		  if time > $deadline;
		die "background psql exited: stderr '$s->{stderr}'"
		  unless running($s->{run});
		usleep(10_000);
	}
	my $took = time - $s->{coupon_started};
	my $out = $s->{stdout};
	my $err = $s->{stderr};
	$out =~ s/\n?$banner\n//;
	$err =~ s/\n?$banner\n//;
	$out =~ s/$FS/|/g;
	$s->{stdout} = '';
	$s->{stderr} = '';
	my ($state) = $err =~ /(?:ERROR|FATAL):\s+([0-9A-Z]{5}):/;
	return ($out, $state // '00000', $err, $took);
}

# Run and collect in one go; dies on error unless the state is wanted.
sub bg_run
{
	my ($s, $sql) = @_;
	bg_send($s, $sql);
	my ($out, $state, $err) = bg_collect($s);
	die "background query failed: $err" if $state ne '00000';
	return $out;
}

# The background session of each backend pid that bg_pid asked about.
my %session_of_pid;

sub bg_pid
{
	my ($s) = @_;
	my $pid = bg_run($s, 'SELECT pg_backend_pid()');
	$session_of_pid{$pid} = $s;
	return $pid;
}

sub bg_close
{
	my ($s) = @_;
	eval {
		if (running($s->{run}))
		{
			$s->{stdin} .= "\\q\n";
			$s->{run}->finish;
		}
		else
		{
			$s->{run}->kill_kill;
		}
		1;
	};
	return;
}

# Wait until backend pid waits on an event of the given type (and name,
# if given); true if it did.  False at once when the statement sent last
# by its background session (of bg_pid) has returned without waiting, as
# it does when the lock or the queue it should wait on is missing; false
# after the default timeout otherwise, a guard against a hang only.
sub wait_until_event
{
	my ($node, $pid, $type, $event) = @_;
	my $cond = "wait_event_type = '$type'";
	$cond .= " AND wait_event = '$event'" if defined $event;
	my $s = $session_of_pid{$pid};
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		return 1
		  if $node->safe_psql('postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE pid = $pid AND $cond")
		  eq '1';
		if ($s && $s->{coupon_banner} && running($s->{run}))
		{
			if ($s->{stdout} =~ /$s->{coupon_banner}\n/)
			{
				diag("backend $pid returned without waiting on $type:"
					  . " stdout '$s->{stdout}' stderr '$s->{stderr}'");
				return 0;
			}
		}
		usleep(50_000);
	}
	diag("backend $pid did not wait on $type within"
		  . " $PostgreSQL::Test::Utils::timeout_default s (hang guard)");
	return 0;
}

# Stop backend pid with gdb at a breakpoint (a gdb location, conditions
# allowed) until gdb_continue: the backend's state can then be changed
# under it, at exactly that point.  Returns once gdb is attached.
sub gdb_break
{
	my ($pid, $location) = @_;
	my $g = { dir => PostgreSQL::Test::Utils::tempdir, out => '', err => '' };
	append_to_file("$g->{dir}/cmds", qq{
set pagination off
set confirm off
break $location
commands
  shell touch $g->{dir}/hit
  shell while [ ! -e $g->{dir}/go ]; do sleep 0.05; done
  delete
  detach
  quit
end
shell touch $g->{dir}/attached
continue
});
	$g->{run} = IPC::Run::start(
		[ 'gdb', '-q', '-batch', '-p', $pid, '-x', "$g->{dir}/cmds" ],
		'>', \$g->{out}, '2>', \$g->{err});
	gdb_wait_file($g, 'attached')
	  or die "gdb did not attach to $pid: $g->{out} $g->{err}";
	return $g;
}

sub gdb_wait_file
{
	my ($g, $file) = @_;
	my $until = time + $PostgreSQL::Test::Utils::timeout_default;
	while (!-e "$g->{dir}/$file" && time < $until && running($g->{run}))
	{
		usleep(50_000);
	}
	return -e "$g->{dir}/$file";
}

# Has the backend reached the breakpoint (within the timeout)?
sub gdb_wait_hit
{
	my ($g) = @_;
	return gdb_wait_file($g, 'hit');
}

# Let the backend go on from the breakpoint; gdb detaches.
sub gdb_continue
{
	my ($g) = @_;
	append_to_file("$g->{dir}/go", "go\n");
	$g->{run}->finish;
	return;
}

# Claim clients, for the crash and failover tests.  Each claims for
# customers <prefix><n>_1, <prefix><n>_2, ..., one autocommit statement
# each, through psql, 2000 to a psql run, until the stop file appears.
# When psql dies with its connection, the client starts it again with the
# customers it has no answer for, so the claim in doubt (sent, not
# answered) is retried: it must then get the same claim id if it had
# committed.  A claim is acknowledged when its statement returned a row.
my $claim_client = <<'EOF';
use strict;
use warnings;
use IPC::Run;
use Time::HiRes qw(usleep time);

my ($host, $port, $pool, $prefix, $n, $out, $stopfile, $deadline) = @ARGV;
$ENV{PGAPPNAME} = 'claim_client';
my %answer;
my ($rounds, $failed, $hi) = (0, 0, 0);
my (@doubt, $errors);
$errors = '';
while (time < $deadline)
{
	my @todo = grep { !exists $answer{$_} } map { "${prefix}_$_" } 1 .. $hi;
	if (!@todo)
	{
		last if -e $stopfile || $hi >= $n;
		$hi = $hi + 2000 > $n ? $n : $hi + 2000;
		next;
	}
	open my $sql, '>', "$out.sql" or die;
	print $sql "SELECT '$_', coupon_claim('$pool', '$_');\n" for @todo;
	close $sql;
	$rounds++;
	my ($stdout, $stderr) = ('', '');
	IPC::Run::run([ 'psql', '-X', '-A', '-t', '-q', '-F', ' ', '-h', $host,
		'-p', $port, '-d', 'postgres', '-f', "$out.sql" ],
		'>', \$stdout, '2>', \$stderr);
	my $rc = $? >> 8;
	my $got = 0;
	for my $line (split /\n/, $stdout)
	{
		next unless $line =~ /^(\S+) (\d*)$/;
		$answer{$1} = $2;
		$got++;
	}
	$errors .= "$_\n" for grep { /\bERROR\b/ } split /\n/, $stderr;
	if ($rc != 0)
	{
		$failed++;
		push @doubt, $todo[$got] if $got > 0 && $got < @todo;
		# Told to stop and the server is gone: no claim of ours can end.
		last if -e $stopfile;
		usleep(100_000);
	}
}
open my $res, '>', "$out.tmp" or die;
print $res "$_ $answer{$_}\n" for sort keys %answer;
print $res "#rounds $rounds\n#failed $failed\n#attempted $hi\n";
print $res "#doubt $_\n" for @doubt;
print $res "#error $_\n" for split /\n/, $errors;
close $res;
rename "$out.tmp", $out or die;
EOF

my @claimer_runs;

# If a test dies half-way, do not leave its clients running.
END
{
	eval { $_->kill_kill(grace => 5) for @claimer_runs; };
}

# Start the clients: pool, prefix, clients, per_client (customers at
# most), and for how many seconds at most (default 180).
sub start_claimers
{
	my ($node, %opt) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir;
	my $deadline = time + ($opt{seconds} // 180);
	append_to_file("$dir/claim_client.pl", $claim_client);
	my @runs;
	for my $i (1 .. $opt{clients})
	{
		push @runs,
		  IPC::Run::start(
			[
				$^X, "$dir/claim_client.pl", $node->host, $node->port,
				$opt{pool}, "$opt{prefix}$i", $opt{per_client},
				"$dir/client$i", "$dir/stop", $deadline
			],
			'>', "$dir/client$i.stdout", '2>', "$dir/client$i.stderr");
	}
	push @claimer_runs, @runs;
	return { dir => $dir, runs => \@runs, clients => $opt{clients} };
}

# Stop the clients (they finish the claims they have started) and return
# what they saw: ack (customer => claim id, '' for NULL), by_id (claim id
# => [customers]), doubt, errors, reconnects, attempted, and per client n,
# answered, failed, attempted.
sub stop_claimers
{
	my ($c) = @_;
	my %r = (ack => {}, by_id => {}, doubt => [], errors => [],
		reconnects => 0, attempted => 0, clients => []);
	append_to_file("$c->{dir}/stop", "stop\n");
	$_->finish for @{ $c->{runs} };
	for my $i (1 .. $c->{clients})
	{
		my %one = (n => $i, answered => 0, failed => 0, attempted => -1);
		for my $line (split /\n/, slurp_file("$c->{dir}/client$i"))
		{
			if ($line =~ /^#failed (\d+)/) { $one{failed} = $1; }
			elsif ($line =~ /^#attempted (\d+)/) { $one{attempted} = $1; }
			elsif ($line =~ /^#doubt (\S+)/) { push @{ $r{doubt} }, $1; }
			elsif ($line =~ /^#error (.*)/) { push @{ $r{errors} }, $1; }
			elsif ($line =~ /^#/) { }
			elsif ($line =~ /^(\S+) (\d*)$/)
			{
				$one{answered}++;
				$r{ack}{$1} = $2;
				push @{ $r{by_id}{$2} }, $1 if $2 ne '';
			}
		}
		$r{reconnects} += $one{failed};
		$r{attempted} += $one{attempted};
		push @{ $r{clients} }, \%one;
	}
	return \%r;
}

1;
