#!/usr/bin/env bash
# The throughput sweep of the README's benchmark, on a throwaway server.
#
#   sudo bash client/bench.sh [coupon-stress options]
#
# Builds and installs everything, starts a throwaway server (coupon
# preloaded, 600 connections, synchronous_commit on) and runs coupon-stress
# with the options given, by default every strategy for 10 s at 1, 16, 64
# and 256 clients.  Exit status: coupon-stress's.
set -euo pipefail

source "$(dirname "$0")/throwaway.sh" bench 55492
[ $# -gt 0 ] || set -- -T 10 -c 1,16,64,256
step "coupon-stress $*"
echo "machine: $(nproc) CPUs, $(awk '/^MemTotal:/ {printf "%.0f", $2 / 1048576}' /proc/meminfo) GiB, $(. /etc/os-release && echo "$PRETTY_NAME"), load $(cut -d' ' -f1-3 /proc/loadavg)"
coupon-stress "$@"
