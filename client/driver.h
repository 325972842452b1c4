/*-------------------------------------------------------------------------
 *
 * driver.h
 *		One process's share of a point (driver.c).
 *
 * Floor: the driver, as driver.c (see the map in coupon-stress.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_STRESS_DRIVER_H
#define COUPON_STRESS_DRIVER_H

#include "common.h"
#include "histogram.h"
#include "program.h"

/* The shared anonymous mapping for one point. */
typedef struct Shared
{
	volatile int abort;			/* stop everything now */
	int			nslots;
	Stats		slots[];		/* servers x threads */
} Shared;

extern int	run_share(const Options *opt, const Point *pt,
					  const Program *prog, int server, int nclients, int nthreads, Stats *slots,
					  Shared *shared, int ready_fd, int go_fd, int ack_fd);

#endif							/* COUPON_STRESS_DRIVER_H */
