"""``main.create_app``: the settings and the pool live on each app's ``app.state``, the
lifespan sets them up, and the OpenAPI schema documents what the routes enforce."""

import re
import sys
from collections.abc import Callable

import httpx
from anyio import to_thread
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from tests.app.harness import AUTH
from tests.app.helpers import MAX_LENGTH

from core.db import Pool
from models import MAX_ID, TEXT_PATTERN, MessageIn


def text_schema(client: httpx.Client) -> dict[str, object]:
    """The OpenAPI schema of a message's text."""
    spec = client.get("/openapi.json").json()
    schema: dict[str, object] = spec["components"]["schemas"]["MessageIn"]["properties"]["message"]
    return schema


def test_openapi_documents_the_errors(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    item = spec["paths"]["/messages/{message_id}"]
    for method in ("get", "put", "delete"):
        assert {"404", "422", "503"} <= set(item[method]["responses"])
    assert "415" in item["put"]["responses"]
    assert {"201", "415", "422", "503"} <= set(spec["paths"]["/messages"]["post"]["responses"])
    assert spec["components"]["schemas"]["MessageIn"]["properties"]["message"]["maxLength"] == (
        MAX_LENGTH
    )
    ready = spec["paths"]["/health/ready"]["get"]["responses"]
    assert "application/health+json" in ready["503"]["content"]


def test_openapi_documents_the_text_rules_and_id_bounds(client: httpx.Client) -> None:
    text = text_schema(client)
    assert (text["minLength"], text["maxLength"], text["pattern"]) == (1, MAX_LENGTH, TEXT_PATTERN)
    spec = client.get("/openapi.json").json()
    [message_id] = spec["paths"]["/messages/{message_id}"]["get"]["parameters"]
    assert (message_id["schema"]["minimum"], message_id["schema"]["maximum"]) == (1, MAX_ID)
    query = {p["name"]: p["schema"] for p in spec["paths"]["/messages"]["get"]["parameters"]}
    assert query["before"]["anyOf"][0]["maximum"] == MAX_ID


def test_message_max_length_comes_from_the_settings(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(message_max_length=5)
    with TestClient(app, headers=AUTH) as test_client:
        assert test_client.post("/messages", json={"message": "12345"}).status_code == 201
        response = test_client.post("/messages", json={"message": "123456"})
        assert response.status_code == 422
        assert "at most 5 characters" in response.json()["detail"][0]["msg"]
        assert text_schema(test_client)["maxLength"] == 5


def test_two_apps_in_one_process_keep_their_own_settings(
    make_app: Callable[..., FastAPI],
) -> None:
    """Nothing is shared through modules or classes: each app enforces, documents and
    announces its own MESSAGE_MAX_LENGTH, and has its own pool, side by side."""
    short, default = make_app(message_max_length=5), make_app()
    with (
        TestClient(short, headers=AUTH) as short_client,
        TestClient(default, headers=AUTH) as default_client,
    ):
        for _ in range(2):  # interleaved, in both orders
            too_long = short_client.post("/messages", json={"message": "123456"})
            assert too_long.status_code == 422
            assert too_long.json()["detail"][0]["msg"] == (
                "Value error, must be at most 5 characters"
            )
            fits = default_client.post("/messages", json={"message": "123456"})
            assert fits.status_code == 201
            put = short_client.put(f"/messages/{fits.json()['id']}", json={"message": "123456"})
            assert put.status_code == 422
        assert short_client.get("/limits").json() == {"message_max_length": 5}
        assert default_client.get("/limits").json() == {"message_max_length": MAX_LENGTH}
        assert text_schema(short_client)["maxLength"] == 5
        assert text_schema(default_client)["maxLength"] == MAX_LENGTH
        assert short.state.settings.message_max_length == 5
        assert default.state.settings.message_max_length == MAX_LENGTH
        assert isinstance(short.state.pool, Pool)
        assert short.state.pool is not default.state.pool


def test_thread_limit_follows_pool_size(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(database_pool_size=3)

    @app.get("/test/threads")
    async def threads() -> int:
        return int(to_thread.current_default_thread_limiter().total_tokens)

    with TestClient(app, headers=AUTH) as test_client:
        assert test_client.get("/test/threads").json() == 6


def test_the_text_pattern_accepts_exactly_what_the_validator_accepts() -> None:
    """Every character alone, read by Python's regex engine both ways (clients such as
    schemathesis read ``\\s`` and ``\\d`` as ASCII only): the schema must not promise a
    message the API then refuses, as a pattern written with ``\\s`` did for U+0085."""
    unicode_pattern = re.compile(TEXT_PATTERN)
    ascii_pattern = re.compile(TEXT_PATTERN, re.ASCII)
    disagreements = []
    for code_point in range(sys.maxunicode + 1):
        if 0xD800 <= code_point <= 0xDFFF:  # lone surrogates: not text, refused on their own
            continue
        text = chr(code_point)
        try:
            MessageIn(message=text)
            accepted = True
        except ValidationError:
            accepted = False
        if {bool(unicode_pattern.match(text)), bool(ascii_pattern.match(text))} != {accepted}:
            disagreements.append(f"U+{code_point:04X}")
    assert not disagreements
