"""bench/baseline.py (the seed's pattern) answers like the app, so the benchmark compares
like with like. It runs under a real uvicorn against the test PostgreSQL, whose table the
``app_server`` fixture's migrations created."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.app.harness import AUTH, REPO, AppServer

BENCH_DIR = REPO / "bench"


@pytest.fixture()
def baseline(postgres: Any, app_server: AppServer, logdir: Path) -> Iterator[httpx.Client]:
    # The baseline has no /health: it is live once it serves a page.
    server = AppServer(
        postgres.app_env(), logdir, "baseline", "baseline:app", BENCH_DIR, live_path="/messages"
    )
    try:
        server.wait_live()
        with httpx.Client(headers=AUTH, base_url=server.base_url, timeout=10) as http:
            yield http
    finally:
        server.stop()


def test_baseline_serves_the_apps_endpoints(baseline: httpx.Client, client: httpx.Client) -> None:
    response = baseline.post("/messages", json={"message": "seed"})
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {"id", "message", "created_at", "updated_at"}
    assert created["message"] == "seed"
    assert response.headers["location"] == f"/messages/{created['id']}"

    assert baseline.get(f"/messages/{created['id']}").json() == created
    page = baseline.get("/messages").json()
    assert set(page) == {"items", "next_before"}
    assert page["items"][0] == created  # newest first

    missing = baseline.get(f"/messages/{created['id'] + 1000}")
    assert missing.status_code == 404
    assert missing.json() == {"detail": f"message {created['id'] + 1000} not found"}

    # Byte for byte what the app answers, so the benchmark compares like with like.
    for path in (f"/messages/{created['id']}", "/messages", "/messages?limit=1"):
        assert baseline.get(path).content == client.get(path).content, path
