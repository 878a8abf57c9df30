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


def test_through_the_edge_only_admins_see_the_checks(client: httpx.Client) -> None:
    """nginx sends X-Forwarded-For, and X-Edge-Admin: 1 for nginx_admin_allow only."""
    for path in ("/health/live", "/health/ready"):
        public = client.get(path, headers={"X-Forwarded-For": "198.51.100.7"})
        assert public.status_code == 200
        assert public.json() == {"status": "pass"}
        admin = client.get(path, headers={"X-Forwarded-For": "127.0.0.1", "X-Edge-Admin": "1"})
        assert set(admin.json()) >= {"status", "checks"}
