"""More concurrent requests than pooled connections (the test app has a pool of 2)."""

import concurrent.futures
import threading
from typing import Any

import httpx
import pytest

WRITERS = 8
POSTS_EACH = 25


@pytest.mark.usefixtures("empty_table")
def test_concurrent_writers_all_succeed(app_server: Any, db_count: Any) -> None:
    start = threading.Barrier(WRITERS)

    def writer(number: int) -> list[int]:
        statuses = []
        with httpx.Client(base_url=app_server.base_url, timeout=10) as http:
            start.wait()
            for i in range(POSTS_EACH):
                response = http.post("/messages", json={"message": f"writer {number} #{i}"})
                statuses.append(response.status_code)
        return statuses

    with concurrent.futures.ThreadPoolExecutor(WRITERS) as pool:
        results = list(pool.map(writer, range(WRITERS)))

    assert [status for statuses in results for status in statuses] == [201] * 200
    assert db_count() == WRITERS * POSTS_EACH
    with httpx.Client(base_url=app_server.base_url) as http:
        page = http.get("/messages", params={"limit": 500}).json()
    assert len({item["id"] for item in page["items"]}) == WRITERS * POSTS_EACH


@pytest.mark.usefixtures("empty_table")
def test_blocked_database_gives_503_not_a_hang(app_server: Any, postgres: Any) -> None:
    """With the table locked, 2 requests hold both connections until the statement
    timeout (3 s) and the others give up waiting for a connection (2 s): all get 503."""
    locker = postgres.connect()
    try:
        with locker.cursor() as cur:
            cur.execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")

        def read(_: int) -> httpx.Response:
            with httpx.Client(base_url=app_server.base_url, timeout=10) as http:
                return http.get("/messages")

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            responses = list(pool.map(read, range(4)))
    finally:
        locker.rollback()
        locker.close()

    for response in responses:
        assert response.status_code == 503
        assert response.json() == {"detail": "database unavailable"}
    with httpx.Client(base_url=app_server.base_url, timeout=10) as http:
        assert http.get("/messages").status_code == 200
