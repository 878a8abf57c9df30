"""What a run of ``make bench`` measures, and how its results file is read back.

Shared by the side that measures (bench/run.py, bench/load.py) and the side that reports
(bench/report.py, bench/ratios.py, bench/chart.py), so both name the same paths, endpoints
and target cell. A results file (bench/results/<date>.json) holds:

- ``load``: one entry per run of a path, an endpoint and a connection count;
- ``target_rounds``: more runs of every path at the targets' cell, back to back per round;
- ``deploy``, ``settings``, ``machine``, ``versions``: the deploy timings and what was run.

The readers below take a partial or malformed file as far as it goes: what is missing or
not a number reads as None.
"""

from typing import Any

# The ways to the data, compared in every cell: through nginx (HTTP, HTTPS), straight to
# the app's instances, and to the seed's pattern (bench/baseline.py).
PATHS = ("nginx-http", "nginx-https", "direct", "baseline")
ENDPOINTS = {
    "get_by_id": "GET /messages/{id}",
    "get_page": "GET /messages",
    "post": "POST /messages",
}
PATH_NAMES = {"baseline": "seed pattern"}
# The connection count of the targets' comparisons (GET by id).
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
