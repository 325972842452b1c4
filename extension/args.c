/*-------------------------------------------------------------------------
 *
 * args.c
 *		Argument checks and errors shared by the SQL functions.
 *
 * Floor: the bottom; calls nothing of the extension's.
 *
 * The functions are not STRICT: a NULL argument is a mistake worth an
 * error, not a silent NULL result.  Every check runs before anything is
 * changed, so a bad call changes nothing.
 *
 * Note about locking: none.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/int.h"
#include "datatype/timestamp.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "args.h"
#include "common.h"
#include "compat.h"

void
coupon_pool_missing(const char *pool)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("pool \"%s\" does not exist", pool)));
}

/* See coupon_pool_find() in load.c. */
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
coupon_claim_missing(int64 claim_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("claim %lld does not exist", (long long) claim_id)));
}

/*
 * A call that names the customer of claim_id found that it is no claim of
 * that customer (or none at all): the same error either way.
 */
void
coupon_claim_not_customers(int64 claim_id, const char *customer)
{
	ereport(ERROR,
			(errcode(ERRCODE_COUPON_NOT_CUSTOMERS),
			 errmsg("claim %lld is not a claim of customer \"%s\"",
					(long long) claim_id, customer)));
}

/*
 * A claim found released, or a hold whose time is up: the error says which.
 * A release of a hold before its expiry is a release; one at or after it
 * is its expiry.  With a request id, the claim was found as the answer to
 * a repeat of that request.
 */
void
coupon_claim_gone(int64 claim_id, TimestampTz released_at,
				  TimestampTz expires_at, const char *request_id)
{
	if (released_at != 0 && (expires_at == 0 || released_at < expires_at))
		ereport(ERROR,
				(errcode(ERRCODE_COUPON_CLAIM_RELEASED),
				 errmsg("claim %lld was released", (long long) claim_id),
				 request_id ?
				 errdetail("It was made with request id \"%s\"; a repeat never answers with a claim that is gone.",
						   request_id) : 0));
	ereport(ERROR,
			(errcode(ERRCODE_COUPON_HOLD_EXPIRED),
			 errmsg("hold %lld has expired", (long long) claim_id),
			 request_id ?
			 errdetail("It was made with request id \"%s\"; a repeat never answers with a claim that is gone.",
					   request_id) :
			 errdetail("It expired at %s.", timestamptz_to_str(expires_at)),
			 request_id ?
			 errhint("Its coupons are returned to the pool; claim again with a new request id.") :
			 errhint("Its coupons are returned to the pool; claim again.")));
}

void
coupon_arg_not_null(FunctionCallInfo fcinfo, int argno, const char *what)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
}

/* Check a text value of len bytes: not empty, at most maxlen. */
static void
check_text_length(const char *what, int len, int maxlen)
{
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
}

/* A non-empty text argument of at most maxlen bytes, as a C string. */
char *
coupon_arg_text(FunctionCallInfo fcinfo, int argno, const char *what,
				int maxlen)
{
	text	   *value;

	coupon_arg_not_null(fcinfo, argno, what);
	value = PG_GETARG_TEXT_PP(argno);
	check_text_length(what, VARSIZE_ANY_EXHDR(value), maxlen);
	return text_to_cstring(value);
}

char *
coupon_arg_pool(FunctionCallInfo fcinfo, int argno)
{
	return coupon_arg_text(fcinfo, argno, "pool name", COUPON_POOL_NAME_MAX);
}

/* An optional request id: NULL for none. */
char *
coupon_arg_request_id(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		return NULL;
	return coupon_arg_text(fcinfo, argno, "request_id", COUPON_REQUEST_ID_MAX);
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

/*
 * A hold's ttl argument, in microseconds.  The hold expires ttl after it
 * is granted (coupon_expiry_after), by the clock: not after the start of
 * the transaction, which may be long past, nor before a wait.
 */
int64
coupon_arg_ttl(FunctionCallInfo fcinfo, int argno)
{
	int64		ttl = coupon_arg_duration(fcinfo, argno, "ttl");

	if (ttl == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ttl must be positive")));
	if (ttl >= END_TIMESTAMP - GetCurrentTimestamp())
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("ttl is out of range"),
				 errdetail("clock_timestamp() + ttl is past the last timestamp PostgreSQL can store.")));
	return ttl;
}

/*
 * The clock plus usecs, at most the last timestamp PostgreSQL can store:
 * every time the extension writes to the ledger or compares with one must
 * be a valid timestamp (END_TIMESTAMP is not, and pg_dump's output of it
 * cannot be restored).  The clock may have moved since coupon_arg_ttl()
 * checked the ttl, hence the cap.
 */
static TimestampTz
time_after(int64 usecs)
{
	TimestampTz now = GetCurrentTimestamp();

	return usecs > COUPON_LAST_TIMESTAMP - now ? COUPON_LAST_TIMESTAMP :
		now + usecs;
}

/* The expiry of a hold of ttl granted now; 0 (none) for a ttl of 0. */
TimestampTz
coupon_expiry_after(int64 ttl)
{
	return ttl == 0 ? 0 : time_after(ttl);
}

/*
 * The end of a wait of wait microseconds from now; 0 for no wait.  Never
 * DT_NOEND, which stands for "no hold expires" (semaphore.c).
 */
TimestampTz
coupon_deadline(int64 wait)
{
	return wait == 0 ? 0 : time_after(wait);
}
