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
 * and per-thread statistics are merged at the end.
 *
 * The files stand in floors, top to bottom; a file calls only files on
 * the floors below it ("make check-floors" reads that graph from the
 * objects and fails on a cycle):
 *
 *	entry			coupon-stress.c
 *									main (this file): the command line, then
 *									the run point by point, the exit status
 *	command line	options.c		the option table, parsing, --help, checks
 *	run				run.c			the plan (strategies x client counts), the
 *									"application server" processes, the
 *									barrier across them, progress, the rows
 *	driver			driver.c		one process's share of a point: its threads
 *									and the event loop over PostgreSQL and Redis
 *	client			client.c		one client: its connections, its calls,
 *									reconnects, the faults, the ack log
 *	strategies		program.c		a strategy prepared for a point, and the
 *									interpreter that decides what a client
 *									does after each answer
 *					strategy.c		the strategies as data, one table entry each
 *	setup, output	setup.c			the admin connection to PostgreSQL: schema
 *									reset, pools, the truth read back
 *					report.c		the result table, JSON, progress lines
 *	Redis			redis.c			hiredis: the clients' connections and the
 *									parent's setup and read-back
 *	statistics		histogram.c		latency histogram, per-thread statistics
 *	bottom			common.h		the types and constants every floor reads
 *
 * Each file's declarations are in its own header (driver.h, ...), and a
 * file includes the headers of what it uses; common.h includes nothing of
 * the client's.
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
