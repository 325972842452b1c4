/*-------------------------------------------------------------------------
 *
 * coupon-stress.c
 *		Race many users for a few coupons, strategy by strategy.
 *
 * This file holds the options, the run plan and the orchestration; see
 * coupon-stress.h for the other files.
 *
 * The plan is a list of points: for every client count (burst mode: the
 * number of users), every selected strategy in the fixed order naive, occ,
 * for-update, atomic, claim, insert-only.  Strategies are the inner loop
 * so that the rows compared with each other run close together in time.
 *
 * For each point the parent process:
 *
 *	1. resets the database through its admin connection (setup.c) and, in
 *	   throughput mode, asks for a CHECKPOINT so every point starts alike;
 *	2. maps a shared anonymous region for the workers' statistics and forks
 *	   --servers processes, the "application servers", which share the
 *	   clients as evenly as possible (driver.c);
 *	3. waits until every process reports its connections open, then closes
 *	   the "go" pipe: every blocked worker process wakes at once, which is
 *	   the barrier across processes;
 *	4. prints progress lines every -P seconds from the shared counters
 *	   while the workers run, and reaps them;
 *	5. merges the per-thread statistics, reads the ledger and the counter
 *	   back from the database and prints the row.
 *
 * Correctness columns (the truth read back from the database):
 *
 *	granted			calls whose client saw the grant committed
 *	ledger_rows		grant rows of the point in the ledger (coupon_stress.grants
 *					for the hand-written strategies, <extschema>.coupon_claims
 *					for claim)
 *	counter			the counter afterwards: remaining, or the pool's available
 *					permits for claim; none for insert-only
 *	oversold		max(0, ledger_rows - initial stock)
 *	lost_updates	max(0, ledger_rows - (initial - counter)): grants the
 *					counter does not account for
 *	correct			granted <= ledger_rows <= granted + calls in doubt (those
 *					whose connection broke while a commit may have been in
 *					flight; none without --reconnect), counter = initial -
 *					ledger_rows, ledger_rows <= initial, and in burst mode
 *					ledger_rows = min(users, coupons); in throughput mode also
 *					at least one grant when there was stock
 *
 * Exit status: 0 when every strategy other than naive and insert-only was
 * correct at every point, 1 when one was not, 2 for bad arguments, an
 * unreachable server, or a run aborted by a lost connection.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "coupon-stress.h"

#define DEFAULT_USERS		500
#define DEFAULT_COUPONS		50
#define THROUGHPUT_STOCK	INT64_C(1000000000)		/* "does not run out" */
#define DEFAULT_MAX_TRIES	64

const char *progname = "coupon-stress";

int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Keep the first error of a thread, for the end-of-point message. */
void
set_first_error(Stats *st, const char *fmt,...)
{
	va_list		ap;

	if (st->first_error[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(st->first_error, sizeof(st->first_error), fmt, ap);
	va_end(ap);
}

static void
usage(FILE *f)
{
	fprintf(f,
			"%s races many users for a few coupons with each strategy and\n"
			"reports correctness and cost side by side.\n\n"
			"Usage:\n"
			"  %s [OPTION]...\n\n"
			"Modes:\n"
			"  (default)                burst: every user has its own connection, all\n"
			"                           connect, a barrier releases them at once, each\n"
			"                           tries once\n"
			"  --users=NUM              burst: number of users (default %d)\n"
			"  --coupons=NUM            initial stock (default %d in burst mode, %lld,\n"
			"                           which does not run out, in throughput mode)\n"
			"  -T, --time=SECONDS       throughput mode: every client calls back to back\n"
			"                           for SECONDS\n"
			"  -c, --client=NUM[,NUM]   throughput: clients; a list sweeps, one row per\n"
			"                           point (default 1)\n"
			"  -j, --jobs=NUM           worker threads per process (default: the number\n"
			"                           of CPUs, at most one per client)\n"
			"  --servers=NUM            run NUM processes, like application servers\n"
			"                           behind a load balancer, sharing the users or\n"
			"                           clients; one barrier releases all (default 1)\n\n"
			"Strategies:\n"
			"  --strategy=LIST          comma-separated, run in this order (default all):\n"
			"                           naive        read, check, write back read - 1\n"
			"                           occ          version column + coupon_occ_version\n"
			"                                        trigger, retry with backoff\n"
			"                           for-update   SELECT ... FOR UPDATE, then write\n"
			"                           atomic       one conditional UPDATE, then INSERT\n"
			"                           claim        SELECT coupon_claim(...)\n"
			"                           insert-only  the grant row alone: the ceiling\n"
			"  --race-window=USEC       pause between read and write (default 0)\n"
			"  --max-tries=NUM          occ: tries per call (default %d)\n\n"
			"Connection:\n"
			"  --dsn=CONNINFO           connection string or URI\n"
			"  -h, --host=HOSTNAME      database server host or socket directory\n"
			"  -p, --port=PORT          database server port\n"
			"  -U, --username=USERNAME  connect as this user\n"
			"  -d, --dbname=DBNAME      database to use\n"
			"                           (the PG* environment variables apply too)\n\n"
			"Output and fault tests:\n"
			"  -P, --progress=SECONDS   progress line on stderr every SECONDS\n"
			"  --json                   print {\"results\": [...]} instead of the table\n"
			"  --ack-log=FILE           append every claim id acknowledged to the claim\n"
			"                           strategy (committed), one per line\n"
			"  --reconnect              throughput: when a connection breaks, count an\n"
			"                           error and reconnect instead of aborting\n"
			"  -V, --version            print the version and exit\n"
			"  -?, --help               show this help and exit\n\n"
			"Columns: granted = calls that saw their grant committed; ledger = grant\n"
			"rows in the database; counter = remaining stock read back (available\n"
			"permits for claim, none for insert-only); oversold = max(0, ledger -\n"
			"coupons); lost = max(0, ledger - (coupons - counter)); correct = granted\n"
			"<= ledger <= granted + calls in doubt after a broken connection, counter =\n"
			"coupons - ledger, ledger <= coupons, in burst mode ledger = min(users,\n"
			"coupons), in throughput mode at least one grant; claims/s and attempts/s =\n"
			"granted and finished calls per second of the run; latency percentiles over\n"
			"the calls that were answered (granted or sold out), retries and backoff\n"
			"included; retries = occ conflicts retried; errors = calls that failed.\n\n"
			"Exit status: 0 when every strategy but naive and insert-only was correct,\n"
			"1 when one was not, 2 for bad arguments, an unreachable server or an\n"
			"aborted run.\n",
			progname, progname, DEFAULT_USERS, DEFAULT_COUPONS,
			(long long) THROUGHPUT_STOCK, DEFAULT_MAX_TRIES);
}

static void
bad_argument(const char *fmt,...) CS_PRINTF(1, 2);

static void
bad_argument(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n\n");
	usage(stderr);
	exit(2);
}

static int64_t
parse_int(const char *opt, const char *s, int64_t min, int64_t max)
{
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		bad_argument("invalid value \"%s\" for %s: expected an integer from %lld to %lld",
					 s, opt, (long long) min, (long long) max);
	return v;
}

static double
parse_seconds(const char *opt, const char *s)
{
	char	   *end;
	double		v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v > 0) || v > 1e7)
		bad_argument("invalid value \"%s\" for %s: expected a positive number of seconds",
					 s, opt);
	return v;
}

static void
parse_strategies(Options *opt, const char *list)
{
	char	   *copy = strdup(list);
	char	   *save = NULL;
	char	   *tok;
	int			n = 0;

	memset(opt->strategies, 0, sizeof(opt->strategies));
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
	{
		int			s;

		for (s = 0; s < S_COUNT; s++)
			if (strcmp(tok, strategy_names[s]) == 0)
				break;
		if (s == S_COUNT)
			bad_argument("unknown strategy \"%s\"", tok);
		opt->strategies[s] = true;
		n++;
	}
	free(copy);
	if (n == 0)
		bad_argument("--strategy needs at least one strategy");
}

static void
parse_clients(Options *opt, const char *list)
{
	char	   *copy = strdup(list);
	char	   *save = NULL;
	char	   *tok;

	opt->nclients = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
	{
		if (opt->nclients >= CS_MAX_POINTS)
			bad_argument("too many client counts in -c (at most %d)", CS_MAX_POINTS);
		opt->clients[opt->nclients++] = (int) parse_int("-c", tok, 1, 100000);
	}
	free(copy);
	if (opt->nclients == 0)
		bad_argument("-c needs at least one client count");
}

static void
parse_options(int argc, char **argv, Options *opt)
{
	static const struct option long_options[] = {
		{"strategy", required_argument, NULL, 1},
		{"users", required_argument, NULL, 2},
		{"coupons", required_argument, NULL, 3},
		{"servers", required_argument, NULL, 4},
		{"race-window", required_argument, NULL, 5},
		{"max-tries", required_argument, NULL, 6},
		{"json", no_argument, NULL, 7},
		{"ack-log", required_argument, NULL, 8},
		{"reconnect", no_argument, NULL, 9},
		{"dsn", required_argument, NULL, 10},
		{"time", required_argument, NULL, 'T'},
		{"client", required_argument, NULL, 'c'},
		{"jobs", required_argument, NULL, 'j'},
		{"progress", required_argument, NULL, 'P'},
		{"host", required_argument, NULL, 'h'},
		{"port", required_argument, NULL, 'p'},
		{"username", required_argument, NULL, 'U'},
		{"dbname", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, '?'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}
	};
	bool		users_set = false;
	bool		clients_set = false;
	int			c;
	int			s;

	memset(opt, 0, sizeof(*opt));
	for (s = 0; s < S_COUNT; s++)
		opt->strategies[s] = true;
	opt->users = DEFAULT_USERS;
	opt->coupons = DEFAULT_COUPONS;
	opt->servers = 1;
	opt->max_tries = DEFAULT_MAX_TRIES;
	opt->clients[0] = 1;
	opt->nclients = 1;

	/* --help and --version win wherever they are, as in pgbench */
	for (c = 1; c < argc; c++)
	{
		if (strcmp(argv[c], "--help") == 0 || strcmp(argv[c], "-?") == 0)
		{
			usage(stdout);
			exit(0);
		}
		if (strcmp(argv[c], "--version") == 0 || strcmp(argv[c], "-V") == 0)
		{
			printf("coupon-stress %s\n", CS_VERSION);
			exit(0);
		}
	}

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":T:c:j:P:h:p:U:d:V?", long_options,
							NULL)) != -1)
	{
		switch (c)
		{
			case 1:
				parse_strategies(opt, optarg);
				break;
			case 2:
				opt->users = (int) parse_int("--users", optarg, 1, 100000);
				users_set = true;
				break;
			case 3:
				opt->coupons = parse_int("--coupons", optarg, 0, INT64_C(1000000000000000));
				opt->coupons_set = true;
				break;
			case 4:
				opt->servers = (int) parse_int("--servers", optarg, 1, 1000);
				break;
			case 5:
				opt->race_window_us = parse_int("--race-window", optarg, 0, 60000000);
				break;
			case 6:
				opt->max_tries = (int) parse_int("--max-tries", optarg, 1, 1000000);
				break;
			case 7:
				opt->json = true;
				break;
			case 8:
				opt->ack_log = optarg;
				break;
			case 9:
				opt->reconnect = true;
				break;
			case 10:
				opt->dsn = optarg;
				break;
			case 'T':
				opt->duration = parse_seconds("-T", optarg);
				opt->throughput = true;
				break;
			case 'c':
				parse_clients(opt, optarg);
				clients_set = true;
				break;
			case 'j':
				opt->threads = (int) parse_int("-j", optarg, 1, 10000);
				break;
			case 'P':
				opt->progress = parse_seconds("-P", optarg);
				break;
			case 'h':
				opt->host = optarg;
				break;
			case 'p':
				opt->port = optarg;
				break;
			case 'U':
				opt->user = optarg;
				break;
			case 'd':
				opt->dbname = optarg;
				break;
			case ':':
				bad_argument("option %s needs a value", argv[optind - 1]);
				break;
			default:
				bad_argument("unknown option %s", argv[optind - 1]);
				break;
		}
	}
	if (optind < argc)
		bad_argument("unexpected argument \"%s\"", argv[optind]);

	if (opt->throughput && users_set)
		bad_argument("--users applies to burst mode; use -c with -T");
	if (!opt->throughput && clients_set)
		bad_argument("-c applies to throughput mode (-T); burst mode uses --users");
	if (opt->throughput && !opt->coupons_set)
		opt->coupons = THROUGHPUT_STOCK;
	if (!opt->throughput && opt->servers > opt->users)
		bad_argument("--servers (%d) exceeds --users (%d)", opt->servers, opt->users);
	if (opt->throughput)
	{
		for (c = 0; c < opt->nclients; c++)
			if (opt->servers > opt->clients[c])
				bad_argument("--servers (%d) exceeds -c (%d)", opt->servers,
							 opt->clients[c]);
	}
}

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

/*
 * Run one point: fork the processes, release them together, wait for them
 * with progress lines, merge their statistics into *total.  Returns false
 * when the point aborted.
 */
static bool
run_point(const Options *opt, const Target *tgt, const Point *pt,
		  Shared *sh, size_t shsize, int per_proc_slots, int ack_fd,
		  Stats *total)
{
	int			ready[2];
	int			go[2];
	pid_t	   *pids = calloc(opt->servers, sizeof(pid_t));
	int			alive = 0;
	int			got = 0;
	bool		ok = true;
	int			i;
	char		byte;
	int64_t		release;
	int64_t		next_progress;
	int64_t		last_done = 0,
				last_lat = 0,
				last_err = 0;
	double		last_lat2 = 0;
	int64_t		last_tick;

	memset(sh, 0, shsize);
	sh->nslots = opt->servers * per_proc_slots;
	if (pids == NULL || pipe(ready) != 0 || pipe(go) != 0)
	{
		fprintf(stderr, "%s: could not create pipes: %s\n", progname, strerror(errno));
		exit(2);
	}
	fflush(stdout);
	fflush(stderr);
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
			rc = run_share(opt, tgt, pt, i, share, threads_for(opt, share),
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

	next_progress = release + (int64_t) (opt->progress * 1e9);
	last_tick = release;
	while (alive > 0)
	{
		int			status;
		pid_t		pid = waitpid(-1, &status, WNOHANG);
		int64_t		now;

		if (pid > 0)
		{
			alive--;
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				ok = false;
			continue;
		}
		if (pid < 0 && errno != EINTR)
			break;
		now = now_ns();
		if (opt->progress > 0 && now >= next_progress && !sh->abort)
		{
			int64_t		done,
						lat,
						err,
						retries;
			double		lat2;

			sum_live(sh, &done, &lat, &lat2, &err, &retries);
			report_progress((now - release) / 1e9, pt, done - last_done,
							lat - last_lat, lat2 - last_lat2, err - last_err,
							retries, (now - last_tick) / 1e9);
			last_done = done;
			last_lat = lat;
			last_lat2 = lat2;
			last_err = err;
			last_tick = now;
			next_progress += (int64_t) (opt->progress * 1e9);
		}
		sleep_ns(10 * 1000 * 1000);
	}
	free(pids);

	memset(total, 0, sizeof(*total));
	for (i = 0; i < sh->nslots; i++)
		stats_merge(total, &sh->slots[i]);
	if (sh->abort)
		ok = false;
	return ok;
}

/* Fill the computed columns of a row from the merged statistics. */
static void
compute_row(const Options *opt, const Point *pt, const Stats *st, Row *r)
{
	double		elapsed = (st->end_ns - st->start_ns) / 1e9;
	int64_t		expected;

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

	r->oversold = r->ledger_rows > pt->initial ? r->ledger_rows - pt->initial : 0;
	r->has_lost = r->has_counter;
	if (r->has_counter)
	{
		int64_t		lost = r->ledger_rows - (pt->initial - r->counter);

		r->lost_updates = lost > 0 ? lost : 0;
	}
	r->correct = r->has_counter &&
		r->granted <= r->ledger_rows &&
		r->ledger_rows <= r->granted + st->in_doubt &&
		r->counter == pt->initial - r->ledger_rows &&
		r->ledger_rows <= pt->initial;
	if (!opt->throughput)
	{
		expected = pt->clients < pt->initial ? pt->clients : pt->initial;
		r->correct = r->correct && r->ledger_rows == expected;
	}
	else if (pt->initial > 0)
		r->correct = r->correct && r->granted > 0;
}

int
main(int argc, char **argv)
{
	Options		opt;
	Target		tgt;
	PGconn	   *admin;
	Point		points[CS_MAX_POINTS * S_COUNT];
	Row		   *rows;
	Stats	   *total;
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

	for (i = 0; i < (opt.throughput ? opt.nclients : 1); i++)
	{
		int			clients = opt.throughput ? opt.clients[i] : opt.users;
		int			share = (clients + opt.servers - 1) / opt.servers;

		if (threads_for(&opt, share) > per_proc_slots)
			per_proc_slots = threads_for(&opt, share);
		for (s = 0; s < S_COUNT; s++)
		{
			if (!opt.strategies[s])
				continue;
			points[npoints].strategy = (Strategy) s;
			points[npoints].clients = clients;
			points[npoints].initial = opt.coupons;
			npoints++;
		}
	}

	admin = admin_connect(&opt, false);
	if (admin == NULL)
		exit(2);
	memset(&tgt, 0, sizeof(tgt));
	if (!setup_run(admin, &opt, &tgt))
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
	if (sh == MAP_FAILED || rows == NULL || total == NULL)
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
		bool		ran;

		if (!setup_point(admin, &tgt, pt, &watermark))
		{
			exit_code = 2;
			break;
		}
		if (opt.throughput)
			try_checkpoint(admin);
		ran = run_point(&opt, &tgt, pt, sh, shsize, per_proc_slots, ack_fd, total);
		if (total->setup_failed)
		{
			/* nothing ran: the clients could not all connect */
			fprintf(stderr, "%s: %s\n", progname, total->first_error);
			exit_code = 2;
			break;
		}
		if (!read_back(admin, &tgt, pt, watermark, row))
		{
			exit_code = 2;
			break;
		}
		compute_row(&opt, pt, total, row);
		nrows++;
		if (total->errors > 0)
			fprintf(stderr, "%s: %s, %d clients: %lld errors, first: %s\n",
					progname, strategy_names[pt->strategy], pt->clients,
					(long long) total->errors, total->first_error);
		if (!opt.json)
			report_row(row);
		if (!ran)
		{
			fprintf(stderr, "%s: run aborted (%s, %d clients)\n", progname,
					strategy_names[pt->strategy], pt->clients);
			exit_code = 2;
			break;
		}
		if (strategy_is_exact(pt->strategy) && !row->correct && exit_code == 0)
			exit_code = 1;
	}

	if (opt.json)
		report_json(rows, nrows);
	else
		report_footer(rows, nrows, exit_code == 2);
	if (ack_fd >= 0)
		close(ack_fd);
	PQfinish(admin);
	return exit_code;
}
