/*-------------------------------------------------------------------------
 *
 * report.c
 *		The result table, the JSON output and the progress lines.
 *
 * The report opens, as pgbench's does, with "name = value" lines that say
 * what was run and against what (the durability settings of PostgreSQL and
 * of every Redis instance among them, since a comparison is only fair
 * between systems that keep what they acknowledge), then prints one row
 * per point (strategy and client count) as soon as the point is finished,
 * so a long sweep shows its results as it goes.  With --json nothing but
 * one JSON object goes to stdout, at the end, written with jansson:
 *
 *	{"settings": {"mode": "burst", ..., "postgresql": {...},
 *				  "redis": [{"address": ..., "appendfsync": ...}, ...]},
 *	 "results": [{"strategy": "claim", "exact": true, "clients": 64, ...},
 *				 ...]}
 *
 * with the result keys strategy, exact (the strategy claims to be
 * correct), clients, granted, ledger_rows, counter, oversold, lost_updates,
 * leaked, correct, claims_per_s, attempts_per_s, p50_ms, p95_ms, p99_ms,
 * max_ms, retries, errors; counter, lost_updates and leaked are null for
 * insert-only, which keeps no stock.  With --hold the settings have
 * hold_s and confirm (null without), and each row has confirms,
 * confirms_too_late, confirmed, expired, available (the counter) and held
 * after them; the table heads the counter "available" and adds confirms,
 * confirmed, expired and "too late" at the end.  Progress lines go to
 * stderr in pgbench's format, one every -P seconds, every figure for the
 * last interval:
 *
 *	progress: 5.0 s, 2051.2 tps, lat 4.873 ms stddev 1.201, 0 failed, 3 retried
 *
 * followed by the point in parentheses.
 *
 * Floor: setup and output, under the run (run.c), its only
 * caller; it calls nothing of the client's and knows the strategies only
 * by the rows.
 *
 *-------------------------------------------------------------------------
 */
#include <math.h>
#include <string.h>

#include <jansson.h>

#include "report.h"

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
	if (opt->pause_ms > 0)
		printf("pause = %lld ms between read and write, every %lld calls\n",
			   (long long) opt->pause_ms, (long long) opt->pause_every);
	if (opt->hold_us > 0)
		printf("holds = %g s, %g of them confirmed after the race window, "
			   "the rest abandoned\n", opt->hold_us / 1e6, opt->confirm);
	printf("max tries = %d\n", opt->max_tries);
	if (tgt->nredis >= CS_LOCK_INSTANCES)
		printf("lock lease = %lld ms, lock wait = %lld ms\n",
			   (long long) opt->lease_ms, (long long) opt->lock_wait_ms);
	if (opt->kill_server_at > 0)
		printf("fault = server 1 killed at its take %lld, before the commit\n",
			   (long long) opt->kill_server_at);
	if (opt->restart_redis_at > 0)
		printf("fault = Redis 1 crashed and restarted at server 1's take %lld, "
			   "before the commit\n", (long long) opt->restart_redis_at);
	printf("server = PostgreSQL %s, synchronous_commit = %s, fsync = %s\n",
		   tgt->server_version, tgt->synchronous_commit, tgt->fsync);
	if (tgt->proxy)
		printf("extension = coupon_proxy %s in schema %s: a cluster of %d nodes, "
			   "claim's pool spread over %d (the server above is the proxy)\n",
			   tgt->ext_version, tgt->extschema_name, tgt->nnodes, opt->spread);
	else if (tgt->extschema)
		printf("extension = coupon %s in schema %s\n", tgt->ext_version,
			   tgt->extschema_name);
	else
		printf("extension = not installed\n");
	for (i = 0; i < tgt->nredis; i++)
		printf("redis %d = %s:%d, Redis %s, appendonly = %s, appendfsync = %s\n",
			   i + 1, opt->redis_host[i], opt->redis_port[i],
			   tgt->redis_version[i], tgt->redis_appendonly[i],
			   tgt->redis_appendfsync[i]);
	for (i = 0; i < opt->nskipped; i++)
		printf("%s%s", i ? ", " : "skipped = ", opt->skipped[i]);
	if (opt->nskipped > 0)
		printf(" (no --redis)\n");
	printf("\n%-14s %7s %9s %9s %10s %8s %8s %8s %7s %10s %10s %8s %8s %8s %8s %7s %6s",
		   "strategy", "clients", "granted", "ledger",
		   opt->hold_us > 0 ? "available" : "counter", "oversold",
		   "lost", "leaked", "correct", "claims/s", "attempts/s", "p50 ms",
		   "p95 ms", "p99 ms", "max ms", "retries", "errors");
	if (opt->hold_us > 0)
		printf(" %9s %9s %9s %8s", "confirms", "confirmed", "expired",
			   "too late");
	printf("\n");
	fflush(stdout);
}

void
report_row(const Row *r)
{
	char		counter[32] = "-";
	char		lost[32] = "-";
	char		leaked[32] = "-";

	if (r->has_counter)
	{
		snprintf(counter, sizeof(counter), "%lld", (long long) r->counter);
		snprintf(lost, sizeof(lost), "%lld", (long long) r->lost_updates);
		snprintf(leaked, sizeof(leaked), "%lld", (long long) r->leaked);
	}
	printf("%-14s %7d %9lld %9lld %10s %8lld %8s %8s %7s %10.1f %10.1f %8.3f %8.3f %8.3f %8.3f %7lld %6lld",
		   r->strategy->name, r->clients, (long long) r->granted,
		   (long long) r->ledger_rows, counter, (long long) r->oversold, lost,
		   leaked, r->correct ? "yes" : "no", r->claims_per_s,
		   r->attempts_per_s, r->p50_ms, r->p95_ms, r->p99_ms, r->max_ms,
		   (long long) r->retries, (long long) r->errors);
	if (r->holds)
		printf(" %9lld %9lld %9lld %8lld", (long long) r->confirms,
			   (long long) r->confirmed, (long long) r->expired,
			   (long long) r->confirms_late);
	printf("\n");
	fflush(stdout);
}

/* Did one of the first nrows rows run strategy s? */
static bool
ran(const Row *rows, int nrows, const StrategyDef *s)
{
	int			i;

	for (i = 0; i < nrows; i++)
		if (rows[i].strategy == s)
			return true;
	return false;
}

void
report_footer(const Row *rows, int nrows, bool aborted)
{
	int			i;
	int			shown = 0;
	bool		inexact = false;

	for (i = 0; i < nrows; i++)
		inexact |= rows[i].strategy->exact && !rows[i].correct;
	printf("\n");
	/* the rows run the plan's first client count first: table order */
	for (i = 0; i < nrows; i++)
	{
		const StrategyDef *s = rows[i].strategy;

		if (s->exact || ran(rows, i, s))
			continue;
		printf("%s%s", shown++ ? " and " : "", s->name);
	}
	if (shown > 0)
		printf(" %s shown for comparison and not meant to be correct.\n",
			   shown > 1 ? "are" : "is");
	if (aborted)
		printf("The run was aborted: the rows above are incomplete.\n");
	else if (inexact)
		printf("A correct strategy was not exact: see the rows with correct = no.\n");
	else
		printf("Every correct strategy was exact.\n");
	fflush(stdout);
}

/* A number rounded to places decimals, for JSON. */
static json_t *
json_rounded(double v, int places)
{
	double		scale = pow(10.0, places);

	return json_real(round(v * scale) / scale);
}

/* An integer, or null when the row has no stock to compare with. */
static json_t *
json_stock(const Row *r, int64_t v)
{
	return r->has_counter ? json_integer(v) : json_null();
}

/* The keys of a row of holds. */
static json_t *
json_holds(const Row *r)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:o, s:I}",
					 "confirms", (json_int_t) r->confirms,
					 "confirms_too_late", (json_int_t) r->confirms_late,
					 "confirmed", (json_int_t) r->confirmed,
					 "expired", (json_int_t) r->expired,
					 "available", json_stock(r, r->counter),
					 "held", (json_int_t) r->held);
}

static json_t *
json_row(const Row *r)
{
	json_t	   *o;

	o = json_pack("{s:s, s:b, s:i, s:I, s:I, s:o, s:I, s:o, s:o, s:b,"
				  " s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:I}",
				  "strategy", r->strategy->name,
				  "exact", r->strategy->exact,
				  "clients", r->clients,
				  "granted", (json_int_t) r->granted,
				  "ledger_rows", (json_int_t) r->ledger_rows,
				  "counter", json_stock(r, r->counter),
				  "oversold", (json_int_t) r->oversold,
				  "lost_updates", json_stock(r, r->lost_updates),
				  "leaked", json_stock(r, r->leaked),
				  "correct", r->correct,
				  "claims_per_s", json_rounded(r->claims_per_s, 1),
				  "attempts_per_s", json_rounded(r->attempts_per_s, 1),
				  "p50_ms", json_rounded(r->p50_ms, 3),
				  "p95_ms", json_rounded(r->p95_ms, 3),
				  "p99_ms", json_rounded(r->p99_ms, 3),
				  "max_ms", json_rounded(r->max_ms, 3),
				  "retries", (json_int_t) r->retries,
				  "errors", (json_int_t) r->errors);

	if (r->holds)
		json_object_update_new(o, json_holds(r));
	return o;
}

/* An option that is off (0) is null. */
static json_t *
json_option(int64_t v)
{
	return v > 0 ? json_integer(v) : json_null();
}

/* The mode's own settings: users, or duration and client counts. */
static json_t *
json_mode(const Options *opt)
{
	json_t	   *clients = json_array();
	int			i;

	if (!opt->throughput)
		return json_pack("{s:s, s:i}", "mode", "burst", "users", opt->users);
	for (i = 0; i < opt->nclients; i++)
		json_array_append_new(clients, json_integer(opt->clients[i]));
	return json_pack("{s:s, s:f, s:o}", "mode", "throughput",
					 "duration_s", opt->duration, "clients", clients);
}

static json_t *
json_settings(const Options *opt, const Target *tgt)
{
	json_t	   *o = json_mode(opt);
	json_t	   *redis = json_array();
	json_t	   *skip = json_array();
	int			i;

	json_object_update_new(o, json_pack("{s:I, s:i, s:I, s:I, s:I, s:I, s:i, s:o, s:o}",
									"coupons", (json_int_t) opt->coupons,
									"servers", opt->servers,
									"race_window_us", (json_int_t) opt->race_window_us,
									"pause_ms", (json_int_t) opt->pause_ms,
									"pause_every", (json_int_t) opt->pause_every,
									"lease_ms", (json_int_t) opt->lease_ms,
									"max_tries", opt->max_tries,
									"kill_server_at", json_option(opt->kill_server_at),
									"restart_redis_at", json_option(opt->restart_redis_at)));
	json_object_set_new(o, "hold_s", opt->hold_us > 0 ?
						json_real(opt->hold_us / 1e6) : json_null());
	json_object_set_new(o, "confirm", opt->hold_us > 0 ?
						json_real(opt->confirm) : json_null());
	json_object_set_new(o, "postgresql",
						json_pack("{s:s, s:s, s:s, s:o}",
								  "version", tgt->server_version,
								  "synchronous_commit", tgt->synchronous_commit,
								  "fsync", tgt->fsync,
								  "extension", tgt->extschema && !tgt->proxy ?
								  json_string(tgt->ext_version) : json_null()));
	json_object_set_new(o, "cluster", !tgt->proxy ? json_null() :
						json_pack("{s:s, s:i, s:i}",
								  "coupon_proxy", tgt->ext_version,
								  "nodes", tgt->nnodes,
								  "spread", opt->spread));
	for (i = 0; i < tgt->nredis; i++)
	{
		char		address[300];

		snprintf(address, sizeof(address), "%s:%d", opt->redis_host[i],
				 opt->redis_port[i]);
		json_array_append_new(redis,
							  json_pack("{s:s, s:s, s:s, s:s}",
										"address", address,
										"version", tgt->redis_version[i],
										"appendonly", tgt->redis_appendonly[i],
										"appendfsync", tgt->redis_appendfsync[i]));
	}
	json_object_set_new(o, "redis", redis);
	for (i = 0; i < opt->nskipped; i++)
		json_array_append_new(skip, json_string(opt->skipped[i]));
	json_object_set_new(o, "skipped", skip);
	return o;
}

void
report_json(const Options *opt, const Target *tgt, const Row *rows, int nrows)
{
	json_t	   *doc = json_object();
	json_t	   *results = json_array();
	int			i;

	for (i = 0; i < nrows; i++)
		json_array_append_new(results, json_row(&rows[i]));
	json_object_set_new(doc, "settings", json_settings(opt, tgt));
	json_object_set_new(doc, "results", results);
	json_dumpf(doc, stdout, JSON_INDENT(1) | JSON_PRESERVE_ORDER |
			   JSON_REAL_PRECISION(12));
	printf("\n");
	json_decref(doc);
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
			"progress: %.1f s, %.1f tps, lat %.3f ms stddev %.3f, %lld failed, "
			"%lld retried (%s, %d clients)\n",
			elapsed_s, tps, mean / 1000.0, stddev / 1000.0, (long long) errors,
			(long long) retries, pt->strategy->name, pt->clients);
}
