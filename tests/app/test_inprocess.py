"""Finer-grained checks on an in-process app (TestClient) against the real PostgreSQL."""

import importlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from anyio import to_thread
from fastapi import FastAPI
from fastapi.testclient import TestClient


@pytest.fixture()
def app_module(postgres: Any, app_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The ``main`` module, imported with the test database's settings.

    (``app_server`` makes sure the schema exists.)"""
    for name, value in postgres.app_env(MIGRATE_ON_STARTUP="false").items():
        monkeypatch.setenv(name, value)
    return importlib.import_module("main")


def make_app(app_module: Any, **settings: Any) -> FastAPI:
    config = importlib.import_module("config")
    app: FastAPI = app_module.create_app(config.Settings(**settings))
    db = importlib.import_module("db")

    @app.get("/test/data-error")
    def data_error() -> None:
        with db.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT 'not a number'::integer")

    @app.get("/test/bug")
    def bug() -> None:
        raise RuntimeError("a bug with a secret in its message")

    @app.get("/test/hold")
    def hold() -> None:
        with db.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_sleep(1.5)")

    return app


@pytest.fixture()
def client(app_module: Any) -> Iterator[TestClient]:
    app = make_app(app_module, database_pool_size=1, database_pool_timeout=0.3)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_data_error_is_422(client: TestClient) -> None:
    response = client.get("/test/data-error")
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["type"] == "database_data_error"
    assert "invalid input syntax for type integer" in problem["msg"]
    assert client.get("/messages").status_code == 200  # the connection is still fine


def test_unexpected_error_is_500_without_details(client: TestClient) -> None:
    response = client.get("/test/bug")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error"}


def sleeping_backends(postgres: Any) -> int:
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


def test_waiting_for_a_connection_times_out_with_503(client: TestClient, postgres: Any) -> None:
    holder = threading.Thread(target=client.get, args=("/test/hold",))
    holder.start()
    try:
        deadline = time.monotonic() + 5
        while sleeping_backends(postgres) == 0:  # until it holds the only connection
            assert time.monotonic() < deadline
            time.sleep(0.02)
        response = client.get("/messages")
    finally:
        holder.join()
    assert response.status_code == 503
    assert response.json() == {"detail": "database unavailable"}
    assert client.get("/messages").status_code == 200


def test_message_max_length_comes_from_the_settings(app_module: Any) -> None:
    app = make_app(app_module, message_max_length=5)
    try:
        with TestClient(app) as test_client:
            assert test_client.post("/messages", json={"message": "12345"}).status_code == 201
            response = test_client.post("/messages", json={"message": "123456"})
            assert response.status_code == 422
            assert "at most 5 characters" in response.json()["detail"][0]["msg"]
            schema = test_client.get("/openapi.json").json()["components"]["schemas"]
            assert schema["MessageIn"]["properties"]["message"]["maxLength"] == 5
    finally:
        make_app(app_module)  # back to the default limits


def test_thread_limit_follows_pool_size(app_module: Any) -> None:
    app = make_app(app_module, database_pool_size=3)

    @app.get("/test/threads")
    async def threads() -> int:
        return int(to_thread.current_default_thread_limiter().total_tokens)

    with TestClient(app) as test_client:
        assert test_client.get("/test/threads").json() == 6


def test_pool_recovers_connections_broken_in_use(app_module: Any, postgres: Any) -> None:
    """A connection killed on the server side mid-use is closed, not pooled again."""
    app = make_app(app_module, database_pool_size=1)
    db = importlib.import_module("db")

    @app.get("/test/kill-self")
    def kill_self() -> None:
        with db.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    with TestClient(app) as test_client:
        assert test_client.get("/test/kill-self").status_code == 503
        assert test_client.get("/messages").status_code == 200
