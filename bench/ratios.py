"""The ratios that the report compares, and the targets table built from them.

Every compared number comes from the same run on the same host: a ratio of two paths in
one cell (``load_ratio``), the median of those over the targets' repeated rounds
(``target_ratio``), or of two deploy timings (``deploy_ratio``). ``targets(results)``
is the table that bench/run.py prints at the end and the report opens with.
"""

import math
import statistics
from dataclasses import dataclass
from typing import Any

from schema import NOT_MEASURED, PATH_NAMES, TARGET_CONNECTIONS, Results, find, number

# The deploy targets: a no-op redeploy within this many Ansible floors, a fresh deploy
# within this many bare installs (the report's deploy table shows them too).
NOOP_GOAL = 3
FRESH_GOAL = 1.5
# `make release` of a one-line code change, every instance rolled: seconds.
RELEASE_GOAL = 25


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
        target_row(
            "no-op redeploy vs Ansible floor (ping + facts)", noop, NOOP_GOAL, False, changed_text
        )
    )
    fresh = deploy_ratio(deploy, "fresh_s", "bare_s")
    rows.append(target_row("fresh deploy vs bare install", fresh, FRESH_GOAL, False))
    release = number(deploy, "release_s")
    floor = deploy_ratio(deploy, "release_s", "floor_s")
    rows.append(
        target_row(
            "make release, one-line change (s)",
            Ratio() if release is None else Ratio(release, ""),
            RELEASE_GOAL,
            False,
            "" if floor.value is None else f"{floor.value:.1f} Ansible floors",
        )
    )
    return ["| Target | Measured | Goal | Result |", "|---|---|---|---|", *rows]
