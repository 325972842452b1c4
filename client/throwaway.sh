# Sourced by client/demo.sh, client/bench.sh, client/faults.sh and
# client/pgbench-compare.sh:
#
#   source client/throwaway.sh NAME PORT
#
# installs what is missing (Debian 12), builds and installs the extension and
# coupon-stress, starts a throwaway server in /tmp/coupon-NAME.XXXXXX as the
# postgres user (coupon preloaded, 600 connections), stops and removes it when
# the calling script exits, and points libpq (PGHOST, PGPORT, PGUSER,
# PGDATABASE) at it.  Sets $src to the top of the tree.  Steps are announced
# on stderr.
#
#   start_redis NAME PORT [directive ...]
#
# then starts a throwaway Redis server in the same directory on 127.0.0.1:PORT
# (client/redisserver: appendonly yes, appendfsync always unless a directive
# says otherwise), stopped when the script exits; $redis_addresses collects
# the HOST:PORT of every one started, comma-separated, for --redis.
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
step() { printf '\n==> %s\n' "$*" >&2; }

step "checking the packages this needs (postgresql-15, its development files, libpq, redis-server, hiredis, jansson, gnuplot)"
bash "$src/.ci/deps"

step "building and installing the coupon extension and coupon-stress"
make -s -C "$src" >/dev/null
make -s -C "$src" install >/dev/null

throwaway_dir=$(mktemp -d "/tmp/coupon-$1.XXXXXX")
chmod 755 "$throwaway_dir"
redis_dirs=()
redis_addresses=
stop_throwaway() {
	step "stopping the servers"
	for dir in "${redis_dirs[@]}"; do bash "$src/client/redisserver" stop "$dir"; done
	bash "$src/.ci/pgserver" stop "$throwaway_dir"
	rm -rf "$throwaway_dir"
}
trap stop_throwaway EXIT
step "starting a throwaway server in $throwaway_dir (coupon preloaded, 600 connections)"
bash "$src/.ci/pgserver" start "$throwaway_dir" "$2"
export PGHOST=$throwaway_dir/socket PGPORT=$2 PGUSER=postgres PGDATABASE=postgres

start_redis() {
	local dir=$throwaway_dir/redis-$1 port=$2
	shift 2
	step "starting a throwaway Redis on 127.0.0.1:$port (appendonly yes, ${*:-appendfsync always})"
	bash "$src/client/redisserver" start "$dir" "$port" "$@"
	redis_dirs+=("$dir")
	redis_addresses+=${redis_addresses:+,}127.0.0.1:$port
}
