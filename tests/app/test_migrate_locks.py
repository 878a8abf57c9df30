"""A migration that needs a lock the running release holds waits MIGRATION_LOCK_TIMEOUT,
rolls back and tries again: it never queues every query behind it for long, and it
applies once the lock is free."""

import threading
from pathlib import Path
from typing import Any

import pytest
from psycopg2 import errors

import migrate
from core.config import Settings

# An expand step of the kind a release may bring: it needs ACCESS EXCLUSIVE on messages.
ADD_COLUMN = "ALTER TABLE messages ADD COLUMN tag TEXT;\n"


@pytest.fixture()
def database(postgres: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A new database migrated with the app's migrations; ``database.add_tag()`` then adds
    one that alters the messages table."""
    for path in migrate.MIGRATIONS_DIR.glob("*.sql"):
        (tmp_path / path.name).write_text(path.read_text())
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", tmp_path)
    name = f"migrate_{len(list(tmp_path.parent.iterdir()))}_{id(tmp_path) % 10**6}"
    postgres.create_database(name)
    migrate.run(settings_for(postgres, name))

    class Database:
        def __init__(self) -> None:
            self.name = name

        def add_tag(self) -> None:
            (tmp_path / "9999_add_tag.sql").write_text(ADD_COLUMN)

    return Database()


def settings_for(postgres: Any, database: str, **overrides: Any) -> Settings:
    env = postgres.app_env(DATABASE_NAME=database)
    return Settings(
        database_user=env["DATABASE_USER"],
        database_password=env["DATABASE_PASSWORD"],
        database_host=env["DATABASE_HOST"],
        database_port=int(env["DATABASE_PORT"]),
        database_name=database,
        **{"migration_lock_timeout": 0.2, **overrides},
    )


def hold_messages_table(postgres: Any, database: str) -> Any:
    """A reader of the messages table in an open transaction, as a running release has."""
    conn = postgres.connect(dbname=database)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM messages")
    return conn


def columns(postgres: Any, database: str) -> set[str]:
    conn = postgres.connect(dbname=database)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'messages'"
            )
            return {row[0] for row in cur.fetchall()}
    finally:
        conn.close()


def test_a_migration_gives_up_on_a_lock_it_cannot_get(postgres: Any, database: Any) -> None:
    database.add_tag()
    reader = hold_messages_table(postgres, database.name)
    try:
        with pytest.raises(errors.LockNotAvailable, match="lock timeout"):
            migrate.run(settings_for(postgres, database.name, migration_lock_retries=1))
        # Rolled back as a whole: the table is as it was.
        assert "tag" not in columns(postgres, database.name)
        # Meanwhile other sessions' queries were never stuck behind the waiting ALTER.
        other = postgres.connect(dbname=database.name)
        try:
            with other.cursor() as cur:
                cur.execute("SET statement_timeout = '2s'")
                cur.execute("SELECT count(*) FROM messages")
        finally:
            other.close()
    finally:
        reader.close()


def test_a_migration_applies_once_the_lock_is_free(postgres: Any, database: Any) -> None:
    database.add_tag()
    reader = hold_messages_table(postgres, database.name)
    # The reader's transaction ends during the first retry's back-off (1 s).
    release = threading.Timer(0.5, reader.close)
    release.start()
    try:
        applied = migrate.run(settings_for(postgres, database.name, migration_lock_retries=3))
    finally:
        release.join()
    assert applied == ["9999"]
    assert "tag" in columns(postgres, database.name)
