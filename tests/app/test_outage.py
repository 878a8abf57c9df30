"""PostgreSQL going away and coming back while the app runs.

Bounds are checked with client timeouts: a request that hangs fails the test.
"""

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.app.harness import AUTH, AppServer

# Far above what any answer should take here, far below "hanging".
BOUND = httpx.Timeout(8.0)


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": "database unavailable"}


def assert_not_ready(response: httpx.Response) -> str:
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/health+json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["status"] == "fail"
    [check] = body["checks"]["postgresql:connection"]
    assert check["status"] == "fail"
    output: str = check["output"]
    return output


def wait_ready(http: httpx.Client, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while http.get("/health/ready").status_code != 200:
        assert time.monotonic() < deadline, "not ready again after PostgreSQL came back"
        time.sleep(0.1)


@pytest.fixture()
def http(app_server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(headers=AUTH, base_url=app_server.base_url, timeout=BOUND) as client:
        yield client


@pytest.fixture()
def outage(postgres: Any) -> Iterator[Any]:
    """Whatever happens in the test, PostgreSQL runs again afterwards."""
    yield postgres
    if not postgres.is_running():
        postgres.start()


def warm_up(http: httpx.Client) -> int:
    """Leave both pooled connections idle in the pool; return a message id."""
    message_id: int = http.post("/messages", json={"message": "before"}).json()["id"]
    with httpx.Client(headers=AUTH, base_url=str(http.base_url), timeout=BOUND) as other:
        for _ in range(5):
            assert http.get("/messages").status_code == 200
            assert other.get(f"/messages/{message_id}").status_code == 200
    return message_id


def test_outage_gives_503_then_recovers(
    http: httpx.Client, outage: Any, app_server: AppServer
) -> None:
    message_id = warm_up(http)

    outage.stop()
    for _ in range(2):  # the first rounds meet the dead pooled connections
        assert_unavailable(http.get("/messages"))
        assert_unavailable(http.get(f"/messages/{message_id}"))
        assert_unavailable(http.post("/messages", json={"message": "during"}))
        assert_unavailable(http.put(f"/messages/{message_id}", json={"message": "during"}))
        assert_unavailable(http.delete(f"/messages/{message_id}"))
    output = assert_not_ready(http.get("/health/ready"))
    assert "OperationalError" in output
    assert outage.app_password not in output
    # Through nginx (X-Forwarded-For), only an admin hears why; the log has it too.
    public = http.get("/health/ready", headers={"X-Forwarded-For": "198.51.100.9"})
    assert public.status_code == 503
    assert public.json() == {"status": "fail"}
    admin = {"X-Forwarded-For": "127.0.0.1", "X-Edge-Admin": "1"}
    assert assert_not_ready(http.get("/health/ready", headers=admin)) == output
    assert f"not ready: {output}" in app_server.log()
    live = http.get("/health/live")
    assert live.status_code == 200
    assert live.json()["status"] == "pass"

    outage.start()
    wait_ready(http)
    response = http.get(f"/messages/{message_id}")
    assert response.status_code == 200
    assert response.json()["message"] == "before"
    assert http.post("/messages", json={"message": "after"}).status_code == 201


def test_restart_while_idle_first_request_succeeds(
    http: httpx.Client, outage: Any, app_server: Any
) -> None:
    """Pooled connections killed by a restart are replaced, unseen by clients."""
    message_id = warm_up(http)
    dropped = app_server.log().count("dropping a pooled connection closed by the server")
    outage.stop()
    outage.start()
    # No request during the outage: the pool still holds the dead connections.
    assert http.get(f"/messages/{message_id}").status_code == 200
    assert http.get("/messages").status_code == 200
    assert http.post("/messages", json={"message": "after restart"}).status_code == 201
    assert http.get("/health/ready").status_code == 200
    # ... because they were seen to be dead, not by chance.
    assert app_server.log().count("dropping a pooled connection closed by the server") > dropped


@pytest.fixture()
def black_hole() -> Iterator[int]:
    """A port that accepts TCP connections and never answers: a hung database."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


def test_hung_database_is_answered_within_bounds(
    postgres: Any, start_app: Any, black_hole: int
) -> None:
    app = start_app(
        postgres.app_env(
            DATABASE_PORT=str(black_hole), MIGRATE_ON_STARTUP="false", READINESS_TIMEOUT="0.5"
        ),
        "hung",
    )
    app.wait_live()
    with httpx.Client(headers=AUTH, base_url=app.base_url, timeout=BOUND) as client:
        # READINESS_TIMEOUT (0.5 s), though connecting takes DATABASE_CONNECT_TIMEOUT (2 s).
        assert "no answer within 0.5 s" in assert_not_ready(client.get("/health/ready"))
        assert "no answer within" in assert_not_ready(client.get("/health/ready"))
        # Given up after DATABASE_CONNECT_TIMEOUT (test_connecting_gives_up_after_...).
        assert_unavailable(client.get("/messages"))
        assert client.get("/health/live").status_code == 200


class RecordingBlackHole:
    """A hung database that notes, for each connection, how long it stayed open before the
    client gave up and closed it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.held: list[float] = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self.hold, args=(conn,), daemon=True).start()

    def hold(self, conn: socket.socket) -> None:
        opened = time.monotonic()
        with conn:
            while conn.recv(1024):  # whatever the client sends, until it closes
                pass
        self.held.append(time.monotonic() - opened)


def test_connecting_gives_up_after_the_connect_timeout(postgres: Any, start_app: Any) -> None:
    """DATABASE_CONNECT_TIMEOUT bounds a connection attempt (4 s here, above libpq's own
    minimum of 2 s): the request gets its 503, and the hung server sees the attempt closed,
    not before the timeout. The other bounds are far away (a free pool slot; no statement)."""
    hole = RecordingBlackHole()
    env = postgres.app_env(
        DATABASE_PORT=str(hole.port),
        MIGRATE_ON_STARTUP="false",
        DATABASE_CONNECT_TIMEOUT="4",
        DATABASE_POOL_TIMEOUT="60",
    )
    app = start_app(env, "connect-timeout")
    app.wait_live()
    with httpx.Client(headers=AUTH, base_url=app.base_url, timeout=BOUND) as client:
        assert_unavailable(client.get("/messages"))
    deadline = time.monotonic() + 5
    while not hole.held and time.monotonic() < deadline:
        time.sleep(0.05)
    hole.sock.close()
    # A lower bound only: a loaded machine can make a timeout late, never early.
    assert hole.held and min(hole.held) >= 4 - 1, hole.held


def test_the_connect_timeout_reaches_libpq(make_app: Any) -> None:
    app = make_app(database_connect_timeout=7)
    with TestClient(app, headers=AUTH):
        with app.state.pool.connection() as conn:
            assert conn.get_dsn_parameters()["connect_timeout"] == "7"


def test_log_has_one_line_per_request_and_no_password(
    http: httpx.Client, app_server: Any, postgres: Any
) -> None:
    marker = "/messages/4242424242"
    for _ in range(3):
        assert http.get(marker).status_code == 404
    deadline = time.monotonic() + 5
    while app_server.log().count(marker) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [line for line in app_server.log().splitlines() if marker in line]
    assert len(lines) == 3, lines  # not also uvicorn's access line
    for line in lines:
        assert "127.0.0.1:" in line
        assert '"GET /messages/4242424242" 404' in line
        assert line.endswith("ms")
    # Behind a trusted proxy (uvicorn trusts 127.0.0.1 by default) the client is the
    # address in X-Forwarded-For.
    http.get("/health/live", headers={"X-Forwarded-For": "203.0.113.7"})
    deadline = time.monotonic() + 5
    while "203.0.113.7" not in app_server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    [line] = [line for line in app_server.log().splitlines() if "203.0.113.7" in line]
    assert '"GET /health/live" 200' in line
    # This log went through the outages, timeouts and errors above: no password in it.
    log = app_server.log()
    assert postgres.app_password not in log


def test_access_log_off_leaves_requests_unlogged(start_app: Any, postgres: Any) -> None:
    app = start_app(postgres.app_env(ACCESS_LOG="false"), "no-access-log")
    app.wait_live()
    marker = "/messages/4242424243"
    with httpx.Client(headers=AUTH, base_url=app.base_url, timeout=5) as client:
        assert client.get(marker).status_code == 404
        # A request after it, so the first one's line would have been written by now.
        assert client.get("/health/live").status_code == 200
    time.sleep(0.2)
    assert marker not in app.log()
    assert "/health/live" not in app.log()


def test_log_level_warning_leaves_info_lines_out(start_app: Any, postgres: Any) -> None:
    """LOG_LEVEL: at warning, neither the start-up's "migrations applied" nor a request's
    line (both info) is written; test_apps_starting_together_migrate_once and the test
    above see them at the default, info."""
    app = start_app(postgres.app_env(LOG_LEVEL="warning"), "log-level-warning")
    app.wait_live()
    with httpx.Client(headers=AUTH, base_url=app.base_url, timeout=5) as client:
        assert client.get("/messages/4242424244").status_code == 404
        assert client.get("/health/live").status_code == 200
    time.sleep(0.2)
    assert "migrations applied" not in app.log()
    assert "4242424244" not in app.log()
