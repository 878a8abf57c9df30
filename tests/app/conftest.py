"""Fixtures: a real PostgreSQL server, the app under a real uvicorn (harness.py), and apps
built in this process for TestClient with settings of the test's choice. Nothing is mocked.
"""

import importlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.app.harness import AUTH, AppServer, PostgresServer

from api.deps import PoolDep
from core.config import Settings


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.init()
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def app_server(postgres: PostgresServer, logdir: Path) -> Iterator[AppServer]:
    """The app under test: a pool of 2 connections, so that requests wait for one."""
    server = AppServer(postgres.app_env(), logdir)
    try:
        server.wait_live()
        yield server
    finally:
        server.stop()


@pytest.fixture()
def start_app(postgres: PostgresServer, logdir: Path) -> Iterator[Any]:
    """Start extra app instances; they are stopped at the end of the test."""
    started: list[AppServer] = []

    def start(env: dict[str, str], name: str = "extra") -> AppServer:
        server = AppServer(env, logdir, name)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture()
def client(app_server: AppServer) -> Iterator[httpx.Client]:
    with httpx.Client(headers=AUTH, base_url=app_server.base_url, timeout=10) as http:
        yield http


@pytest.fixture()
def empty_table(postgres: PostgresServer, app_server: AppServer) -> None:
    """Start the test with no messages, ids counting from 1 again."""
    conn = postgres.connect()
    try:
        with conn, conn.cursor() as cur:
            cur.execute("TRUNCATE messages RESTART IDENTITY")
    finally:
        conn.close()


@pytest.fixture()
def db_count(postgres: PostgresServer) -> Callable[[], int]:
    return postgres.count_messages


@pytest.fixture()
def make_app(
    postgres: PostgresServer, app_server: AppServer, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., FastAPI]:
    """Build apps in this process with ``main.create_app``: the test database's settings,
    overridden by the keyword arguments. (``app_server`` makes sure the schema exists.)

    Each app has three more routes: ``/test/data-error`` (a query PostgreSQL refuses),
    ``/test/bug`` (raises) and ``/test/hold`` (holds a connection for 1.5 s).
    """
    for name, value in postgres.app_env(MIGRATE_ON_STARTUP="false").items():
        monkeypatch.setenv(name, value)
    main = importlib.import_module("main")  # builds its own app from the environment

    def make(**settings: Any) -> FastAPI:
        app: FastAPI = main.create_app(Settings(**settings))

        @app.get("/test/data-error")
        def data_error(pool: PoolDep) -> None:
            with pool.connection() as conn, conn.cursor() as cur:
                cur.execute("SELECT 'not a number'::integer")

        @app.get("/test/bug")
        def bug() -> None:
            raise RuntimeError("a bug with a secret in its message")

        @app.get("/test/hold")
        def hold(pool: PoolDep) -> None:
            with pool.connection() as conn, conn.cursor() as cur:
                cur.execute("SELECT pg_sleep(1.5)")

        return app

    return make


@pytest.fixture()
def inprocess(make_app: Callable[..., FastAPI]) -> Iterator[TestClient]:
    """An app in this process with one pooled connection, waited for at most 0.3 s."""
    app = make_app(database_pool_size=1, database_pool_timeout=0.3)
    with TestClient(app, headers=AUTH, raise_server_exceptions=False) as test_client:
        yield test_client
