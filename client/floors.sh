#!/bin/sh
# floors.sh OBJECT...: the file graph of coupon-stress, read from its
# objects, and a check that it has no cycle ("make check-floors").
#
# File a uses file b when a.o refers to a function or variable that b.o
# defines (nm -u against nm --defined-only).  Prints one line per file,
# "a: b c ...", then the files from the top floor to the bottom (tsort's
# order of the graph).  The same is done for the includes, a.c or a.h
# including "b.h", which must not point up either.  Fails, naming the
# files of each cycle, when one makes that order impossible.
set -eu

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# check TITLE: print the graph of $tmp/edges ("user used" lines) and sort it
check() {
	echo "$1"
	for f in $(awk '{print $1}' "$tmp/edges" | sort -u); do
		printf '  %s:%s\n' "$f" \
			"$(awk -v f="$f" '$1 == f && $2 != f {printf " %s", $2}' "$tmp/edges")"
	done
	if tsort "$tmp/edges" >"$tmp/order" 2>"$tmp/loop"; then
		echo "  floors, top to bottom:" $(cat "$tmp/order")
	else
		awk '/input contains a loop/ {if (n) print line; line = "  cycle:"; n = 1; next}
			 {sub(/^tsort: /, ""); line = line " " $0}
			 END {print line}' "$tmp/loop"
		failed=1
	fi
}

failed=0
for o in "$@"; do
	nm --defined-only -g "$o" | awk -v f="${o%.o}" 'NF == 3 {print $3, f}'
done | sort -k1,1 >"$tmp/defined"
for o in "$@"; do
	nm -u "$o" | awk -v f="${o%.o}" '{print $NF, f}'
done | sort -k1,1 >"$tmp/used"
# "symbol user definer" -> "user definer"; every file is a node
{
	join "$tmp/used" "$tmp/defined" | awk '$2 != $3 {print $2, $3}'
	for o in "$@"; do echo "${o%.o} ${o%.o}"; done
} | sort -u >"$tmp/edges"
check "uses (from the objects):"

# a.c and a.h are one node, a: every source beside the objects
ls "$(dirname "$1")"/*.[ch] |
	xargs awk '{f = FILENAME; sub(/.*\//, "", f); sub(/\.[ch]$/, "", f); print f " " f}
		/^#include "/ {h = $2; gsub(/"/, "", h); sub(/\.h$/, "", h); print f, h}' |
	sort -u >"$tmp/all"
# only the client's own headers ("libpq-fe.h" is not one)
awk 'NR == FNR {node[$1] = 1; next} $2 in node' "$tmp/all" "$tmp/all" >"$tmp/edges"
check "includes (from the sources):"

[ "$failed" = 0 ] && echo "no cycle"
exit "$failed"
