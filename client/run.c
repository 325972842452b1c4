/*-------------------------------------------------------------------------
 *
 * run.c
 *		A run: its points, the server processes, the barrier, the rows.
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
 *	   program.c), which the processes inherit, resets the database
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
 * Floor: the run, under the entry (coupon-stress.c) and beside the
 * command line (options.c), which it does not call.  It calls down into
 * the driver (driver.c, in the forked processes), the strategies
 * (program.c, strategy.c), setup and output (setup.c, report.c), Redis
 * (redis.c) and the statistics (histogram.c).
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
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
#include "program.h"
#include "redis.h"
#include "report.h"
#include "run.h"
#include "setup.h"
#include "strategy.h"

/* A run, from its plan to its last row. */
struct Run
{
	const Options *opt;
	Target		tgt;			/* what the setup found */
	PGconn	   *admin;			/* the parent's connection */
	Point		points[CS_MAX_POINTS * CS_MAX_STRATEGIES];
	int			npoints;
	Row		   *rows;			/* one per point run so far */
	int			nrows;
	Stats	   *total;			/* the point's statistics, merged */
	Program    *prog;			/* the point's strategy, prepared */
	Shared	   *sh;				/* the point's shared mapping */
	size_t		shsize;
	int			per_proc_slots; /* statistics slots of a process */
	int			ack_fd;			/* --ack-log, or -1 */
};

/* What happened to the processes of a point. */
typedef struct PointRun
{
	bool		ok;				/* no process failed or aborted */
	bool		killed;			/* --kill-server struck the first process */
	int			killed_clients; /* the clients it took with it */
} PointRun;

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

/* Reap the point's processes, printing progress lines while they run. */
static void
wait_for_servers(const Options *opt, const Point *pt, Shared *sh,
				 pid_t *pids, int alive, int64_t release, PointRun *pr)
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
				pr->killed = true;
			else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				pr->ok = false;
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

/* Fork the point's processes; returns how many were started. */
static int
fork_servers(const Run *run, const Point *pt, int ready[2], int go[2],
			 pid_t *pids)
{
	const Options *opt = run->opt;
	Shared	   *sh = run->sh;
	int			started = 0;
	int			i;

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
			rc = run_share(opt, pt, run->prog, i, share, threads_for(opt, share),
						   &sh->slots[i * run->per_proc_slots], sh, ready[1],
						   go[0], run->ack_fd);
			_exit(rc);
		}
		pids[i] = pid;
		started++;
	}
	return started;
}

/*
 * The barrier across processes: wait until each of the alive ones has its
 * connections open (or failed to), then close the "go" pipe, which wakes
 * them all at once.  Returns the time of the release.
 */
static int64_t
release_servers(Shared *sh, int ready[2], int go[2], int alive)
{
	int			got = 0;
	char		byte;
	int64_t		release;

	close(ready[1]);
	close(go[0]);
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
	return release;
}

/*
 * Run one point on the servers: fork the processes, release them together,
 * wait for them with progress lines, merge their statistics into
 * run->total.
 */
static PointRun
run_servers(Run *run, const Point *pt)
{
	const Options *opt = run->opt;
	Shared	   *sh = run->sh;
	PointRun	pr = {true, false, 0};
	int			ready[2];
	int			go[2];
	pid_t	   *pids = calloc(opt->servers, sizeof(pid_t));
	int			alive;
	int64_t		release;
	int			i;

	memset(sh, 0, run->shsize);
	sh->nslots = opt->servers * run->per_proc_slots;
	if (pids == NULL || pipe(ready) != 0 || pipe(go) != 0)
	{
		fprintf(stderr, "%s: could not create pipes: %s\n", progname, strerror(errno));
		exit(2);
	}
	fflush(stdout);
	fflush(stderr);
	pr.killed_clients = pt->clients / opt->servers +
		(0 < pt->clients % opt->servers);
	alive = fork_servers(run, pt, ready, go, pids);
	release = release_servers(sh, ready, go, alive);
	wait_for_servers(opt, pt, sh, pids, alive, release, &pr);
	free(pids);

	memset(run->total, 0, sizeof(*run->total));
	for (i = 0; i < sh->nslots; i++)
		stats_merge(run->total, &sh->slots[i]);
	if (sh->abort)
		pr.ok = false;
	return pr;
}

/* Fill the computed columns of a row from the merged statistics. */
static void
compute_row(const Options *opt, const Point *pt, const Stats *st,
			const PointRun *pr, Row *r)
{
	double		elapsed = (st->end_ns - st->start_ns) / 1e9;
	int64_t		killed = pr->killed ? pr->killed_clients : 0;
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
	if (!opt->throughput && !pr->killed)
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

	if (!program_build(prog, pt->strategy, tgt, opt, err, sizeof(err)))
	{
		fprintf(stderr, "%s: %s\n", progname, err);
		return false;
	}
	if (!setup_point(admin, opt, tgt, pt, watermark))
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
		   const PointRun *pr)
{
	if (total->errors > 0)
		fprintf(stderr, "%s: %s, %d clients: %lld errors, first: %s\n",
				progname, pt->strategy->name, pt->clients,
				(long long) total->errors, total->first_error);
	if (pr->killed)
		fprintf(stderr, "%s: %s, %d clients: server 1 killed at its take %lld, "
				"with its %d clients\n",
				progname, pt->strategy->name, pt->clients,
				(long long) opt->kill_server_at, pr->killed_clients);
}

/*
 * The plan: for every client count, every strategy chosen, in the order of
 * the table; and the statistics slots a process needs for its threads.
 */
static void
plan_points(Run *run)
{
	const Options *opt = run->opt;
	int			i;
	int			s;

	run->per_proc_slots = 1;
	for (i = 0; i < (opt->throughput ? opt->nclients : 1); i++)
	{
		int			clients = opt->throughput ? opt->clients[i] : opt->users;
		int			share = (clients + opt->servers - 1) / opt->servers;

		if (threads_for(opt, share) > run->per_proc_slots)
			run->per_proc_slots = threads_for(opt, share);
		for (s = 0; s < n_builtin_strategies; s++)
		{
			Point	   *pt = &run->points[run->npoints];

			if (!opt->strategies[s])
				continue;
			pt->strategy = strategy_for(opt, s);
			pt->clients = clients;
			pt->initial = opt->coupons;
			run->npoints++;
		}
	}
}

/* Connect to PostgreSQL, set it and the Redis instances up; or exit. */
static void
connect_servers(Run *run)
{
	const Options *opt = run->opt;

	run->admin = admin_connect(opt, false);
	if (run->admin == NULL)
		exit(2);
	memset(&run->tgt, 0, sizeof(run->tgt));
	if (!setup_run(run->admin, opt, strategies_need_extension(opt), &run->tgt) ||
		!redis_setup_run(opt, &run->tgt, strategies_redis(opt)))
	{
		PQfinish(run->admin);
		exit(2);
	}
	if (run->tgt.proxy && strategy_outside_pool(opt))
	{
		fprintf(stderr, "%s: strategy %s cannot run through a coupon cluster's "
				"proxy (extension coupon_proxy): only claim runs there; "
				"give --strategy claim\n", progname, strategy_outside_pool(opt));
		PQfinish(run->admin);
		exit(2);
	}
}

static void
out_of_memory(void)
{
	fprintf(stderr, "%s: out of memory\n", progname);
	exit(2);
}

/*
 * Start a run: plan its points, set the servers up, open the ack log, map
 * the memory the processes share and print the report's header.  Exits
 * with status 2 when something is missing.
 */
Run *
run_start(const Options *opt)
{
	Run		   *run = calloc(1, sizeof(Run));

	if (run == NULL)
		out_of_memory();
	run->opt = opt;
	run->ack_fd = -1;
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	plan_points(run);
	connect_servers(run);
	if (opt->ack_log)
	{
		run->ack_fd = open(opt->ack_log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (run->ack_fd < 0)
		{
			fprintf(stderr, "%s: could not open ack log \"%s\": %s\n",
					progname, opt->ack_log, strerror(errno));
			exit(2);
		}
	}

	run->shsize = sizeof(Shared) +
		sizeof(Stats) * (size_t) opt->servers * run->per_proc_slots;
	run->sh = mmap(NULL, run->shsize, PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	run->rows = calloc(run->npoints, sizeof(Row));
	run->total = malloc(sizeof(Stats));
	run->prog = malloc(sizeof(Program));
	if (run->sh == MAP_FAILED || run->rows == NULL || run->total == NULL ||
		run->prog == NULL)
		out_of_memory();

	if (!opt->json)
		report_header(opt, &run->tgt, run->per_proc_slots);
	return run;
}

int
run_npoints(const Run *run)
{
	return run->npoints;
}

/* Run point i of the plan and print its row. */
PointStatus
run_point(Run *run, int i)
{
	const Options *opt = run->opt;
	const Point *pt = &run->points[i];
	Row		   *row = &run->rows[run->nrows];
	int64_t		watermark;
	PointRun	pr;

	if (!prepare_point(opt, run->admin, &run->tgt, pt, run->prog, &watermark))
		return POINT_FAILED;
	pr = run_servers(run, pt);
	if (run->total->setup_failed)
	{
		/* nothing ran: the clients could not all connect */
		fprintf(stderr, "%s: %s\n", progname, run->total->first_error);
		return POINT_FAILED;
	}
	if (!read_back(run->admin, opt, &run->tgt, pt, watermark, row))
		return POINT_FAILED;
	compute_row(opt, pt, run->total, &pr, row);
	run->nrows++;
	note_point(opt, pt, run->total, &pr);
	if (!opt->json)
		report_row(row);
	if (!pr.ok)
	{
		fprintf(stderr, "%s: run aborted (%s, %d clients)\n", progname,
				pt->strategy->name, pt->clients);
		return POINT_FAILED;
	}
	return pt->strategy->exact && !row->correct ? POINT_INEXACT : POINT_OK;
}

/* End the run: the JSON document or the table's footer. */
void
run_finish(Run *run, bool aborted)
{
	if (run->opt->json)
		report_json(run->opt, &run->tgt, run->rows, run->nrows);
	else
		report_footer(run->rows, run->nrows, aborted);
	if (run->ack_fd >= 0)
		close(run->ack_fd);
	PQfinish(run->admin);
}
