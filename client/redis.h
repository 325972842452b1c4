/*-------------------------------------------------------------------------
 *
 * redis.h
 *		The Redis servers, through hiredis (redis.c).
 *
 * Floor: Redis, as redis.c (see the map in coupon-stress.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_STRESS_REDIS_H
#define COUPON_STRESS_REDIS_H

#include "common.h"

struct redisContext;

extern struct redisContext *redis_open(const Options *opt, int instance,
									   char *err, size_t errlen);
extern void redis_close(struct redisContext **ctx);
extern int	redis_fd(const struct redisContext *ctx);
extern bool redis_send(struct redisContext *ctx, const StepDef *step,
					   const char **values, int nvalues);
extern bool redis_send_command(struct redisContext *ctx, const char *command);
extern bool redis_wants_write(struct redisContext *ctx);
extern bool redis_flush(struct redisContext *ctx);
extern int	redis_read(struct redisContext *ctx, bool *ok, int64_t *value,
					   char *err, size_t errlen);
extern bool redis_setup_run(const Options *opt, Target *tgt, int ninstances);
extern bool redis_setup_point(const Options *opt, const Point *pt);
extern bool redis_read_stock(const Options *opt, int64_t *stock);

#endif							/* COUPON_STRESS_REDIS_H */
