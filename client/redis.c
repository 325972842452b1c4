/*-------------------------------------------------------------------------
 *
 * redis.c
 *		The Redis servers, through hiredis: the clients' non-blocking
 *		connections and the parent's setup and read-back.
 *
 * The clients drive Redis the way they drive PostgreSQL: every connection
 * is non-blocking and a worker thread's event loop polls its socket next to
 * the PostgreSQL sockets, so one thread serves hundreds of clients whatever
 * they are waiting for.  hiredis (0.14 and later) splits a command into
 * redisAppendCommandArgv, which formats it into the context's output
 * buffer, redisBufferWrite, which writes what the socket takes now, and
 * redisBufferRead and redisGetReply, which read what has arrived and parse
 * at most one answer without blocking.  A client has at most one command
 * in flight per instance, so an answer is never left behind in hiredis's
 * buffer while poll() waits on the socket.
 *
 * Every step is a Lua script sent with EVAL, so what it does runs as one
 * command (Redis runs scripts one at a time) and its answer is an integer.
 * An error answer, or a connection that breaks, is reported to the caller,
 * which decides; a broken context is closed and opened again before the
 * client's next call.
 *
 * The parent process keeps no connection open: before a run it asks each
 * instance for its version and its persistence settings (appendonly,
 * appendfsync), which the report prints next to PostgreSQL's, and whether
 * the first one allows the DEBUG command that --restart-redis needs; before a
 * point it sets the stock of the redis strategy, or deletes the lock and
 * resets the fencing counters of the redlock strategies; after the point
 * it reads the stock back.  Those short blocking connections wait up to
 * RESTART_PATIENCE_S seconds for an instance that --restart-redis has just
 * crashed and that is loading its data again.
 *
 * Floor: Redis, under a client (client.c), the run (run.c) and the
 * setup (setup.c, which reads the Redis stock back through it); it calls
 * nothing of the client's.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <hiredis/sds.h>

#include "redis.h"

#define CONNECT_TIMEOUT_MS		2000
#define RESTART_PATIENCE_S		30

/* Open a non-blocking connection to instance (an index into --redis). */
redisContext *
redis_open(const Options *opt, int instance, char *err, size_t errlen)
{
	const char *host = opt->redis_host[instance];
	int			port = opt->redis_port[instance];
	redisContext *ctx = redisConnectNonBlock(host, port);
	struct pollfd pfd;
	int			soerr = 0;
	socklen_t	len = sizeof(soerr);

	if (ctx == NULL || ctx->err)
	{
		snprintf(err, errlen, "could not connect to Redis at %s:%d: %s",
				 host, port, ctx ? ctx->errstr : "out of memory");
		redis_close(&ctx);
		return NULL;
	}
	pfd.fd = ctx->fd;
	pfd.events = POLLOUT;
	pfd.revents = 0;
	if (poll(&pfd, 1, CONNECT_TIMEOUT_MS) != 1)
		soerr = ETIMEDOUT;
	else if (getsockopt(ctx->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
		soerr = errno;
	if (soerr != 0)
	{
		snprintf(err, errlen, "could not connect to Redis at %s:%d: %s",
				 host, port, strerror(soerr));
		redis_close(&ctx);
		return NULL;
	}
	return ctx;
}

void
redis_close(redisContext **ctx)
{
	if (*ctx)
		redisFree(*ctx);
	*ctx = NULL;
}

int
redis_fd(const redisContext *ctx)
{
	return ctx->fd;
}

/* Write what the socket takes now.  False when the connection is gone. */
bool
redis_flush(redisContext *ctx)
{
	int			done;

	return redisBufferWrite(ctx, &done) == REDIS_OK;
}

/* Is part of a command still waiting to be written? */
bool
redis_wants_write(redisContext *ctx)
{
	return ctx->obuf != NULL && sdslen(ctx->obuf) > 0;
}

/* Send a step's script: EVAL script nkeys keys... values... */
bool
redis_send(redisContext *ctx, const StepDef *step, const char **values,
		   int nvalues)
{
	const char *argv[3 + 2 + CS_MAX_ARGS];
	char		nkeys_s[4];
	int			argc = 0;
	int			nkeys = 0;
	int			i;

	while (nkeys < 2 && step->keys[nkeys] != NULL)
		nkeys++;
	snprintf(nkeys_s, sizeof(nkeys_s), "%d", nkeys);
	argv[argc++] = "EVAL";
	argv[argc++] = step->text;
	argv[argc++] = nkeys_s;
	for (i = 0; i < nkeys; i++)
		argv[argc++] = step->keys[i];
	for (i = 0; i < nvalues; i++)
		argv[argc++] = values[i];
	if (redisAppendCommandArgv(ctx, argc, argv, NULL) != REDIS_OK)
		return false;
	return redis_flush(ctx);
}

/* Send a plain command, space separated, without arguments to quote. */
bool
redis_send_command(redisContext *ctx, const char *command)
{
	return redisAppendCommand(ctx, command) == REDIS_OK && redis_flush(ctx);
}

/*
 * Interpret an answer: an integer (nil is 0, a status is 1), or an error
 * with its message.
 */
static void
answer_value(redisReply *reply, bool *ok, int64_t *value, char *err,
			 size_t errlen)
{
	*ok = true;
	*value = 0;
	switch (reply->type)
	{
		case REDIS_REPLY_INTEGER:
			*value = reply->integer;
			break;
		case REDIS_REPLY_STRING:
			*value = strtoll(reply->str, NULL, 10);
			break;
		case REDIS_REPLY_STATUS:
			*value = 1;
			break;
		case REDIS_REPLY_ERROR:
			*ok = false;
			snprintf(err, errlen, "%s", reply->str);
			break;
		default:
			break;
	}
}

/*
 * Read what has arrived.  Returns 1 with the answer in ok/value/err, 0
 * when no whole answer is there yet, -1 when the connection is gone (err
 * says why).
 */
int
redis_read(redisContext *ctx, bool *ok, int64_t *value, char *err,
		   size_t errlen)
{
	void	   *reply = NULL;

	if (redisBufferRead(ctx) != REDIS_OK ||
		redisGetReply(ctx, &reply) != REDIS_OK)
	{
		snprintf(err, errlen, "connection lost: %s",
				 ctx->errstr[0] ? ctx->errstr : "end of file");
		return -1;
	}
	if (reply == NULL)
		return 0;
	answer_value(reply, ok, value, err, errlen);
	freeReplyObject(reply);
	return 1;
}

/*
 * The parent's blocking connection to an instance, waiting for one that
 * is restarting (connection refused, or "LOADING" while it reads its data
 * back).
 */
static redisContext *
admin_open(const Options *opt, int instance, int patience_s)
{
	struct timeval tv = {CONNECT_TIMEOUT_MS / 1000, 0};
	int64_t		give_up = now_ns() + (int64_t) patience_s * 1000000000;

	for (;;)
	{
		redisContext *ctx = redisConnectWithTimeout(opt->redis_host[instance],
													opt->redis_port[instance],
													tv);
		redisReply *reply = NULL;

		if (ctx && !ctx->err)
		{
			redisSetTimeout(ctx, tv);
			reply = redisCommand(ctx, "PING");
			if (reply && reply->type != REDIS_REPLY_ERROR)
			{
				freeReplyObject(reply);
				return ctx;
			}
		}
		if (now_ns() >= give_up)
		{
			fprintf(stderr, "%s: could not connect to Redis at %s:%d: %s\n",
					progname, opt->redis_host[instance],
					opt->redis_port[instance],
					reply ? reply->str : ctx ? ctx->errstr : "out of memory");
			if (reply)
				freeReplyObject(reply);
			redis_close(&ctx);
			return NULL;
		}
		if (reply)
			freeReplyObject(reply);
		redis_close(&ctx);
		usleep(100 * 1000);
	}
}

/* Run a command on a blocking connection; false (reported) on error. */
static bool
admin_command(redisContext *ctx, const Options *opt, int instance,
			  redisReply **out, const char *fmt,...)
{
	va_list		ap;
	redisReply *reply;

	va_start(ap, fmt);
	reply = redisvCommand(ctx, fmt, ap);
	va_end(ap);
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
	{
		fprintf(stderr, "%s: Redis at %s:%d: %s\n", progname,
				opt->redis_host[instance], opt->redis_port[instance],
				reply ? reply->str : ctx->errstr);
		if (reply)
			freeReplyObject(reply);
		return false;
	}
	if (out)
		*out = reply;
	else
		freeReplyObject(reply);
	return true;
}

/* CONFIG GET name into out, "unknown" where CONFIG is not allowed. */
static void
config_value(redisContext *ctx, const char *name, char *out, size_t len)
{
	redisReply *reply = redisCommand(ctx, "CONFIG GET %s", name);

	snprintf(out, len, "unknown");
	if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
		reply->element[1]->type == REDIS_REPLY_STRING)
		snprintf(out, len, "%s", reply->element[1]->str);
	if (reply)
		freeReplyObject(reply);
}

/* Check the first ninstances instances and note what they are. */
bool
redis_setup_run(const Options *opt, Target *tgt, int ninstances)
{
	int			i;

	tgt->nredis = ninstances;
	for (i = 0; i < ninstances; i++)
	{
		redisContext *ctx = admin_open(opt, i, 0);
		redisReply *reply;
		char	   *version;

		if (ctx == NULL)
			return false;
		if (!admin_command(ctx, opt, i, &reply, "INFO server"))
		{
			redis_close(&ctx);
			return false;
		}
		version = strstr(reply->str, "redis_version:");
		snprintf(tgt->redis_version[i], sizeof(tgt->redis_version[i]), "%.*s",
				 version ? (int) strcspn(version + 14, "\r\n") : 7,
				 version ? version + 14 : "unknown");
		freeReplyObject(reply);
		config_value(ctx, "appendonly", tgt->redis_appendonly[i],
					 sizeof(tgt->redis_appendonly[i]));
		config_value(ctx, "appendfsync", tgt->redis_appendfsync[i],
					 sizeof(tgt->redis_appendfsync[i]));
		if (i == 0 && opt->restart_redis_at > 0)
		{
			char		debug[16];

			config_value(ctx, "enable-debug-command", debug, sizeof(debug));
			if (strcmp(debug, "yes") != 0 && strcmp(debug, "local") != 0)
			{
				fprintf(stderr, "%s: --restart-redis needs DEBUG on Redis at %s:%d "
						"(enable-debug-command is %s; set it to local)\n",
						progname, opt->redis_host[0], opt->redis_port[0], debug);
				redis_close(&ctx);
				return false;
			}
		}
		redis_close(&ctx);
	}
	return true;
}

/*
 * Reset Redis for a point: the stock of a strategy that keeps it there;
 * the lock and the fencing counters of one that takes the lock.
 */
bool
redis_setup_point(const Options *opt, const Point *pt)
{
	const StrategyDef *s = pt->strategy;
	int			i;
	bool		ok = true;

	for (i = 0; i < s->redis && ok; i++)
	{
		redisContext *ctx = admin_open(opt, i, RESTART_PATIENCE_S);

		if (ctx == NULL)
			return false;
		if (s->stock == STOCK_REDIS && i == 0)
			ok = admin_command(ctx, opt, i, NULL, "SET %s %lld", CS_STOCK_KEY,
							   (long long) pt->initial);
		if (strategy_has_lock(s))
			ok = ok &&
				admin_command(ctx, opt, i, NULL, "DEL %s", CS_LOCK_KEY) &&
				admin_command(ctx, opt, i, NULL, "SET %s 0", CS_FENCE_KEY);
		redis_close(&ctx);
	}
	return ok;
}

/* The stock left in the first instance after a point. */
bool
redis_read_stock(const Options *opt, int64_t *stock)
{
	redisContext *ctx = admin_open(opt, 0, RESTART_PATIENCE_S);
	redisReply *reply;
	bool		ok;

	if (ctx == NULL)
		return false;
	ok = admin_command(ctx, opt, 0, &reply, "GET %s", CS_STOCK_KEY);
	if (ok)
	{
		ok = reply->type == REDIS_REPLY_STRING;
		if (ok)
			*stock = strtoll(reply->str, NULL, 10);
		else
			fprintf(stderr, "%s: the stock key %s is gone from Redis\n",
					progname, CS_STOCK_KEY);
		freeReplyObject(reply);
	}
	redis_close(&ctx);
	return ok;
}
