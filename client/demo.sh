#!/usr/bin/env bash
# The main job: the seed's story on throwaway servers, start to finish.
#
#   sudo bash client/demo.sh
#
# Installs what is missing (Debian 12), builds and installs the extension
# and coupon-stress, starts a throwaway PostgreSQL 15 server as the postgres
# user with coupon preloaded and 600 connections allowed, and three
# throwaway Redis servers (appendonly yes, appendfsync always: as durable as
# synchronous_commit = on), then runs
#
#   1. the burst: 500 users, each on its own connection, released at once
#      for 50 coupons, with every strategy (naive, occ, for-update, atomic,
#      claim, insert-only, redis, redlock, redlock-fenced);
#   2. a throughput round: 64 clients for DEMO_SECONDS (default 10) seconds
#      per strategy, on a stock that does not run out;
#
# prints both tables and stops the servers.  Extra arguments go to both runs
# of coupon-stress (for example --race-window 20000 or --servers 3).  The
# exit status is coupon-stress's: 0 when every correct strategy was exact.
#
#   sudo bash client/demo.sh --cluster N [coupon-stress options]
#
# runs the same burst and throughput round with coupon_claim only, on a
# coupon cluster of N nodes (a power of two, at least 2) and a proxy, all
# throwaway servers on this machine: claims on node 0 directly, through
# the proxy to a pool on one node, and through the proxy to a pool spread
# over the N nodes (coupon-stress --spread N), each counted on the nodes'
# own ledgers, and prints one table of the three.  The servers share this
# machine's CPUs: the rows compare the cost of each path, not what N
# machines would do.  No Redis is started.
set -euo pipefail

seconds=${DEMO_SECONDS:-10}
cluster=0
if [ "${1:-}" = --cluster ]; then
	cluster=${2:?--cluster needs a number of nodes}
	shift 2
	[ "$cluster" -ge 2 ] && [ $((cluster & (cluster - 1))) -eq 0 ] ||
		{ echo "demo.sh: --cluster needs a power of two from 2 up, not $cluster" >&2; exit 2; }
fi
source "$(dirname "$0")/throwaway.sh" demo 55490

if [ "$cluster" -gt 0 ]; then
	start_cluster "$cluster"
	status=0
	for round in "--users 500 --coupons 50" "-T $seconds -c 64"; do
		for target in direct proxied spread; do
			case $target in
			direct) where=$(node_env 0); spread=() ;;
			proxied) where=$(proxy_env); spread=() ;;
			spread) where=$(proxy_env); spread=(--spread "$cluster") ;;
			esac
			step "${round%% -c*}: coupon_claim, $target"
			# shellcheck disable=SC2086 # the round's options are words
			env $where coupon-stress --strategy claim $round "${spread[@]}" "$@" --json \
				>"$throwaway_dir/$target.json" || status=$?
			# Dropped where it was made: a drop on node 0 of a spread pool's
			# share would leave the other shares behind.
			env $where psql -Xq -o /dev/null -c \
				"SELECT coupon_pool_drop(pool) FROM coupon_pools WHERE pool = 'stress_claim'"
		done
		printf '\n%s\n' "$round, $cluster nodes and a proxy on one machine of $(nproc) CPUs:"
		python3 - "$throwaway_dir" <<'PY'
import json, sys
print(f"{'target':8} {'users|clients':>13} {'granted':>8} {'ledger':>8} {'available':>14}"
      f" {'oversold':>8} {'correct':>7} {'claims/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
for target in ("direct", "proxied", "spread"):
    try:
        run = json.load(open(f"{sys.argv[1]}/{target}.json"))
    except ValueError:
        print(f"{target:8} failed: see its messages above")
        continue
    s = run["settings"]
    for r in run["results"]:
        who = s["users"] if s["mode"] == "burst" else r["clients"]
        cell = lambda key, fmt="": "-" if r.get(key) is None else format(r[key], fmt)
        print(f"{target:8} {who:>13} {cell('granted'):>8} {cell('ledger_rows'):>8}"
              f" {cell('counter'):>14} {cell('oversold'):>8} {'yes' if r.get('correct') else 'no':>7}"
              f" {cell('claims_per_s', '.0f'):>9} {cell('p50_ms', '.2f'):>8} {cell('p99_ms', '.2f'):>8}")
PY
	done
	exit "$status"
fi
for i in 1 2 3; do start_redis "$i" $((56389 + i)); done

status=0
step "burst: 500 users race for 50 coupons, one strategy after another"
coupon-stress --users 500 --coupons 50 --redis "$redis_addresses" "$@" || status=$?

step "throughput: 64 clients, ${seconds} s per strategy, claims per second"
coupon-stress -T "$seconds" -c 64 --redis "$redis_addresses" "$@" || status=$?

# 0 when every correct strategy was exact (naive and insert-only are not
# meant to be), as coupon-stress reports it.
exit "$status"
