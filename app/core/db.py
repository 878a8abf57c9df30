"""The PostgreSQL connection pool, one per app (created in main.py's lifespan, kept on
``app.state.pool``). Routes get it as ``pool: PoolDep`` and hand it to crud.py, the only
module that borrows connections from it.

* At most DATABASE_POOL_SIZE requests hold a connection at a time; the others wait up to
  DATABASE_POOL_TIMEOUT seconds for one, then get ``PoolTimeout`` (answered with 503).
* A pooled connection that PostgreSQL has closed (restart, idle kill) is noticed when it is
  checked out, without a round-trip, and replaced by a fresh one.
* A connection that fails while in use is closed instead of going back to the pool.
* A transaction whose client has left (core/admission.py) is rolled back, not committed.
So after a PostgreSQL restart the next requests succeed without restarting the app.
"""

import logging
import select
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import psycopg2.errors
from psycopg2.extensions import TRANSACTION_STATUS_IDLE
from psycopg2.extensions import connection as Connection

from core.admission import client_left
from core.config import Settings

APPLICATION_NAME = "messages"

logger = logging.getLogger("app.db")

# Errors that mean "the connection (or the server) is gone": the connection is thrown away.
# A server that no longer takes writes (a leader demoted by Patroni while the connection
# stayed open) is gone too: a new connection finds the new leader.
CONNECTION_ERRORS = (
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
    psycopg2.errors.ReadOnlySqlTransaction,
)


class PoolTimeout(Exception):
    """No connection became free within DATABASE_POOL_TIMEOUT seconds."""


class ClientLeft(Exception):
    """The request's client closed its connection: its transaction was rolled back."""


def connect_kwargs(settings: Settings) -> dict[str, Any]:
    """Arguments for psycopg2.connect(), shared by the pool and the migrations."""
    tls: dict[str, str] = {"sslmode": settings.database_sslmode}
    if settings.database_sslrootcert:
        tls["sslrootcert"] = settings.database_sslrootcert
    return tls | {
        "host": settings.database_host,
        "port": settings.database_port,
        "dbname": settings.database_name,
        "user": settings.database_user,
        "password": settings.database_password.get_secret_value(),
        "connect_timeout": settings.database_connect_timeout,
        # With several hosts in DATABASE_HOST, the first that takes writes.
        "target_session_attrs": settings.database_target_session_attrs,
        "application_name": APPLICATION_NAME,
        "options": f"-c statement_timeout={int(settings.database_statement_timeout * 1000)}",
        # Notice a peer that vanished without closing the connection (host crash, network cut):
        # sent data unacknowledged for 5 s fails the connection (a query waiting for its answer
        # is not affected), and so do unanswered keep-alives on an idle one.
        "tcp_user_timeout": 5000,
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
    }


def connect(settings: Settings) -> Connection:
    """A new connection (the pool's, and the migrations')."""
    conn: Connection = psycopg2.connect(**connect_kwargs(settings))
    return conn


def is_stale(conn: Connection) -> bool:
    """True if the connection is closed, or the server has already sent something on it.

    An idle connection gets nothing from the server unless it is going away (a FATAL
    message on shutdown, or end of file), so a readable socket means "do not use".
    This costs no round-trip.
    """
    if conn.closed:
        return True
    try:
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, psycopg2.InterfaceError):
        return True


class Pool:
    """Idle connections kept for reuse, and a semaphore to wait for a free request slot.

    (psycopg2's own pools close every connection returned above ``minconn`` and open
    ``minconn`` connections eagerly, so this small pool is used instead.)
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._slots = threading.BoundedSemaphore(settings.database_pool_size)
        self._timeout = settings.database_pool_timeout
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """Wait for a request slot, then lend a connection (see ``borrow``).

        ``with pool.connection() as conn:`` is a transaction: it commits when the block ends
        normally and rolls back when it raises. Raises ``PoolTimeout`` or a psycopg2 error
        when the database cannot be reached.
        """
        if not self._slots.acquire(timeout=self._timeout):
            raise PoolTimeout(f"no database connection free after {self._timeout:g} s")
        try:
            with self.borrow() as conn:
                yield conn
        finally:
            self._slots.release()

    @contextmanager
    def borrow(self) -> Iterator[Connection]:
        """Lend a live connection: commit when the block succeeds (and the request's client
        is still there), roll back when it fails.

        Does not take a request slot: callers other than ``connection`` must bound their
        own concurrency (the readiness probe runs one at a time).
        """
        conn = self._checkout()
        broken = False
        try:
            yield conn
            if client_left():
                raise ClientLeft("the client left before the transaction committed")
            conn.commit()
        except CONNECTION_ERRORS:
            broken = True
            raise
        except BaseException:
            try:
                conn.rollback()
            except psycopg2.Error:
                broken = True
            raise
        finally:
            self._checkin(conn, broken)

    def close(self) -> None:
        """Close the idle connections; those in use are closed when they come back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _checkout(self) -> Connection:
        # Newest idle connection first; stale ones are closed and skipped. When none
        # is left, open a new one (which raises OperationalError if the server is down).
        while True:
            with self._lock:
                if self._closed:
                    raise psycopg2.InterfaceError("the connection pool is closed")
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return connect(self._settings)
            if not is_stale(conn):
                return conn
            logger.info("dropping a pooled connection closed by the server")
            conn.close()

    def _checkin(self, conn: Connection, broken: bool) -> None:
        reusable = (
            not broken
            and not conn.closed
            and conn.info.transaction_status == TRANSACTION_STATUS_IDLE
        )
        if reusable:
            with self._lock:
                if not self._closed:
                    self._idle.append(conn)
                    return
        conn.close()
