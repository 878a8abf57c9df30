"""Turn the results of ``make bench`` into a markdown report and a chart.

    python bench/report.py RESULTS.json OUT.md OUT.png

``render(results)`` returns the markdown, ``chart(results, path)`` writes the PNG. A
partial results file (load runs or deploy timings missing) is rendered as far as it goes,
the rest marked "not measured".
"""

import json
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PATHS = ("nginx-http", "nginx-https", "direct", "baseline")
ENDPOINTS = {
    "get_by_id": "GET /messages/{id}",
    "get_page": "GET /messages",
    "post": "POST /messages",
}
COLOURS = {
    "nginx-http": "tab:blue",
    "nginx-https": "tab:green",
    "direct": "tab:orange",
    "baseline": "tab:red",
}
PATH_NAMES = {"baseline": "seed pattern"}
TARGET_CONNECTIONS = 64
NOT_MEASURED = "not measured"

Results = dict[str, Any]
Entry = dict[str, Any]


def number(mapping: Any, key: str) -> float | None:
    """``mapping[key]`` if it is a number, else None (missing, null or malformed)."""
    value = mapping.get(key) if isinstance(mapping, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def entries(results: Results) -> list[Entry]:
    """The well-formed load entries."""
    load = results.get("load")
    if not isinstance(load, list):
        return []
    return [
        e
        for e in load
        if isinstance(e, dict)
        and e.get("path") in PATHS
        and e.get("endpoint") in ENDPOINTS
        and number(e, "connections") is not None
    ]


def find(results: Results, path: str, endpoint: str, connections: int) -> Entry | None:
    """The (last) load entry of this path, endpoint and connection count."""
    found = None
    for e in entries(results):
        if (e["path"], e["endpoint"], number(e, "connections")) == (path, endpoint, connections):
            found = e
    return found


def connection_counts(results: Results, endpoint: str) -> list[int]:
    return sorted({int(e["connections"]) for e in entries(results) if e["endpoint"] == endpoint})


def fmt(value: float | None, digits: int = 2) -> str:
    return NOT_MEASURED if value is None else f"{value:,.{digits}f}"


@dataclass(frozen=True)
class Ratio:
    """One number over another. ``value`` is None when not measured or not measurable,
    infinite when the denominator's path failed every request (rps)."""

    value: float | None = None
    detail: str = ""  # the two numbers compared, or why there is no ratio
    not_measurable: bool = False

    def text(self, numbers: bool = True) -> str:
        """The ratio to 2 decimals and the numbers compared (unless ``numbers`` is False),
        or why there is no ratio."""
        if self.value is None:
            shown = "not measurable" if self.not_measurable else NOT_MEASURED
        elif math.isinf(self.value):
            shown = "∞"
        else:
            shown = f"{self.value:.2f}"
            if not numbers:
                return shown
        return f"{shown} ({self.detail})" if self.detail else shown

    def result(self, goal: float, at_least: bool) -> str:
        """``met``, ``missed by X%`` (how far from the goal), or why there is no result."""
        if self.value is None:
            return "not measurable" if self.not_measurable else NOT_MEASURED
        if (self.value >= goal) if at_least else (self.value <= goal):
            return "met"
        shortfall = abs(goal - self.value) / goal * 100
        return f"missed by {shortfall:.0f}%" if shortfall >= 1 else f"missed by {shortfall:.1f}%"


def load_ratio(
    results: Results, key: str, over: str, under: str, endpoint: str, connections: int
) -> Ratio:
    """``key`` ("rps" or "p99_ms") of path ``over`` divided by that of path ``under``."""
    top = find(results, over, endpoint, connections)
    bottom = find(results, under, endpoint, connections)
    a, b = number(top, key), number(bottom, key)
    if a is None or b is None:
        return Ratio()
    if number(bottom, "ok") == 0 or b == 0:
        failed = f"{PATH_NAMES.get(under, under)} failed every request"
        if key == "rps":
            return Ratio(math.inf, failed)
        return Ratio(None, failed, not_measurable=True)
    if key == "rps":
        return Ratio(a / b, f"{a:,.0f} vs {b:,.0f} rps")
    return Ratio(a / b, f"{a:,.1f} vs {b:,.1f} ms")


def target_ratio(results: Results, key: str, over: str, under: str) -> Ratio:
    """A target's ratio: the median over the run's repeated rounds of GET by id at
    TARGET_CONNECTIONS (each round has every path back to back), else the single run."""
    single = load_ratio(results, key, over, under, "get_by_id", TARGET_CONNECTIONS)
    rounds = results.get("target_rounds")
    if not isinstance(rounds, list) or not rounds:
        return single
    samples = [{p: find(results, p, "get_by_id", TARGET_CONNECTIONS) for p in (over, under)}]
    samples += [r for r in rounds if isinstance(r, dict)]
    values = []
    for sample in samples:
        a, b = number(sample.get(over), key), number(sample.get(under), key)
        if a is None or b is None or b == 0:
            return single
        values.append(a / b)
    median = statistics.median(values)
    unit = "rps" if key == "rps" else "p99"
    return Ratio(
        median,
        f"median of {len(values)} rounds of {unit}, {min(values):.2f}–{max(values):.2f}",
    )


def deploy_ratio(deploy: Any, over: str, under: str) -> Ratio:
    a, b = number(deploy, over), number(deploy, under)
    if a is None or b is None or b == 0:
        return Ratio()
    return Ratio(a / b, f"{a:.1f} vs {b:.1f} s")


def target_row(name: str, ratio: Ratio, goal: float, at_least: bool, extra: str = "") -> str:
    measured = ratio.text() if not extra or ratio.value is None else f"{ratio.text()}, {extra}"
    goal_text = f"{'≥' if at_least else '≤'} {goal:g}"
    return f"| {name} | {measured} | {goal_text} | {ratio.result(goal, at_least)} |"


def targets(results: Results) -> list[str]:
    c = TARGET_CONNECTIONS
    rows = []
    for path, label in (("nginx-http", "HTTP"), ("nginx-https", "HTTPS")):
        for key, goal, at_least in (("rps", 10.0, True), ("p99_ms", 0.2, False)):
            name = f"nginx ({label}) vs seed pattern, GET by id @{c}: {key.removesuffix('_ms')}"
            ratio = target_ratio(results, key, path, "baseline")
            rows.append(target_row(name, ratio, goal, at_least))
    for name, over, under, goal in (
        (f"nginx HTTP vs direct to instances, GET by id @{c}: rps", "nginx-http", "direct", 0.90),
        (f"HTTPS (keep-alive) vs HTTP, GET by id @{c}: rps", "nginx-https", "nginx-http", 0.85),
    ):
        ratio = target_ratio(results, "rps", over, under)
        rows.append(target_row(name, ratio, goal, True))

    deploy = results.get("deploy")
    changed = number(deploy, "noop_changed")
    changed_text = "" if changed is None else f"changed={changed:.0f}"
    noop = deploy_ratio(deploy, "noop_s", "floor_s")
    rows.append(
        target_row("no-op redeploy vs Ansible floor (ping + facts)", noop, 3, False, changed_text)
    )
    fresh = deploy_ratio(deploy, "fresh_s", "bare_s")
    rows.append(target_row("fresh deploy vs bare install", fresh, 1.5, False))
    return ["| Target | Measured | Goal | Result |", "|---|---|---|---|", *rows]


def load_tables(results: Results) -> list[str]:
    lines: list[str] = []
    for endpoint, title in ENDPOINTS.items():
        lines += ["", f"### {title}", ""]
        counts = connection_counts(results, endpoint)
        if not counts:
            lines.append(f"{NOT_MEASURED}.")
            continue
        rows = [
            (c, path, e)
            for c in counts
            for path in PATHS
            if (e := find(results, path, endpoint, c)) is not None
        ]
        with_errors = any(number(e, "errors") for _, _, e in rows)
        header = "| conns | path | rps | p50 ms | p99 ms |" + (" errors |" if with_errors else "")
        lines += [header, "|---:|---|---:|---:|---:|" + ("---:|" if with_errors else "")]
        for c, path, e in rows:
            cells = [str(c), path, fmt(number(e, "rps"), 0)]
            cells += [fmt(number(e, "p50_ms"), 1), fmt(number(e, "p99_ms"), 1)]
            if with_errors:
                errors, requests = number(e, "errors"), number(e, "requests")
                cells.append(
                    f"{fmt(errors, 0)} of {fmt(requests, 0)}" if errors else fmt(errors, 0)
                )
            lines.append("| " + " | ".join(cells) + " |")

        lines += [
            "",
            "| conns | nginx-http / direct | https / http | nginx-http / seed pattern |",
            "|---:|---:|---:|---:|",
        ]
        for c in counts:
            cells = [str(c)]
            for over, under in (
                ("nginx-http", "direct"),
                ("nginx-https", "nginx-http"),
                ("nginx-http", "baseline"),
            ):
                ratio = load_ratio(results, "rps", over, under, endpoint, c)
                cells.append(ratio.text(numbers=False))
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def deploy_table(results: Results) -> list[str]:
    deploy = results.get("deploy")
    changed, fresh_tasks, noop_tasks = (
        number(deploy, k) for k in ("noop_changed", "fresh_tasks", "noop_tasks")
    )

    def tasks(count: float | None) -> str:
        return "" if count is None else f"{count:.0f} tasks"

    noop_notes = ", ".join(
        note
        for note in ("" if changed is None else f"changed={changed:.0f}", tasks(noop_tasks))
        if note
    )

    def seconds(key: str) -> str:
        value = number(deploy, key)
        return NOT_MEASURED if value is None else f"{value:.1f} s"

    rows = [
        ("fresh deploy", seconds("fresh_s"), tasks(fresh_tasks)),
        ("bare install", seconds("bare_s"), ""),
        ("no-op redeploy", seconds("noop_s"), noop_notes),
        ("Ansible floor (ping + facts)", seconds("floor_s"), ""),
        ("one more module call", seconds("module_call_s"), "20 pings less the floor's one, / 19"),
        ("no-op / floor", fmt(deploy_ratio(deploy, "noop_s", "floor_s").value), "goal ≤ 3"),
        ("fresh / bare", fmt(deploy_ratio(deploy, "fresh_s", "bare_s").value), "goal ≤ 1.5"),
    ]
    return [
        "| Measure | Value | Notes |",
        "|---|---:|---|",
        *(f"| {step} | {seconds} | {notes} |" for step, seconds, notes in rows),
    ]


def cpu_table(results: Results, connections: int = 64) -> list[str]:
    """CPU milliseconds per response by part of the stack, per path and endpoint."""
    parts = ("nginx", "app", "postgresql", "baseline")
    rows = []
    for endpoint in ENDPOINTS:
        for path in PATHS:
            entry = find(results, path, endpoint, connections)
            cpu = entry.get("cpu_ms_per_request") if entry else None
            if isinstance(cpu, dict) and cpu:
                used = [number(cpu, part) for part in parts]
                cells = " | ".join("–" if ms is None else f"{ms:.3f}" for ms in used)
                total = sum(v for v in cpu.values() if isinstance(v, int | float))
                rows.append(f"| {endpoint} | {path} | {cells} | {total:.3f} |")
    if not rows:
        return []
    return [
        "",
        f"## Where the CPU goes ({connections} connections)",
        "",
        "CPU milliseconds per successful response, read from /proc on the host before and"
        " after each run (wrk's own CPU not included).",
        "",
        "| Endpoint | Path | nginx | app | PostgreSQL | seed pattern | total |",
        "|---|---|---:|---:|---:|---:|---:|",
        *rows,
    ]


def slowest_tables(results: Results) -> list[str]:
    """The slowest tasks of the fresh and the no-op deploy, as profile_tasks timed them."""
    deploy = results.get("deploy")
    lines: list[str] = []
    for key, title in (("fresh_slowest", "fresh deploy"), ("noop_slowest", "no-op redeploy")):
        rows = deploy.get(key) if isinstance(deploy, dict) else None
        if not isinstance(rows, list) or not rows:
            continue
        lines += ["", f"Slowest tasks of the {title}:", "", "| Task | s |", "|---|---:|"]
        lines += [
            f"| {name} | {seconds:.1f} |"
            for name, seconds in (row for row in rows if isinstance(row, list | tuple))
        ]
    packages = deploy.get("bare_packages") if isinstance(deploy, dict) else None
    if isinstance(packages, list) and packages:
        lines += [
            "",
            f"The bare install: `apt-get install {' '.join(map(str, packages))}`,"
            " then a virtualenv from the same wheels (`pip install --no-index`).",
        ]
    return lines


def key_values(mapping: Any, what: str) -> list[str]:
    """``- key: value`` lines, or one line saying that ``what`` is not known."""
    if not isinstance(mapping, dict) or not mapping:
        return [f"- {what}: {NOT_MEASURED}"]
    return [f"- {key}: {value}" for key, value in mapping.items()]


def render(results: Results) -> str:
    """The markdown report."""
    settings = results.get("settings")
    duration = number(settings, "duration_s")
    run_length = f"{duration:g} s" if duration is not None else "a fixed time"
    lines = [
        f"# Benchmark {results.get('date') or 'undated'}",
        "",
        "How measured: wrk ran on the host itself, sharing its CPUs with nginx, the app and"
        " PostgreSQL, against every path in the same run, one after the other, for"
        f" {run_length} per run. `nginx-http` and `nginx-https` go through nginx, `direct`"
        " straight to the app's instances, `baseline` to the seed pattern"
        " (`bench/baseline.py`: one uvicorn process, a new PostgreSQL connection per request)."
        " The absolute numbers depend on the machine: compare the ratios. rps counts"
        " successful responses only; latencies are wrk's, over all responses. The targets"
        " at 64 connections are the median ratio over the main run and the extra rounds of"
        " that cell (`--target-rounds`), each with every path back to back. Settings:",
        "",
        *key_values(settings, "settings"),
        "",
        "## Targets",
        "",
        *targets(results),
        "",
        "## Load",
        *load_tables(results),
        *cpu_table(results),
        "",
        "## Deploy",
        "",
        *deploy_table(results),
        *slowest_tables(results),
        "",
        "## Machine and versions",
        "",
        *key_values(results.get("machine"), "machine"),
        *key_values(results.get("versions"), "versions"),
    ]
    return "\n".join(lines) + "\n"


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


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(f"usage: {argv[0]} RESULTS.json OUT.md OUT.png", file=sys.stderr)
        return 2
    results = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    if not isinstance(results, dict):
        print(f"{argv[1]}: not a JSON object", file=sys.stderr)
        return 1
    Path(argv[2]).write_text(render(results), encoding="utf-8")
    chart(results, argv[3])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
