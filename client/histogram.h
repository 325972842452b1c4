/*-------------------------------------------------------------------------
 *
 * histogram.h
 *		Latency histogram and per-thread statistics (histogram.c).
 *
 * Floor: the statistics, as histogram.c (see the map in coupon-stress.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_STRESS_HISTOGRAM_H
#define COUPON_STRESS_HISTOGRAM_H

#include "common.h"

/* Latency histogram: exact below 64 us, then 64 linear buckets per octave. */
#define HIST_SUB_BITS		6
#define HIST_SUB			(1 << HIST_SUB_BITS)
#define HIST_OCTAVES		42
#define HIST_BUCKETS		(HIST_SUB + HIST_OCTAVES * HIST_SUB)

typedef struct Histogram
{
	int64_t		count;
	int64_t		max_us;
	int64_t		buckets[HIST_BUCKETS];
} Histogram;

/*
 * Statistics of one worker thread.  They live in memory shared with the
 * parent process, which reads the counters while the run goes on (progress
 * lines) and everything after the worker has exited.  The owning thread
 * is the only writer; counters read for progress are updated with relaxed
 * atomic stores.
 */
typedef struct Stats
{
	int64_t		calls;			/* calls finished: granted, refused, failed */
	int64_t		granted;		/* calls the client saw succeed */
	int64_t		refused;		/* sold out */
	int64_t		errors;			/* failed calls, and steps that failed
								 * after a grant */
	int64_t		in_doubt;		/* failed while a commit of a grant may have
								 * been in flight (broken connection) */
	int64_t		retries;		/* conflicts, stale tokens, busy locks */
	int64_t		confirms;		/* confirms the client saw succeed */
	int64_t		confirms_late;	/* refused: the hold expired, or was
								 * returned */
	int64_t		confirms_in_doubt;	/* in flight on a broken connection */
	int64_t		lat_sum_us;		/* over granted and refused calls */
	double		lat_sum2;		/* sum of squares, us^2 */
	int64_t		start_ns;		/* release time of this thread */
	int64_t		end_ns;			/* when its last client finished */
	int			aborted;		/* a connection broke without --reconnect */
	int			setup_failed;	/* a connection could not be opened */
	char		first_error[CS_ERRMSG_LEN];
	Histogram	hist;
} Stats;

extern void hist_add(Histogram *h, int64_t us);
extern void hist_merge(Histogram *into, const Histogram *from);
extern double hist_percentile_ms(const Histogram *h, double p);
extern void stats_merge(Stats *into, const Stats *from);
extern void stat_add(int64_t *counter, int64_t delta);
extern int64_t stat_get(const int64_t *counter);
extern void stat_add_double(double *sum, double delta);
extern double stat_get_double(const double *sum);
extern void set_first_error(Stats *st, const char *fmt,...) CS_PRINTF(2, 3);

#endif							/* COUPON_STRESS_HISTOGRAM_H */
