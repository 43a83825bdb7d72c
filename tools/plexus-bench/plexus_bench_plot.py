#!/usr/bin/env python3
"""plexus-bench-plot: latency and bus bandwidth against size, one line per
backend, from plexus-bench's JSON (plexus-bench --plot runs it).

usage: plexus-bench-plot RESULTS.json OUT.png
Exit status: 0 written, 2 usage or unreadable input, 3 no matplotlib (the
caller then tries another python3).
"""
import json
import sys


def load(path):
    with open(path) as f:
        run = json.load(f)
    series = {}
    for r in run["results"]:
        series.setdefault(r["backend"], []).append(r)
    for rows in series.values():
        rows.sort(key=lambda r: r["size_bytes"])
    return run, series


def human(n):
    for unit in ("", "K", "M", "G"):
        if n < 1024 or n % 1024:
            return f"{n}{unit}"
        n //= 1024
    return f"{n}T"


def draw(run, series, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (lat, bw) = plt.subplots(1, 2, figsize=(12, 4.8))
    for name, rows in series.items():
        sizes = [r["size_bytes"] for r in rows]
        line, = lat.plot(sizes, [r["median_us"] for r in rows], marker="o", ms=3, label=name)
        lat.fill_between(sizes, [r["p10_us"] for r in rows], [r["p90_us"] for r in rows],
                         color=line.get_color(), alpha=0.2, lw=0)
        bw.plot(sizes, [r["busbw_gbs"] for r in rows], marker="o", ms=3, label=name)
    bw.axhline(run["memcpy_gbs"], color="grey", ls="--", lw=1, label="memcpy, one core")
    lat.set(xscale="log", yscale="log", ylabel="time (us), median and p10-p90", title="latency")
    bw.set(xscale="log", ylabel="bus bandwidth (GB/s)", title="bus bandwidth")
    for ax in (lat, bw):
        ticks = sorted({r["size_bytes"] for rows in series.values() for r in rows})
        ax.set_xticks(ticks[:: max(1, len(ticks) // 8)])
        ax.set_xticklabels([human(t) for t in ticks[:: max(1, len(ticks) // 8)]])
        ax.set_xlabel("size (bytes per rank buffer)")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend()
    fig.suptitle(f"plexus-bench {run['op']} {run['dtype']} {run['redop']}, {run['ranks']} ranks, "
                 f"{run['host']}, {run['date']}")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return 3
    try:
        run, series = load(argv[1])
    except (OSError, ValueError, KeyError) as e:
        print(f"plexus-bench-plot: cannot read {argv[1]}: {e}", file=sys.stderr)
        return 2
    draw(run, series, argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
