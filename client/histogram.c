/*-------------------------------------------------------------------------
 *
 * histogram.c
 *		Mergeable latency histogram and per-thread statistics.
 *
 * Latencies are recorded in microseconds into log-linear buckets, the
 * layout of HdrHistogram: values below 64 us have a bucket each, above that
 * every power of two is split into 64 equal buckets, so a bucket is at most
 * 1/64 (1.6%) wide relative to its values.  A histogram is a plain array of
 * counts: threads fill their own without any lock, and merging two of them
 * is adding the arrays, which is how the per-thread and per-process results
 * become one, however many servers and threads took part.  A percentile is
 * read as the middle of the bucket holding that rank, capped by the exact
 * maximum, which is kept aside.
 *
 * The counters of a Stats are written by one thread and read by the parent
 * process for progress lines while the run goes on; they are accessed with
 * relaxed atomics so that a reader never sees a torn value.  Everything
 * else is read only after the writer has exited.
 *
 * Floor: the statistics, just above the bottom (common.h): the run, the
 * driver, a client and the interpreter count into it; it calls nothing.
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <string.h>

#include "histogram.h"

static int
bucket_of(int64_t us)
{
	int			e;
	int			idx;

	if (us < 0)
		us = 0;
	if (us < HIST_SUB)
		return (int) us;
	e = 63 - __builtin_clzll((unsigned long long) us);	/* >= HIST_SUB_BITS */
	idx = HIST_SUB + (e - HIST_SUB_BITS) * HIST_SUB +
		(int) ((us >> (e - HIST_SUB_BITS)) - HIST_SUB);
	return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* The middle of a bucket, in microseconds. */
static double
bucket_middle(int idx)
{
	int			octave;
	int64_t		low;
	int64_t		width;

	if (idx < HIST_SUB)
		return idx;
	octave = (idx - HIST_SUB) / HIST_SUB;
	low = (int64_t) (HIST_SUB + (idx - HIST_SUB) % HIST_SUB) << octave;
	width = (int64_t) 1 << octave;
	return low + (width - 1) / 2.0;
}

void
hist_add(Histogram *h, int64_t us)
{
	h->buckets[bucket_of(us)]++;
	h->count++;
	if (us > h->max_us)
		h->max_us = us;
}

void
hist_merge(Histogram *into, const Histogram *from)
{
	int			i;

	for (i = 0; i < HIST_BUCKETS; i++)
		into->buckets[i] += from->buckets[i];
	into->count += from->count;
	if (from->max_us > into->max_us)
		into->max_us = from->max_us;
}

/* The p-th quantile (0 < p <= 1) in milliseconds; 0 when empty. */
double
hist_percentile_ms(const Histogram *h, double p)
{
	int64_t		rank;
	int64_t		seen = 0;
	int			i;

	if (h->count == 0)
		return 0.0;
	rank = (int64_t) (p * (double) h->count + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	for (i = 0; i < HIST_BUCKETS; i++)
	{
		seen += h->buckets[i];
		if (seen >= rank)
		{
			double		us = bucket_middle(i);

			if (us > (double) h->max_us)
				us = (double) h->max_us;
			return us / 1000.0;
		}
	}
	return h->max_us / 1000.0;
}

void
stat_add(int64_t *counter, int64_t delta)
{
	__atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + delta,
					 __ATOMIC_RELAXED);
}

int64_t
stat_get(const int64_t *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

void
stat_add_double(double *sum, double delta)
{
	double		v;

	__atomic_load(sum, &v, __ATOMIC_RELAXED);
	v += delta;
	__atomic_store(sum, &v, __ATOMIC_RELAXED);
}

double
stat_get_double(const double *sum)
{
	double		v;

	__atomic_load(sum, &v, __ATOMIC_RELAXED);
	return v;
}

/* Add one thread's statistics to a total; times widen to cover both. */
void
stats_merge(Stats *into, const Stats *from)
{
	into->calls += from->calls;
	into->granted += from->granted;
	into->refused += from->refused;
	into->errors += from->errors;
	into->in_doubt += from->in_doubt;
	into->retries += from->retries;
	into->confirms += from->confirms;
	into->confirms_late += from->confirms_late;
	into->confirms_in_doubt += from->confirms_in_doubt;
	into->lat_sum_us += from->lat_sum_us;
	into->lat_sum2 += from->lat_sum2;
	if (from->start_ns != 0 &&
		(into->start_ns == 0 || from->start_ns < into->start_ns))
		into->start_ns = from->start_ns;
	if (from->end_ns > into->end_ns)
		into->end_ns = from->end_ns;
	into->aborted |= from->aborted;
	into->setup_failed |= from->setup_failed;
	if (into->first_error[0] == '\0' && from->first_error[0] != '\0')
		memcpy(into->first_error, from->first_error, sizeof(into->first_error));
	hist_merge(&into->hist, &from->hist);
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
