"""CRUD endpoints for messages.

The endpoints are plain ``def``: FastAPI runs them in its thread pool, where the
blocking psycopg2 calls belong.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from psycopg2.extras import RealDictCursor

import db
from models import MAX_ID, ErrorMessage, Message, MessageIn, MessagePage

router = APIRouter(
    prefix="/messages",
    tags=["messages"],
    responses={503: {"model": ErrorMessage, "description": "The database is unavailable"}},
)
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorMessage, "description": "No message with this id"}
}


async def require_json(request: Request) -> None:
    """Answer 415 to a body that is not declared as JSON.

    (FastAPI would otherwise not parse it and complain with a confusing 422.)
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "Content-Type must be application/json"
        )


JSON_ONLY = [Depends(require_json)]
NOT_JSON: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorMessage, "description": "The body is not UTF-8, or nested too deeply"},
    415: {"model": ErrorMessage, "description": "The body is not declared as JSON"},
}

MessageId = Annotated[int, Path(ge=1, le=MAX_ID, description="The message's id")]


def one_message(message_id: int, query: str, parameters: tuple[Any, ...]) -> Message:
    """Run a query that returns the message's row, or 404 when there is none."""
    with db.connection() as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(query, parameters)
        row = cur.fetchone()
    if row is None:
        raise not_found(message_id)
    return Message.model_validate(row)


def not_found(message_id: int) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"message {message_id} not found")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=Message,
    dependencies=JSON_ONLY,
    responses=NOT_JSON,
)
def create_message(body: MessageIn, response: Response) -> Message:
    """Store a new message. Its URL is in the ``Location`` header."""
    with db.connection() as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(
            "INSERT INTO messages (message) VALUES (%s)"
            " RETURNING id, message, created_at, updated_at",
            (body.message,),
        )
        row = cur.fetchone()
    message = Message.model_validate(row)
    response.headers["Location"] = f"/messages/{message.id}"
    return message


@router.get("", response_model=MessagePage)
def list_messages(
    limit: Annotated[int, Query(ge=1, le=500, description="Page size")] = 50,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only messages with a smaller id")
    ] = None,
) -> MessagePage:
    """A page of messages, newest first."""
    with db.connection() as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
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


@router.get("/{message_id}", response_model=Message, responses=NOT_FOUND)
def read_message(message_id: MessageId) -> Message:
    return one_message(
        message_id,
        "SELECT id, message, created_at, updated_at FROM messages WHERE id = %s",
        (message_id,),
    )


@router.put(
    "/{message_id}",
    response_model=Message,
    dependencies=JSON_ONLY,
    responses=NOT_FOUND | NOT_JSON,
)
def replace_message(message_id: MessageId, body: MessageIn) -> Message:
    """Replace the text of a message."""
    return one_message(
        message_id,
        "UPDATE messages SET message = %s, updated_at = now()"
        " WHERE id = %s RETURNING id, message, created_at, updated_at",
        (body.message, message_id),
    )


@router.delete(
    "/{message_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=NOT_FOUND,
)
def delete_message(message_id: MessageId) -> None:
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM messages WHERE id = %s", (message_id,))
        deleted = cur.rowcount
    if deleted == 0:
        raise not_found(message_id)
