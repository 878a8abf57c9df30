"""Helpers for the backup checks (test_backups.py) and the restore tests (test_restore.py):
what pgBackRest, PostgreSQL and the restore test say on a database host."""

import datetime
import json
from dataclasses import dataclass
from typing import Any

from hostcheck import Setting

RESTORE_TEST_SERVICE = "pgbackrest-restore-test.service"


def sql(host: Any, database: str, query: str) -> str:
    """One query as the postgres superuser over the local socket, unaligned output."""
    out: str = host.check_output("runuser -u postgres -- psql -XAtq -d %s -c %s", database, query)
    return out


def pgbackrest(host: Any, setting: Setting, *arguments: str) -> Any:
    """A pgBackRest command of the stanza as postgres (its configuration holds the
    passphrase), e.g. pgbackrest(host, setting, "check")."""
    return host.run(
        "runuser -u postgres -- pgbackrest --stanza=%s" + " %s" * len(arguments),
        setting("backup_stanza"),
        *arguments,
    )


def info(host: Any, setting: Setting) -> dict[str, Any]:
    """`pgbackrest info` of the stanza: its backups, archive and repositories."""
    run = pgbackrest(host, setting, "--output=json", "info")
    assert run.rc == 0, run.stderr
    stanza: dict[str, Any] = json.loads(run.stdout)[0]
    return stanza


def restore_test_record(host: Any, setting: Setting) -> dict[str, Any]:
    """The last restore test's result (`make verify` checks its last success)."""
    path = f"{setting('backup_restore_test_dir')}/last.json"
    record: dict[str, Any] = json.loads(host.file(path).content_string)
    return record


def utc(text: str) -> datetime.datetime:
    """A time the restore test recorded (ISO 8601 with its offset)."""
    return datetime.datetime.fromisoformat(text)


@dataclass(frozen=True)
class Cluster:
    """The PostgreSQL cluster on a database host, as pg_lsclusters reports it."""

    version: str
    name: str
    data_directory: str

    @property
    def unit(self) -> str:
        return f"postgresql@{self.version}-{self.name}.service"

    @classmethod
    def of(cls, host: Any) -> "Cluster":
        version, name, _, _, _, data_directory, *_ = host.check_output(
            "pg_lsclusters --no-header"
        ).split()
        return cls(version, name, data_directory)
