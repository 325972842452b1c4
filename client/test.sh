#!/usr/bin/env bash
# client/test.sh: tests of coupon-stress against a running server.
#
#   PGHOST=... PGPORT=... PGUSER=... bash client/test.sh
#
# The server must preload coupon (shared_preload_libraries) and allow at
# least 510 connections; .ci/pgserver starts such a server.  Every check
# asserts values read from the client's --json output, its exit status or
# its messages, and the ack log against the ledger, so each can fail:
#
#   - burst, 500 users for 50 coupons, with a race window: naive oversells
#     and loses updates; occ, for-update, atomic and claim grant exactly 50,
#     the ledger holds exactly 50 rows and the counter is 0; insert-only
#     writes one row per user; exit status 0
#   - the same split over --servers 3 processes: the same verdicts
#   - a short throughput sweep (-T, -c 1,8) with progress lines: one row
#     per strategy and point, every correct strategy exact and granting,
#     percentiles ordered
#   - --ack-log: every acknowledged claim id is in the ledger, once
#   - bad arguments: usage on stderr, exit 2
#   - an unreachable server: a clear message, exit 2
#
# Prints "ok N - description" or "not ok N - description" per check and
# "N passed, N failed" at the end; exits 0 only if every check passed.
# COUPON_STRESS overrides the binary (default: the one next to this file,
# built if missing).
set -u

here=$(cd "$(dirname "$0")" && pwd)
bin=${COUPON_STRESS:-$here/coupon-stress}
if [ ! -x "$bin" ]; then
	make -s -C "$here" >&2 || { echo "could not build coupon-stress" >&2; exit 2; }
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

n=0
passed=0
failed=0

check() {
	local desc=$1
	shift
	n=$((n + 1))
	if "$@"; then
		echo "ok $n - $desc"
		passed=$((passed + 1))
	else
		echo "not ok $n - $desc"
		failed=$((failed + 1))
	fi
}

# run NAME ARGS...: run the client, keep stdout, stderr and exit status
run() {
	local name=$1
	shift
	"$bin" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
	echo $? >"$tmp/$name.rc"
}

rc_is() {
	local got
	got=$(cat "$tmp/$1.rc")
	[ "$got" = "$2" ] && return 0
	echo "# $1: exit status $got, expected $2" >&2
	sed 's/^/# /' "$tmp/$1.err" | head -n 20 >&2
	return 1
}

# jcheck NAME EXPR: evaluate a Python expression over the JSON result
# (rows: the list; by: strategy -> list of rows); true passes
jcheck() {
	python3 - "$tmp/$1.out" "$2" <<'EOF'
import json, sys
try:
    data = json.load(open(sys.argv[1]))
except Exception as e:
    print("# no JSON: %s" % e, file=sys.stderr)
    sys.exit(1)
rows = data.get("results", [])
by = {}
for r in rows:
    by.setdefault(r["strategy"], []).append(r)
KEYS = {"strategy", "clients", "granted", "ledger_rows", "counter", "oversold",
        "lost_updates", "correct", "claims_per_s", "attempts_per_s", "p50_ms",
        "p95_ms", "p99_ms", "max_ms", "retries", "errors"}
EXACT = ["occ", "for-update", "atomic", "claim"]
ok = eval(sys.argv[2], {"rows": rows, "by": by, "KEYS": KEYS, "EXACT": EXACT,
                        "all": all, "any": any, "len": len, "set": set})
if not ok:
    for r in rows:
        print("# %s" % json.dumps(r), file=sys.stderr)
sys.exit(0 if ok else 1)
EOF
}

# The burst checks, for one run NAME with 500 users and 50 coupons.
burst_checks() {
	local name=$1 label=$2
	check "$label: exit status 0 (every correct strategy exact)" rc_is "$name" 0
	check "$label: one row per strategy, with exactly the documented keys" \
		jcheck "$name" 'len(rows) == 6 and all(set(r) == KEYS for r in rows) and [r["strategy"] for r in rows] == ["naive", "occ", "for-update", "atomic", "claim", "insert-only"]'
	check "$label: naive oversells and loses updates" \
		jcheck "$name" 'by["naive"][0]["ledger_rows"] > 50 and by["naive"][0]["oversold"] == by["naive"][0]["ledger_rows"] - 50 and by["naive"][0]["lost_updates"] > 0 and by["naive"][0]["correct"] is False'
	local s
	for s in occ for-update atomic claim; do
		check "$label: $s grants exactly the 50 coupons (granted, ledger, counter 0)" \
			jcheck "$name" "all(r['granted'] == 50 and r['ledger_rows'] == 50 and r['counter'] == 0 and r['oversold'] == 0 and r['lost_updates'] == 0 and r['errors'] == 0 and r['correct'] is True for r in by['$s'])"
	done
	check "$label: occ retried its conflicts" \
		jcheck "$name" 'by["occ"][0]["retries"] > 0'
	check "$label: insert-only writes one row per user, with no counter" \
		jcheck "$name" 'by["insert-only"][0]["ledger_rows"] == 500 and by["insert-only"][0]["granted"] == 500 and by["insert-only"][0]["counter"] is None and by["insert-only"][0]["correct"] is False'
}

# 1. burst with a race window, one process
run burst --race-window 20000 --json
burst_checks burst "burst"

# 2. the same over three processes
run servers --race-window 20000 --servers 3 --json
burst_checks servers "--servers 3"

# 3. a short throughput sweep with progress lines
run tput -T 2 -c 1,8 -P 1 --json
check "throughput: exit status 0" rc_is tput 0
check "throughput: one row per strategy and client count" \
	jcheck tput 'len(rows) == 12 and [r["clients"] for r in rows] == [1] * 6 + [8] * 6'
check "throughput: every correct strategy is exact and grants" \
	jcheck tput 'all(r["correct"] is True and r["granted"] > 0 and r["granted"] == r["ledger_rows"] and r["counter"] == 1000000000 - r["ledger_rows"] and r["claims_per_s"] > 0 for s in EXACT for r in by[s])'
check "throughput: percentiles are ordered and positive" \
	jcheck tput 'all(0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"] <= r["max_ms"] for r in rows)'
check "throughput: progress lines in pgbench's format on stderr" \
	grep -Eq '^progress: [0-9]+\.[0-9] s, [0-9.]+ tps, lat [0-9.]+ ms stddev [0-9.]+, [0-9]+ failed' "$tmp/tput.err"

# 4. the ack log holds exactly the acknowledged claims, all in the ledger
run ack --strategy claim --users 40 --coupons 25 --ack-log "$tmp/ack.log" --json
check "ack log: 25 distinct claim ids for 25 grants" \
	bash -c '[ "$(wc -l <"$1")" = 25 ] && [ "$(sort -u "$1" | wc -l)" = 25 ]' _ "$tmp/ack.log"
ack_in_ledger() {
	local ids missing
	ids=$(paste -sd, "$tmp/ack.log")
	[ -n "$ids" ] || return 1
	missing=$(psql -XAtq -v ON_ERROR_STOP=1 2>&1 <<EOF
SELECT format('SET search_path = %I', n.nspname) FROM pg_extension e
  JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'coupon' \\gexec
SELECT count(*) FROM unnest('{$ids}'::bigint[]) a(id)
 WHERE NOT EXISTS (SELECT 1 FROM coupon_claims c
                    WHERE c.id = a.id AND c.pool = 'stress_claim');
EOF
)
	[ "$missing" = 0 ] || { echo "# ids missing from the ledger: $missing" >&2; return 1; }
}
if command -v psql >/dev/null; then
	check "ack log: every acknowledged id is in the ledger" ack_in_ledger
fi

# 5. bad arguments
run bad1 --strategy bogus
check "bad strategy: exit 2 with usage" \
	bash -c '[ "$(cat "$1.rc")" = 2 ] && grep -q "unknown strategy \"bogus\"" "$1.err" && grep -q "^Usage:" "$1.err"' _ "$tmp/bad1"
run bad2 -c 4
check "-c without -T: exit 2 with usage" \
	bash -c '[ "$(cat "$1.rc")" = 2 ] && grep -q "^Usage:" "$1.err"' _ "$tmp/bad2"
run bad3 --users 0
check "--users 0: exit 2 with usage" \
	bash -c '[ "$(cat "$1.rc")" = 2 ] && grep -q "invalid value \"0\" for --users" "$1.err"' _ "$tmp/bad3"
run bad4 extra-argument
check "stray argument: exit 2" rc_is bad4 2

# 6. an unreachable server
run down --dsn "host=$tmp/no-such-socket-dir port=1" --json
check "unreachable server: exit 2, a clear message, no results" \
	bash -c '[ "$(cat "$1.rc")" = 2 ] && grep -q "^coupon-stress: could not connect to server: " "$1.err" && [ ! -s "$1.out" ]' _ "$tmp/down"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
