"""Bounded waiting (core/admission.py) on a real uvicorn: a request that cannot start within
DATABASE_POOL_TIMEOUT of its arrival, or finds the queue full, gets a JSON 503 with
Retry-After; a write whose client gave up never lands, neither while it waited nor after it
started. The test app has a pool of 2: two PUTs held by a row lock fill it.

Timeouts are bounds, not speeds: each is checked against its setting plus a wide margin.
"""

import concurrent.futures
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from tests.app.harness import AUTH, AppServer, PostgresServer
from tests.app.helpers import create

POOL_TIMEOUT = 2.0  # the test app's DATABASE_POOL_TIMEOUT (harness.app_env)
MARGIN = 2.0
GAVE_UP_AFTER = 0.5  # the impatient client's timeout


@contextmanager
def row_locked(postgres: PostgresServer, message_id: int) -> Iterator[None]:
    """The row is locked (FOR UPDATE) until the block ends: PUTs to it wait."""
    conn = postgres.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM messages WHERE id = %s FOR UPDATE", (message_id,))
        yield
    finally:
        conn.rollback()
        conn.close()


@contextmanager
def busy_pool(
    base_url: str, postgres: PostgresServer, blocker: int, count: int = 2
) -> Iterator[None]:
    """`count` PUTs to a locked row: they hold every slot of the pool until the block ends."""
    with (
        httpx.Client(base_url=base_url, headers=AUTH, timeout=10) as http,
        concurrent.futures.ThreadPoolExecutor(count) as pool,
        row_locked(postgres, blocker),
    ):
        held = [
            pool.submit(http.put, f"/messages/{blocker}", json={"message": f"held {n}"})
            for n in range(count)
        ]
        wait_for_backends_waiting_on_a_lock(postgres, count)
        yield
    for future in held:
        future.result()


def wait_for_backends_waiting_on_a_lock(postgres: PostgresServer, count: int) -> None:
    conn = postgres.connect()
    conn.autocommit = True
    deadline = time.monotonic() + 10
    try:
        with conn.cursor() as cur:
            while True:
                cur.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                if cur.fetchone()[0] >= count:  # type: ignore[index]
                    return
                assert time.monotonic() < deadline, "the PUTs never waited on the lock"
                time.sleep(0.02)
    finally:
        conn.close()


def stored(postgres: PostgresServer, message_id: int) -> str:
    conn = postgres.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT message FROM messages WHERE id = %s", (message_id,))
            return str(cur.fetchone()[0])  # type: ignore[index]
    finally:
        conn.close()


@pytest.fixture()
def messages(client: httpx.Client) -> Callable[[str], int]:
    return lambda text: int(create(client, text)["id"])


def test_a_request_that_cannot_start_in_time_gets_503_within_the_pool_timeout(
    app_server: AppServer, postgres: PostgresServer, messages: Callable[[str], int]
) -> None:
    blocker = messages("blocker")
    with (
        busy_pool(app_server.base_url, postgres, blocker),
        httpx.Client(base_url=app_server.base_url, timeout=10) as http,
    ):
        started = time.monotonic()
        response = http.get("/messages")
        waited = time.monotonic() - started
    assert response.status_code == 503
    assert response.json() == {"detail": "server busy"}
    assert response.headers["retry-after"] == "1"
    assert POOL_TIMEOUT - 0.2 <= waited <= POOL_TIMEOUT + MARGIN, waited


def test_a_full_queue_answers_503_at_once(
    start_app: Callable[..., AppServer], postgres: PostgresServer, messages: Callable[[str], int]
) -> None:
    app = start_app(postgres.app_env(REQUEST_QUEUE_SIZE="0"), "no-queue")
    app.wait_live()
    blocker = messages("blocker")
    with (
        busy_pool(app.base_url, postgres, blocker),
        httpx.Client(base_url=app.base_url, timeout=10) as http,
    ):
        started = time.monotonic()
        response = http.get("/messages")
        waited = time.monotonic() - started
        # The probes are not queued: the host still answers them.
        assert http.get("/health/live").status_code == 200
    assert response.status_code == 503
    assert response.json() == {"detail": "server busy"}
    assert waited < POOL_TIMEOUT / 2, waited


def test_a_put_whose_client_gave_up_while_waiting_never_lands(
    app_server: AppServer,
    start_app: Callable[..., AppServer],
    postgres: PostgresServer,
    messages: Callable[[str], int],
) -> None:
    """The older PUT waits for a turn on a busy instance, its client gives up; a newer PUT
    to the same message succeeds on another instance; when the busy instance frees up, the
    older PUT must not run."""
    other = start_app(postgres.app_env(), "other")
    other.wait_live()
    blocker, target = messages("blocker"), messages("original")
    with busy_pool(app_server.base_url, postgres, blocker):
        gave_up = put_with_timeout(app_server.base_url, target, "older", GAVE_UP_AFTER)
        with httpx.Client(base_url=other.base_url, headers=AUTH, timeout=10) as http:
            assert http.put(f"/messages/{target}", json={"message": "newer"}).status_code == 200
    assert gave_up
    time.sleep(POOL_TIMEOUT + MARGIN)  # whatever the older PUT was going to do, it has done
    assert stored(postgres, target) == "newer"


def test_a_put_whose_client_gave_up_while_running_is_rolled_back(
    app_server: AppServer, postgres: PostgresServer, messages: Callable[[str], int]
) -> None:
    target = messages("original")
    with row_locked(postgres, target):
        gave_up = put_with_timeout(app_server.base_url, target, "abandoned", GAVE_UP_AFTER)
    assert gave_up
    time.sleep(MARGIN)
    assert stored(postgres, target) == "original"
    assert "rolled back PUT /messages/" in app_server.log()


def put_with_timeout(base_url: str, message_id: int, text: str, timeout: float) -> Any:
    """True if the client gave up on the PUT before an answer came."""
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=timeout) as http:
        try:
            http.put(f"/messages/{message_id}", json={"message": text})
        except httpx.TimeoutException:
            return True
    return False
