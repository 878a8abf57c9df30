"""Hostile input through nginx, a corpus of hand-made cases (hostile_corpus.py): oversized and
broken bodies, wrong content types, odd Unicode, NUL bytes, huge numbers, path tricks, header
floods, malformed HTTP and method oddities. What an HTTP client refuses to write (or would
normalise) goes out on a raw TLS socket (rawhttp.py). test_hostile_schemathesis.py, next in
the run, sends what schemathesis makes of the deployed schema.

Zero 5xx: every answer is a 4xx with a JSON body ("detail"), nginx's own 413 included, or a
2xx/3xx where the input is in fact valid.

Every request is paced under nginx's per-client rate limit (20 r/s, burst 40): a 429 here means
the pacing failed, or another client from this address spent the budget, not the product.
Messages the corpus creates are deleted.
"""

import json
import ssl
import time
from collections.abc import Iterator, Sequence

import httpx
import pytest
from hostcheck import ApiKeys, AppLimits, Setting
from hostile_corpus import (
    BODIES,
    IMPOSSIBLE_IDS,
    JSON,
    MESSAGE_IDS,
    QUERIES,
    RAW,
    VALID,
)
from rawhttp import send_raw

# Stops services, reboots, floods: only on hosts made for testing (see `make verify`).
# api_ready: web hosts only; waits out a deploy that is restarting things.
pytestmark = [pytest.mark.destructive, pytest.mark.usefixtures("api_ready")]

PAUSE = 0.06  # seconds before each request: about 14 r/s


def pace(*_: object) -> None:
    time.sleep(PAUSE)


@pytest.fixture(scope="module")
def client(page_url: str, tls_context: ssl.SSLContext, api_keys: ApiKeys) -> Iterator[httpx.Client]:
    """An HTTPS client with an API key that waits PAUSE before each request."""
    with httpx.Client(
        base_url=page_url,
        verify=tls_context,
        timeout=10,
        headers=api_keys.header(),
        event_hooks={"request": [pace]},
    ) as paced:
        yield paced


@pytest.fixture(scope="module")
def target(client: httpx.Client) -> Iterator[str]:
    """The path of a message for the PUT cases to replace."""
    created = client.post("/messages", json={"message": "hostile input target"})
    assert created.status_code == 201, created.text
    yield created.headers["location"]
    client.delete(created.headers["location"])


def assert_answer(response: httpx.Response, expected: Sequence[int]) -> None:
    """Never a 5xx; a status among `expected`; a 4xx has a JSON body with a "detail"."""
    status, content_type = response.status_code, response.headers.get("content-type", "")
    summary = f"{status} {content_type or '(no content-type)'} {response.text[:300]!r}"
    assert status < 500, summary
    assert status in expected, f"expected {sorted(expected)}, got {summary}"
    if status < 400:
        return
    assert content_type.split(";")[0].strip() == "application/json", summary
    try:
        body = response.json()
    except ValueError:
        pytest.fail(f"not JSON: {summary}")
    assert isinstance(body, dict) and "detail" in body, summary


# --- bodies (POST /messages and PUT /messages/{id}) ------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_a_body_just_above_the_limit_is_413(
    client: httpx.Client, target: str, setting: Setting, method: str
) -> None:
    limit = str(setting("nginx_client_max_body_size")).lower()
    size = int(limit.rstrip("km")) * {"k": 1024, "m": 1024**2}.get(limit[-1], 1)
    body = b'{"message": "' + b"x" * size + b'"}'
    path = "/messages" if method == "POST" else target
    response = client.request(method, path, content=body, headers={"content-type": JSON})
    assert_answer(response, [413])


@pytest.mark.parametrize("method", ["POST", "PUT"])
@pytest.mark.parametrize(("body", "content_type", "expected"), BODIES)
def test_body(
    client: httpx.Client,
    target: str,
    method: str,
    body: bytes,
    content_type: str | None,
    expected: Sequence[int | str],
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    path = "/messages" if method == "POST" else target
    response = client.request(method, path, content=body, headers=headers)
    ok = 201 if method == "POST" else 200
    assert_answer(response, [ok if status == VALID else int(status) for status in expected])
    if response.status_code == 201:
        client.delete(response.headers["location"])


@pytest.mark.parametrize(
    ("character", "ensure_ascii"),
    [
        pytest.param("x", True, id="ascii"),
        pytest.param("\u00e9", True, id="escaped-to-6-bytes"),
        pytest.param("\U0001f600", False, id="raw-4-bytes"),
        pytest.param("\U0001f600", True, id="escaped-to-12-bytes"),
    ],
)
def test_the_longest_message_is_accepted_however_it_is_encoded(
    client: httpx.Client, app_limits: AppLimits, character: str, ensure_ascii: bool
) -> None:
    """The schema's maxLength counts characters: JSON's escapes must fit in nginx's limit."""
    longest = app_limits.message_max_length
    for length, expected in [(longest, (201,)), (longest + 1, (413, 422))]:
        body = json.dumps({"message": character * length}, ensure_ascii=ensure_ascii)
        response = client.post("/messages", content=body.encode(), headers={"content-type": JSON})
        assert_answer(response, expected)
        if response.status_code == 201:
            client.delete(response.headers["location"])


# --- numbers in the path and the query ------------------------------------------------------


@pytest.mark.parametrize(("message_id", "expected"), MESSAGE_IDS)
def test_message_id(
    client: httpx.Client, app_limits: AppLimits, message_id: str, expected: Sequence[int]
) -> None:
    assert_answer(client.get(f"/messages/{app_limits.fill(message_id)}"), expected)


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
@pytest.mark.parametrize("message_id", IMPOSSIBLE_IDS)
def test_writes_to_an_impossible_id(
    client: httpx.Client, app_limits: AppLimits, method: str, message_id: str
) -> None:
    path = f"/messages/{app_limits.fill(message_id)}"
    response = client.request(method, path, json={"message": "hi"})
    assert_answer(response, (422,))


@pytest.mark.parametrize(("query", "expected"), QUERIES)
def test_list_query(
    client: httpx.Client, app_limits: AppLimits, query: str, expected: Sequence[int]
) -> None:
    assert_answer(client.get(f"/messages?{app_limits.fill(query)}"), expected)


# --- raw requests: paths, headers, framing, request lines -------------------------------------


@pytest.mark.parametrize(("data", "expected"), RAW)
def test_raw_request(
    address: str,
    setting: Setting,
    tls_context: ssl.SSLContext,
    api_keys: ApiKeys,
    data: bytes,
    expected: Sequence[int],
) -> None:
    pace()
    port = int(setting("nginx_https_port"))
    response = send_raw(address, port, tls_context, data, key=api_keys.valid)
    assert_answer(response, expected)
    if response.status_code == 307:
        assert response.headers["location"].startswith("https://"), response.headers


# --- methods ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/messages", "/messages/1", "/health/live"])
@pytest.mark.parametrize("method", ["TRACE", "OPTIONS", "PATCH", "PROPFIND", "FOO", "M-SEARCH"])
def test_a_method_not_allowed_is_405_json(client: httpx.Client, method: str, path: str) -> None:
    response = client.request(method, path)
    assert_answer(response, (405,))
    assert response.headers.get("allow"), "a 405 must say which methods are allowed"


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/messages/1"), ("PUT", "/messages"), ("DELETE", "/messages")]
)
def test_a_method_of_another_route_is_405_json(
    client: httpx.Client, method: str, path: str
) -> None:
    response = client.request(method, path, json={"message": "hi"})
    assert_answer(response, (405,))
    assert response.headers.get("allow"), "a 405 must say which methods are allowed"
