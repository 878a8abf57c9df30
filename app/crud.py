"""All the SQL that the routes run: one function per statement.

Each function takes the app's pool (``pool: PoolDep`` in the routes) and runs in one
transaction on a pooled connection (see ``Pool.connection`` in core/db.py). The functions
block: the routes that call them are plain ``def``, which FastAPI runs in its thread pool.
A missing row is ``None`` (or ``False``); the routes turn it into a 404.
"""

from typing import Any

from psycopg2.extras import RealDictCursor

from core.db import Pool
from models import Message, MessagePage


def _one_message(pool: Pool, query: str, parameters: tuple[Any, ...]) -> Message | None:
    """Run a query that returns at most one message's row."""
    with pool.connection() as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(query, parameters)
        row = cur.fetchone()
    return None if row is None else Message.model_validate(row)


def create_message(pool: Pool, text: str) -> Message:
    message = _one_message(
        pool,
        "INSERT INTO messages (message) VALUES (%s) RETURNING id, message, created_at, updated_at",
        (text,),
    )
    if message is None:  # cannot happen: INSERT ... RETURNING gives the new row
        raise RuntimeError("the new message's row did not come back")
    return message


def list_messages(pool: Pool, limit: int, before: int | None) -> MessagePage:
    """Up to ``limit`` messages with an id below ``before`` (if given), newest first."""
    with pool.connection() as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        # One row more than asked for tells whether there is a next page.
        cur.execute(
            "SELECT id, message, created_at, updated_at FROM messages"
            " WHERE %(before)s::bigint IS NULL OR id < %(before)s"
            " ORDER BY id DESC LIMIT %(limit)s",
            {"before": before, "limit": limit + 1},
        )
        rows = cur.fetchall()
    items = [Message.model_validate(row) for row in rows[:limit]]
    next_before = items[-1].id if len(rows) > limit else None
    return MessagePage(items=items, next_before=next_before)


def read_message(pool: Pool, message_id: int) -> Message | None:
    return _one_message(
        pool,
        "SELECT id, message, created_at, updated_at FROM messages WHERE id = %s",
        (message_id,),
    )


def replace_message(pool: Pool, message_id: int, text: str) -> Message | None:
    return _one_message(
        pool,
        "UPDATE messages SET message = %s, updated_at = now()"
        " WHERE id = %s RETURNING id, message, created_at, updated_at",
        (text, message_id),
    )


def delete_message(pool: Pool, message_id: int) -> bool:
    """True if there was such a message."""
    with pool.connection() as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM messages WHERE id = %s", (message_id,))
        deleted = cur.rowcount
    return deleted > 0


def ping(pool: Pool) -> None:
    """``SELECT 1`` outside the request slots (``Pool.borrow``): the caller bounds its own
    concurrency (the readiness probe runs one at a time)."""
    with pool.borrow() as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchone()
