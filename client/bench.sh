#!/usr/bin/env bash
# The throughput sweep of the README's benchmark, on throwaway servers, and
# its plots.
#
#   sudo bash client/bench.sh [coupon-stress options]
#
# Builds and installs everything, starts a throwaway PostgreSQL server
# (coupon preloaded, 600 connections, synchronous_commit on) and three
# throwaway Redis servers (appendonly yes, appendfsync always), and runs
# coupon-stress with the options given, by default every strategy for 10 s
# at 1, 16, 64 and 256 clients.  Writes into BENCH_OUT (default
# client/plots):
#
#   bench.json   coupon-stress's --json output
#   claims.png   claims per second against clients, one line per strategy
#   p99.png      p99 latency against clients
#
# and prints the table of claims per second (client/plot.py).  REDIS_FSYNC
# (default always) sets the Redis servers' appendfsync, to measure Redis
# less durable than PostgreSQL (everysec).  Exit status: coupon-stress's.
set -euo pipefail

source "$(dirname "$0")/throwaway.sh" bench 55492
for i in 1 2 3; do start_redis "$i" $((56392 + i)) "appendfsync ${REDIS_FSYNC:-always}"; done
out=${BENCH_OUT:-$src/client/plots}
mkdir -p "$out"
[ $# -gt 0 ] || set -- -T 10 -c 1,16,64,256
step "coupon-stress $* --redis $redis_addresses --json"
echo "machine: $(nproc) CPUs, $(awk '/^MemTotal:/ {printf "%.0f", $2 / 1048576}' /proc/meminfo) GiB, $(. /etc/os-release && echo "$PRETTY_NAME"), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC')"
status=0
coupon-stress "$@" --redis "$redis_addresses" --json >"$out/bench.json" || status=$?
step "claims per second (plots in $out)"
python3 "$src/client/plot.py" "$out/bench.json" "$out"
exit "$status"
