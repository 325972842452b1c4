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
 *	coupon-stress.c	main: the command line, then the run, point by point,
 *					and the exit status
 *	options.c		the command line: option table, parsing, --help, checks
 *	run.c			the run plan (strategies x client counts), forking the
 *					"application server" processes, the barrier across them,
 *					progress, the rows
 *	strategy.c		the strategies as data, one table entry each (steps,
 *					stock, exactness)
 *	program.c		a strategy prepared for a point, and the interpreter
 *					that decides what a client does after each answer
 *	driver.c		one process's share of a point: its threads and the
 *					asynchronous event loop over PostgreSQL and Redis
 *	client.c		one client: its connections, its calls, reconnects, the
 *					faults, the ack log
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
 * Exit status: 0 when every strategy that claims to be correct (all but
 * naive and insert-only) was correct at every point, 1 when one was not,
 * 2 for bad arguments, an unreachable server, or a run aborted by a lost
 * connection.
 *
 *-------------------------------------------------------------------------
 */
#include "options.h"
#include "run.h"

int
main(int argc, char **argv)
{
	Options		opt;
	Run		   *run;
	int			exit_code = 0;
	int			i;

	parse_options(argc, argv, &opt);
	run = run_start(&opt);
	for (i = 0; i < run_npoints(run) && exit_code != 2; i++)
	{
		switch (run_point(run, i))
		{
			case POINT_OK:
				break;
			case POINT_INEXACT:
				exit_code = 1;
				break;
			case POINT_FAILED:
				exit_code = 2;
				break;
		}
	}
	run_finish(run, exit_code == 2);
	return exit_code;
}
