"""Small checks on the app's answers, shared by the test modules."""

from typing import Any

import httpx

from core.config import Settings

# MESSAGE_MAX_LENGTH's default, which the test app runs with (it answers it on /limits).
MAX_LENGTH: int = Settings.model_fields["message_max_length"].default


def create(client: httpx.Client, text: str) -> dict[str, Any]:
    """POST a message; return the created message."""
    response = client.post("/messages", json={"message": text})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_json_error(response: httpx.Response, status: int) -> Any:
    """The response has this status and a JSON body; return its ``detail``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()["detail"]
