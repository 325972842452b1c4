#!/usr/bin/env bash
# The cost of the cluster's proxy, and of spreading one pool over several
# nodes, with pgbench, side by side in one run (README, "Benchmark").
#
#   bash client/pgbench-cluster.sh [CLIENTS [SECONDS [ROUNDS [CAPACITY]]]]
#
# Defaults: 16 clients, 8 seconds per run, 3 rounds, bursts of 20000.
# Starts four throwaway nodes (coupon preloaded) and a proxy (coupon_proxy
# over PL/Proxy) on this machine, attaches them, and in every round runs,
# each with a unique customer per call:
#
#   direct    coupon_claim() on the node of pool 'p', connected to it
#   hop       the same claim through a bare PL/Proxy function on the proxy
#             that calls the node's coupon_claim() (RUN ON hashtext(pool);
#             TARGET coupon_claim): what PL/Proxy's call alone costs
#   proxied   the same claim through coupon_proxy (PL/Proxy's call to that
#             node, and the node's routed function)
#   spread    coupon_claim() through the proxy on a pool spread over the
#             four nodes that does not run out: the pool's home first,
#             then the customer's share (three customers in four)
#   soldout   the same on a spread pool that is sold out everywhere: each
#             answer asks every share whether it could give (the refill)
#
# then two bursts through the proxy on pools of CAPACITY spread over the
# four nodes, claimed until sold out: customers spread over the shares
# (transfers only at the end), and customers of one share only (every
# coupon of the other shares reaches them by transfers).  For each: the
# claims per second until sold out, the transfers it took and their rate,
# and the grants counted on the nodes' own ledgers (exactly CAPACITY).
#
# All five servers share this machine's CPUs: the figures measure the
# cost of each path, not what N machines would do; README's model of N
# machines is built from them.
#
# With COUPON_RATE=N, every run asks for N calls a second in all (pgbench
# -R), so that the node's CPU per claim of the direct, hop and proxied
# runs is measured at one rate: a node's CPU per claim falls as its rate
# rises (more commits share a WAL flush), and without a rate the proxied
# run, slower, is charged for that too.  Choose N below what every run
# reaches without it.
set -euo pipefail

clients=${1:-16}
seconds=${2:-8}
rounds=${3:-3}
capacity=${4:-20000}
nodes=4
source "$(dirname "$0")/throwaway.sh" pgbench-cluster 55520

start_cluster "$nodes"
node() { env $(node_env 0) "$@"; }
proxy() { env $(proxy_env) "$@"; }

# The pool of the direct and proxied runs lives on node 0: the first name
# whose hash picks partition 0.
proxy psql -Xq -o /dev/null -v ON_ERROR_STOP=1 <<SQL
SELECT coupon_pool_create((SELECT 'p' || i FROM generate_series(1, 1000) i
                            WHERE hashtext('p' || i) & $((nodes - 1)) = 0 LIMIT 1),
                          1000000000000);
SELECT coupon_pool_create('wide', 1000000000000, 1, $nodes);
SELECT coupon_pool_create('gone', $nodes, 1, $nodes);
SELECT count(coupon_claim('gone', 'g' || g)) FROM generate_series(1, $((nodes * 4))) g;
CREATE FUNCTION hop_claim(pool text, customer text) RETURNS bigint LANGUAGE plproxy
AS \$\$ CLUSTER 'coupon_cluster'; RUN ON hashtext(pool); TARGET coupon_claim; \$\$;
SQL
pool=$(proxy psql -XAtc "SELECT 'p' || i FROM generate_series(1, 1000) i WHERE hashtext('p' || i) & $((nodes - 1)) = 0 LIMIT 1")

for f in "coupon_claim $pool" "hop_claim $pool" "coupon_claim wide" "coupon_claim gone"; do
	read -r fn p <<<"$f"
	cat >"$throwaway_dir/$fn-$p.sql" <<SQL
\\set n :n + 1
SELECT $fn('$p', 'c' || :run || '-' || :client_id || '-' || :n);
SQL
done
# CPU seconds a server has used so far: its postmaster's own and reaped
# children's time, and that of its live children (/proc, in clock ticks).
cpu_of() {
	local pid
	pid=$(head -n 1 "$1/data/postmaster.pid")
	# cat, not awk, opens the files: a process that ends meanwhile is
	# skipped (mawk would stop at the first file it cannot open).
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pid="$pid" -v hz="$(getconf CLK_TCK)" '
		{
			self = $1 == pid
			sub(/^[0-9]+ \(.*\) /, "")     # pid and comm (which may hold spaces)
			if (self) t += $12 + $13 + $14 + $15
			else if ($2 == pid) t += $12 + $13
		}
		END { printf "%.2f\n", t / hz }'
}

echo "pgbench through a coupon cluster of $nodes nodes and a proxy on one machine, $clients clients, ${seconds} s per run, $rounds rounds,${COUPON_RATE:+ $COUPON_RATE calls/s asked,} $(nproc) CPUs, PostgreSQL $(psql -XAtc 'SHOW server_version')"
declare -A results node_cpu
for round in $(seq 1 "$rounds"); do
	for workload in direct hop proxied spread soldout; do
		case $workload in
		direct) target=node; script=coupon_claim-$pool ;;
		hop) target=proxy; script=hop_claim-$pool ;;
		proxied) target=proxy; script=coupon_claim-$pool ;;
		spread) target=proxy; script=coupon_claim-wide ;;
		soldout) target=proxy; script=coupon_claim-gone ;;
		esac
		node0=$(cpu_of "$throwaway_dir")
		proxy0=$(cpu_of "$throwaway_dir/proxy")
		out=$($target pgbench -n -c "$clients" -j 2 -T "$seconds" ${COUPON_RATE:+-R "$COUPON_RATE"} -D n=0 \
			-D run="$round$RANDOM" -f "$throwaway_dir/$script.sql" 2>&1)
		tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out")
		done=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
		if [ -z "$done" ] || [ -z "$tps" ]; then
			printf '%s\n' "$out" >&2
			echo "pgbench-cluster.sh: pgbench failed in round $round of $workload" >&2
			exit 1
		fi
		# CPU microseconds per claim on node 0 and on the proxy.
		read -r node_us proxy_us < <(python3 -c 'import sys
n0, n1, p0, p1, done = map(float, sys.argv[1:])
print(f"{(n1 - n0) / done * 1e6:.0f} {(p1 - p0) / done * 1e6:.0f}")' \
			"$node0" "$(cpu_of "$throwaway_dir")" "$proxy0" "$(cpu_of "$throwaway_dir/proxy")" "$done")
		printf 'round %d  %-8s %10.1f tps, CPU per claim: node 0 %4d us, proxy %4d us\n' \
			"$round" "$workload" "$tps" "$node_us" "$proxy_us"
		results[$workload]="${results[$workload]:-} $tps"
		node_cpu[$workload]="${node_cpu[$workload]:-} $node_us"
	done
done
python3 - "${results[direct]}" "${results[hop]}" "${results[proxied]}" "${results[spread]}" \
	"${node_cpu[direct]}" "${node_cpu[hop]}" "${node_cpu[proxied]}" "${results[soldout]}" \
	"${node_cpu[soldout]}" <<'PY'
import statistics, sys
direct, hop, proxied, spread, cpu_direct, cpu_hop, cpu_proxied, soldout, cpu_soldout = (
    statistics.median(map(float, a.split())) for a in sys.argv[1:10])
print(f"median tps: direct {direct:.0f}, hop {hop:.0f}, proxied {proxied:.0f}, spread {spread:.0f},"
      f" soldout {soldout:.0f} (node 0's CPU per sold-out answer {cpu_soldout:.0f} us)")
print(f"median CPU per claim on node 0: direct {cpu_direct:.0f} us, hop {cpu_hop:.0f} us,"
      f" proxied {cpu_proxied:.0f} us")
print(f"proxied / direct = {proxied / direct:.2f}x, spread / direct = {spread / direct:.2f}x"
      " (one machine: the proxy's CPU is the nodes' too)")
print(f"node 0's CPU per claim: direct {cpu_direct:.0f} us, proxied {cpu_proxied:.0f} us:"
      f" a node whose proxies run elsewhere serves {cpu_direct / cpu_proxied:.2f}x its direct claims")
PY

# The bursts.  Customers of one share: names whose hash picks member 0.
per_client=$(((capacity * 3 / 2 + clients - 1) / clients))
proxy psql -Xq -o /dev/null -v ON_ERROR_STOP=1 <<SQL
CREATE TABLE one_share (id int PRIMARY KEY, customer text NOT NULL);
INSERT INTO one_share
SELECT row_number() OVER () - 1, c
  FROM (SELECT 's' || g AS c FROM generate_series(1, $((clients * per_client * nodes * 2))) g) x
 WHERE (hashtext(c)::bigint & 4294967295) % $nodes = 0
 LIMIT $((clients * per_client));
SELECT coupon_pool_create('even', $capacity, 1, $nodes);
SELECT coupon_pool_create('skewed', $capacity, 1, $nodes);
SQL
cat >"$throwaway_dir/even.sql" <<'SQL'
\set n :n + 1
SELECT coupon_claim('even', 'e-' || :client_id || '-' || :n);
SQL
cat >"$throwaway_dir/skewed.sql" <<SQL
\set n :n + 1
SELECT coupon_claim('skewed', customer) FROM one_share WHERE id = :client_id * $per_client + :n - 1;
SQL
for burst in even skewed; do
	t0=$(date +%s.%N)
	proxy pgbench -n -c "$clients" -j 2 -t "$per_client" -D n=0 -f "$throwaway_dir/$burst.sql" >/dev/null 2>&1
	t1=$(date +%s.%N)
	read -r rows granted < <(for i in $(seq 0 $((nodes - 1))); do
		env $(node_env "$i") psql -XAtc \
			"SELECT (SELECT count(*) FROM coupon_transfers WHERE pool = '$burst' AND outgoing)
			        || ' ' || (SELECT coalesce(sum(qty), 0) FROM coupon_claims
			                    WHERE pool = '$burst' AND released_at IS NULL)"
	done | awk '{t += $1; g += $2} END {print t, g}')
	python3 -c 'import sys
burst, t0, t1, calls, transfers, granted, capacity = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
s = t1 - t0
verdict = "exact" if granted == capacity else "NOT EXACT"
print(f"burst {burst:7s} {calls} calls for {capacity} coupons in {s:.1f} s: {calls / s:.0f} calls/s,"
      f" {transfers} transfers ({transfers / s:.1f}/s), {granted} granted on the nodes'"'"' ledgers"
      f" ({verdict})")' \
		"$burst" "$t0" "$t1" $((clients * per_client)) "$rows" "$granted" "$capacity"
done
