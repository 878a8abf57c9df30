"""The connection pool (core/db.py): more requests than connections, waits that time out,
connections that break. Outages of the whole server: test_outage.py."""

import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.app.harness import AUTH, SUPERUSER_PASSWORD, AppServer, PostgresServer

from api.deps import PoolDep

WRITERS = 8
POSTS_EACH = 25


@pytest.mark.usefixtures("empty_table")
def test_concurrent_writers_all_succeed(app_server: AppServer, db_count: Any) -> None:
    """More concurrent requests than pooled connections (the test app has a pool of 2)."""
    start = threading.Barrier(WRITERS)

    def writer(number: int) -> list[int]:
        statuses = []
        with httpx.Client(headers=AUTH, base_url=app_server.base_url, timeout=10) as http:
            start.wait()
            for i in range(POSTS_EACH):
                response = http.post("/messages", json={"message": f"writer {number} #{i}"})
                statuses.append(response.status_code)
        return statuses

    with concurrent.futures.ThreadPoolExecutor(WRITERS) as pool:
        results = list(pool.map(writer, range(WRITERS)))

    assert [status for statuses in results for status in statuses] == [201] * 200
    assert db_count() == WRITERS * POSTS_EACH
    with httpx.Client(headers=AUTH, base_url=app_server.base_url) as http:
        page = http.get("/messages", params={"limit": 500}).json()
    assert len({item["id"] for item in page["items"]}) == WRITERS * POSTS_EACH


@pytest.mark.usefixtures("empty_table")
def test_blocked_database_gives_503_not_a_hang(
    app_server: AppServer, postgres: PostgresServer
) -> None:
    """With the table locked, 2 requests hold both connections until the statement
    timeout (3 s) and the others give up waiting for their turn (2 s): all get 503, and
    Retry-After."""
    locker = postgres.connect()
    try:
        with locker.cursor() as cur:
            cur.execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")

        def read(_: int) -> httpx.Response:
            with httpx.Client(headers=AUTH, base_url=app_server.base_url, timeout=10) as http:
                return http.get("/messages")

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            responses = list(pool.map(read, range(4)))
    finally:
        locker.rollback()
        locker.close()

    details = sorted(response.json()["detail"] for response in responses)
    assert details == ["database unavailable"] * 2 + ["server busy"] * 2
    for response in responses:
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
    with httpx.Client(headers=AUTH, base_url=app_server.base_url, timeout=10) as http:
        assert http.get("/messages").status_code == 200


def sleeping_backends(postgres: PostgresServer) -> int:
    conn = postgres.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE query LIKE 'SELECT pg_sleep%%' AND state = 'active'"
            )
            row = cur.fetchone()
            return int(row[0]) if row else 0
    finally:
        conn.close()


def test_waiting_for_a_turn_times_out_with_503(
    inprocess: TestClient, postgres: PostgresServer
) -> None:
    holder = threading.Thread(target=inprocess.get, args=("/test/hold",))
    holder.start()
    try:
        deadline = time.monotonic() + 5
        while sleeping_backends(postgres) == 0:  # until it holds the only connection
            assert time.monotonic() < deadline
            time.sleep(0.02)
        response = inprocess.get("/messages")
    finally:
        holder.join()
    assert response.status_code == 503
    assert response.json() == {"detail": "server busy"}
    assert response.headers["retry-after"] == "1"
    assert inprocess.get("/messages").status_code == 200


def test_pool_recovers_connections_broken_in_use(make_app: Callable[..., FastAPI]) -> None:
    """A connection killed on the server side mid-use is closed, not pooled again."""
    app = make_app(database_pool_size=1)

    @app.get("/test/kill-self")
    def kill_self(pool: PoolDep) -> None:
        with pool.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    with TestClient(app, headers=AUTH) as test_client:
        assert test_client.get("/test/kill-self").status_code == 503
        assert test_client.get("/messages").status_code == 200


def app_backends(postgres: PostgresServer) -> set[int]:
    """The server processes of the app's connections (application_name messages)."""
    conn = postgres.connect("postgres", SUPERUSER_PASSWORD, "postgres")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'messages'")
            return {int(row[0]) for row in cur.fetchall()}
    finally:
        conn.close()


def set_read_only(postgres: PostgresServer, read_only: bool) -> None:
    """What a leader's demotion looks like to its open connections: writes refused."""
    if read_only:
        postgres.superuser_sql("ALTER SYSTEM SET default_transaction_read_only = on")
    else:
        postgres.superuser_sql("ALTER SYSTEM RESET default_transaction_read_only")
    postgres.superuser_sql("SELECT pg_reload_conf()")
    time.sleep(0.5)  # each backend rereads the settings before its next command


@pytest.mark.usefixtures("empty_table")
def test_a_server_that_stops_taking_writes_gives_503_and_loses_its_connections(
    app_server: AppServer, postgres: PostgresServer
) -> None:
    """A demoted leader (Patroni's switchover or failover, as the pool sees it): writes get
    503 (not 500), every pooled connection to it is dropped, and new ones refuse it
    (target_session_attrs=read-write); once a server takes writes, the next write succeeds."""
    with httpx.Client(headers=AUTH, base_url=app_server.base_url, timeout=10) as http:
        for n in range(2):
            assert http.post("/messages", json={"message": f"before {n}"}).status_code == 201
        pooled = app_backends(postgres)
        assert pooled
        try:
            set_read_only(postgres, True)
            refused = [http.post("/messages", json={"message": "to a replica"}) for _ in range(3)]
            assert [r.status_code for r in refused] == [503] * 3, [r.text for r in refused]
            assert {r.json()["detail"] for r in refused} == {"database unavailable"}
            assert not pooled & app_backends(postgres), "a connection to it stayed in the pool"
        finally:
            set_read_only(postgres, False)
        assert http.post("/messages", json={"message": "after"}).status_code == 201
    assert postgres.count_messages() == 3
