#!/usr/bin/env python3
"""Tables and plots of a coupon-stress --json sweep (client/bench.sh).

    python3 client/plot.py RESULTS.json OUTDIR

Prints a Markdown table of claims per second (one row per client count,
one column per strategy) with claim's ratio to atomic, insert-only, redis
and redlock, and writes with gnuplot:

    OUTDIR/claims.png   claims per second against clients
    OUTDIR/p99.png      p99 latency against clients

Both axes are logarithmic, one line per strategy.  Strategies that claim
to be correct are drawn solid, the others (naive, insert-only) dashed and
named "(not correct)"; a point where a strategy that claims to be correct
was not exact gets a large cross.  Exits 1 when the file holds no results.
"""
import json
import subprocess
import sys

# claim is compared with these, where the run has them: the best hot row,
# the bare insert, and the two Redis answers.
RATIO_TO = ["atomic", "insert-only", "redis", "redlock"]
PALETTE = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#000000",
           "#a6761d", "#e6ab02", "#66a61e", "#1f78b4", "#b15928"]


def by_strategy(results):
    """strategy -> rows, in the order of the run."""
    out = {}
    for row in results:
        out.setdefault(row["strategy"], []).append(row)
    return out


def markdown_table(results):
    series = by_strategy(results)
    names = list(series)
    clients = sorted({r["clients"] for r in results})
    cell = {(r["strategy"], r["clients"]): r for r in results}
    others = [n for n in RATIO_TO if n in series]
    head = ["clients"] + [f"**{n}**" if n == "claim" else n for n in names]
    if "claim" in series:
        head += [f"claim / {n}" for n in others]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "--:|" * len(head)]
    for c in clients:
        row = [str(c)]
        for n in names:
            r = cell.get((n, c))
            text = f"{r['claims_per_s']:,.0f}" if r else "–"
            if r and r["exact"] and not r["correct"]:
                text += " (inexact)"
            row.append(f"**{text}**" if n == "claim" else text)
        claim = cell.get(("claim", c))
        for n in others if claim else []:
            r = cell.get((n, c))
            ratio = claim["claims_per_s"] / r["claims_per_s"] \
                if r and r["claims_per_s"] > 0 else None
            row.append(f"{ratio:.2f}x" if ratio else "–")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def gnuplot_script(results, outdir):
    series = by_strategy(results)
    blocks, plots = [], {"claims": [], "p99": []}
    for i, (name, rows) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        exact = rows[0]["exact"]
        title = name if exact else f"{name} (not correct)"
        data = "\n".join(f"{r['clients']} {max(r['claims_per_s'], 0.01)} "
                         f"{max(r['p99_ms'], 0.001)} "
                         f"{0 if (r['correct'] or not exact) else 1}"
                         for r in rows)
        blocks.append(f"$s{i} << EOD\n{data}\nEOD")
        dash = "dt 1" if exact else "dt 2"
        width = 4 if name == "claim" else 2
        for key, col in (("claims", 2), ("p99", 3)):
            plots[key].append(
                f"$s{i} using 1:{col} with linespoints lw {width} pt 7 ps 0.8 "
                f"{dash} lc rgb '{color}' title '{title}'")
            plots[key].append(
                f"$s{i} using 1:($4 > 0 ? ${col} : 1/0) with points pt 2 "
                f"ps 3 lw 2 lc rgb '{color}' notitle")
    clients = sorted({r["clients"] for r in results})
    common = [
        "set terminal pngcairo size 1000,640 font 'sans,11'",
        "set logscale xy",
        f"set xrange [{clients[0] / 1.3}:{clients[-1] * 1.3}]",
        "set grid xtics ytics mytics",
        "set key outside right top",
        "set xlabel 'clients (log scale)'",
        "set xtics (" + ", ".join(str(c) for c in clients) + ")",
    ]
    script = blocks + common + [
        f"set output '{outdir}/claims.png'",
        "set title 'Claims per second (log scale): solid = claims to be "
        "correct, dashed = not, x = not exact at that point'",
        "set ylabel 'claims per second'",
        "plot " + ", \\\n     ".join(plots["claims"]),
        f"set output '{outdir}/p99.png'",
        "set title 'p99 latency of a call (log scale), lower is better'",
        "set ylabel 'p99 latency, ms'",
        "plot " + ", \\\n     ".join(plots["p99"]),
    ]
    return "\n".join(script) + "\n"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        results = json.load(f).get("results", [])
    if not results:
        print(f"{sys.argv[1]}: no results", file=sys.stderr)
        sys.exit(1)
    print(markdown_table(results))
    subprocess.run(["gnuplot"], input=gnuplot_script(results, sys.argv[2]),
                   text=True, check=True)


if __name__ == "__main__":
    main()
