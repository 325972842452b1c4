/*-------------------------------------------------------------------------
 *
 * client.h
 *		One client: its connections and its calls (client.c).
 *
 * Floor: a client, as client.c (see the map in coupon-stress.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_STRESS_CLIENT_H
#define COUPON_STRESS_CLIENT_H

#include "common.h"
#include "histogram.h"
#include "program.h"

/* What the clients of one worker thread share during a point. */
typedef struct Worker
{
	const Options *opt;
	const Point *pt;
	StrategyCtx ctx;
	Stats	   *stats;			/* the thread's slot */
	volatile int *abort;		/* the point's flag: stop everything now */
	int			server;			/* the process's index; faults strike in 0 */
	int			ack_fd;			/* --ack-log, or -1 */
	int64_t		deadline_ns;	/* throughput mode; 0 in burst mode */
} Worker;

extern bool client_open(Worker *w, Client *c, char *err, size_t len);
extern void client_close(Client *c);
extern void client_start(Worker *w, Client *c);
extern void client_wake(Worker *w, Client *c);
extern void client_reconnect(Worker *w, Client *c);
extern void client_postgres_ready(Worker *w, Client *c);
extern void client_redis_ready(Worker *w, Client *c, int instance,
							   short revents);

#endif							/* COUPON_STRESS_CLIENT_H */
