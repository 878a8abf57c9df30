"""The markdown report of a run of ``make bench``: ``render(results)`` returns it.

    python bench/report.py RESULTS.json OUT.md OUT.png

renders a results file again: the markdown here, the chart with bench/chart.py. A partial
results file (load runs or deploy timings missing) is rendered as far as it goes, the rest
marked "not measured".
"""

import json
import sys
from pathlib import Path
from typing import Any

from chart import chart
from ratios import FRESH_GOAL, NOOP_GOAL, RELEASE_GOAL, deploy_ratio, load_ratio, targets
from schema import (
    ENDPOINTS,
    NOT_MEASURED,
    PATHS,
    TARGET_CONNECTIONS,
    Results,
    connection_counts,
    find,
    number,
)


def fmt(value: float | None, digits: int = 2) -> str:
    return NOT_MEASURED if value is None else f"{value:,.{digits}f}"


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
        ("make release, one-line change", seconds("release_s"), f"goal ≤ {RELEASE_GOAL} s"),
        ("Ansible floor (ping + facts)", seconds("floor_s"), ""),
        ("one more module call", seconds("module_call_s"), "20 pings less the floor's one, / 19"),
        (
            "no-op / floor",
            fmt(deploy_ratio(deploy, "noop_s", "floor_s").value),
            f"goal ≤ {NOOP_GOAL:g}",
        ),
        (
            "fresh / bare",
            fmt(deploy_ratio(deploy, "fresh_s", "bare_s").value),
            f"goal ≤ {FRESH_GOAL:g}",
        ),
    ]
    return [
        "| Measure | Value | Notes |",
        "|---|---:|---|",
        *(f"| {step} | {seconds} | {notes} |" for step, seconds, notes in rows),
    ]


def cpu_table(results: Results, connections: int = TARGET_CONNECTIONS) -> list[str]:
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
    """The slowest tasks of the fresh deploy, the no-op deploy and the release, as
    profile_tasks timed them."""
    deploy = results.get("deploy")
    lines: list[str] = []
    for key, title in (
        ("fresh_slowest", "fresh deploy"),
        ("noop_slowest", "no-op redeploy"),
        ("release_slowest", "make release"),
    ):
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
        f" at {TARGET_CONNECTIONS} connections are the median ratio over the main run and the"
        " extra rounds of that cell (`--target-rounds`), each with every path back to back."
        " Settings:",
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
