/*-------------------------------------------------------------------------
 *
 * coupon-stress.c
 *		Race many users for a few coupons, strategy by strategy.
 *
 * coupon-stress replays the seed's story: many users race for a few
 * coupons, first with the read-check-write code that oversells, then with
 * each fix, in the database and in Redis, and prints correctness and cost
 * side by side.  It follows pgbench's model (src/bin/pgbench/pgbench.c in
 * postgres/postgres): worker threads own slices of connections and drive
 * them asynchronously, all connections are opened before a common barrier,
 * and per-thread statistics are merged at the end.  The files are:
 *
 *	coupon-stress.c	the run plan (strategies x client counts), forking the
 *					"application server" processes, the barrier across them,
 *					progress and the exit status
 *	options.c		the command line: option table, parsing, --help, checks
 *	strategy.c		the strategies as data, one table entry each (steps,
 *					stock, exactness), and the interpreter that decides what
 *					a client does after each answer
 *	driver.c		one process's share of a point: threads, connections,
 *					the asynchronous event loop over PostgreSQL and Redis,
 *					reconnects, the faults, the ack log
 *	redis.c			hiredis: connections, non-blocking commands, and the
 *					parent's setup and read-back of the Redis servers
 *	setup.c			the admin connection to PostgreSQL: schema reset, pools,
 *					reading the truth back after a point
 *	histogram.c		mergeable log-bucket latency histogram and statistics
 *	report.c		the result table, the JSON output and progress lines
 *	common.h		the types and constants every file reads
 *
 * Each file's declarations are in its header (driver.h, ...).
 *
 * A "point" is one strategy at one client count.  For every point the
 * parent process resets the database (and Redis), forks --servers children
 * that share the clients, releases them together and, once they have
 * exited, merges their statistics (kept in a shared anonymous mapping) and
 * reads back the ledger and the stock.
 *
 * The plan is a list of points: for every client count (burst mode: the
 * number of users), every selected strategy in the order of the table in
 * strategy.c.  Strategies are the inner loop so that the rows compared
 * with each other run close together in time.
 *
 * For each point the parent process:
 *
 *	1. prepares the strategy's steps for the point (program_build() in
 *	   strategy.c), which the processes inherit, resets the database
 *	   through its admin connection (setup.c) and the Redis instances the
 *	   strategy uses (redis.c) and, in throughput mode, asks for a
 *	   CHECKPOINT so every point starts alike;
 *	2. maps a shared anonymous region for the workers' statistics and forks
 *	   --servers processes, the "application servers", which share the
 *	   clients as evenly as possible (driver.c);
 *	3. waits until every process reports its connections open, then closes
 *	   the "go" pipe: every blocked worker process wakes at once, which is
 *	   the barrier across processes;
 *	4. prints progress lines every -P seconds from the shared counters
 *	   while the workers run, and reaps them (the first one dies by its own
 *	   SIGKILL under --kill-server, which is no failure);
 *	5. merges the per-thread statistics, reads the ledger and the stock
 *	   back and prints the row.
 *
 * Correctness columns (the truth read back from the servers, never what
 * the clients believe):
 *
 *	granted			calls whose client saw the grant committed
 *	ledger_rows		grant rows of the point in the ledger (coupon_stress.grants
 *					for the hand-written strategies, <extschema>.coupon_claims
 *					for claim)
 *	counter			the stock afterwards: the counter row, the pool's available
 *					permits for claim, the Redis key for redis; none for
 *					insert-only
 *	oversold		max(0, ledger_rows - initial stock)
 *	lost_updates	max(0, ledger_rows - (initial - counter)): grants the stock
 *					does not account for
 *	leaked			max(0, (initial - counter) - ledger_rows): stock taken that
 *					no grant holds, lost for good
 *	correct			granted <= ledger_rows <= granted + calls in doubt (those
 *					whose connection broke while a commit of a grant may have
 *					been in flight, and every client of a killed server),
 *					counter = initial - ledger_rows, ledger_rows <= initial,
 *					and in burst mode ledger_rows = min(users, coupons) unless
 *					a server was killed; in throughput mode also at least one
 *					grant when there was stock
 *
 * With --hold the claim strategy holds (coupon_hold) and confirms a share
 * of its holds; the point's row is read once every hold has settled.  Its
 * grants are holds, its ledger rows every hold, confirmed or expired, and
 * the columns above count the live rows (confirmed, and held while not
 * settled) where they count ledger rows against the stock.  It adds:
 *
 *	confirms		confirms the clients saw succeed
 *	confirmed		ledger rows confirmed: live, without an expiry
 *	expired			ledger rows returned while holds: by the expiry, since
 *					the client releases nothing
 *	held			live holds left (0 once settled)
 *	too late		confirms refused because the hold had expired (UC001)
 *					or been returned (UC002): a legal race, not an error
 *
 * and correct also needs held = 0, confirmed + available = coupons,
 * confirmed + expired = ledger_rows and confirms <= confirmed <= confirms
 * + confirms in doubt; in burst mode ledger_rows >= min(users, coupons)
 * replaces the equality, since an expired hold's coupon sells again.
 *
 * Exit status: 0 when every strategy that claims to be correct (all but
 * naive and insert-only) was correct at every point, 1 when one was not,
 * 2 for bad arguments, an unreachable server, or a run aborted by a lost
 * connection.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"
#include "histogram.h"
#include "options.h"
#include "redis.h"
#include "report.h"
#include "setup.h"
#include "strategy.h"

/* Threads per process: -j, or one per CPU, never more than its clients. */
static int
threads_for(const Options *opt, int clients)
{
	int			n = opt->threads;

	if (n <= 0)
	{
		long		cpus = sysconf(_SC_NPROCESSORS_ONLN);

		n = cpus > 0 ? (int) cpus : 1;
	}
	return n > clients ? (clients > 0 ? clients : 1) : n;
}

/* Sum the live counters of every slot, for a progress line. */
static void
sum_live(Shared *sh, int64_t *done, int64_t *lat, double *lat2,
		 int64_t *errors, int64_t *retries)
{
	int			i;

	*done = *lat = *errors = *retries = 0;
	*lat2 = 0;
	for (i = 0; i < sh->nslots; i++)
	{
		Stats	   *st = &sh->slots[i];

		*done += stat_get(&st->granted) + stat_get(&st->refused);
		*lat += stat_get(&st->lat_sum_us);
		*lat2 += stat_get_double(&st->lat_sum2);
		*errors += stat_get(&st->errors);
		*retries += stat_get(&st->retries);
	}
}

static void
sleep_ns(int64_t ns)
{
	struct timespec ts;

	if (ns <= 0)
		return;
	ts.tv_sec = ns / 1000000000;
	ts.tv_nsec = ns % 1000000000;
	nanosleep(&ts, NULL);
}

/* What happened to the processes of a point. */
typedef struct PointRun
{
	bool		ok;				/* no process failed or aborted */
	bool		killed;			/* --kill-server struck the first process */
	int			killed_clients; /* the clients it took with it */
} PointRun;

/* Reap the point's processes, printing progress lines while they run. */
static void
wait_for_servers(const Options *opt, const Point *pt, Shared *sh,
				 pid_t *pids, int alive, int64_t release, PointRun *run)
{
	int64_t		interval_ns = (int64_t) (opt->progress * 1e9);
	int64_t		next_progress = release + interval_ns;
	int64_t		last_tick = release;
	int64_t		last[4] = {0, 0, 0, 0};	/* done, latency, errors, retries */
	double		last_lat2 = 0;

	while (alive > 0)
	{
		int			status;
		pid_t		pid = waitpid(-1, &status, WNOHANG);
		int64_t		now;

		if (pid > 0)
		{
			alive--;
			if (pid == pids[0] && opt->kill_server_at > 0 &&
				WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
				run->killed = true;
			else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				run->ok = false;
			continue;
		}
		if (pid < 0 && errno != EINTR)
			break;
		now = now_ns();
		if (opt->progress > 0 && now >= next_progress && !sh->abort)
		{
			int64_t		cur[4];
			double		lat2;

			sum_live(sh, &cur[0], &cur[1], &lat2, &cur[2], &cur[3]);
			report_progress((now - release) / 1e9, pt, cur[0] - last[0],
							cur[1] - last[1], lat2 - last_lat2,
							cur[2] - last[2], cur[3] - last[3],
							(now - last_tick) / 1e9);
			memcpy(last, cur, sizeof(last));
			last_lat2 = lat2;
			last_tick = now;
			next_progress += interval_ns;
		}
		sleep_ns(10 * 1000 * 1000);
	}
}

/*
 * Run one point: fork the processes, release them together, wait for them
 * with progress lines, merge their statistics into *total.
 */
static PointRun
run_point(const Options *opt, const Point *pt, const Program *prog,
		  Shared *sh, size_t shsize, int per_proc_slots, int ack_fd,
		  Stats *total)
{
	PointRun	run = {true, false, 0};
	int			ready[2];
	int			go[2];
	pid_t	   *pids = calloc(opt->servers, sizeof(pid_t));
	int			alive = 0;
	int			got = 0;
	int			i;
	char		byte;
	int64_t		release;

	memset(sh, 0, shsize);
	sh->nslots = opt->servers * per_proc_slots;
	if (pids == NULL || pipe(ready) != 0 || pipe(go) != 0)
	{
		fprintf(stderr, "%s: could not create pipes: %s\n", progname, strerror(errno));
		exit(2);
	}
	fflush(stdout);
	fflush(stderr);
	run.killed_clients = pt->clients / opt->servers +
		(0 < pt->clients % opt->servers);
	for (i = 0; i < opt->servers; i++)
	{
		int			share = pt->clients / opt->servers +
			(i < pt->clients % opt->servers);
		pid_t		pid = fork();

		if (pid < 0)
		{
			fprintf(stderr, "%s: could not fork: %s\n", progname, strerror(errno));
			sh->abort = 1;
			break;
		}
		if (pid == 0)
		{
			int			rc;

			close(ready[0]);
			close(go[1]);
			rc = run_share(opt, pt, prog, i, share, threads_for(opt, share),
						   &sh->slots[i * per_proc_slots], sh, ready[1], go[0],
						   ack_fd);
			_exit(rc);
		}
		pids[i] = pid;
		alive++;
	}
	close(ready[1]);
	close(go[0]);

	/* the barrier: every process has its connections open */
	while (got < alive)
	{
		ssize_t		r = read(ready[0], &byte, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (byte != 'R')
			sh->abort = 1;
		got++;
	}
	if (got < alive)
		sh->abort = 1;
	close(ready[0]);
	release = now_ns();
	close(go[1]);				/* go */

	wait_for_servers(opt, pt, sh, pids, alive, release, &run);
	free(pids);

	memset(total, 0, sizeof(*total));
	for (i = 0; i < sh->nslots; i++)
		stats_merge(total, &sh->slots[i]);
	if (sh->abort)
		run.ok = false;
	return run;
}

/* Fill the computed columns of a row from the merged statistics. */
static void
compute_row(const Options *opt, const Point *pt, const Stats *st,
			const PointRun *run, Row *r)
{
	double		elapsed = (st->end_ns - st->start_ns) / 1e9;
	int64_t		killed = run->killed ? run->killed_clients : 0;
	int64_t		in_doubt = st->in_doubt + killed;
	int64_t		unaccounted = 0;

	/* the rows that keep coupons from the stock */
	int64_t		live = r->holds ? r->confirmed + r->held : r->ledger_rows;

	if (elapsed <= 0)
		elapsed = 1e-9;
	r->strategy = pt->strategy;
	r->clients = pt->clients;
	r->initial = pt->initial;
	r->granted = st->granted;
	r->claims_per_s = st->granted / elapsed;
	r->attempts_per_s = st->calls / elapsed;
	r->p50_ms = hist_percentile_ms(&st->hist, 0.50);
	r->p95_ms = hist_percentile_ms(&st->hist, 0.95);
	r->p99_ms = hist_percentile_ms(&st->hist, 0.99);
	r->max_ms = st->hist.max_us / 1000.0;
	r->retries = st->retries;
	r->errors = st->errors;
	r->confirms = st->confirms;
	r->confirms_late = st->confirms_late;

	r->oversold = live > pt->initial ? live - pt->initial : 0;
	if (r->has_counter)
	{
		/* > 0: taken without a ledger row; < 0: rows the stock missed */
		unaccounted = (pt->initial - r->counter) - live;
		r->leaked = unaccounted > 0 ? unaccounted : 0;
		r->lost_updates = unaccounted < 0 ? -unaccounted : 0;
	}
	r->correct = r->has_counter &&
		r->granted <= r->ledger_rows &&
		r->ledger_rows <= r->granted + in_doubt &&
		unaccounted == 0 &&
		live <= pt->initial;
	if (r->holds)
		r->correct = r->correct &&
			r->held == 0 &&
			r->confirmed + r->expired == r->ledger_rows &&
			r->confirms <= r->confirmed &&
			r->confirmed <= r->confirms + st->confirms_in_doubt + killed;
	if (!opt->throughput && !run->killed)
	{
		int64_t		expected = pt->clients < pt->initial ? pt->clients : pt->initial;

		r->correct = r->correct && (r->holds ? r->ledger_rows >= expected :
									r->ledger_rows == expected);
	}
	else if (opt->throughput && pt->initial > 0)
		r->correct = r->correct && r->granted > 0;
}

/*
 * Burst mode puts every user on its own connection, to PostgreSQL and to
 * each Redis instance: more descriptors than the usual soft limit of 1024.
 */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max)
	{
		rl.rlim_cur = rl.rlim_max;
		(void) setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Prepare the strategy, reset PostgreSQL and Redis for a point. */
static bool
prepare_point(const Options *opt, PGconn *admin, const Target *tgt,
			  const Point *pt, Program *prog, int64_t *watermark)
{
	char		err[CS_ERRMSG_LEN];

	if (!program_build(prog, pt->strategy, tgt->extschema, opt, err,
					   sizeof(err)))
	{
		fprintf(stderr, "%s: %s\n", progname, err);
		return false;
	}
	if (!setup_point(admin, tgt, pt, watermark))
		return false;
	if (pt->strategy->redis > 0 && !redis_setup_point(opt, pt))
		return false;
	if (opt->throughput)
		try_checkpoint(admin);
	return true;
}

/* Say on stderr what went wrong during a point that still has a row. */
static void
note_point(const Options *opt, const Point *pt, const Stats *total,
		   const PointRun *run)
{
	if (total->errors > 0)
		fprintf(stderr, "%s: %s, %d clients: %lld errors, first: %s\n",
				progname, pt->strategy->name, pt->clients,
				(long long) total->errors, total->first_error);
	if (run->killed)
		fprintf(stderr, "%s: %s, %d clients: server 1 killed at its take %lld, "
				"with its %d clients\n",
				progname, pt->strategy->name, pt->clients,
				(long long) opt->kill_server_at, run->killed_clients);
}

int
main(int argc, char **argv)
{
	Options		opt;
	Target		tgt;
	PGconn	   *admin;
	Point		points[CS_MAX_POINTS * CS_MAX_STRATEGIES];
	Row		   *rows;
	Stats	   *total;
	Program    *prog;
	Shared	   *sh;
	size_t		shsize;
	int			npoints = 0;
	int			nrows = 0;
	int			per_proc_slots = 1;
	int			ack_fd = -1;
	int			exit_code = 0;
	int			i;
	int			s;

	parse_options(argc, argv, &opt);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();

	for (i = 0; i < (opt.throughput ? opt.nclients : 1); i++)
	{
		int			clients = opt.throughput ? opt.clients[i] : opt.users;
		int			share = (clients + opt.servers - 1) / opt.servers;

		if (threads_for(&opt, share) > per_proc_slots)
			per_proc_slots = threads_for(&opt, share);
		for (s = 0; s < n_builtin_strategies; s++)
		{
			if (!opt.strategies[s])
				continue;
			points[npoints].strategy = strategy_for(&opt, s);
			points[npoints].clients = clients;
			points[npoints].initial = opt.coupons;
			npoints++;
		}
	}

	admin = admin_connect(&opt, false);
	if (admin == NULL)
		exit(2);
	memset(&tgt, 0, sizeof(tgt));
	if (!setup_run(admin, &opt, &tgt) ||
		!redis_setup_run(&opt, &tgt, strategies_redis(&opt)))
	{
		PQfinish(admin);
		exit(2);
	}
	if (opt.ack_log)
	{
		ack_fd = open(opt.ack_log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (ack_fd < 0)
		{
			fprintf(stderr, "%s: could not open ack log \"%s\": %s\n",
					progname, opt.ack_log, strerror(errno));
			exit(2);
		}
	}

	shsize = sizeof(Shared) + sizeof(Stats) * (size_t) opt.servers * per_proc_slots;
	sh = mmap(NULL, shsize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			  -1, 0);
	rows = calloc(npoints, sizeof(Row));
	total = malloc(sizeof(Stats));
	prog = malloc(sizeof(Program));
	if (sh == MAP_FAILED || rows == NULL || total == NULL || prog == NULL)
	{
		fprintf(stderr, "%s: out of memory\n", progname);
		exit(2);
	}

	if (!opt.json)
		report_header(&opt, &tgt, per_proc_slots);

	for (i = 0; i < npoints; i++)
	{
		const Point *pt = &points[i];
		Row		   *row = &rows[nrows];
		int64_t		watermark;
		PointRun	run;

		if (!prepare_point(&opt, admin, &tgt, pt, prog, &watermark))
		{
			exit_code = 2;
			break;
		}
		run = run_point(&opt, pt, prog, sh, shsize, per_proc_slots, ack_fd,
						total);
		if (total->setup_failed)
		{
			/* nothing ran: the clients could not all connect */
			fprintf(stderr, "%s: %s\n", progname, total->first_error);
			exit_code = 2;
			break;
		}
		if (!read_back(admin, &opt, &tgt, pt, watermark, row))
		{
			exit_code = 2;
			break;
		}
		compute_row(&opt, pt, total, &run, row);
		nrows++;
		note_point(&opt, pt, total, &run);
		if (!opt.json)
			report_row(row);
		if (!run.ok)
		{
			fprintf(stderr, "%s: run aborted (%s, %d clients)\n", progname,
					pt->strategy->name, pt->clients);
			exit_code = 2;
			break;
		}
		if (pt->strategy->exact && !row->correct && exit_code == 0)
			exit_code = 1;
	}

	if (opt.json)
		report_json(&opt, &tgt, rows, nrows);
	else
		report_footer(rows, nrows, exit_code == 2);
	if (ack_fd >= 0)
		close(ack_fd);
	PQfinish(admin);
	return exit_code;
}
