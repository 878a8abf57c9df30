"""Migrations: applied once, no-op when run again, safe when run concurrently."""

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from tests.app.harness import AUTH, SUPERUSER_PASSWORD

# Holds every process that is about to run a migration's first CREATE TABLE until all
# `processes` have connected and each of the others is either held here too or waiting for a
# lock: the processes overlap for certain. With the advisory lock one migrates while the others
# wait for it; without it, all would apply the same file at once.
BARRIER = """
CREATE FUNCTION migration_barrier() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + interval '20 seconds';
    connected int;
    running int;
BEGIN
    IF current_query() LIKE '%%CREATE TABLE IF NOT EXISTS schema_migrations%%' THEN
        RETURN;
    END IF;
    PERFORM set_config('application_name', 'at the barrier', false);
    LOOP
        PERFORM pg_stat_clear_snapshot();
        SELECT count(*), count(*) FILTER (
                   WHERE application_name <> 'at the barrier'
                   AND wait_event_type IS DISTINCT FROM 'Lock')
          INTO connected, running
          FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND application_name IN ('messages', 'at the barrier');
        EXIT WHEN connected + 1 >= %(processes)s AND running = 0;
        IF clock_timestamp() > deadline THEN
            RAISE EXCEPTION 'barrier: %% of %(processes)s processes met', connected + 1;
        END IF;
        PERFORM pg_sleep(0.02);
    END LOOP;
    PERFORM set_config('application_name', 'messages', false);
END $$;
CREATE EVENT TRIGGER migration_barrier ON ddl_command_start WHEN TAG IN ('CREATE TABLE')
    EXECUTE FUNCTION migration_barrier();
"""


def install_barrier(postgres: Any, dbname: str, processes: int) -> None:
    conn = postgres.connect("postgres", SUPERUSER_PASSWORD, dbname)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(BARRIER, {"processes": processes})
    finally:
        conn.close()


def migrate(
    postgres: Any, env: dict[str, str], app_dir: Path | None = None
) -> "subprocess.Popen[str]":
    return subprocess.Popen(
        [sys.executable, "migrate.py"],
        cwd=app_dir or postgres.app_dir,
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


def test_the_record_of_migrations_stays_the_owners_alone(postgres: Any) -> None:
    """Default privileges give another role the rows of whatever the owner makes (as the
    deploy's do): every run takes them back from the migrations' own table."""
    postgres.create_database("migrate_private")
    postgres.superuser_sql("CREATE ROLE row_reader")
    conn = postgres.connect(dbname="migrate_private")
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "ALTER DEFAULT PRIVILEGES IN SCHEMA public"
                " GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO row_reader"
            )
    finally:
        conn.close()
    env = postgres.app_env(DATABASE_NAME="migrate_private")

    def privileges(table: str) -> str:
        conn = postgres.connect(dbname="migrate_private")
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT coalesce(relacl::text, '') FROM pg_class WHERE relname = %s", (table,)
                )
                return str(cur.fetchone()[0])  # type: ignore[index]
        finally:
            conn.close()

    assert migrate(postgres, env).communicate(timeout=30)[0].strip() == "applied: 0001"
    assert "row_reader=arwd" in privileges("messages")
    assert "row_reader" not in privileges("schema_migrations")
    # A grant made later (an older deploy's) goes at the next run.
    conn = postgres.connect(dbname="migrate_private")
    try:
        with conn, conn.cursor() as cur:
            cur.execute("GRANT SELECT, UPDATE ON schema_migrations TO row_reader, PUBLIC")
    finally:
        conn.close()
    assert migrate(postgres, env).communicate(timeout=30)[0].strip() == "nothing to apply"
    assert "row_reader" not in privileges("schema_migrations")
    assert "=r" not in privileges("schema_migrations").replace("app=", "")


def test_concurrent_migrate_commands(postgres: Any) -> None:
    postgres.create_database("migrate_race")
    install_barrier(postgres, "migrate_race", 3)
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


def test_a_failing_migration_rolls_back_the_whole_run(postgres: Any, tmp_path: Path) -> None:
    """Two new files, the second broken: neither is applied, nor recorded."""
    postgres.create_database("migrate_fails")
    env = postgres.app_env(DATABASE_NAME="migrate_fails")
    assert migrate(postgres, env).communicate(timeout=30)[0].strip() == "applied: 0001"
    app_dir = tmp_path / "app"
    shutil.copytree(postgres.app_dir, app_dir, ignore=shutil.ignore_patterns("__pycache__"))
    (app_dir / "migrations" / "8001_add_a_table.sql").write_text("CREATE TABLE added (id int);")
    (app_dir / "migrations" / "8002_broken.sql").write_text("ALTER TABLE missing ADD x int;")

    run = migrate(postgres, env, app_dir)
    out, err = run.communicate(timeout=30)
    assert run.returncode == 1
    assert err.startswith("migration failed: UndefinedTable:"), err
    assert [version for version, _ in applied_versions(postgres, "migrate_fails")] == ["0001"]
    conn = postgres.connect(dbname="migrate_fails")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('added')")
            assert cur.fetchone() == (None,), "the first new file stayed applied"
    finally:
        conn.close()


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
    install_barrier(postgres, "app_race", 2)
    env = postgres.app_env(DATABASE_NAME="app_race")
    apps = [start_app(env, "race") for _ in range(2)]
    for app in apps:
        app.wait_live()
    assert [version for version, _ in applied_versions(postgres, "app_race")] == ["0001"]
    for app in apps:
        response = httpx.post(
            f"{app.base_url}/messages", json={"message": "hi"}, headers=AUTH, timeout=10
        )
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
