/*-------------------------------------------------------------------------
 *
 * settings.h
 *		The coupon.* settings; see settings.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_SETTINGS_H
#define COUPON_SETTINGS_H

extern int	coupon_max_pools;
extern bool coupon_expiry_workers;
extern int	coupon_expiry_revisit_interval;

extern void coupon_settings_define(void);

#endif							/* COUPON_SETTINGS_H */
