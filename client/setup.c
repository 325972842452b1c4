/*-------------------------------------------------------------------------
 *
 * setup.c
 *		The admin connection: schema reset, pools, reading results back.
 *
 * The parent process keeps one ordinary connection for administration.  At
 * the start of a run it makes sure the extension is there (CREATE EXTENSION
 * IF NOT EXISTS coupon), finds the schema it lives in, and drops and
 * recreates the client's own schema coupon_stress:
 *
 *	counter		(id int primary key, remaining bigint, version bigint,
 *				fence bigint): the hot row of naive, for-update, atomic and
 *				the redlock strategies (fence is the last fencing token
 *				redlock-fenced recorded)
 *	occ_counter	the same, with the extension's trigger
 *				<extschema>.coupon_occ_version('version') BEFORE UPDATE
 *	grants		CREATE TABLE ... (LIKE <extschema>.coupon_claims INCLUDING
 *				ALL): every hand-written strategy and the insert-only
 *				ceiling write exactly the row the extension's ledger writes,
 *				with the same columns, defaults and indexes
 *
 * Before every point the tables are truncated and the counters set to the
 * initial stock; the claim strategy's pool "stress_claim" is dropped if it
 * exists and created again with that capacity.  After the point the truth
 * is read back, never from what the clients believe: the rows in the
 * ledger and the stock where the strategy keeps it (the counter's
 * remaining, the pool's available permits from <extschema>.coupon_pools,
 * or the Redis key, through redis.c).
 *
 * Holds (--hold) are read back once they have settled: none is held or in
 * flight any more, each one confirmed or returned by the expiry.  The
 * parent polls the pool until then, for up to the TTL plus 30 s, and
 * counts the point's ledger rows that are confirmed (live, no expiry),
 * expired (returned while still a hold) and still held.  Expiry is
 * the server's background workers' job (and that of claimers short of
 * coupons), so a run with --hold requires coupon.expiry_workers = on.
 *
 * Without the extension (not installed on the server) the grants table is
 * created with the same shape by hand, and only the strategies that do not
 * need the extension can run.
 *
 * A database with extension coupon_proxy instead is the proxy of a coupon
 * cluster: only claim runs there (run.c refuses the others), its pool is
 * created through the proxy (spread over --spread nodes), nothing else is
 * created, and the truth is read from the nodes: the pool's ledger rows
 * counted on every node (each checked to be its partition of the proxy's
 * cluster), through the connection strings of the cluster's PL/Proxy
 * server, and its stock from the proxy's coupon_pools once no transfer is
 * in flight between its shares.  Before a point, no node may keep a pool
 * of the name the proxy's drop did not reach.
 *
 * The run's header also notes PostgreSQL's durability settings
 * (synchronous_commit, fsync), which the Redis servers' are compared with.
 *
 * Floor: setup and output, under the run (run.c, which sets up, resets
 * and reads back) and a client (client.c, which opens its connection
 * here), above Redis (redis.c, for the stock the redis strategy keeps
 * there).
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "redis.h"
#include "setup.h"

#define SETTLE_POLL_MS		20
#define SETTLE_MARGIN_S		30	/* beyond the TTL, for the expiry */
#define NODE_PATIENCE_S		60	/* to connect to a node of a cluster */

static bool ensure_connection(PGconn *conn, int patience_s);
static void wait_for_backends(PGconn *conn);
static bool reset_tables(PGconn *conn, const Point *pt);
static bool pool_gone_from_nodes(PGconn *proxy, const Target *tgt,
								 const char *pool);

/* Connection keywords from the options; dsn first so the others win. */
static PGconn *
connect_with(const Options *opt)
{
	const char *keys[8];
	const char *vals[8];
	int			n = 0;

	if (opt->dsn)
	{
		keys[n] = "dbname";
		vals[n++] = opt->dsn;
	}
	if (opt->host)
	{
		keys[n] = "host";
		vals[n++] = opt->host;
	}
	if (opt->port)
	{
		keys[n] = "port";
		vals[n++] = opt->port;
	}
	if (opt->user)
	{
		keys[n] = "user";
		vals[n++] = opt->user;
	}
	if (opt->dbname)
	{
		keys[n] = "dbname";
		vals[n++] = opt->dbname;
	}
	keys[n] = "fallback_application_name";
	vals[n++] = "coupon-stress";
	keys[n] = NULL;
	vals[n] = NULL;
	return PQconnectdbParams(keys, vals, 1);
}

/* One line of a libpq error message, without the trailing newline. */
static void
copy_message(char *dst, size_t len, const char *msg)
{
	size_t		n;

	snprintf(dst, len, "%s", msg ? msg : "");
	n = strlen(dst);
	while (n > 0 && (dst[n - 1] == '\n' || dst[n - 1] == ' '))
		dst[--n] = '\0';
}

/*
 * Notices (the server's "terminating connection" warnings of a crash test,
 * for one) would be printed once per connection; the errors that matter
 * are counted and reported per point instead.
 */
static void
ignore_notice(void *arg, const char *message)
{
	(void) arg;
	(void) message;
}

PGconn *
client_connect(const Options *opt, char *err, size_t errlen)
{
	PGconn	   *conn = connect_with(opt);

	if (conn != NULL)
		PQsetNoticeProcessor(conn, ignore_notice, NULL);

	if (conn == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK)
	{
		copy_message(err, errlen, PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

PGconn *
admin_connect(const Options *opt, bool quiet_fail)
{
	char		err[1024];
	PGconn	   *conn = client_connect(opt, err, sizeof(err));

	if (conn == NULL && !quiet_fail)
		fprintf(stderr, "%s: could not connect to server: %s\n", progname, err);
	return conn;
}

/* Say that sql failed, with the connection's error message. */
static void
report_failure(PGconn *conn, const char *sql)
{
	char		msg[1024];

	copy_message(msg, sizeof(msg), PQerrorMessage(conn));
	fprintf(stderr, "%s: query failed: %s\nquery was: %s\n",
			progname, msg, sql);
}

/* Run a command; on error report it unless quiet.  Returns success. */
static bool
exec_ok(PGconn *conn, const char *sql, bool quiet)
{
	PGresult   *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);
	bool		ok = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);

	if (!ok && !quiet)
		report_failure(conn, sql);
	PQclear(res);
	return ok;
}

/* The rows of a query, or NULL (reported) if it failed. */
static PGresult *
query_rows(PGconn *conn, const char *sql)
{
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		return res;
	report_failure(conn, sql);
	PQclear(res);
	return NULL;
}

/*
 * One value of a one-row query with text parameters, into out (empty when
 * NULL).  Returns false on error (reported) or when no row came back.
 */
static bool
query_value(PGconn *conn, const char *sql, int nparams, const char *const *params,
			char *out, size_t len, bool *isnull)
{
	PGresult   *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	bool		ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		report_failure(conn, sql);
	if (ok)
	{
		if (isnull)
			*isnull = PQgetisnull(res, 0, 0);
		snprintf(out, len, "%s", PQgetvalue(res, 0, 0));
	}
	PQclear(res);
	return ok;
}

/*
 * Find extension coupon in the database, or else coupon_proxy: then the
 * database is the proxy of a coupon cluster (tgt->proxy).
 */
static bool
find_extension(PGconn *conn, Target *tgt)
{
	PGresult   *res = PQexec(conn,
							 "SELECT n.nspname, e.extversion, e.extname = 'coupon_proxy' "
							 "FROM pg_extension e "
							 "JOIN pg_namespace n ON n.oid = e.extnamespace "
							 "WHERE e.extname IN ('coupon', 'coupon_proxy') "
							 "ORDER BY e.extname LIMIT 1");
	bool		found = false;

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
	{
		const char *nsp = PQgetvalue(res, 0, 0);

		tgt->extschema = PQescapeIdentifier(conn, nsp, strlen(nsp));
		snprintf(tgt->extschema_name, sizeof(tgt->extschema_name), "%s", nsp);
		snprintf(tgt->ext_version, sizeof(tgt->ext_version), "%s",
				 PQgetvalue(res, 0, 1));
		tgt->proxy = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
		found = tgt->extschema != NULL;
	}
	PQclear(res);
	return found;
}

/*
 * The user and password PL/Proxy connects to the nodes with: those of the
 * server's user mapping for this user, else for PUBLIC (as PL/Proxy looks
 * them up); else none.  pg_user_mappings shows a mapping's options to its
 * user, and PUBLIC's only to the server's owner and superusers: a mapping
 * this user cannot read is said on stderr, and the nodes are read as this
 * user.
 */
static bool
find_user_mapping(PGconn *conn, Target *tgt)
{
	char		sql[1024];
	PGresult   *res;

	snprintf(sql, sizeof(sql),
			 "SELECT (SELECT o.option_value FROM pg_catalog.pg_options_to_table(m.umoptions) o "
			 "         WHERE o.option_name = 'user'), "
			 "       (SELECT o.option_value FROM pg_catalog.pg_options_to_table(m.umoptions) o "
			 "         WHERE o.option_name = 'password'), "
			 "       m.umuser <> 0 OR pg_catalog.pg_has_role(s.srvowner, 'USAGE') "
			 "       OR (SELECT r.rolsuper FROM pg_catalog.pg_roles r "
			 "            WHERE r.rolname = current_user) "
			 "FROM pg_catalog.pg_user_mappings m "
			 "JOIN pg_catalog.pg_foreign_server s ON s.oid = m.srvid "
			 "WHERE m.srvname = %s.coupon_proxy_cluster_name() "
			 "AND m.umuser IN (0, (SELECT r.oid FROM pg_catalog.pg_roles r "
			 "                      WHERE r.rolname = current_user)) "
			 "ORDER BY m.umuser DESC LIMIT 1",
			 tgt->extschema);
	if ((res = query_rows(conn, sql)) == NULL)
		return false;
	if (PQntuples(res) == 1)
	{
		if (strcmp(PQgetvalue(res, 0, 2), "t") != 0)
			fprintf(stderr, "%s: note: the options of the coupon cluster's user mapping for "
					"PUBLIC are the server owner's to read: the nodes are read as user "
					"\"%s\"\n", progname, PQuser(conn));
		snprintf(tgt->node_user, sizeof(tgt->node_user), "%s", PQgetvalue(res, 0, 0));
		if (!PQgetisnull(res, 0, 1) &&
			(tgt->node_password = strdup(PQgetvalue(res, 0, 1))) == NULL)
		{
			fprintf(stderr, "%s: out of memory\n", progname);
			exit(2);
		}
	}
	PQclear(res);
	return true;
}

/*
 * The target is a cluster's proxy: note the connection strings of its
 * nodes, in partition order, from the options of the cluster's PL/Proxy
 * server (p0 'host=... dbname=...', ...), and the user mapping's user and
 * password, so that the ledger rows can be counted on the nodes
 * themselves.  Holds are not read back through a proxy (their expiry is
 * each node's), so --hold is refused.
 */
static bool
find_nodes(PGconn *conn, const Options *opt, Target *tgt)
{
	char		sql[1024];
	PGresult   *res;
	int			i;

	if (opt->hold_us > 0)
	{
		fprintf(stderr, "%s: --hold cannot run through a coupon cluster's proxy "
				"(extension coupon_proxy): connect to a node to measure holds\n",
				progname);
		return false;
	}
	snprintf(sql, sizeof(sql), "SELECT cluster FROM %s.coupon_proxy_cluster",
			 tgt->extschema);
	if (!query_value(conn, sql, 0, NULL, tgt->cluster, sizeof(tgt->cluster), NULL))
		return false;
	snprintf(sql, sizeof(sql),
			 "SELECT o.option_value "
			 "FROM pg_catalog.pg_foreign_server s, "
			 "pg_catalog.pg_options_to_table(s.srvoptions) o "
			 "WHERE s.srvname = %s.coupon_proxy_cluster_name() "
			 "AND o.option_name ~ '^(p|partition_)[0-9]+$' "
			 "ORDER BY pg_catalog.substring(o.option_name, '[0-9]+$')::int",
			 tgt->extschema);
	if ((res = query_rows(conn, sql)) == NULL)
		return false;
	tgt->nnodes = PQntuples(res);
	if (tgt->nnodes == 0 || tgt->nnodes > CS_MAX_NODES)
		fprintf(stderr, "%s: the coupon cluster's server has %d partitions, "
				"expected 1 to %d\n", progname, tgt->nnodes, CS_MAX_NODES);
	for (i = 0; i < tgt->nnodes && tgt->nnodes <= CS_MAX_NODES; i++)
		if ((tgt->node_conninfo[i] = strdup(PQgetvalue(res, i, 0))) == NULL)
		{
			fprintf(stderr, "%s: out of memory\n", progname);
			exit(2);
		}
	PQclear(res);
	if (!find_user_mapping(conn, tgt))
		return false;
	if (opt->spread > tgt->nnodes)
		fprintf(stderr, "%s: --spread (%d) exceeds the cluster's %d nodes\n",
				progname, opt->spread, tgt->nnodes);
	return tgt->nnodes > 0 && tgt->nnodes <= CS_MAX_NODES &&
		opt->spread <= tgt->nnodes;
}

/*
 * LIKE copies the ledger's id default, nextval() of the extension's own
 * sequence.  Give the grants table a sequence of its own with the same
 * cache setting, so it costs the same and never touches the extension's
 * objects.  An identity column (copied by INCLUDING ALL) needs nothing.
 */
static bool
own_sequence(PGconn *conn, const Target *tgt)
{
	char		sql[1024];
	char		cache[32];
	bool		isnull = true;

	snprintf(sql, sizeof(sql),
			 "SELECT s.cache_size FROM pg_catalog.pg_attribute a "
			 "JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
			 "LEFT JOIN pg_catalog.pg_sequences s ON "
			 "format('%%I.%%I', s.schemaname, s.sequencename)::regclass = "
			 "pg_catalog.pg_get_serial_sequence('%s.coupon_claims', 'id')::regclass "
			 "WHERE a.attrelid = 'coupon_stress.grants'::regclass AND a.attname = 'id' "
			 "AND a.attidentity = '' "
			 "AND pg_catalog.pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%%'",
			 tgt->extschema);
	{
		PGresult   *res = PQexec(conn, sql);

		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			fprintf(stderr, "%s: query failed: %s", progname, PQerrorMessage(conn));
			PQclear(res);
			return false;
		}
		if (PQntuples(res) == 0)
		{
			PQclear(res);
			return true;
		}
		isnull = PQgetisnull(res, 0, 0);
		snprintf(cache, sizeof(cache), "%s", isnull ? "1" : PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	snprintf(sql, sizeof(sql),
			 "CREATE SEQUENCE coupon_stress.grants_id_seq AS bigint CACHE %s "
			 "OWNED BY coupon_stress.grants.id", cache);
	return exec_ok(conn, sql, false) &&
		exec_ok(conn, "ALTER TABLE coupon_stress.grants ALTER COLUMN id "
				"SET DEFAULT nextval('coupon_stress.grants_id_seq')", false);
}

/*
 * Holds that nobody confirms are returned by the server's expiry workers:
 * coupon preloaded (without it the setting does not exist) and
 * coupon.expiry_workers on.
 */
static bool
expiry_workers_on(PGconn *conn)
{
	char		val[64];
	bool		isnull = true;

	if (!query_value(conn, "SELECT current_setting('coupon.expiry_workers', true)",
					 0, NULL, val, sizeof(val), &isnull))
		return false;
	if (!isnull && strcmp(val, "on") == 0)
		return true;
	fprintf(stderr,
			"%s: --hold needs the server's expiry workers: coupon in "
			"shared_preload_libraries and coupon.expiry_workers = on (it is %s)\n",
			progname, isnull ? "not set" : val);
	return false;
}

/*
 * The extension is not in the database: create it if it is available.
 * False (reported) when it is not and a strategy chosen needs it.
 */
static bool
create_extension(PGconn *conn, bool need_extension, Target *tgt)
{
	PGresult   *res = PQexec(conn, "CREATE EXTENSION IF NOT EXISTS coupon");

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		char		msg[1024];

		copy_message(msg, sizeof(msg), PQerrorMessage(conn));
		if (need_extension)
		{
			fprintf(stderr,
					"%s: extension coupon is not available: %s\n"
					"Install it, or run only strategies that do without it.\n",
					progname, msg);
			PQclear(res);
			return false;
		}
	}
	PQclear(res);
	if (!find_extension(conn, tgt))
		tgt->extschema = NULL;
	return true;
}

/*
 * Set the database up for a run: note what the server is, make sure of
 * the extension (need_extension: a strategy chosen cannot do without it)
 * and create the client's schema afresh.
 */
bool
setup_run(PGconn *conn, const Options *opt, bool need_extension, Target *tgt)
{
	char		sql[1024];
	bool		isnull;

	if (!exec_ok(conn, "SET client_min_messages = warning", false))
		return false;
	if (!query_value(conn, "SHOW server_version", 0, NULL,
					 tgt->server_version, sizeof(tgt->server_version), &isnull) ||
		!query_value(conn, "SHOW synchronous_commit", 0, NULL,
					 tgt->synchronous_commit, sizeof(tgt->synchronous_commit),
					 &isnull) ||
		!query_value(conn, "SHOW fsync", 0, NULL, tgt->fsync,
					 sizeof(tgt->fsync), &isnull))
		return false;

	if (!find_extension(conn, tgt) && !create_extension(conn, need_extension, tgt))
		return false;
	if (tgt->proxy)
		return find_nodes(conn, opt, tgt);
	if (opt->spread > 1)
	{
		fprintf(stderr, "%s: --spread needs a coupon cluster's proxy "
				"(extension coupon_proxy); this database is not one\n", progname);
		return false;
	}

	if (opt->hold_us > 0 && !expiry_workers_on(conn))
		return false;

	if (!exec_ok(conn, "DROP SCHEMA IF EXISTS coupon_stress CASCADE", false) ||
		!exec_ok(conn, "CREATE SCHEMA coupon_stress", false) ||
		!exec_ok(conn, "CREATE TABLE coupon_stress.counter ("
				 "id int PRIMARY KEY, remaining bigint NOT NULL, "
				 "version bigint NOT NULL DEFAULT 0, "
				 "fence bigint NOT NULL DEFAULT 0)", false) ||
		!exec_ok(conn, "CREATE TABLE coupon_stress.occ_counter "
				 "(LIKE coupon_stress.counter INCLUDING ALL)", false))
		return false;

	if (tgt->extschema)
	{
		snprintf(sql, sizeof(sql),
				 "CREATE TRIGGER occ_version BEFORE UPDATE ON coupon_stress.occ_counter "
				 "FOR EACH ROW EXECUTE FUNCTION %s.coupon_occ_version('version')",
				 tgt->extschema);
		if (!exec_ok(conn, sql, false))
			return false;
		snprintf(sql, sizeof(sql),
				 "CREATE TABLE coupon_stress.grants "
				 "(LIKE %s.coupon_claims INCLUDING ALL)", tgt->extschema);
		if (!exec_ok(conn, sql, false))
			return false;
		if (!own_sequence(conn, tgt))
			return false;
	}
	else if (!exec_ok(conn,
					  "CREATE TABLE coupon_stress.grants ("
					  "id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
					  "pool text NOT NULL, customer text NOT NULL, "
					  "qty int NOT NULL, "
					  "claimed_at timestamptz NOT NULL DEFAULT now(), "
					  "released_at timestamptz)", false))
		return false;
	return true;
}

/*
 * Reset the database for one point.  *watermark is the highest claim id
 * in the extension's ledger before the point, so that only this point's
 * claims are counted.  Through a cluster's proxy only the pool is made
 * afresh, spread over --spread nodes; the drop took its ledger rows on
 * every node, so the watermark is 0.
 */
bool
setup_point(PGconn *conn, const Options *opt, const Target *tgt,
			const Point *pt, int64_t *watermark)
{
	char		sql[1024];
	char		val[64];
	char		spread[16];
	bool		isnull;
	bool		dropped;

	*watermark = 0;
	if (!ensure_connection(conn, 60))
	{
		fprintf(stderr, "%s: lost the connection to the server: %s",
				progname, PQerrorMessage(conn));
		return false;
	}
	wait_for_backends(conn);
	if (!tgt->proxy && !reset_tables(conn, pt))
		return false;

	if (strategy_in_pool(pt->strategy))
	{
		const char *params[3] = {strategy_pool(pt->strategy), val, spread};

		snprintf(sql, sizeof(sql),
				 "SELECT count(%s.coupon_pool_drop(pool)) FROM %s.coupon_pools "
				 "WHERE pool = $1", tgt->extschema, tgt->extschema);
		dropped = query_value(conn, sql, 1, params, val, sizeof(val), &isnull);
		/* a pool the proxy's drop cannot reach is named first */
		if (tgt->proxy && !pool_gone_from_nodes(conn, tgt, params[0]))
			return false;
		if (!dropped && (tgt->proxy || PQstatus(conn) != CONNECTION_OK))
			return false;
		snprintf(val, sizeof(val), "%lld", (long long) pt->initial);
		snprintf(spread, sizeof(spread), "%d", opt->spread);
		if (tgt->proxy)
			snprintf(sql, sizeof(sql),
					 "SELECT %s.coupon_pool_create($1, $2::bigint, 1, $3::int)",
					 tgt->extschema);
		else
			snprintf(sql, sizeof(sql),
					 "SELECT %s.coupon_pool_create($1, $2::bigint)", tgt->extschema);
		if (!query_value(conn, sql, tgt->proxy ? 3 : 2, params, val, sizeof(val),
						 &isnull))
			return false;
		if (tgt->proxy)
		{
			if (strcmp(val, "t") != 0)
				fprintf(stderr, "%s: the proxy did not create pool \"%s\" afresh\n",
						progname, params[0]);
			return strcmp(val, "t") == 0;
		}
		snprintf(sql, sizeof(sql),
				 "SELECT coalesce(max(id), 0) FROM %s.coupon_claims",
				 tgt->extschema);
		if (!query_value(conn, sql, 0, NULL, val, sizeof(val), &isnull))
			return false;
		*watermark = strtoll(val, NULL, 10);
	}
	return true;
}

/* Empty the client's own tables and set the counters to the stock. */
static bool
reset_tables(PGconn *conn, const Point *pt)
{
	char		sql[256];

	if (!exec_ok(conn, "TRUNCATE coupon_stress.grants, coupon_stress.counter, "
				 "coupon_stress.occ_counter RESTART IDENTITY", false))
		return false;
	snprintf(sql, sizeof(sql),
			 "INSERT INTO coupon_stress.counter (id, remaining) VALUES (1, %lld)",
			 (long long) pt->initial);
	if (!exec_ok(conn, sql, false))
		return false;
	snprintf(sql, sizeof(sql),
			 "INSERT INTO coupon_stress.occ_counter (id, remaining) VALUES (1, %lld)",
			 (long long) pt->initial);
	return exec_ok(conn, sql, false);
}

/*
 * Make sure the admin connection works, resetting it if the server went
 * away (a crash test restarts the server under the client).  Waits up to
 * patience_s seconds.
 */
static bool
ensure_connection(PGconn *conn, int patience_s)
{
	int			waited_ms = 0;

	while (PQstatus(conn) != CONNECTION_OK || !exec_ok(conn, "SELECT 1", true))
	{
		if (waited_ms >= patience_s * 1000)
			return false;
		usleep(200 * 1000);
		waited_ms += 200;
		PQreset(conn);
		if (PQstatus(conn) == CONNECTION_OK)
			exec_ok(conn, "SET client_min_messages = warning", true);
	}
	return true;
}

/*
 * Wait (up to 10 s) until the previous point's sessions have left the
 * server, so that a burst of 500 new connections does not find their
 * slots still taken and the points do not overlap.
 */
static void
wait_for_backends(PGconn *conn)
{
	int			i;

	for (i = 0; i < 200; i++)
	{
		char		val[32];
		bool		isnull;

		if (!query_value(conn,
						 "SELECT count(*) FROM pg_catalog.pg_stat_activity "
						 "WHERE application_name = 'coupon-stress' "
						 "AND backend_type = 'client backend' "
						 "AND pid <> pg_catalog.pg_backend_pid()",
						 0, NULL, val, sizeof(val), &isnull) ||
			strcmp(val, "0") == 0)
			return;
		usleep(50 * 1000);
	}
}

/*
 * The n integers of a one-row query with text parameters, into out (NULL
 * is 0).  Returns false, reported, on an error or when no row came back.
 */
static bool
query_integers(PGconn *conn, const char *sql, int nparams,
			   const char *const *params, int64_t *out, int n)
{
	PGresult   *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	bool		ok = PQresultStatus(res) == PGRES_TUPLES_OK &&
		PQntuples(res) == 1 && PQnfields(res) == n;
	int			i;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		report_failure(conn, sql);
	else if (!ok)
		fprintf(stderr, "%s: query returned %d rows, expected one\nquery was: %s\n",
				progname, PQntuples(res), sql);
	for (i = 0; ok && i < n; i++)
		out[i] = strtoll(PQgetvalue(res, 0, i), NULL, 10);
	PQclear(res);
	return ok;
}

/*
 * Have the holds of the pool settled?  None may be held or in flight, and
 * no expiry worker of this database may be running: a worker's commit
 * shows in the ledger a moment before the permits it returned show in
 * "available" (they are published right after the commit), and it exits
 * only after that.  Without pg_read_all_stats the workers are not seen,
 * and only the pool is looked at.
 */
static bool
holds_settled(PGconn *conn, const Target *tgt, const char *pool, bool *error)
{
	char		sql[512];
	int64_t		n;

	snprintf(sql, sizeof(sql),
			 "SELECT held + in_flight FROM %s.coupon_pools WHERE pool = $1",
			 tgt->extschema);
	*error = !query_integers(conn, sql, 1, &pool, &n, 1);
	if (*error || n != 0)
		return false;
	*error = !query_integers(conn,
							 "SELECT count(*) FROM pg_catalog.pg_stat_activity "
							 "WHERE backend_type = 'coupon expiry worker' "
							 "AND datname = pg_catalog.current_database()",
							 0, NULL, &n, 1);
	return !*error && n == 0;
}

/*
 * Wait until the holds of the pool have settled, for up to the TTL plus
 * SETTLE_MARGIN_S.  False on an error; a wait that runs out is reported
 * and leaves holds to read back.
 */
static bool
wait_for_holds(PGconn *conn, const Options *opt, const Target *tgt,
			   const Point *pt)
{
	int64_t		start = now_ns();
	int64_t		deadline = start + opt->hold_us * 1000 +
		SETTLE_MARGIN_S * INT64_C(1000000000);
	bool		error = false;

	while (!holds_settled(conn, tgt, strategy_pool(pt->strategy), &error))
	{
		if (error)
			return false;
		if (now_ns() >= deadline)
		{
			fprintf(stderr, "%s: %s, %d clients: holds still live or in flight "
					"%.1f s after the point ended (are the expiry workers running?)\n",
					progname, pt->strategy->name, pt->clients,
					(now_ns() - start) / 1e9);
			return true;
		}
		usleep(SETTLE_POLL_MS * 1000);
	}
	return true;
}

/*
 * A point of holds: the ledger rows, confirmed, expired and held, once
 * the holds settled.  The client releases nothing, so a hold released is
 * one that expired.  (released_at cannot tell: an expiry records the
 * start of the transaction that returned the hold, which may be before
 * the hold's expiry, or even before the hold was made.)
 */
static bool
read_holds(PGconn *conn, const Options *opt, const Target *tgt,
		   const Point *pt, const char *const *params, Row *row)
{
	char		sql[1024];
	int64_t		v[4];

	if (!wait_for_holds(conn, opt, tgt, pt))
		return false;
	snprintf(sql, sizeof(sql),
			 "SELECT count(*), "
			 "count(*) FILTER (WHERE released_at IS NULL AND expires_at IS NULL), "
			 "count(*) FILTER (WHERE released_at IS NOT NULL AND expires_at IS NOT NULL), "
			 "count(*) FILTER (WHERE released_at IS NULL AND expires_at IS NOT NULL) "
			 "FROM %s.coupon_claims WHERE pool = $1 AND id > $2::bigint",
			 tgt->extschema);
	if (!query_integers(conn, sql, 2, params, v, 4))
		return false;
	row->holds = true;
	row->ledger_rows = v[0];
	row->confirmed = v[1];
	row->expired = v[2];
	row->held = v[3];
	return true;
}

/*
 * Does a server's refusal of a connection pass with time: all its slots
 * taken (by a burst's sessions that are still ending) or the server
 * starting up?  Anything else (no server there, a password or a database
 * that is wrong, no pg_hba.conf entry) is reported at once.  libpq gives
 * no SQLSTATE for a connection that failed: its message is read, as
 * PostgreSQL words it untranslated (53300, 57P03); a server that speaks
 * another language is reported at once.
 */
static bool
refusal_passes(const char *message)
{
	return strstr(message, "too many clients") != NULL ||
		strstr(message, "remaining connection slots are reserved") != NULL ||
		strstr(message, "the database system is starting up") != NULL ||
		strstr(message, "the database system is not yet accepting connections") != NULL;
}

/*
 * A connection to node i of the cluster as PL/Proxy makes it: the
 * connection string of its partition alone if it names a user, else with
 * the user mapping's user and password, or else as the proxy's user; with
 * the client's libpq defaults for what else it leaves out.  And the schema
 * of its extension coupon, into schema.  NULL (reported) if it refuses for a
 * reason that does not pass (refusal_passes) or for NODE_PATIENCE_S, or
 * is not partition i of the proxy's cluster.
 */
static PGconn *
node_open(PGconn *proxy, const Target *tgt, int i, char *schema, size_t len)
{
	bool		own_user = strstr(tgt->node_conninfo[i], "user=") != NULL;
	const char *user = own_user ? NULL :
		tgt->node_user[0] ? tgt->node_user : PQuser(proxy);
	const char *keys[] = {"dbname", "user", "password", NULL};
	const char *vals[] = {tgt->node_conninfo[i], user,
	own_user ? NULL : tgt->node_password, NULL};
	PGconn	   *node = PQconnectdbParams(keys, vals, 1);
	char		sql[512];
	char		member[256];
	char		expected[256];
	Target		found = {0};
	bool		isnull = true;
	int			waited_ms;

	/* a node still ending a burst's sessions may refuse for a while */
	for (waited_ms = 0; PQstatus(node) != CONNECTION_OK &&
		 refusal_passes(PQerrorMessage(node)) &&
		 waited_ms < NODE_PATIENCE_S * 1000; waited_ms += 500)
	{
		usleep(500 * 1000);
		PQreset(node);
	}
	if (PQstatus(node) != CONNECTION_OK)
	{
		fprintf(stderr, "%s: could not connect to node %d of the cluster: %s",
				progname, i, PQerrorMessage(node));
		PQfinish(node);
		return NULL;
	}
	if (!find_extension(node, &found) || found.proxy)
	{
		fprintf(stderr, "%s: node %d of the cluster has no extension coupon\n",
				progname, i);
		if (found.extschema)
			PQfreemem(found.extschema);
		PQfinish(node);
		return NULL;
	}
	snprintf(schema, len, "%s", found.extschema);
	PQfreemem(found.extschema);
	snprintf(sql, sizeof(sql),
			 "SELECT cluster || '/' || partition FROM %s.coupon_cluster_member", schema);
	snprintf(expected, sizeof(expected), "%s/%d", tgt->cluster, i);
	if (!query_value(node, sql, 0, NULL, member, sizeof(member), &isnull) ||
		strcmp(member, expected) != 0)
	{
		fprintf(stderr, "%s: the connection string of partition %d reaches a node "
				"that is not partition %d of cluster %s\n",
				progname, i, i, tgt->cluster);
		PQfinish(node);
		return NULL;
	}
	return node;
}

/*
 * Add up over the nodes of the cluster the integer that sql_format (with
 * %1$s for the schema of extension coupon, and the pool as $1) gives on
 * each node; with each_zero, every node must give 0 (else reported).
 */
static bool
sum_over_nodes(PGconn *proxy, const Target *tgt, const char *sql_format,
			   const char *pool, bool each_zero, int64_t *sum)
{
	int			i;

	*sum = 0;
	for (i = 0; i < tgt->nnodes; i++)
	{
		char		schema[256];
		char		sql[1024];
		int64_t		n = 0;
		PGconn	   *node = node_open(proxy, tgt, i, schema, sizeof(schema));
		bool		ok;

		if (node == NULL)
			return false;
		snprintf(sql, sizeof(sql), sql_format, schema);
		ok = query_integers(node, sql, 1, &pool, &n, 1);
		PQfinish(node);
		if (!ok)
			return false;
		if (each_zero && n != 0)
		{
			fprintf(stderr, "%s: pool \"%s\" is left on node %d of the cluster, "
					"outside the proxy's reach (a share of another spread pool, or "
					"a pool made there directly): drop it there\n",
					progname, pool, i);
			return false;
		}
		*sum += n;
	}
	return true;
}

/*
 * After the proxy's drop, no node may keep a pool of that name or a row of
 * it in its ledger, which the point's counts would take for its own.
 */
static bool
pool_gone_from_nodes(PGconn *proxy, const Target *tgt, const char *pool)
{
	int64_t		left;

	return sum_over_nodes(proxy, tgt,
						  "SELECT (SELECT count(*) FROM %1$s.coupon_pool WHERE name = $1)"
						  " + (SELECT count(*) FROM %1$s.coupon_claims WHERE pool = $1)",
						  pool, true, &left);
}

/* The grant rows of a point: the extension's ledger, or the grants table. */
static bool
read_ledger(PGconn *conn, const Target *tgt, const StrategyDef *s,
			const char *const *params, Row *row)
{
	char		sql[512];

	if (tgt->proxy)
		return sum_over_nodes(conn, tgt,
							  "SELECT count(*) FROM %1$s.coupon_claims WHERE pool = $1",
							  params[0], false, &row->ledger_rows);
	if (s->stock == STOCK_POOL)
		snprintf(sql, sizeof(sql),
				 "SELECT count(*) FROM %s.coupon_claims "
				 "WHERE pool = $1 AND id > $2::bigint", tgt->extschema);
	else
		snprintf(sql, sizeof(sql),
				 "SELECT count(*) FROM coupon_stress.grants WHERE pool = $1");
	return query_integers(conn, sql, s->stock == STOCK_POOL ? 2 : 1, params,
						  &row->ledger_rows, 1);
}

/*
 * The stock of a pool through a cluster's proxy: what its shares have
 * available, once no transfer between them is in flight (they settle
 * within milliseconds unless one was cut: up to SETTLE_MARGIN_S is
 * waited).  A transfer cut between its give and its take and not yet
 * recovered is unsold stock: it is added, with a warning.
 */
static bool
proxy_stock(PGconn *conn, const Target *tgt, const char *pool, int64_t *stock)
{
	char		sql[512];
	int64_t		v[2];
	int64_t		deadline = now_ns() + SETTLE_MARGIN_S * INT64_C(1000000000);

	snprintf(sql, sizeof(sql),
			 "SELECT available, transferring FROM %s.coupon_pools WHERE pool = $1",
			 tgt->extschema);
	for (;;)
	{
		if (!query_integers(conn, sql, 1, &pool, v, 2))
			return false;
		if (v[1] == 0 || now_ns() >= deadline)
			break;
		usleep(SETTLE_POLL_MS * 1000);
	}
	if (v[1] != 0)
		fprintf(stderr, "%s: %lld of pool \"%s\" still in flight between its shares "
				"after %d s (a transfer cut: coupon_cluster_recover() completes it); "
				"counted in the stock\n",
				progname, (long long) v[1], pool, SETTLE_MARGIN_S);
	*stock = v[0] + v[1];
	return true;
}

/* Read the ledger rows and the stock of a point back into row. */
bool
read_back(PGconn *conn, const Options *opt, const Target *tgt,
		  const Point *pt, int64_t watermark, Row *row)
{
	const StrategyDef *s = pt->strategy;
	char		sql[1024];
	char		val[64];
	char		wm[32];
	bool		isnull = false;
	const char *params[2];

	if (!ensure_connection(conn, 60))
	{
		fprintf(stderr, "%s: could not read the results back: %s",
				progname, PQerrorMessage(conn));
		return false;
	}

	params[0] = strategy_pool(s);
	snprintf(wm, sizeof(wm), "%lld", (long long) watermark);
	params[1] = wm;
	if (s->stock == STOCK_HOLDS ? !read_holds(conn, opt, tgt, pt, params, row) :
		!read_ledger(conn, tgt, s, params, row))
		return false;

	row->has_counter = s->stock != STOCK_NONE;
	switch (s->stock)
	{
		case STOCK_NONE:
			return true;
		case STOCK_REDIS:
			return redis_read_stock(opt, &row->counter);
		case STOCK_POOL:
		case STOCK_HOLDS:
			if (tgt->proxy)
			{
				row->has_counter = proxy_stock(conn, tgt, params[0], &row->counter);
				return true;
			}
			snprintf(sql, sizeof(sql),
					 "SELECT available FROM %s.coupon_pools WHERE pool = $1",
					 tgt->extschema);
			row->has_counter = query_value(conn, sql, 1, params, val,
										   sizeof(val), &isnull) && !isnull;
			break;
		case STOCK_COUNTER:
			snprintf(sql, sizeof(sql), "SELECT remaining FROM %s WHERE id = 1",
					 s->counter);
			if (!query_value(conn, sql, 0, NULL, val, sizeof(val), &isnull))
				return false;
			break;
	}
	row->counter = row->has_counter ? strtoll(val, NULL, 10) : 0;
	return true;
}

/* Try a checkpoint so that points start alike; failures do not matter. */
void
try_checkpoint(PGconn *conn)
{
	exec_ok(conn, "CHECKPOINT", true);
}
