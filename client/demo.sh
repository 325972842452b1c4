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
set -euo pipefail

seconds=${DEMO_SECONDS:-10}
source "$(dirname "$0")/throwaway.sh" demo 55490
for i in 1 2 3; do start_redis "$i" $((56389 + i)); done

status=0
step "burst: 500 users race for 50 coupons, one strategy after another"
coupon-stress --users 500 --coupons 50 --redis "$redis_addresses" "$@" || status=$?

step "throughput: 64 clients, ${seconds} s per strategy, claims per second"
coupon-stress -T "$seconds" -c 64 --redis "$redis_addresses" "$@" || status=$?

# 0 when every correct strategy was exact (naive and insert-only are not
# meant to be), as coupon-stress reports it.
exit "$status"
