/*-------------------------------------------------------------------------
 *
 * setup.h
 *		The admin connection to PostgreSQL (setup.c).
 *
 * Floor: setup and output, as setup.c (see the map in coupon-stress.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_STRESS_SETUP_H
#define COUPON_STRESS_SETUP_H

#include "libpq-fe.h"

#include "common.h"

extern PGconn *admin_connect(const Options *opt, bool quiet_fail);
extern PGconn *client_connect(const Options *opt, char *err, size_t errlen);
extern bool setup_run(PGconn *conn, const Options *opt, bool need_extension,
					  Target *tgt);
extern bool setup_point(PGconn *conn, const Options *opt, const Target *tgt,
						const Point *pt, int64_t *watermark);
extern bool read_back(PGconn *conn, const Options *opt, const Target *tgt,
					  const Point *pt, int64_t watermark, Row *row);
extern void try_checkpoint(PGconn *conn);

#endif							/* COUPON_STRESS_SETUP_H */
