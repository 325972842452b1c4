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
 *	coupon-stress.c	options, the run plan (strategies x client counts),
 *					forking the "application server" processes, the barrier
 *					across them, progress and the exit status
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
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"
#include "histogram.h"
#include "redis.h"
#include "report.h"
#include "setup.h"
#include "strategy.h"

#define DEFAULT_USERS		500
#define DEFAULT_COUPONS		50
#define THROUGHPUT_STOCK	INT64_C(1000000000)		/* "does not run out" */
#define DEFAULT_MAX_TRIES	64
#define DEFAULT_LEASE_MS	10000
#define DEFAULT_LOCK_WAIT_MS	60000
#define DEFAULT_CONFIRM		0.5

static void
usage(FILE *f)
{
	int			i;

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
			"  --strategy=LIST          comma-separated, run in this order (default: all;\n"
			"                           those that need Redis only with --redis):\n",
			progname, progname, DEFAULT_USERS, DEFAULT_COUPONS,
			(long long) THROUGHPUT_STOCK);
	for (i = 0; i < n_builtin_strategies; i++)
		fprintf(f, "                           %-16s%s\n",
				builtin_strategies[i].name, builtin_strategies[i].description);
	fprintf(f,
			"  --race-window=USEC       pause between read and write; with --hold,\n"
			"                           between a hold and its confirm (default 0)\n"
			"  --max-tries=NUM          tries per call after conflicts and stale\n"
			"                           tokens (default %d)\n\n"
			"Holds:\n"
			"  --hold=TTL               claim holds instead, for TTL seconds (may be\n"
			"                           fractional: 0.5), and only claim runs; a point\n"
			"                           ends once every hold is confirmed or expired\n"
			"                           (at most TTL + 30 s); needs the server's expiry\n"
			"                           workers: coupon preloaded and\n"
			"                           coupon.expiry_workers = on (the default)\n"
			"  --confirm=FRACTION       share of the holds granted that are confirmed\n"
			"                           (coupon_confirm) after --race-window, drawn per\n"
			"                           call; the others are abandoned to the expiry\n"
			"                           (default %g)\n\n"
			"Redis:\n"
			"  --redis=HOST:PORT[,...]  Redis instances: the first holds redis's stock,\n"
			"                           the first three are redlock's instances\n"
			"  --lease-ms=MS            redlock: the lock's lease (default %d)\n"
			"  --lock-wait-ms=MS        redlock: give up on a busy lock after MS\n"
			"                           (default %d)\n\n"
			"Faults:\n"
			"  --pause-ms=MS            a GC pause: a call stops MS between its read and\n"
			"                           its write (redlock: holding the lock), once\n"
			"  --pause-every=N          only every N-th call of a process pauses\n"
			"                           (default 1: every call)\n"
			"  --kill-server=N          the first server process kills itself (SIGKILL)\n"
			"                           at its N-th take, before the commit\n"
			"  --restart-redis=N        the first server process crashes the first Redis\n"
			"                           instance (DEBUG CRASH-AND-RECOVER) at its N-th\n"
			"                           take, before the commit; implies --reconnect\n\n"
			"Connection:\n"
			"  --dsn=CONNINFO           connection string or URI\n"
			"  -h, --host=HOSTNAME      database server host or socket directory\n"
			"  -p, --port=PORT          database server port\n"
			"  -U, --username=USERNAME  connect as this user\n"
			"  -d, --dbname=DBNAME      database to use\n"
			"                           (the PG* environment variables apply too)\n\n"
			"Output:\n"
			"  -P, --progress=SECONDS   progress line on stderr every SECONDS\n"
			"  --json                   print {\"settings\": {...}, \"results\": [...]}\n"
			"                           instead of the table\n"
			"  --ack-log=FILE           append every claim id acknowledged to the claim\n"
			"                           strategy (committed), one per line\n"
			"  --reconnect              when a connection breaks, count an error and\n"
			"                           reconnect instead of aborting\n"
			"  -V, --version            print the version and exit\n"
			"  -?, --help               show this help and exit\n\n"
			"Columns: granted = calls that saw their grant committed; ledger = grant\n"
			"rows in the database; counter = remaining stock read back (available\n"
			"permits for claim, the Redis key for redis, none for insert-only);\n"
			"oversold = max(0, ledger - coupons); lost = ledger rows the counter never\n"
			"counted, max(0, ledger - (coupons - counter)); leaked = stock taken that\n"
			"no ledger row holds, max(0, (coupons - counter) - ledger); correct =\n"
			"granted <= ledger <= granted + calls in doubt, counter = coupons - ledger,\n"
			"ledger <= coupons, in burst mode ledger = min(users, coupons) unless a\n"
			"server was killed, in throughput mode at least one grant; claims/s and\n"
			"attempts/s = granted and finished calls per second of the run; latency\n"
			"percentiles over the calls that were answered (granted or sold out),\n"
			"retries and backoff included; retries = conflicts, stale tokens and busy\n"
			"locks retried; errors = calls that failed.\n\n"
			"With --hold: granted and ledger count holds, counter is headed available\n"
			"(read once every hold has settled) and oversold, lost and leaked count\n"
			"the confirmed rows; confirms = confirms the clients saw succeed;\n"
			"confirmed = ledger rows confirmed; expired = holds returned at their\n"
			"expiry; too late = confirms refused because the hold had expired or been\n"
			"returned (UC001, UC002), not errors; correct also needs no hold left,\n"
			"confirmed + available = coupons, confirmed + expired = ledger and\n"
			"confirms <= confirmed <= confirms + confirms in doubt, and in burst mode\n"
			"ledger >= min(users, coupons) instead of equal.\n\n"
			"Exit status: 0 when every strategy but naive and insert-only was correct,\n"
			"1 when one was not, 2 for bad arguments, an unreachable server or an\n"
			"aborted run.\n",
			DEFAULT_MAX_TRIES, DEFAULT_CONFIRM, DEFAULT_LEASE_MS,
			DEFAULT_LOCK_WAIT_MS);
}

/* As pgbench: one line saying what is wrong, then where to look. */
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
	fprintf(stderr, "\nTry \"%s --help\" for more information.\n", progname);
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

/* A number into *v; false if s is not one. */
static bool
parse_double(const char *s, double *v)
{
	char	   *end;

	errno = 0;
	*v = strtod(s, &end);
	return errno == 0 && end != s && *end == '\0';
}

static double
parse_seconds(const char *opt, const char *s)
{
	double		v;

	if (!parse_double(s, &v) || !(v >= 1e-6) || v > 1e7)
		bad_argument("invalid value \"%s\" for %s: expected a positive number of seconds",
					 s, opt);
	return v;
}

static double
parse_fraction(const char *opt, const char *s)
{
	double		v;

	if (!parse_double(s, &v) || !(v >= 0 && v <= 1))
		bad_argument("invalid value \"%s\" for %s: expected a fraction from 0 to 1",
					 s, opt);
	return v;
}

/*
 * Call each(opt, item, position) for every item of a comma-separated list;
 * returns how many there were.
 */
static int
for_each_item(Options *opt, const char *list,
			  void (*each) (Options *opt, const char *item, int position))
{
	char	   *copy = strdup(list);
	char	   *save = NULL;
	char	   *tok;
	int			n = 0;

	if (copy == NULL)
		bad_argument("out of memory");
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		each(opt, tok, n++);
	free(copy);
	return n;
}

static void
add_strategy(Options *opt, const char *name, int position)
{
	const StrategyDef *s = strategy_by_name(name);

	(void) position;
	if (s == NULL)
		bad_argument("unknown strategy \"%s\"", name);
	opt->strategies[s - builtin_strategies] = true;
}

static void
add_client_count(Options *opt, const char *count, int position)
{
	if (position >= CS_MAX_POINTS)
		bad_argument("too many client counts in -c (at most %d)", CS_MAX_POINTS);
	opt->clients[position] = (int) parse_int("-c", count, 1, 100000);
	opt->nclients = position + 1;
}

static void
add_redis(Options *opt, const char *address, int position)
{
	const char *colon = strrchr(address, ':');

	if (position >= CS_MAX_REDIS)
		bad_argument("too many Redis addresses in --redis (at most %d)",
					 CS_MAX_REDIS);
	if (colon == NULL || colon == address ||
		(size_t) (colon - address) >= sizeof(opt->redis_host[0]))
		bad_argument("invalid Redis address \"%s\": expected HOST:PORT", address);
	snprintf(opt->redis_host[position], sizeof(opt->redis_host[0]), "%.*s",
			 (int) (colon - address), address);
	opt->redis_port[position] = (int) parse_int("--redis", colon + 1, 1, 65535);
	opt->nredis = position + 1;
}

/*
 * The strategies to run: those asked for, which must find the Redis
 * instances they need, or by default every one whose instances were given.
 * With --hold, claim alone, the one that can hold.
 */
static void
choose_strategies(Options *opt)
{
	int			s;

	for (s = 0; s < n_builtin_strategies; s++)
	{
		const StrategyDef *def = &builtin_strategies[s];
		bool		can_hold = def->stock == STOCK_POOL;

		if (opt->hold_us > 0 && opt->strategies[s] && !can_hold)
			bad_argument("--hold applies to the claim strategy only, not to %s",
						 def->name);
		if (opt->hold_us > 0 && !opt->strategies_given)
			opt->strategies[s] = can_hold;
		else if (!opt->strategies_given)
			opt->strategies[s] = def->redis <= opt->nredis;
		else if (opt->strategies[s] && def->redis > opt->nredis)
			bad_argument("strategy %s needs %d Redis instance%s: give --redis=HOST:PORT%s",
						 def->name, def->redis, def->redis > 1 ? "s" : "",
						 def->redis > 1 ? ",HOST:PORT,..." : "");
	}
}

static void
parse_options(int argc, char **argv, Options *opt)
{
	enum
	{
		O_STRATEGY = 1, O_USERS, O_COUPONS, O_SERVERS, O_RACE_WINDOW,
		O_MAX_TRIES, O_JSON, O_ACK_LOG, O_RECONNECT, O_DSN, O_REDIS,
		O_PAUSE_MS, O_PAUSE_EVERY, O_LEASE_MS, O_LOCK_WAIT_MS, O_KILL_SERVER,
		O_RESTART_REDIS, O_HOLD, O_CONFIRM
	};
	static const struct option long_options[] = {
		{"strategy", required_argument, NULL, O_STRATEGY},
		{"users", required_argument, NULL, O_USERS},
		{"coupons", required_argument, NULL, O_COUPONS},
		{"servers", required_argument, NULL, O_SERVERS},
		{"race-window", required_argument, NULL, O_RACE_WINDOW},
		{"max-tries", required_argument, NULL, O_MAX_TRIES},
		{"json", no_argument, NULL, O_JSON},
		{"ack-log", required_argument, NULL, O_ACK_LOG},
		{"reconnect", no_argument, NULL, O_RECONNECT},
		{"dsn", required_argument, NULL, O_DSN},
		{"redis", required_argument, NULL, O_REDIS},
		{"pause-ms", required_argument, NULL, O_PAUSE_MS},
		{"pause-every", required_argument, NULL, O_PAUSE_EVERY},
		{"lease-ms", required_argument, NULL, O_LEASE_MS},
		{"lock-wait-ms", required_argument, NULL, O_LOCK_WAIT_MS},
		{"kill-server", required_argument, NULL, O_KILL_SERVER},
		{"restart-redis", required_argument, NULL, O_RESTART_REDIS},
		{"hold", required_argument, NULL, O_HOLD},
		{"confirm", required_argument, NULL, O_CONFIRM},
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
	bool		confirm_set = false;
	int			c;

	memset(opt, 0, sizeof(*opt));
	opt->users = DEFAULT_USERS;
	opt->coupons = DEFAULT_COUPONS;
	opt->servers = 1;
	opt->max_tries = DEFAULT_MAX_TRIES;
	opt->lease_ms = DEFAULT_LEASE_MS;
	opt->pause_every = 1;
	opt->lock_wait_ms = DEFAULT_LOCK_WAIT_MS;
	opt->confirm = DEFAULT_CONFIRM;
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
			case O_STRATEGY:
				memset(opt->strategies, 0, sizeof(opt->strategies));
				if (for_each_item(opt, optarg, add_strategy) == 0)
					bad_argument("--strategy needs at least one strategy");
				opt->strategies_given = true;
				break;
			case O_USERS:
				opt->users = (int) parse_int("--users", optarg, 1, 100000);
				users_set = true;
				break;
			case O_COUPONS:
				opt->coupons = parse_int("--coupons", optarg, 0, INT64_C(1000000000000000));
				opt->coupons_set = true;
				break;
			case O_SERVERS:
				opt->servers = (int) parse_int("--servers", optarg, 1, 1000);
				break;
			case O_RACE_WINDOW:
				opt->race_window_us = parse_int("--race-window", optarg, 0, 60000000);
				break;
			case O_MAX_TRIES:
				opt->max_tries = (int) parse_int("--max-tries", optarg, 1, 1000000);
				break;
			case O_JSON:
				opt->json = true;
				break;
			case O_ACK_LOG:
				opt->ack_log = optarg;
				break;
			case O_RECONNECT:
				opt->reconnect = true;
				break;
			case O_DSN:
				opt->dsn = optarg;
				break;
			case O_REDIS:
				if (for_each_item(opt, optarg, add_redis) == 0)
					bad_argument("--redis needs at least one HOST:PORT");
				break;
			case O_PAUSE_MS:
				opt->pause_ms = parse_int("--pause-ms", optarg, 0, 600000);
				break;
			case O_PAUSE_EVERY:
				opt->pause_every = parse_int("--pause-every", optarg, 1, INT64_MAX);
				break;
			case O_LEASE_MS:
				opt->lease_ms = parse_int("--lease-ms", optarg, 1, 3600000);
				break;
			case O_LOCK_WAIT_MS:
				opt->lock_wait_ms = parse_int("--lock-wait-ms", optarg, 0, 3600000);
				break;
			case O_KILL_SERVER:
				opt->kill_server_at = parse_int("--kill-server", optarg, 1, INT64_MAX);
				break;
			case O_RESTART_REDIS:
				opt->restart_redis_at = parse_int("--restart-redis", optarg, 1, INT64_MAX);
				opt->reconnect = true;
				break;
			case O_HOLD:
				opt->hold_us = llround(parse_seconds("--hold", optarg) * 1e6);
				break;
			case O_CONFIRM:
				opt->confirm = parse_fraction("--confirm", optarg);
				confirm_set = true;
				break;
			case 'T':
				opt->duration = parse_seconds("-T", optarg);
				opt->throughput = true;
				break;
			case 'c':
				if (for_each_item(opt, optarg, add_client_count) == 0)
					bad_argument("-c needs at least one client count");
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

	if (confirm_set && opt->hold_us == 0)
		bad_argument("--confirm applies to holds: give --hold=TTL");
	choose_strategies(opt);
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
