"""The health endpoints name the release the process runs (RELEASE_ID, set by the deploy),
so a deploy can tell which code each instance really serves."""

from typing import Any

import httpx


def test_health_names_the_release(postgres: Any, start_app: Any) -> None:
    server = start_app(postgres.app_env(RELEASE_ID="0123456789ab", MIGRATE_ON_STARTUP="false"))
    server.wait_live()
    for path in ("/health/live", "/health/ready"):
        body = httpx.get(server.base_url + path, timeout=5).json()
        assert body["releaseId"] == "0123456789ab", body


def test_without_a_release_id_none_is_shown(client: httpx.Client) -> None:
    for path in ("/health/live", "/health/ready"):
        assert "releaseId" not in client.get(path).json()
