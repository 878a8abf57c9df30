"""Migrations: applied once, no-op when run again, safe when run concurrently."""

import subprocess
import sys
import time
from typing import Any

import httpx


def migrate(postgres: Any, env: dict[str, str]) -> "subprocess.Popen[str]":
    return subprocess.Popen(
        [sys.executable, "migrate.py"],
        cwd=postgres.app_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def applied_versions(postgres: Any, dbname: str) -> list[tuple[str, Any]]:
    conn = postgres.connect(dbname=dbname)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT version, applied_at FROM schema_migrations ORDER BY version")
            return list(cur.fetchall())
    finally:
        conn.close()


def test_migrate_command_twice_is_a_no_op(postgres: Any) -> None:
    postgres.create_database("migrate_twice")
    env = postgres.app_env(DATABASE_NAME="migrate_twice")

    first = migrate(postgres, env)
    out, err = first.communicate(timeout=30)
    assert first.returncode == 0, err
    assert out.strip() == "applied: 0001"
    versions = applied_versions(postgres, "migrate_twice")
    assert [version for version, _ in versions] == ["0001"]

    second = migrate(postgres, env)
    out, err = second.communicate(timeout=30)
    assert second.returncode == 0, err
    assert out.strip() == "nothing to apply"
    assert applied_versions(postgres, "migrate_twice") == versions


def test_concurrent_migrate_commands(postgres: Any) -> None:
    postgres.create_database("migrate_race")
    env = postgres.app_env(DATABASE_NAME="migrate_race")
    runs = [migrate(postgres, env) for _ in range(3)]
    outputs = [run.communicate(timeout=30) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], outputs
    assert sorted(out.strip() for out, _ in outputs) == [
        "applied: 0001",
        "nothing to apply",
        "nothing to apply",
    ]
    assert [version for version, _ in applied_versions(postgres, "migrate_race")] == ["0001"]


def test_migrate_command_reports_failure_in_one_line(postgres: Any) -> None:
    env = postgres.app_env(DATABASE_NAME="no_such_database")
    run = migrate(postgres, env)
    out, err = run.communicate(timeout=30)
    assert run.returncode == 1
    [line] = err.splitlines()
    assert line.startswith("migration failed: OperationalError:")
    assert postgres.app_password not in out + err


def test_apps_starting_together_migrate_once(postgres: Any, start_app: Any) -> None:
    postgres.create_database("app_race")
    env = postgres.app_env(DATABASE_NAME="app_race")
    apps = [start_app(env, "race") for _ in range(2)]
    for app in apps:
        app.wait_live()
    assert [version for version, _ in applied_versions(postgres, "app_race")] == ["0001"]
    for app in apps:
        response = httpx.post(f"{app.base_url}/messages", json={"message": "hi"}, timeout=10)
        assert response.status_code == 201

    # A restart (here: a third instance) applies nothing and keeps the data.
    before = applied_versions(postgres, "app_race")
    again = start_app(env, "restart")
    again.wait_live()
    assert applied_versions(postgres, "app_race") == before
    page = httpx.get(f"{again.base_url}/messages", timeout=10).json()
    assert len(page["items"]) == 2
    assert "migrations applied: none pending" in again.log()


def test_migrate_on_startup_can_be_turned_off(postgres: Any, start_app: Any) -> None:
    postgres.create_database("no_migrations")
    app = start_app(postgres.app_env(DATABASE_NAME="no_migrations", MIGRATE_ON_STARTUP="false"))
    app.wait_live()
    conn = postgres.connect(dbname="no_migrations")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('schema_migrations'), to_regclass('messages')")
            assert cur.fetchone() == (None, None)
    finally:
        conn.close()
    # Without its table the app answers, but not with a 500 traceback page.
    response = httpx.get(f"{app.base_url}/messages", timeout=10)
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error"}
    # The traceback is in the log only (uvicorn writes it once the response is sent).
    deadline = time.monotonic() + 5
    while "UndefinedTable" not in app.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "Traceback" in app.log()
    assert "UndefinedTable" in app.log()
