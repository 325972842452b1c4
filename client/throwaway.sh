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
#
#   start_cluster NODES
#
# makes a coupon cluster of NODES nodes (a power of two) and a proxy on this
# machine: the throwaway server is node 0, nodes 1 to NODES-1 and the proxy
# start on the ports after PORT (the proxy on PORT + NODES), each in its
# own directory under the throwaway one, stopped when the script exits.
# Every node gets extension coupon; the proxy gets coupon_proxy, the
# server coupon_cluster and a user mapping, and is attached.  Then
# node_env I and proxy_env print the PGHOST=... PGPORT=... of node I and
# of the proxy (for env), and node_conninfo I its connection string.
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
throwaway_port=$2
bash "$src/.ci/pgserver" start "$throwaway_dir" "$throwaway_port"
export PGHOST=$throwaway_dir/socket PGPORT=$2 PGUSER=postgres PGDATABASE=postgres

start_redis() {
	local dir=$throwaway_dir/redis-$1 port=$2
	shift 2
	step "starting a throwaway Redis on 127.0.0.1:$port (appendonly yes, ${*:-appendfsync always})"
	bash "$src/client/redisserver" start "$dir" "$port" "$@"
	redis_dirs+=("$dir")
	redis_addresses+=${redis_addresses:+,}127.0.0.1:$port
}

extra_dirs=()
node_socket() { if [ "$1" -gt 0 ]; then echo "$throwaway_dir/$1/socket"; else echo "$throwaway_dir/socket"; fi; }
node_conninfo() { echo "host=$(node_socket "$1") port=$((throwaway_port + $1)) dbname=postgres"; }
node_env() { echo "PGHOST=$(node_socket "$1") PGPORT=$((throwaway_port + $1))"; }
proxy_env() { echo "PGHOST=$throwaway_dir/proxy/socket PGPORT=$((throwaway_port + cluster_nodes))"; }
stop_cluster() {
	for dir in "${extra_dirs[@]}"; do bash "$src/.ci/pgserver" stop "$dir" || true; done
	stop_throwaway
}
start_cluster() {
	local i dir port options=
	cluster_nodes=$1
	trap stop_cluster EXIT
	for i in $(seq 1 $((cluster_nodes - 1))) proxy; do
		dir=$throwaway_dir/$i
		port=$((throwaway_port + ${i/proxy/$cluster_nodes}))
		if [ "$i" = proxy ]; then step "starting the proxy on port $port"; else step "starting node $i on port $port"; fi
		mkdir -p "$dir"
		chmod 755 "$dir"
		bash "$src/.ci/pgserver" start "$dir" "$port"
		extra_dirs+=("$dir")
	done
	for i in $(seq 0 $((cluster_nodes - 1))); do
		env $(node_env "$i") psql -Xq -o /dev/null -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION IF NOT EXISTS coupon'
		options+="p$i '$(node_conninfo "$i")',"
	done
	step "attaching the $cluster_nodes nodes to the proxy (coupon_proxy over PL/Proxy)"
	env $(proxy_env) psql -Xq -o /dev/null -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION coupon_proxy CASCADE;
CREATE SERVER coupon_cluster FOREIGN DATA WRAPPER plproxy OPTIONS (${options%,});
CREATE USER MAPPING FOR PUBLIC SERVER coupon_cluster;
SELECT coupon_cluster_attach();
SQL
}
