"""Apply the pending SQL files of ``migrations/`` in order: ``python migrate.py``.

Each file is named ``NNNN_description.sql``; its ``NNNN`` is recorded in the table
``schema_migrations`` once applied, so running again is a no-op. Never edit an applied
file: add a new one.

Everything runs in one transaction that first takes a transaction-level advisory lock,
so instances starting at the same moment apply the files once, one after the other.
A failing file rolls back the whole run.

A migration never takes the service down: each waits at most MIGRATION_LOCK_TIMEOUT
seconds for a lock on a table the running instances use (while it waits, their queries on
that table would queue behind it), then the run is rolled back and tried again, up to
MIGRATION_LOCK_RETRIES more times. And every migration keeps the previous release
working (expand first, contract in a later release): a deploy migrates while the
previous release still serves.
"""

import logging
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from psycopg2 import errors, sql
from psycopg2.extensions import connection as Connection
from psycopg2.extensions import cursor as Cursor

from core.config import Settings, load_settings
from core.db import connect

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Key of the advisory lock held while migrating: any constant shared by all instances.
LOCK_KEY = 0x6D657373  # "mess"
# Migrations may wait for the lock or rewrite tables: longer than a request may take.
TIMEOUT = "5min"

FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

logger = logging.getLogger("app.migrate")


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path


def available() -> list[Migration]:
    """The migration files, ordered by version."""
    migrations = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = FILE_NAME.match(path.name)
        if match is None:
            raise ValueError(f"bad migration file name: {path.name}")
        migrations.append(Migration(match.group(1), path))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise ValueError("two migration files share a version")
    return migrations


def apply_pending(conn: Connection, lock_timeout: float = 5) -> list[str]:
    """Apply the migrations not yet recorded, in one transaction; return the new versions.

    Raises ``LockNotAvailable`` (all rolled back) when a statement waited longer than
    ``lock_timeout`` seconds for a lock.
    """
    applied_now = []
    with conn, conn.cursor() as cur:  # the transaction: commit on success, else rollback
        cur.execute("SET LOCAL statement_timeout = %s", (TIMEOUT,))
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        # After the advisory lock, which another migrating process may hold for long.
        cur.execute("SET LOCAL lock_timeout = %s", (f"{int(lock_timeout * 1000)}ms",))
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version TEXT PRIMARY KEY,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        keep_private(cur)
        cur.execute("SELECT version FROM schema_migrations")
        done = {row[0] for row in cur.fetchall()}
        for migration in available():
            if migration.version in done:
                continue
            logger.info("applying migration %s", migration.path.name)
            cur.execute(migration.path.read_text(encoding="utf-8"))
            cur.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (migration.version,))
            applied_now.append(migration.version)
    return applied_now


def keep_private(cur: Cursor) -> None:
    """Take every right on ``schema_migrations`` from everyone but its owner: the default
    privileges that give the app's role its rows must not give it the migrations' record."""
    cur.execute(
        "SELECT DISTINCT r.rolname FROM pg_class c CROSS JOIN aclexplode(c.relacl) a"
        " JOIN pg_roles r ON r.oid = a.grantee"
        " WHERE c.oid = 'schema_migrations'::regclass AND a.grantee <> c.relowner"
    )
    grantees = [sql.Identifier(row[0]) for row in cur.fetchall()]
    cur.execute("REVOKE ALL ON schema_migrations FROM PUBLIC")
    for grantee in grantees:
        cur.execute(sql.SQL("REVOKE ALL ON schema_migrations FROM {}").format(grantee))


def run(settings: Settings) -> list[str]:
    """Connect with the settings' database account and apply the pending migrations,
    trying again (after 1, 2, 4... seconds) when a lock was not granted in time."""
    conn = connect(settings)
    try:
        retries = 0
        while True:
            try:
                return apply_pending(conn, settings.migration_lock_timeout)
            except errors.LockNotAvailable:
                if retries == settings.migration_lock_retries:
                    raise
                logger.warning("a migration waited too long for a lock: trying again")
                time.sleep(2**retries)
                retries += 1
    finally:
        conn.close()


def main() -> int:
    settings = load_settings()
    try:
        applied = run(settings)
    except Exception as exc:  # one line on stderr, no traceback
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"migration failed: {type(exc).__name__}: {first_line}", file=sys.stderr)
        return 1
    print(f"applied: {', '.join(applied)}" if applied else "nothing to apply")
    return 0


if __name__ == "__main__":
    sys.exit(main())
