/*-------------------------------------------------------------------------
 *
 * report.c
 *		The result table, the JSON output and the progress lines.
 *
 * The report opens, as pgbench's does, with "name = value" lines that say
 * what was run and against what, then prints one row per point (strategy
 * and client count) as soon as the point is finished, so a long sweep
 * shows its results as it goes.  With --json nothing but one JSON object
 * goes to stdout, at the end:
 *
 *	{"results": [ {"strategy": "claim", "clients": 64, ...}, ... ]}
 *
 * with the keys strategy, clients, granted, ledger_rows, counter, oversold,
 * lost_updates, correct, claims_per_s, attempts_per_s, p50_ms, p95_ms,
 * p99_ms, max_ms, retries, errors; counter and lost_updates are null for
 * insert-only, which has no counter.  Progress lines go to stderr in
 * pgbench's format, one every -P seconds, with the rates of the last
 * interval:
 *
 *	progress: 5.0 s, 2051.2 tps, lat 4.873 ms stddev 1.201, 0 failed
 *
 * followed by the number retried (occ) and the point in parentheses.
 *
 *-------------------------------------------------------------------------
 */
#include <math.h>
#include <string.h>

#include "coupon-stress.h"

/* naive is the race and insert-only the ceiling: neither is meant to be exact */
bool
strategy_is_exact(Strategy s)
{
	return s != S_NAIVE && s != S_INSERT_ONLY;
}

void
report_header(const Options *opt, const Target *tgt, int threads)
{
	int			i;

	printf("mode = %s\n", opt->throughput ? "throughput" : "burst");
	if (opt->throughput)
	{
		printf("duration = %g s\n", opt->duration);
		printf("clients =");
		for (i = 0; i < opt->nclients; i++)
			printf("%s%d", i ? "," : " ", opt->clients[i]);
		printf("\n");
	}
	else
		printf("users = %d\n", opt->users);
	printf("coupons = %lld\n", (long long) opt->coupons);
	printf("server processes = %d\n", opt->servers);
	printf("threads per process = %d (at most one per client)\n", threads);
	printf("race window = %lld us\n", (long long) opt->race_window_us);
	if (opt->strategies[S_OCC])
		printf("occ max tries = %d\n", opt->max_tries);
	printf("server = PostgreSQL %s\n", tgt->server_version);
	if (tgt->extschema)
		printf("extension = coupon %s in schema %s\n", tgt->ext_version,
			   tgt->extschema_name);
	else
		printf("extension = not installed\n");
	printf("\n%-11s %7s %9s %9s %10s %8s %8s %7s %10s %10s %8s %8s %8s %8s %7s %6s\n",
		   "strategy", "clients", "granted", "ledger", "counter", "oversold",
		   "lost", "correct", "claims/s", "attempts/s", "p50 ms", "p95 ms",
		   "p99 ms", "max ms", "retries", "errors");
	fflush(stdout);
}

void
report_row(const Row *r)
{
	char		counter[32] = "-";
	char		lost[32] = "-";

	if (r->has_counter)
		snprintf(counter, sizeof(counter), "%lld", (long long) r->counter);
	if (r->has_lost)
		snprintf(lost, sizeof(lost), "%lld", (long long) r->lost_updates);
	printf("%-11s %7d %9lld %9lld %10s %8lld %8s %7s %10.1f %10.1f %8.3f %8.3f %8.3f %8.3f %7lld %6lld\n",
		   strategy_names[r->strategy], r->clients, (long long) r->granted,
		   (long long) r->ledger_rows, counter, (long long) r->oversold, lost,
		   r->correct ? "yes" : "no", r->claims_per_s, r->attempts_per_s,
		   r->p50_ms, r->p95_ms, r->p99_ms, r->max_ms,
		   (long long) r->retries, (long long) r->errors);
	fflush(stdout);
}

void
report_footer(const Row *rows, int nrows, bool aborted)
{
	int			i;
	bool		shown = false;
	bool		inexact = false;

	for (i = 0; i < nrows; i++)
	{
		if (!strategy_is_exact(rows[i].strategy))
			shown = true;
		else if (!rows[i].correct)
			inexact = true;
	}
	printf("\n");
	if (shown)
		printf("naive (the race) and insert-only (the ceiling, no check) are "
			   "shown for comparison and are not expected to be correct.\n");
	if (aborted)
		printf("The run was aborted: the rows above are incomplete.\n");
	else if (inexact)
		printf("A correct strategy was not exact: see the rows with correct = no.\n");
	else
		printf("Every correct strategy was exact.\n");
	fflush(stdout);
}

static void
json_string(const char *s)
{
	putchar('"');
	for (; *s; s++)
	{
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char) *s < 0x20)
			printf("\\u%04x", (unsigned char) *s);
		else
			putchar(*s);
	}
	putchar('"');
}

void
report_json(const Row *rows, int nrows)
{
	int			i;

	printf("{\"results\": [");
	for (i = 0; i < nrows; i++)
	{
		const Row  *r = &rows[i];

		printf("%s\n  {\"strategy\": ", i ? "," : "");
		json_string(strategy_names[r->strategy]);
		printf(", \"clients\": %d, \"granted\": %lld, \"ledger_rows\": %lld",
			   r->clients, (long long) r->granted, (long long) r->ledger_rows);
		if (r->has_counter)
			printf(", \"counter\": %lld", (long long) r->counter);
		else
			printf(", \"counter\": null");
		printf(", \"oversold\": %lld", (long long) r->oversold);
		if (r->has_lost)
			printf(", \"lost_updates\": %lld", (long long) r->lost_updates);
		else
			printf(", \"lost_updates\": null");
		printf(", \"correct\": %s", r->correct ? "true" : "false");
		printf(", \"claims_per_s\": %.1f, \"attempts_per_s\": %.1f",
			   r->claims_per_s, r->attempts_per_s);
		printf(", \"p50_ms\": %.3f, \"p95_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f",
			   r->p50_ms, r->p95_ms, r->p99_ms, r->max_ms);
		printf(", \"retries\": %lld, \"errors\": %lld}",
			   (long long) r->retries, (long long) r->errors);
	}
	printf("\n]}\n");
	fflush(stdout);
}

void
report_progress(double elapsed_s, const Point *pt, int64_t done,
				int64_t lat_sum_us, double lat_sum2, int64_t errors,
				int64_t retries, double interval_s)
{
	double		tps = interval_s > 0 ? done / interval_s : 0.0;
	double		mean = 0.0;
	double		stddev = 0.0;

	if (done > 0)
	{
		double		var;

		mean = (double) lat_sum_us / done;
		var = lat_sum2 / done - mean * mean;
		stddev = var > 0 ? sqrt(var) : 0.0;
	}
	fprintf(stderr,
			"progress: %.1f s, %.1f tps, lat %.3f ms stddev %.3f, %lld failed",
			elapsed_s, tps, mean / 1000.0, stddev / 1000.0, (long long) errors);
	if (pt->strategy == S_OCC)
		fprintf(stderr, ", %lld retried", (long long) retries);
	fprintf(stderr, " (%s, %d clients)\n", strategy_names[pt->strategy],
			pt->clients);
}
