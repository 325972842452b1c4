/*-------------------------------------------------------------------------
 *
 * settings.h
 *		The coupon.* settings; see settings.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_SETTINGS_H
#define COUPON_SETTINGS_H

#include "utils/guc.h"

extern int	coupon_max_pools;
extern bool coupon_expiry_workers;
extern int	coupon_expiry_revisit_interval;

extern char *coupon_function_schema;

extern void coupon_settings_define_function_schema(GucStringCheckHook check_hook);
extern void coupon_settings_define(void);

#endif							/* COUPON_SETTINGS_H */
