#!/usr/bin/env bash
# coupon_claim() against the hot-row UPDATE and the bare ledger insert, with
# pgbench, side by side in one run.
#
#   sudo bash client/pgbench-compare.sh [CLIENTS [SECONDS [ROUNDS]]]
#
# Defaults: 64 clients, 8 seconds per run, 3 rounds.  Starts a throwaway
# server (coupon preloaded, synchronous_commit on), and in every round runs
# the workloads of client/pgbench/ one after the other, each with a unique
# customer per call:
#
#   hotrow      BEGIN; UPDATE counter ... WHERE remaining >= 1; INSERT ledger; END
#   hotrow-cte  WITH d AS (UPDATE counter ... WHERE remaining >= 1) INSERT ledger
#   claim       SELECT coupon_claim('bench', customer)
#   ceiling     INSERT ledger (no check: the cost of a durable claim)
#
# The ledger table is CREATE TABLE ... (LIKE coupon_claims INCLUDING ALL):
# the same columns, constraints, indexes and id sequence as the extension's.
# Prints each run's tps, then the median per workload and the ratios.
set -euo pipefail

clients=${1:-64}
seconds=${2:-8}
rounds=${3:-3}
source "$(dirname "$0")/throwaway.sh" pgbench 55491

psql -Xq -o /dev/null -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION coupon;
CREATE SCHEMA bench;
CREATE TABLE bench.ledger (LIKE coupon_claims INCLUDING ALL);
CREATE TABLE bench.counter (id int PRIMARY KEY, remaining bigint NOT NULL);
INSERT INTO bench.counter VALUES (1, 1000000000000);
SELECT coupon_pool_create('bench', 1000000000000);
SQL

echo "pgbench, $clients clients, ${seconds} s per run, $rounds rounds, $(nproc) CPUs, PostgreSQL $(psql -XAtc 'SHOW server_version')"
declare -A results
for round in $(seq 1 "$rounds"); do
	for workload in hotrow hotrow-cte claim ceiling; do
		psql -XAtqc CHECKPOINT
		tps=$(pgbench -n -M prepared -c "$clients" -j 2 -T "$seconds" -D n=0 \
			-D run="$round$RANDOM" -f "$src/client/pgbench/$workload.sql" 2>&1 |
			sed -n 's/^tps = \([0-9.]*\) .*/\1/p')
		printf 'round %d  %-10s %10.1f tps\n' "$round" "$workload" "$tps"
		results[$workload]="${results[$workload]:-} $tps"
	done
done

psql -XAtq <<'SQL'
SELECT format('claim: %s granted, pool balanced: %s, ledger agrees: %s',
              grants, capacity = claimed + in_flight + available,
              claimed = (SELECT count(*) FROM coupon_claims WHERE pool = 'bench'))
  FROM coupon_pools WHERE pool = 'bench';
SQL
python3 - "${results[hotrow]}" "${results[hotrow-cte]}" "${results[claim]}" "${results[ceiling]}" <<'PY'
import statistics, sys
hot, cte, claim, ceiling = (statistics.median(map(float, a.split())) for a in sys.argv[1:5])
print(f"median tps: hotrow {hot:.0f}, hotrow-cte {cte:.0f}, claim {claim:.0f}, ceiling {ceiling:.0f}")
print(f"claim / hotrow     = {claim / hot:.1f}x")
print(f"claim / hotrow-cte = {claim / cte:.1f}x")
print(f"claim / ceiling    = {claim / ceiling:.2f}x")
PY
