/*-------------------------------------------------------------------------
 *
 * compat.h
 *		Differences between the PostgreSQL majors coupon builds against.
 *
 * The rest of the code is written for the newest API; each difference is
 * hidden here behind one small definition or static inline wrapper, as
 * pg_wait_sampling's compat.h and pgvector do, so that no other file needs
 * a PG_VERSION_NUM test.  Supported: PostgreSQL 15 to 18.
 *
 *-------------------------------------------------------------------------
 */
#ifndef COUPON_COMPAT_H
#define COUPON_COMPAT_H

/* PostgreSQL 16 moved the varlena macros out of postgres.h. */
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

/*
 * PostgreSQL 18 replaced pg_attribute_noreturn(), written after the
 * declarator, with pg_noreturn, written before it.
 */
#ifndef pg_noreturn
#define pg_noreturn _Noreturn
#endif

#endif							/* COUPON_COMPAT_H */
