/*-------------------------------------------------------------------------
 *
 * run.h
 *		A run: its points, the server processes, the rows (run.c).
 *
 * Floor: the run, as run.c (see the map in coupon-stress.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_STRESS_RUN_H
#define COUPON_STRESS_RUN_H

#include "common.h"

typedef struct Run Run;

/* What a point concluded, for the exit status. */
typedef enum PointStatus
{
	POINT_OK,					/* correct, or not claimed to be */
	POINT_INEXACT,				/* a strategy claimed correct was not */
	POINT_FAILED				/* the run cannot go on */
} PointStatus;

extern Run *run_start(const Options *opt);
extern int	run_npoints(const Run *run);
extern PointStatus run_point(Run *run, int i);
extern void run_finish(Run *run, bool aborted);

#endif							/* COUPON_STRESS_RUN_H */
