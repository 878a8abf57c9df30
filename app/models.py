"""Request and response bodies (the SQL that fills them is in crud.py)."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Largest PostgreSQL BIGINT: ids and cursors beyond it are refused before reaching the DB.
MAX_ID = 2**63 - 1

# What _check_text enforces, for the OpenAPI schema: no NUL, and at least one character
# that is not whitespace in Python's sense (str.isspace, as used by str.strip). The
# whitespace is spelled out rather than written \s, whose meaning differs between regex
# dialects: ECMA-262's (the one JSON Schema names) leaves out U+0085 and U+001C-U+001F and
# adds U+FEFF, and clients such as schemathesis read \s as ASCII only.
PYTHON_WHITESPACE = (
    r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
)
TEXT_PATTERN = rf"^[^\x00]*[^\x00{PYTHON_WHITESPACE}][^\x00]*$"


# Its length limit is a setting (MESSAGE_MAX_LENGTH): the routes check it against the app's
# settings (messages.text_within_limit), and main.py writes it into the schema as maxLength.
class MessageIn(BaseModel):
    """The text of a message, as sent by a client to create or replace one."""

    model_config = ConfigDict(
        strict=True,  # a number is not a string
        extra="forbid",
    )

    message: str = Field(
        min_length=1, examples=["Hello, world"], json_schema_extra={"pattern": TEXT_PATTERN}
    )

    @field_validator("message")
    @classmethod
    def _check_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone UTF-16 surrogate such as JSON "\ud800"
            raise ValueError("must be valid Unicode text") from None
        return value


class Message(BaseModel):
    id: int
    message: str
    created_at: datetime
    updated_at: datetime


class MessagePage(BaseModel):
    """Messages, newest first. Pass ``next_before`` as ``before`` to get the next page."""

    items: list[Message]
    next_before: int | None = Field(
        description="The `before` value for the next page; null on the last page."
    )


class Limits(BaseModel):
    """What a client should know before it sends a message."""

    message_max_length: int = Field(
        description="The most characters a message may have (MESSAGE_MAX_LENGTH)."
    )


class ErrorMessage(BaseModel):
    detail: str = Field(examples=["database unavailable"])


class HealthCheck(BaseModel):
    status: Literal["pass", "fail"]
    observedValue: float | None = None  # camelCase: the health+json names
    observedUnit: str | None = None
    output: str | None = None


class Health(BaseModel):
    """A health check in the draft "application/health+json" format."""

    status: Literal["pass", "fail"]
    releaseId: str | None = None
    checks: dict[str, list[HealthCheck]] | None = None  # not shown to the public
