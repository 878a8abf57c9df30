"""Liveness and readiness probes while the database is up (outages: test_outage.py)."""

import concurrent.futures
from typing import Any

import httpx


def get_passing(client: httpx.Client, path: str) -> Any:
    """GET a probe that passes; return its body."""
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/health+json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["status"] == "pass"
    return body


def test_live(client: httpx.Client) -> None:
    body = get_passing(client, "/health/live")
    assert body["checks"]["uptime"][0]["status"] == "pass"


def test_ready(client: httpx.Client) -> None:
    body = get_passing(client, "/health/ready")
    [check] = body["checks"]["postgresql:connection"]
    assert check["status"] == "pass"
    assert check["observedUnit"] == "ms"


def test_ready_many_times_in_parallel(client: httpx.Client) -> None:
    # Probes run one at a time in their own thread and do not use the request slots.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: client.get("/health/ready").status_code, range(32)))
    assert statuses == [200] * 32
