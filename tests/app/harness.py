"""The test harness: a real PostgreSQL server and the app under a real uvicorn.

PostgreSQL is initialised in a temporary directory under /tmp, listens on 127.0.0.1 and
a free port, and uses scram-sha-256 passwords. As root, initdb and pg_ctl run as the
``postgres`` user (initdb refuses root). Nothing is mocked. The fixtures that start and
stop these are in conftest.py.
"""

import glob
import hashlib
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg2
import pytest

REPO = Path(__file__).resolve().parents[2]
APP_DIR = REPO / "app"

APP_USER = "app"
APP_DATABASE = "messages"
# Distinctive, so that a test can look for it in the logs.
APP_PASSWORD = "pw-" + secrets.token_hex(12)
SUPERUSER_PASSWORD = "su-" + secrets.token_hex(12)
# The API key the tests write with (the app knows only its digest), and a revoked one.
API_KEY = "key-" + secrets.token_urlsafe(32)
REVOKED_API_KEY = "revoked-" + secrets.token_urlsafe(32)
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bindir() -> Path:
    try:
        out = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True
        ).stdout.strip()
        if (Path(out) / "initdb").exists():
            return Path(out)
    except (OSError, subprocess.CalledProcessError):
        pass
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.exit("PostgreSQL server binaries (initdb, pg_ctl) not found", returncode=3)
    return Path(found[-1]).parent


class PostgresServer:
    """A throw-away PostgreSQL cluster. ``stop()``/``start()`` simulate an outage."""

    app_password = APP_PASSWORD
    app_dir = APP_DIR

    def __init__(self) -> None:
        self.bindir = postgres_bindir()
        self.port = free_port()
        self.host = "127.0.0.1"
        self.as_root = os.geteuid() == 0
        # mkdtemp makes a 0700 directory: open it up so the postgres user can enter.
        self.tmp = Path(tempfile.mkdtemp(prefix="messages-pg-", dir="/tmp"))
        self.tmp.chmod(0o755)
        self.datadir = self.tmp / "data"
        self.logfile = self.tmp / "postgres.log"
        if self.as_root:
            user = pwd.getpwnam("postgres")
            os.chown(self.tmp, user.pw_uid, user.pw_gid)

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            log = self.logfile.read_text() if self.logfile.exists() else ""
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}\n{log}"
            )

    def init(self) -> None:
        pwfile = self.tmp / "pwfile"
        pwfile.write_text(SUPERUSER_PASSWORD + "\n")
        if self.as_root:
            user = pwd.getpwnam("postgres")
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        self._run(
            "initdb",
            "-D", str(self.datadir),
            "-U", "postgres",
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )  # fmt: skip
        pwfile.unlink()
        self.start()
        self.superuser_sql(f"CREATE ROLE {APP_USER} LOGIN PASSWORD %s", APP_PASSWORD)
        self.create_database(APP_DATABASE)

    def start(self) -> None:
        options = (
            f"-c listen_addresses={self.host} -c port={self.port}"
            f" -c unix_socket_directories={self.tmp}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl", "start", "-D", str(self.datadir), "-l", str(self.logfile),
            "-w", "-t", "30", "-o", options,
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "stop", "-D", str(self.datadir), "-m", mode, "-w", "-t", "30")

    def is_running(self) -> bool:
        return (self.datadir / "postmaster.pid").exists()

    def destroy(self) -> None:
        try:
            if self.is_running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def connect(
        self, user: str = APP_USER, password: str = APP_PASSWORD, dbname: str = APP_DATABASE
    ) -> Any:
        return psycopg2.connect(
            host=self.host, port=self.port, user=user, password=password, dbname=dbname
        )

    def superuser_sql(self, sql: str, *params: Any) -> None:
        conn = self.connect("postgres", SUPERUSER_PASSWORD, "postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql, params)
        finally:
            conn.close()

    def create_database(self, name: str) -> None:
        self.superuser_sql(f"CREATE DATABASE {name} OWNER {APP_USER}")

    def count_messages(self) -> int:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM messages")
                row = cur.fetchone()
                assert row is not None
                return int(row[0])
        finally:
            conn.close()

    def app_env(self, **overrides: str) -> dict[str, str]:
        """Environment for the app: the five DATABASE_* settings, short timeouts for tests,
        the digests of API_KEY (valid) and REVOKED_API_KEY."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "API_KEY"))}
        env.update(
            DATABASE_USER=APP_USER,
            DATABASE_PASSWORD=APP_PASSWORD,
            DATABASE_HOST=self.host,
            DATABASE_PORT=str(self.port),
            DATABASE_NAME=APP_DATABASE,
            DATABASE_POOL_SIZE="2",
            DATABASE_CONNECT_TIMEOUT="2",
            DATABASE_STATEMENT_TIMEOUT="3",
            DATABASE_POOL_TIMEOUT="2",
            READINESS_TIMEOUT="1",
            API_KEY_DIGESTS=json.dumps({"tests": digest(API_KEY)}),
            REVOKED_API_KEY_DIGESTS=json.dumps({"old-laptop": digest(REVOKED_API_KEY)}),
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONUNBUFFERED="1",
        )
        env.update(overrides)
        return env


class AppServer:
    """``python -m uvicorn main:app`` in app/ (or another module and folder), its output
    in a file; live once ``live_path`` answers 200."""

    def __init__(
        self,
        env: dict[str, str],
        logdir: Path,
        name: str = "app",
        module: str = "main:app",
        folder: Path = APP_DIR,
        live_path: str = "/health/live",
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.live_path = live_path
        self.logfile = logdir / f"{name}-{self.port}.log"
        self._log = self.logfile.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", module, "--host", "127.0.0.1",
             "--port", str(self.port)],
            cwd=folder,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_live(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the app exited ({self.process.returncode}):\n{self.log()}")
            try:
                if httpx.get(self.base_url + self.live_path, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"the app did not come up in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.logfile.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
