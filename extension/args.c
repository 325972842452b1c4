/*-------------------------------------------------------------------------
 *
 * args.c
 *		Checks of SQL arguments, and errors, shared by the SQL functions.
 *
 * The functions are not STRICT: a NULL argument is a mistake worth an
 * error, not a silent NULL result.  Every check runs before anything is
 * changed, so a bad call changes nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/int.h"
#include "datatype/timestamp.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "coupon.h"

void
coupon_pool_missing(const char *pool)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("pool \"%s\" does not exist", pool)));
}

/* See coupon_pool_slot() in ledger.c. */
void
coupon_pool_uncommitted(const char *pool)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("pool \"%s\" was created in this transaction", pool),
			 errdetail("Coupons are counted in shared memory from the committed pool only."),
			 errhint("Claim from it after the transaction has committed.")));
}

void
coupon_arg_not_null(FunctionCallInfo fcinfo, int argno, const char *what)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
}

/* A non-empty text argument of at most maxlen bytes, as a C string. */
char *
coupon_arg_text(FunctionCallInfo fcinfo, int argno, const char *what,
				int maxlen)
{
	text	   *value;
	int			len;

	coupon_arg_not_null(fcinfo, argno, what);
	value = PG_GETARG_TEXT_PP(argno);
	len = VARSIZE_ANY_EXHDR(value);
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", what)));
	if (len > maxlen)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is too long", what),
				 errdetail("It is %d bytes long; the limit is %d bytes.",
						   len, maxlen)));
	return text_to_cstring(value);
}

char *
coupon_arg_pool(FunctionCallInfo fcinfo, int argno)
{
	return coupon_arg_text(fcinfo, argno, "pool name", COUPON_POOL_NAME_MAX);
}

/* A bigint argument that must be at least min. */
int64
coupon_arg_int64(FunctionCallInfo fcinfo, int argno, const char *what,
				 int64 min)
{
	int64		value;

	coupon_arg_not_null(fcinfo, argno, what);
	value = PG_GETARG_INT64(argno);
	if (value < min)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be at least %lld", what, (long long) min),
				 errdetail("The value given was %lld.", (long long) value)));
	return value;
}

/* An integer argument that must be at least min. */
int32
coupon_arg_int32(FunctionCallInfo fcinfo, int argno, const char *what,
				 int32 min)
{
	int32		value;

	coupon_arg_not_null(fcinfo, argno, what);
	value = PG_GETARG_INT32(argno);
	if (value < min)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be at least %d", what, min),
				 errdetail("The value given was %d.", value)));
	return value;
}

/*
 * An interval argument that must not be negative, as microseconds, months
 * counted as 30 days as elsewhere in PostgreSQL.
 */
int64
coupon_arg_duration(FunctionCallInfo fcinfo, int argno, const char *what)
{
	Interval   *value;
	int64		days;
	int64		usecs;

	coupon_arg_not_null(fcinfo, argno, what);
	value = PG_GETARG_INTERVAL_P(argno);
	if (pg_mul_s64_overflow((int64) value->month, DAYS_PER_MONTH, &days) ||
		pg_add_s64_overflow(days, value->day, &days) ||
		pg_mul_s64_overflow(days, USECS_PER_DAY, &usecs) ||
		pg_add_s64_overflow(usecs, value->time, &usecs))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("%s is out of range", what)));
	if (usecs < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be negative", what)));
	return usecs;
}
