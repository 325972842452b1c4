/*-------------------------------------------------------------------------
 *
 * options.h
 *		The command line (options.c).
 *
 * Floor: the command line, as options.c (see the map in coupon-stress.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_STRESS_OPTIONS_H
#define COUPON_STRESS_OPTIONS_H

#include "common.h"

extern void parse_options(int argc, char **argv, Options *opt);

#endif							/* COUPON_STRESS_OPTIONS_H */
