#!/usr/bin/env bash
# coupon_claim() against the hot-row UPDATE and the bare ledger insert, or
# coupon_claim_many() against a multi-row insert, with pgbench, side by
# side in one run.
#
#   bash client/pgbench-compare.sh [CLIENTS [SECONDS [ROUNDS [SET [SYNC]]]]]
#
# Defaults: 64 clients, 8 seconds per run, 3 rounds, SET claims, SYNC on.
# Starts a throwaway server (coupon preloaded, synchronous_commit SYNC: on,
# where the disk's flush decides, or off, where the CPU does), and in every
# round runs the workloads of the set (client/pgbench/*.sql) one after the
# other, each with a unique customer per call, in the order below in odd
# rounds; in even rounds each workload and the ceiling it is compared with
# change places (claim and ceiling, bulk and bulk-ceiling, ...), so that
# neither always runs first or always after the same run:
#
#   claims:
#     hotrow       BEGIN; UPDATE counter ... WHERE remaining >= 1; INSERT ledger; END
#     hotrow-cte   WITH d AS (UPDATE counter ... WHERE remaining >= 1) INSERT ledger
#     claim        SELECT coupon_claim('bench', customer)
#     ceiling      INSERT ledger ... RETURNING id (no check: the cost of a
#                  durable claim that, like the claim, answers with its id)
#   bulk:
#     bulk         SELECT ... FROM coupon_claim_many('bench', 100 customers)
#     bulk-ceiling INSERT ledger SELECT ... (the same 100 rows, no check)
#     bulk-spread  coupon_claim_many('spread', 100 of a million customers
#                  who hold earlier claims: one index probe per customer)
#     bulk-spread-ceiling  INSERT ledger SELECT ... (the same shape)
#
#   index:
#     claim        as in claims, in every round once without the index of
#                  live claims (coupon_claims_live, which only loading a
#                  pool reads) and once with it: what that index costs a
#                  claim, as the ratio of the two in each round
#
#   restart:
#     a pool whose ledger holds 10 million claims, 1 million of them live
#     (COUPON_RESTART_ROWS and COUPON_RESTART_LIVE change that), then in
#     every round a restart (fast, then immediate: crash recovery, in turn)
#     and the time of the first claim on the pool in a new session, which
#     loads it, and of the second.  CLIENTS and SECONDS are not used.
#
# With COUPON_SAMPLE_WAITS=1, each run of the claims, bulk and index sets
# also samples pg_stat_activity five times a second (from its fourth
# second to two seconds before its end) and prints, after its tps, where
# its backends were: the share of the samples of each wait event
# (wait_event_type:wait_event, CPU:- for none), the four largest.
#
# The ledger table is CREATE TABLE ... (LIKE coupon_claims INCLUDING ALL):
# the same columns, constraints, indexes and id sequence as the extension's.
# Prints each run's tps, then the median per workload and the ratios (rows
# per second for the bulk set).
set -euo pipefail

clients=${1:-64}
seconds=${2:-8}
rounds=${3:-3}
set_name=${4:-claims}
sync=${5:-on}
case $sync in
on | off) ;;
*) echo "pgbench-compare.sh: synchronous_commit must be on or off, not \"$sync\"" >&2; exit 2 ;;
esac
# pairs: the index in workloads of the first of each pair that changes
# places in even rounds.
case $set_name in
claims) workloads=(hotrow hotrow-cte claim ceiling) pairs=(2) ;;
bulk) workloads=(bulk bulk-ceiling bulk-spread bulk-spread-ceiling) pairs=(0 2) ;;
index) workloads=(claim-without-live-index claim) pairs=(0) ;;
restart) workloads=() pairs=() ;;
*) echo "pgbench-compare.sh: unknown set \"$set_name\" (claims, bulk, index or restart)" >&2; exit 2 ;;
esac
source "$(dirname "$0")/throwaway.sh" pgbench 55491

psql -Xq -o /dev/null -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION coupon;
CREATE SCHEMA bench;
CREATE TABLE bench.ledger (LIKE coupon_claims INCLUDING ALL);
CREATE TABLE bench.counter (id int PRIMARY KEY, remaining bigint NOT NULL);
INSERT INTO bench.counter VALUES (1, 1000000000000);
SELECT coupon_pool_create('bench', 1000000000000);
SQL
if [ "$set_name" = bulk ]; then
	# A million customers with an earlier claim each, in both ledgers.
	psql -Xq -o /dev/null -v ON_ERROR_STOP=1 <<'SQL'
INSERT INTO coupon_claims (pool, customer, qty)
SELECT 'spread', 's' || g, 1 FROM generate_series(0, 999999) g;
SELECT coupon_pool_create('spread', 1000000000000, 1000000000);
INSERT INTO bench.ledger (pool, customer, qty)
SELECT 'spread', 's' || g, 1 FROM generate_series(0, 999999) g;
VACUUM ANALYZE coupon_claims, bench.ledger;
SQL
fi
psql -XAtq -o /dev/null -c "ALTER SYSTEM SET synchronous_commit = $sync" -c "SELECT pg_reload_conf()"

if [ "$set_name" = restart ]; then
	rows=${COUPON_RESTART_ROWS:-10000000}
	live=${COUPON_RESTART_LIVE:-1000000}
	echo "restart, a ledger of $rows claims of which $live live, $rounds rounds, $(nproc) CPUs, PostgreSQL $(psql -XAtc 'SHOW server_version')"
	psql -Xq -o /dev/null -v ON_ERROR_STOP=1 -v rows="$rows" -v live="$live" <<'SQL'
INSERT INTO coupon_claims (pool, customer, qty, released_at)
SELECT 'big', 'c' || g, 1, CASE WHEN g <= :live THEN NULL ELSE now() END
  FROM generate_series(1, :rows) g;
SELECT coupon_pool_create('big', :rows + 1000000, 1000000);
VACUUM ANALYZE coupon_claims;
SQL
	for round in $(seq 1 "$rounds"); do
		mode=fast
		[ $((round % 2)) = 0 ] && mode=immediate
		bash "$src/.ci/pgserver" stop "$throwaway_dir" "$mode"
		bash "$src/.ci/pgserver" start "$throwaway_dir" "$PGPORT"
		psql -XAtq -v round="$round" <<'SQL' | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | paste -sd ' ' |
\timing on
SELECT coupon_claim('big', 'first-' || :'round') IS NOT NULL;
SELECT coupon_claim('big', 'second-' || :'round') IS NOT NULL;
SQL
			{
				read -r first second
				printf 'round %d  %-9s restart: first claim %8.1f ms, second %6.1f ms\n' "$round" "$mode" "$first" "$second"
				echo "$first" >>"$throwaway_dir/first"
			}
	done
	psql -XAtq <<SQL
SELECT format('pool big: %s claimed (%s live rows in the ledger), balanced: %s', claimed,
              (SELECT count(*) FROM coupon_claims WHERE pool = 'big' AND released_at IS NULL),
              capacity = claimed + in_flight + available)
  FROM coupon_pools WHERE pool = 'big';
SQL
	python3 -c 'import statistics,sys; print(f"median first claim after a restart: {statistics.median(map(float, open(sys.argv[1]))):.1f} ms")' "$throwaway_dir/first"
	exit 0
fi

# The wait events of the client backends, five times a second, from the
# fourth second of a run of $1 seconds to two seconds before its end.
sample_waits() {
	sleep 3
	local end=$((SECONDS + $1 - 5))
	while [ "$SECONDS" -lt "$end" ]; do
		psql -XAtq -F ' ' -c "SELECT coalesce(wait_event_type, 'CPU') || ':' || coalesce(wait_event, '-'), count(*)
		                        FROM pg_stat_activity
		                       WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1"
		sleep 0.2
	done
}

echo "pgbench, $set_name, $clients clients, ${seconds} s per run, $rounds rounds, synchronous_commit $sync, $(nproc) CPUs, PostgreSQL $(psql -XAtc 'SHOW server_version')"
declare -A results
for round in $(seq 1 "$rounds"); do
	order=("${workloads[@]}")
	if [ $((round % 2)) = 0 ]; then
		for i in "${pairs[@]}"; do order[i]=${workloads[i + 1]} order[i + 1]=${workloads[i]}; done
	fi
	for workload in "${order[@]}"; do
		script=$workload
		case $workload in
		claim-without-live-index)
			script=claim
			psql -XAtq -c "SET client_min_messages = warning" -c "DROP INDEX IF EXISTS coupon_claims_live"
			;;
		claim)
			[ "$set_name" = index ] &&
				psql -XAtq -c "SET client_min_messages = warning" -c "CREATE INDEX IF NOT EXISTS coupon_claims_live ON coupon_claims (pool, qty) WHERE released_at IS NULL"
			;;
		esac
		psql -XAtqc CHECKPOINT
		[ "${COUPON_SAMPLE_WAITS:-0}" = 1 ] && sample_waits "$seconds" >"$throwaway_dir/waits" &
		tps=$(pgbench -n -M prepared -c "$clients" -j 2 -T "$seconds" -D n=0 \
			-D run="$round$RANDOM" -f "$src/client/pgbench/$script.sql" 2>&1 |
			sed -n 's/^tps = \([0-9.]*\) .*/\1/p')
		wait || true
		printf 'round %d  %-12s %10.1f tps\n' "$round" "$workload" "$tps"
		[ "${COUPON_SAMPLE_WAITS:-0}" = 1 ] && awk '
			{ n[$1] += $2; total += $2 }
			END { for (w in n) printf "%.1f%% %s\n", 100 * n[w] / total, w }' "$throwaway_dir/waits" |
			sort -rn | head -n 4 | paste -sd ',' | sed 's/,/, /g; s/^/          waits: /'
		results[$workload]="${results[$workload]:-} $tps"
	done
done

psql -XAtq <<'SQL'
SELECT format('pool %s: %s granted, pool balanced: %s, ledger agrees: %s',
              pool, grants, capacity = claimed + in_flight + available,
              claimed = (SELECT sum(qty) FROM coupon_claims c WHERE c.pool = p.pool))
  FROM coupon_pools p ORDER BY pool;
SQL
if [ "$set_name" = claims ]; then
	python3 - "${results[hotrow]}" "${results[hotrow-cte]}" "${results[claim]}" "${results[ceiling]}" <<'PY'
import statistics, sys
hot, cte, claim, ceiling = (statistics.median(map(float, a.split())) for a in sys.argv[1:5])
print(f"median tps: hotrow {hot:.0f}, hotrow-cte {cte:.0f}, claim {claim:.0f}, ceiling {ceiling:.0f}")
print(f"claim / hotrow     = {claim / hot:.1f}x")
print(f"claim / hotrow-cte = {claim / cte:.1f}x")
print(f"claim / ceiling    = {claim / ceiling:.2f}x")
rounds = zip(map(float, sys.argv[3].split()), map(float, sys.argv[4].split()))
ratios = [c / e for c, e in rounds]
print("claim / ceiling, each round: " + ", ".join(f"{r:.2f}x" for r in ratios))
print(f"median of the rounds' ratios = {statistics.median(ratios):.2f}x")
PY
elif [ "$set_name" = index ]; then
	python3 - "${results[claim-without-live-index]}" "${results[claim]}" <<'PY'
import statistics, sys
without, with_index = ([float(x) for x in a.split()] for a in sys.argv[1:3])
print(f"median tps: claim without the index of live claims {statistics.median(without):.0f}, with it {statistics.median(with_index):.0f}")
print("with / without, each round: " + ", ".join(f"{w / o:.2f}x" for o, w in zip(without, with_index)))
print(f"median of the rounds' ratios = {statistics.median(w / o for o, w in zip(without, with_index)):.2f}x")
PY
else
	python3 - "${results[bulk]}" "${results[bulk-ceiling]}" \
		"${results[bulk-spread]}" "${results[bulk-spread-ceiling]}" <<'PY'
import statistics, sys
bulk, ceiling, spread, spread_ceiling = (statistics.median(map(float, a.split())) for a in sys.argv[1:5])
print(f"median rows/s: bulk {bulk * 100:.0f}, bulk-ceiling {ceiling * 100:.0f},"
      f" bulk-spread {spread * 100:.0f}, bulk-spread-ceiling {spread_ceiling * 100:.0f} (100 rows per call)")
print(f"bulk / bulk-ceiling               = {bulk / ceiling:.2f}x")
print(f"bulk-spread / bulk-spread-ceiling = {spread / spread_ceiling:.2f}x")
PY
fi
