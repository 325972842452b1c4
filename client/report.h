/*-------------------------------------------------------------------------
 *
 * report.h
 *		The result table, the JSON output and progress lines (report.c).
 *
 * Floor: setup and output, as report.c (see the map in coupon-stress.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_STRESS_REPORT_H
#define COUPON_STRESS_REPORT_H

#include "common.h"

extern void report_header(const Options *opt, const Target *tgt, int threads);
extern void report_row(const Row *row);
extern void report_footer(const Row *rows, int nrows, bool aborted);
extern void report_json(const Options *opt, const Target *tgt,
						const Row *rows, int nrows);
extern void report_progress(double elapsed_s, const Point *pt,
							int64_t done, int64_t lat_sum_us, double lat_sum2,
							int64_t errors, int64_t retries,
							double interval_s);

#endif							/* COUPON_STRESS_REPORT_H */
