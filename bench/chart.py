"""The chart of a run: ``chart(results, path)`` writes a PNG of requests per second (top)
and p99 latency (bottom) against connections, one column per endpoint, one line per path.

matplotlib (bench/requirements.txt) is imported only when a chart is drawn, so the
markdown report needs nothing but the standard library.
"""

from pathlib import Path

from schema import (
    ENDPOINTS,
    NOT_MEASURED,
    PATH_NAMES,
    PATHS,
    Results,
    connection_counts,
    find,
    number,
)

COLOURS = {
    "nginx-http": "tab:blue",
    "nginx-https": "tab:green",
    "direct": "tab:orange",
    "baseline": "tab:red",
}


def legend_label(path: str) -> str:
    return f"{path} ({PATH_NAMES[path]})" if path in PATH_NAMES else path


def chart(results: Results, path: str | Path) -> None:
    """A PNG: rps (top) and p99 (bottom) against connections, one column per endpoint."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullLocator

    fig, axes = plt.subplots(2, 3, figsize=(14, 8), dpi=100)
    cores = number(results.get("machine"), "cores")
    fig.suptitle(
        f"Benchmark {results.get('date') or 'undated'}"
        + (f" ({cores:.0f} cores, wrk on the same host)" if cores is not None else "")
    )
    plotted: set[str] = set()
    for column, (endpoint, title) in enumerate(ENDPOINTS.items()):
        axes[0][column].set_title(title)
        counts = connection_counts(results, endpoint)
        for row, key in enumerate(("rps", "p99_ms")):
            axis = axes[row][column]
            for line in PATHS:
                xy = [
                    (c, v)
                    for c in counts
                    if (v := number(find(results, line, endpoint, c), key)) is not None
                    and (key == "rps" or v > 0)  # a log axis cannot show 0
                ]
                if xy:
                    xs, ys = zip(*xy, strict=True)
                    axis.plot(xs, ys, marker="o", color=COLOURS[line])
                    plotted.add(line)
            if not axis.lines:
                axis.text(0.5, 0.5, NOT_MEASURED, ha="center", transform=axis.transAxes)
                axis.set_xticks([])
                axis.set_yticks([])
                continue
            axis.set_xscale("log")
            axis.set_xticks(counts, [str(c) for c in counts])
            axis.xaxis.set_minor_locator(NullLocator())
            axis.grid(True, which="major", alpha=0.3)
            if key == "rps":
                axis.set_ylim(bottom=0)
            else:
                axis.set_yscale("log")
                axis.set_xlabel("connections")
    axes[0][0].set_ylabel("requests/s (ok)")
    axes[1][0].set_ylabel("p99 latency, ms (log)")
    handles = [
        Line2D([], [], color=COLOURS[p], marker="o", label=legend_label(p))
        for p in PATHS
        if p in plotted
    ]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path)
    plt.close(fig)
