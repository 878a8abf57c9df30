"""Liveness and readiness probes while the database is up (outages: test_outage.py)."""

import concurrent.futures

import httpx


def assert_health_headers(response: httpx.Response) -> None:
    assert response.headers["content-type"] == "application/health+json"
    assert response.headers["cache-control"] == "no-store"


def test_live(client: httpx.Client) -> None:
    response = client.get("/health/live")
    assert response.status_code == 200
    assert_health_headers(response)
    body = response.json()
    assert body["status"] == "pass"
    assert body["checks"]["uptime"][0]["status"] == "pass"


def test_ready(client: httpx.Client) -> None:
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert_health_headers(response)
    body = response.json()
    assert body["status"] == "pass"
    [check] = body["checks"]["postgresql:connection"]
    assert check["status"] == "pass"
    assert check["observedUnit"] == "ms"


def test_ready_many_times_in_parallel(client: httpx.Client) -> None:
    # Probes run one at a time in their own thread and do not use the request slots.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: client.get("/health/ready").status_code, range(32)))
    assert statuses == [200] * 32
