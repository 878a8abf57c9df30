"""Helpers for the backup checks (test_backups.py) and the restore tests (test_restore.py):
what pgBackRest, PostgreSQL and the restore test say on a database host."""

import datetime
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from deploys import run_playbook
from hostcheck import Setting, wait_for

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


def restore(inventory: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """restore.yml (make restore), with backup_restore_target_time=... and the like."""
    return run_playbook(inventory, "restore.yml", "-e", json.dumps(variables))


def said(run: subprocess.CompletedProcess[str]) -> str:
    """A playbook's output with its line wrapping undone."""
    return " ".join(run.stdout.split())


def next_second(host: Any, database: str) -> str:
    """A restore's target: the next whole second on PostgreSQL's clock, after every write
    so far; returned once that clock has passed it."""
    target = sql(
        host,
        database,
        "SELECT to_char((date_trunc('second', clock_timestamp()) + interval '1 second')"
        " AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00'",
    )
    assert wait_for(lambda: sql(host, database, f"SELECT clock_timestamp() > '{target}'") == "t", 5)
    return target


def table(host: Any, database: str) -> str:
    """Every row of the messages table, every column, as COPY writes them."""
    return sql(host, database, "COPY (SELECT * FROM messages ORDER BY id) TO STDOUT")


def post(writer: httpx.Client, text: str) -> int:
    response = writer.post("/messages", json={"message": text})
    assert response.status_code == 201, response.text
    message_id: int = response.json()["id"]
    return message_id


@contextmanager
def watching(page_url: str, tls_context: Any) -> Iterator[list[tuple[int, str]]]:
    """What a client polling GET /messages sees meanwhile: (status, content type)."""
    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(base_url=page_url, verify=tls_context, timeout=10) as client:
            while not stop.is_set():
                response = client.get("/messages", params={"limit": 1})
                seen.append((response.status_code, response.headers.get("content-type", "")))
                time.sleep(0.25)  # below nginx's per-client rate limit

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join()


def instance_starts(host: Any, setting: Setting, ports: list[int]) -> dict[int, str]:
    """When each app instance last started."""
    return {
        port: host.check_output(
            "systemctl show --property=ActiveEnterTimestampMonotonic --value %s",
            f"{setting('app_name')}@{port}.service",
        )
        for port in ports
    }
