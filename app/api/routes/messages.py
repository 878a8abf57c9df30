"""CRUD endpoints for messages; the SQL behind them is in crud.py.

Two routers: ``writes`` (POST, PUT, DELETE), which main.py includes behind a valid API key,
and ``reads`` (GET), public unless PUBLIC_READS is false. The endpoints are plain ``def``:
FastAPI runs them in its thread pool, where the blocking psycopg2 calls belong.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError

import crud
from api.deps import PoolDep, SettingsDep
from core.config import Settings
from models import MAX_ID, ErrorMessage, Message, MessageIn, MessagePage

UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorMessage, "description": "The database is unavailable, or the server busy"}
}
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorMessage, "description": "No API key, or one the server does not take"}
}
reads = APIRouter(prefix="/messages", tags=["messages"], responses=UNAVAILABLE | UNAUTHORIZED)
writes = APIRouter(prefix="/messages", tags=["messages"], responses=UNAVAILABLE | UNAUTHORIZED)
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


def text_within_limit(body: MessageIn, settings: Settings) -> str:
    """The text, if it has at most MESSAGE_MAX_LENGTH characters; else a 422 in the same
    form as the model's own checks."""
    limit = settings.message_max_length
    if len(body.message) > limit:
        problem = {
            "type": "value_error",
            "loc": ("body", "message"),
            "msg": f"Value error, must be at most {limit} characters",
        }
        raise RequestValidationError([problem])
    return body.message


def not_found(message_id: int) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"message {message_id} not found")


@writes.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=Message,
    dependencies=JSON_ONLY,
    responses=NOT_JSON,
)
def create_message(
    body: MessageIn, pool: PoolDep, settings: SettingsDep, response: Response
) -> Message:
    """Store a new message. Its URL is in the ``Location`` header."""
    message = crud.create_message(pool, text_within_limit(body, settings))
    response.headers["Location"] = f"/messages/{message.id}"
    return message


@reads.get("", response_model=MessagePage)
def list_messages(
    pool: PoolDep,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size")] = 50,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only messages with a smaller id")
    ] = None,
) -> MessagePage:
    """A page of messages, newest first."""
    return crud.list_messages(pool, limit, before)


@reads.get("/{message_id}", response_model=Message, responses=NOT_FOUND)
def read_message(message_id: MessageId, pool: PoolDep) -> Message:
    message = crud.read_message(pool, message_id)
    if message is None:
        raise not_found(message_id)
    return message


@writes.put(
    "/{message_id}",
    response_model=Message,
    dependencies=JSON_ONLY,
    responses=NOT_FOUND | NOT_JSON,
)
def replace_message(
    message_id: MessageId, body: MessageIn, pool: PoolDep, settings: SettingsDep
) -> Message:
    """Replace the text of a message."""
    message = crud.replace_message(pool, message_id, text_within_limit(body, settings))
    if message is None:
        raise not_found(message_id)
    return message


@writes.delete(
    "/{message_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=NOT_FOUND,
)
def delete_message(message_id: MessageId, pool: PoolDep) -> None:
    if not crud.delete_message(pool, message_id):
        raise not_found(message_id)
