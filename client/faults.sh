#!/usr/bin/env bash
# The README's fault rows, on throwaway servers.
#
#   sudo bash client/faults.sh
#
# Builds and installs everything, starts a throwaway PostgreSQL server and
# four throwaway Redis servers (three with appendfsync always for the
# locks, one with appendfsync everysec) and runs:
#
#   1. a GC pause longer than the lease: 100 users for 10 coupons, every
#      second call stops 200 ms between its read and its write while its
#      Redlock lease is 50 ms: redlock and redlock-fenced;
#   2. an application server killed between its take and its commit: 12
#      clients over 3 server processes for 5 s on 1,000 coupons, the first
#      process SIGKILLs itself at its 30th take: redis and claim;
#   3. Redis crashing and restarting between a decrement and its commit, at
#      the 500th take of the first of 16 clients' processes, 5,000 coupons
#      for 5 s: redis against the everysec instance, then against an
#      always one.
#
# Extra arguments go to every run.  The strategies that these faults break
# make coupon-stress exit with 1; this script exits 0 unless a run failed
# for another reason (exit status 2).
set -euo pipefail

source "$(dirname "$0")/throwaway.sh" faults 55493
for i in 1 2 3; do start_redis "$i" $((56395 + i)); done
locks=$redis_addresses
start_redis everysec 56399 "appendfsync everysec"
everysec=127.0.0.1:56399

run() {
	step "coupon-stress $*"
	coupon-stress "$@" || [ $? = 1 ]
}

run --strategy redlock,redlock-fenced --users 100 --coupons 10 \
	--pause-ms 200 --pause-every 2 --lease-ms 50 --redis "$locks" "$@"
run --strategy redis,claim -T 5 -c 12 --servers 3 --coupons 1000 \
	--kill-server 30 --redis "$locks" "$@"
for redis in "$everysec" "${locks%%,*}"; do
	run --strategy redis -T 5 -c 16 --coupons 5000 --restart-redis 500 \
		--redis "$redis" "$@"
done
