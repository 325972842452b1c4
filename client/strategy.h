/*-------------------------------------------------------------------------
 *
 * strategy.h
 *		The strategies, as a table (strategy.c).
 *
 * Floor: the strategies, as strategy.c (see the map in coupon-stress.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_STRESS_STRATEGY_H
#define COUPON_STRESS_STRATEGY_H

#include "common.h"

extern const StrategyDef builtin_strategies[];
extern const int n_builtin_strategies;

extern const StrategyDef *strategy_by_name(const char *name);
extern const StrategyDef *strategy_for(const Options *opt, int s);
extern int	strategies_redis(const Options *opt);
extern bool strategies_need_extension(const Options *opt);
extern const char *strategy_outside_pool(const Options *opt);

#endif							/* COUPON_STRESS_STRATEGY_H */
