/*-------------------------------------------------------------------------
 *
 * options.c
 *		The command line: the option table, parsing, --help, validation.
 *
 * The options follow pgbench's names where pgbench has the same thing
 * (-c, -j, -T, -P, -h, -p, -U, -d) and its manners: --help and --version
 * win wherever they stand, and a bad argument is one line saying what is
 * wrong, then where to look,
 *
 *	coupon-stress: invalid value "0" for --users: expected an integer from 1 to 100000
 *	Try "coupon-stress --help" for more information.
 *
 * with exit status 2 and nothing on stdout.  Each value is checked as it
 * is read (its form, its range); what needs the whole command line is
 * checked at the end (an option of the other mode, --servers against the
 * clients, the strategies against the Redis instances given and against
 * --hold).  The Options that come out are read only from then on.
 *
 * Floor: the command line, under the entry (coupon-stress.c) and beside
 * the run (run.c), which it does not call; it reads the strategy table
 * (strategy.c) for --strategy and --help.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "strategy.h"

#define DEFAULT_USERS		500
#define DEFAULT_COUPONS		50
#define THROUGHPUT_STOCK	INT64_C(1000000000)		/* "does not run out" */
#define DEFAULT_MAX_TRIES	64
#define DEFAULT_LEASE_MS	10000
#define DEFAULT_LOCK_WAIT_MS	60000
#define DEFAULT_CONFIRM		0.5

/* The option table: a code for each long option without a short form. */
enum
{
	O_STRATEGY = 1, O_USERS, O_COUPONS, O_SERVERS, O_RACE_WINDOW,
	O_MAX_TRIES, O_JSON, O_ACK_LOG, O_RECONNECT, O_DSN, O_REDIS,
	O_PAUSE_MS, O_PAUSE_EVERY, O_LEASE_MS, O_LOCK_WAIT_MS, O_KILL_SERVER,
	O_RESTART_REDIS, O_HOLD, O_CONFIRM, O_SPREAD
};

#define SHORT_OPTIONS		":T:c:j:P:h:p:U:d:V?"

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
	{"spread", required_argument, NULL, O_SPREAD},
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

/* What the checks at the end need to know was given. */
typedef struct Given
{
	bool		users;
	bool		clients;
	bool		confirm;
} Given;

/* --help, part 1: the modes and the strategies. */
static void
usage_modes(FILE *f)
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
}

/* --help, part 2: the other options. */
static void
usage_options(FILE *f)
{
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
			"Cluster (the connection is a coupon cluster's proxy, extension\n"
			"coupon_proxy; only claim runs there, and the ledger rows are counted\n"
			"on every node, through the connection strings of its PL/Proxy server):\n"
			"  --spread=NUM             create claim's pool spread over NUM nodes\n"
			"                           (default 1: on one node); only claim runs\n\n"
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
			"  -?, --help               show this help and exit\n\n",
			DEFAULT_MAX_TRIES, DEFAULT_CONFIRM, DEFAULT_LEASE_MS,
			DEFAULT_LOCK_WAIT_MS);
}

/* --help, part 3: what the columns and the exit status mean. */
static void
usage_columns(FILE *f)
{
	fputs("Columns: granted = calls that saw their grant committed; ledger = grant\n"
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
		  "aborted run.\n", f);
}

static void
usage(FILE *f)
{
	usage_modes(f);
	usage_options(f);
	usage_columns(f);
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
 * With --hold, claim alone, the one that can hold; with --spread, claim
 * alone, the one whose pool can be spread.
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
		if (opt->spread > 1 && opt->strategies[s] && !can_hold)
			bad_argument("--spread applies to the claim strategy only, not to %s",
						 def->name);
		if ((opt->hold_us > 0 || opt->spread > 1) && !opt->strategies_given)
			opt->strategies[s] = can_hold;
		else if (!opt->strategies_given)
		{
			opt->strategies[s] = def->redis <= opt->nredis;
			if (!opt->strategies[s])
				opt->skipped[opt->nskipped++] = def->name;
		}
		else if (opt->strategies[s] && def->redis > opt->nredis)
			bad_argument("strategy %s needs %d Redis instance%s: give --redis=HOST:PORT%s",
						 def->name, def->redis, def->redis > 1 ? "s" : "",
						 def->redis > 1 ? ",HOST:PORT,..." : "");
	}
}

static void
set_defaults(Options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->users = DEFAULT_USERS;
	opt->coupons = DEFAULT_COUPONS;
	opt->servers = 1;
	opt->max_tries = DEFAULT_MAX_TRIES;
	opt->lease_ms = DEFAULT_LEASE_MS;
	opt->pause_every = 1;
	opt->lock_wait_ms = DEFAULT_LOCK_WAIT_MS;
	opt->confirm = DEFAULT_CONFIRM;
	opt->spread = 1;
	opt->clients[0] = 1;
	opt->nclients = 1;
}

/* --help and --version win wherever they are, as in pgbench. */
static void
help_or_version(int argc, char **argv)
{
	int			i;

	for (i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-?") == 0)
		{
			usage(stdout);
			exit(0);
		}
		if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0)
		{
			printf("coupon-stress %s\n", CS_VERSION);
			exit(0);
		}
	}
}

/* An option of the modes, the strategies or the holds?  Then take it. */
static bool
run_option(Options *opt, Given *given, int c, const char *arg)
{
	switch (c)
	{
		case O_STRATEGY:
			memset(opt->strategies, 0, sizeof(opt->strategies));
			if (for_each_item(opt, arg, add_strategy) == 0)
				bad_argument("--strategy needs at least one strategy");
			opt->strategies_given = true;
			break;
		case O_USERS:
			opt->users = (int) parse_int("--users", arg, 1, 100000);
			given->users = true;
			break;
		case O_COUPONS:
			opt->coupons = parse_int("--coupons", arg, 0, INT64_C(1000000000000000));
			opt->coupons_set = true;
			break;
		case O_SERVERS:
			opt->servers = (int) parse_int("--servers", arg, 1, 1000);
			break;
		case O_RACE_WINDOW:
			opt->race_window_us = parse_int("--race-window", arg, 0, 60000000);
			break;
		case O_MAX_TRIES:
			opt->max_tries = (int) parse_int("--max-tries", arg, 1, 1000000);
			break;
		case O_HOLD:
			opt->hold_us = llround(parse_seconds("--hold", arg) * 1e6);
			break;
		case O_CONFIRM:
			opt->confirm = parse_fraction("--confirm", arg);
			given->confirm = true;
			break;
		case O_SPREAD:
			opt->spread = (int) parse_int("--spread", arg, 1, 32768);
			break;
		case 'T':
			opt->duration = parse_seconds("-T", arg);
			opt->throughput = true;
			break;
		case 'c':
			if (for_each_item(opt, arg, add_client_count) == 0)
				bad_argument("-c needs at least one client count");
			given->clients = true;
			break;
		case 'j':
			opt->threads = (int) parse_int("-j", arg, 1, 10000);
			break;
		default:
			return false;
	}
	return true;
}

/* An option of Redis, the faults, the connection or the output? */
static bool
other_option(Options *opt, int c, const char *arg)
{
	switch (c)
	{
		case O_REDIS:
			if (for_each_item(opt, arg, add_redis) == 0)
				bad_argument("--redis needs at least one HOST:PORT");
			break;
		case O_LEASE_MS:
			opt->lease_ms = parse_int("--lease-ms", arg, 1, 3600000);
			break;
		case O_LOCK_WAIT_MS:
			opt->lock_wait_ms = parse_int("--lock-wait-ms", arg, 0, 3600000);
			break;
		case O_PAUSE_MS:
			opt->pause_ms = parse_int("--pause-ms", arg, 0, 600000);
			break;
		case O_PAUSE_EVERY:
			opt->pause_every = parse_int("--pause-every", arg, 1, INT64_MAX);
			break;
		case O_KILL_SERVER:
			opt->kill_server_at = parse_int("--kill-server", arg, 1, INT64_MAX);
			break;
		case O_RESTART_REDIS:
			opt->restart_redis_at = parse_int("--restart-redis", arg, 1, INT64_MAX);
			opt->reconnect = true;
			break;
		case O_DSN:
			opt->dsn = arg;
			break;
		case 'h':
			opt->host = arg;
			break;
		case 'p':
			opt->port = arg;
			break;
		case 'U':
			opt->user = arg;
			break;
		case 'd':
			opt->dbname = arg;
			break;
		case 'P':
			opt->progress = parse_seconds("-P", arg);
			break;
		case O_JSON:
			opt->json = true;
			break;
		case O_ACK_LOG:
			opt->ack_log = arg;
			break;
		case O_RECONNECT:
			opt->reconnect = true;
			break;
		default:
			return false;
	}
	return true;
}

/* The checks that need the whole command line. */
static void
check_options(Options *opt, const Given *given)
{
	int			i;

	if (given->confirm && opt->hold_us == 0)
		bad_argument("--confirm applies to holds: give --hold=TTL");
	if (opt->spread > 1 && opt->hold_us > 0)
		bad_argument("--hold cannot run through a cluster's proxy; --spread needs one");
	choose_strategies(opt);
	if (opt->throughput && given->users)
		bad_argument("--users applies to burst mode; use -c with -T");
	if (!opt->throughput && given->clients)
		bad_argument("-c applies to throughput mode (-T); burst mode uses --users");
	if (opt->throughput && !opt->coupons_set)
		opt->coupons = THROUGHPUT_STOCK;
	if (!opt->throughput && opt->servers > opt->users)
		bad_argument("--servers (%d) exceeds --users (%d)", opt->servers, opt->users);
	if (opt->throughput)
	{
		for (i = 0; i < opt->nclients; i++)
			if (opt->servers > opt->clients[i])
				bad_argument("--servers (%d) exceeds -c (%d)", opt->servers,
							 opt->clients[i]);
	}
}

/* Fill *opt from the command line, or exit: 0 after --help, 2 when bad. */
void
parse_options(int argc, char **argv, Options *opt)
{
	Given		given = {false, false, false};
	int			c;

	set_defaults(opt);
	help_or_version(argc, argv);
	opterr = 0;
	while ((c = getopt_long(argc, argv, SHORT_OPTIONS, long_options,
							NULL)) != -1)
	{
		if (run_option(opt, &given, c, optarg) || other_option(opt, c, optarg))
			continue;
		if (c == ':')
			bad_argument("option %s needs a value", argv[optind - 1]);
		bad_argument("unknown option %s", argv[optind - 1]);
	}
	if (optind < argc)
		bad_argument("unexpected argument \"%s\"", argv[optind]);
	check_options(opt, &given);
}
