#!/usr/bin/env python3
"""plexus-bench-plot: latency and bus bandwidth against size, one line per
backend (and mode, where a run captured CUDA graphs), from plexus-bench's
JSON (plexus-bench --plot runs it). Several JSON files draw on one figure,
so an eager and a --graph run can be compared.

usage: plexus-bench-plot RESULTS.json [MORE.json ...] OUT.png
Exit status: 0 written, 2 usage or unreadable input, 3 no matplotlib (the
caller then tries another python3).
"""
import json
import sys


def series_name(r):
    """backend, or "backend (graph)": files written before the mode field
    existed are eager."""
    mode = r.get("mode", "eager")
    return r["backend"] if mode == "eager" else f"{r['backend']} ({mode})"


def load(paths):
    runs, series = [], {}
    for i, path in enumerate(paths):
        with open(path) as f:
            run = json.load(f)
        runs.append(run)
        names = {}
        for r in run["results"]:
            name = series_name(r)
            if name not in names:  # the same line from an earlier file gets the file's number
                names[name] = name if name not in series else f"{name} #{i + 1}"
            series.setdefault(names[name], []).append(r)
    for rows in series.values():
        rows.sort(key=lambda r: r["size_bytes"])
    return runs[0], series


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
    if not run.get("mem", "host").startswith("device"):  # a host copy says nothing of a GPU
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
                 f"{run.get('mem', 'host')} memory, {run['host']}, {run['date']}")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return 3
    try:
        run, series = load(argv[1:-1])
    except (OSError, ValueError, KeyError) as e:
        print(f"plexus-bench-plot: cannot read {' '.join(argv[1:-1])}: {e}", file=sys.stderr)
        return 2
    draw(run, series, argv[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
