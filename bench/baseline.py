"""The seed's pattern, for the benchmark only: ``uvicorn baseline:app --port 8100``.

One uvicorn process that opens a NEW psycopg2 connection for every request and closes it
at the end (no pool), as a naive first version of the service would. It serves the same
``GET /messages/{id}``, ``GET /messages`` and ``POST /messages`` with the same JSON as
the app's routes, against the ``messages`` table that the deployed app's migrations
created (this module creates nothing). ``make bench`` measures the app against it; it is
not part of the service and is never deployed as one.

Settings: DATABASE_USER, DATABASE_PASSWORD, DATABASE_HOST, DATABASE_PORT (5432) and
DATABASE_NAME, as for the app.
"""

import os
from datetime import datetime
from typing import Any

import psycopg2
from fastapi import FastAPI, HTTPException, Response
from psycopg2.extras import RealDictCursor
from pydantic import BaseModel

PAGE_SIZE = 50  # the app's default page size

app = FastAPI(title="Messages (seed pattern, benchmark only)")


# Deliberate twin of app/models.py's bodies: the seed's pattern stands alone, importing nothing.
class MessageIn(BaseModel):
    message: str


class Message(BaseModel):
    id: int
    message: str
    created_at: datetime
    updated_at: datetime


class MessagePage(BaseModel):
    items: list[Message]
    next_before: int | None


def query(sql: str, parameters: tuple[Any, ...]) -> list[dict[str, Any]]:
    """Open a connection, run one statement in a transaction, commit, close."""
    conn = psycopg2.connect(
        host=os.environ["DATABASE_HOST"],
        port=int(os.environ.get("DATABASE_PORT", "5432")),
        dbname=os.environ["DATABASE_NAME"],
        user=os.environ["DATABASE_USER"],
        password=os.environ["DATABASE_PASSWORD"],
    )
    try:
        with conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
            cur.execute(sql, parameters)
            return [dict(row) for row in cur.fetchall()]
    finally:
        conn.close()


@app.get("/messages/{message_id}", response_model=Message)
def read_message(message_id: int) -> dict[str, Any]:
    rows = query(
        "SELECT id, message, created_at, updated_at FROM messages WHERE id = %s", (message_id,)
    )
    if not rows:
        raise HTTPException(404, f"message {message_id} not found")
    return rows[0]


@app.get("/messages", response_model=MessagePage)
def list_messages(limit: int = PAGE_SIZE, before: int | None = None) -> dict[str, Any]:
    rows = query(
        "SELECT id, message, created_at, updated_at FROM messages"
        " WHERE %s::bigint IS NULL OR id < %s ORDER BY id DESC LIMIT %s",
        (before, before, limit + 1),
    )
    items = rows[:limit]
    return {"items": items, "next_before": items[-1]["id"] if len(rows) > limit else None}


@app.post("/messages", status_code=201, response_model=Message)
def create_message(body: MessageIn, response: Response) -> dict[str, Any]:
    [row] = query(
        "INSERT INTO messages (message) VALUES (%s) RETURNING id, message, created_at, updated_at",
        (body.message,),
    )
    response.headers["Location"] = f"/messages/{row['id']}"
    return row
