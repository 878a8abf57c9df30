"""Hostile input through nginx: zero 5xx, every answer a 4xx with a JSON body ("detail"),
nginx's own 413 included, or a 2xx/3xx where the input is in fact valid.

Two parts:

* schemathesis, every check, against the deployed OpenAPI schema. nginx serves the schema only
  to loopback, so it is read on the host itself; the cases then go to the HTTPS address.
* a corpus of hand-made cases: oversized and broken bodies, wrong content types, odd Unicode,
  NUL bytes, huge numbers, path tricks, header floods, malformed HTTP and method oddities.
  What an HTTP client refuses to write (or would normalise) goes out on a raw TLS socket.

Every request is paced under nginx's per-client rate limit (20 r/s, burst 40): a 429 here means
the pacing failed, or another client from this address spent the budget, not the product.
Messages the corpus creates are deleted; schemathesis creates, replaces and deletes messages
of its own (any id it picks, including existing ones): run this against a test host only.
"""

import copy
import json
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from hostcheck import Setting

# Stops services, reboots, floods: only on hosts made for testing (see `make verify`).
pytestmark = pytest.mark.destructive

PAUSE = 0.06  # seconds before each corpus request: about 14 r/s
SCHEMATHESIS_RATE = "15/s"
SCHEMATHESIS_EXAMPLES = 50  # per operation and phase
SCHEMATHESIS_DEADLINE = 150  # seconds; a run takes about a minute

VALID = "valid"  # the input is acceptable: 201 to a POST, 200 to a PUT
NOT_JSON = (400, 415, 422)  # a body that is not (UTF-8) JSON: 400 and 422 are both fair
CLIENT_ERROR = tuple(status for status in range(400, 500) if status != 429)
FOUND_OR_NOT = (200, 404)  # a valid id that may or may not exist

# schemathesis's default statuses for rejected input, plus nginx's 413 (client_max_body_size
# turns a body away before the app sees it).
SCHEMATHESIS_CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422",
                     "428", "429", "5xx"]
"""


@pytest.fixture(scope="module", autouse=True)
def api_ready(page_url: str, tls_context: ssl.SSLContext) -> None:
    """Web hosts only (page_url skips the others); wait out a deploy that is restarting things."""
    with httpx.Client(base_url=page_url, verify=tls_context, timeout=5) as client:
        for _ in range(60):
            try:
                if client.get("/health/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(1)
    pytest.fail("the API did not get ready within a minute")


@pytest.fixture(scope="module")
def client(page_url: str, tls_context: ssl.SSLContext) -> Iterator[httpx.Client]:
    """An HTTPS client that waits PAUSE before each request."""

    def pace(request: httpx.Request) -> None:
        time.sleep(PAUSE)

    with httpx.Client(
        base_url=page_url, verify=tls_context, timeout=10, event_hooks={"request": [pace]}
    ) as paced:
        yield paced


@pytest.fixture(scope="module")
def target(client: httpx.Client) -> Iterator[str]:
    """The path of a message for the PUT cases to replace."""
    created = client.post("/messages", json={"message": "hostile input target"})
    assert created.status_code == 201, created.text
    yield created.headers["location"]
    client.delete(created.headers["location"])


@pytest.fixture
def openapi(host: Any, setting: Setting) -> dict[str, Any]:
    """The deployed schema, as the host itself reads it (only loopback may)."""
    port = int(setting("nginx_https_port"))
    schema: dict[str, Any] = json.loads(
        host.check_output("curl -sfk https://127.0.0.1:%s/openapi.json", str(port))
    )
    return schema


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


def send_raw(address: str, port: int, tls_context: ssl.SSLContext, data: bytes) -> httpx.Response:
    """Write `data` as is on a new TLS connection and read one HTTP/1.x answer."""
    time.sleep(PAUSE)
    data = data.replace(b"{host}", address.encode())
    with (
        socket.create_connection((address, port), timeout=10) as sock,
        tls_context.wrap_socket(sock, server_hostname=address) as tls,
    ):
        tls.sendall(data)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = tls.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed after {received[:200]!r}")
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = [tuple(part.strip() for part in line.split(":", 1)) for line in header_lines]
        declared = dict((name.lower(), value) for name, value in headers).get("content-length")
        length = int(declared) if declared else None  # else up to the close
        while length is None or len(body) < length:
            chunk = tls.recv(65536)
            if not chunk:
                break
            body += chunk
    return httpx.Response(int(status_line.split()[1]), headers=headers, content=body[:length])


def http1(
    line: bytes = b"GET /messages/1 HTTP/1.1",
    *headers: bytes,
    body: bytes = b"",
    host: bytes = b"Host: {host}",
) -> bytes:
    """A request as bytes; `host` (the address unless replaced) comes first."""
    fields = [*([host] if host else []), *headers, b"Connection: close"]
    return line + b"\r\n" + b"".join(field + b"\r\n" for field in fields) + b"\r\n" + body


def post_raw(*headers: bytes, body: bytes = b"") -> bytes:
    return http1(b"POST /messages HTTP/1.1", b"Content-Type: application/json", *headers, body=body)


# --- bodies (POST /messages and PUT /messages/{id}) ------------------------------------------

JSON = "application/json"
BOUNDARY = "hostile"
MULTIPART = (
    f"--{BOUNDARY}\r\n"
    'Content-Disposition: form-data; name="message"\r\n\r\nhi\r\n'
    f"--{BOUNDARY}--\r\n"
).encode()

BODIES = [
    # size (just above nginx's client_max_body_size: test_a_body_just_above_the_limit)
    pytest.param(b'{"message": "' + b"x" * 1024 * 1024 + b'"}', JSON, (413,), id="1-MB"),
    # broken JSON
    pytest.param(b'{"message": "hel', JSON, NOT_JSON, id="truncated"),
    pytest.param(b'{"message": "hi",}', JSON, NOT_JSON, id="trailing-comma"),
    pytest.param(b'{"message": NaN}', JSON, NOT_JSON, id="NaN"),
    pytest.param(b'{"message": "hi", "n": Infinity}', JSON, NOT_JSON, id="Infinity"),
    pytest.param(b"[" * 10_000 + b"]" * 10_000, JSON, NOT_JSON, id="arrays-10k-deep"),
    pytest.param(b'{"":' * 5000 + b"1" + b"}" * 5000, JSON, NOT_JSON, id="objects-5k-deep"),
    pytest.param(b'{"message": "a", "message": "b"}', JSON, (VALID, 422), id="duplicate-keys"),
    pytest.param(b'{"message": "a", "message": 1}', JSON, (422,), id="duplicate-key-wrong-type"),
    pytest.param(b"{'message': 'hi'}", JSON, NOT_JSON, id="single-quotes"),
    pytest.param(b'{"message": "hi" /* c */}', JSON, NOT_JSON, id="comment"),
    pytest.param(b"", JSON, (422,), id="empty"),
    pytest.param(b"null", JSON, (422,), id="null"),
    pytest.param(b'["message"]', JSON, (422,), id="array"),
    pytest.param(b'"message"', JSON, (422,), id="string"),
    pytest.param(b'{"message": 1}', JSON, (422,), id="number-for-text"),
    pytest.param(b'{"message": ' + b"9" * 5000 + b"}", JSON, NOT_JSON, id="5000-digit-number"),
    pytest.param(b'{"message": 1e400}', JSON, (422,), id="1e400"),
    pytest.param(b'{"message": "hi", "id": 1}', JSON, (422,), id="extra-field"),
    pytest.param(b'{"message": "   "}', JSON, (422,), id="blank"),
    pytest.param('{"message": "\u3000\u2003"}'.encode(), JSON, (422,), id="unicode-blank"),
    # content types
    pytest.param(b'{"message": "hi"}', "text/plain", (415,), id="text-plain"),
    pytest.param(b"message=hi", "application/x-www-form-urlencoded", (415,), id="form"),
    pytest.param(MULTIPART, f"multipart/form-data; boundary={BOUNDARY}", (415,), id="multipart"),
    pytest.param(b'{"message": "hi"}', None, (415,), id="no-content-type"),
    pytest.param(b'{"message": "hi"}', "application/xml", (415,), id="xml"),
    pytest.param(b'{"message": "hi"}', "application/jsonx", (415,), id="jsonx"),
    pytest.param(b'{"message": "hi"}', "APPLICATION/JSON", (VALID,), id="upper-case-type"),
    pytest.param(
        '{"message": "caf\u00e9"}'.encode("latin-1"),
        "application/json; charset=latin1",
        (VALID, *NOT_JSON),
        id="latin1-bytes",
    ),
    pytest.param('{"message": "hi"}'.encode("utf-16"), JSON, (VALID, *NOT_JSON), id="utf-16-body"),
    pytest.param(b'\xef\xbb\xbf{"message": "hi"}', JSON, (VALID, *NOT_JSON), id="utf-8-bom"),
    # odd Unicode
    pytest.param(b'{"message": "\\ud800"}', JSON, (422,), id="lone-high-surrogate"),
    pytest.param(b'{"message": "a\\udc00b"}', JSON, (422,), id="lone-low-surrogate"),
    pytest.param(b'{"message": "\\udc00\\ud800"}', JSON, (422,), id="reversed-surrogates"),
    pytest.param(b'{"message": "\xed\xa0\x80"}', JSON, NOT_JSON, id="utf-8-encoded-surrogate"),
    pytest.param(b'{"message": "\xc0\xaf"}', JSON, NOT_JSON, id="overlong-utf-8"),
    pytest.param(b'{"message": "\xff\xfe"}', JSON, NOT_JSON, id="invalid-utf-8"),
    pytest.param(b'{"message": "\xe2\x82"}', JSON, NOT_JSON, id="truncated-utf-8"),
    pytest.param(
        json.dumps({"message": "abc\u202edcba\u2066x\u2069"}).encode(), JSON, (VALID,), id="rtl"
    ),
    pytest.param(
        json.dumps({"message": "a\u200b\u200c\u200d\ufeffb"}).encode(), JSON, (VALID,), id="zwsp"
    ),
    pytest.param(
        json.dumps(
            {"message": "\U0001f468\u200d\U0001f469\u200d\U0001f467"}, ensure_ascii=False
        ).encode(),
        JSON,
        (VALID,),
        id="emoji",
    ),
    pytest.param(
        json.dumps({"message": "e" + "\u0301" * 100}).encode(), JSON, (VALID,), id="combining"
    ),
    pytest.param(b'{"message": "a\\uffff\\udbff\\udfff"}', JSON, (VALID,), id="noncharacters"),
    # NUL
    pytest.param(b'{"message": "a\x00b"}', JSON, NOT_JSON, id="raw-NUL"),
    pytest.param(b'{"message": "a\\u0000b"}', JSON, (422,), id="escaped-NUL"),
    pytest.param(b'{"message": "ab"}\x00', JSON, NOT_JSON, id="NUL-after-JSON"),
    pytest.param(b'{"mess\\u0000age": "ab"}', JSON, (422,), id="NUL-in-key"),
]


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
    client: httpx.Client, openapi: dict[str, Any], character: str, ensure_ascii: bool
) -> None:
    """The schema's maxLength counts characters: JSON's escapes must fit in nginx's limit."""
    longest = openapi["components"]["schemas"]["MessageIn"]["properties"]["message"]["maxLength"]
    for length, expected in [(longest, (201,)), (longest + 1, (413, 422))]:
        body = json.dumps({"message": character * length}, ensure_ascii=ensure_ascii)
        response = client.post("/messages", content=body.encode(), headers={"content-type": JSON})
        assert_answer(response, expected)
        if response.status_code == 201:
            client.delete(response.headers["location"])


# --- numbers in the path and the query ------------------------------------------------------

MAX_ID = 2**63 - 1


@pytest.mark.parametrize(
    ("message_id", "expected"),
    [
        pytest.param(str(MAX_ID), FOUND_OR_NOT, id="2^63-1"),
        pytest.param(str(MAX_ID + 1), (422,), id="2^63"),
        pytest.param(str(2**64), (422,), id="2^64"),
        pytest.param("9" * 5000, (422,), id="5000-digits"),
        pytest.param("1e400", (422,), id="1e400"),
        pytest.param("-0", (422,), id="minus-0"),
        pytest.param("0", (422,), id="0"),
        pytest.param("-1", (422,), id="-1"),
        pytest.param("00001", FOUND_OR_NOT, id="00001"),
        pytest.param("1.0", (*FOUND_OR_NOT, 422), id="1.0"),
        pytest.param("1.5", (422,), id="1.5"),
        pytest.param("0x10", (422,), id="hex"),
        pytest.param("%20%201", (*FOUND_OR_NOT, 422), id="leading-spaces"),
        pytest.param("\u0661", (422,), id="arabic-indic-digit"),
        pytest.param("NaN", (422,), id="NaN"),
    ],
)
def test_message_id(client: httpx.Client, message_id: str, expected: Sequence[int]) -> None:
    assert_answer(client.get(f"/messages/{message_id}"), expected)


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
@pytest.mark.parametrize("message_id", [str(MAX_ID + 1), "0", "-0", "1e400"])
def test_writes_to_an_impossible_id(client: httpx.Client, method: str, message_id: str) -> None:
    response = client.request(method, f"/messages/{message_id}", json={"message": "hi"})
    assert_answer(response, (422,))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("limit=0", (422,), id="limit=0"),
        pytest.param("limit=1", (200,), id="limit=1"),
        pytest.param("limit=500", (200,), id="limit=500"),
        pytest.param("limit=501", (422,), id="limit=501"),
        pytest.param("limit=-1", (422,), id="limit=-1"),
        pytest.param("limit=-0", (422,), id="limit=-0"),
        pytest.param("limit=00001", (200,), id="limit=00001"),
        pytest.param("limit=1.0", (200, 422), id="limit=1.0"),
        pytest.param(f"limit={2**64}", (422,), id="limit=2^64"),
        pytest.param("limit=1e400", (422,), id="limit=1e400"),
        pytest.param("limit=", (422,), id="limit-empty"),
        pytest.param("limit=abc", (422,), id="limit=abc"),
        pytest.param("limit=1&limit=2", (200, 422), id="limit-twice"),
        pytest.param("limit=%00", (422,), id="limit=NUL"),
        pytest.param("limit=1%00", (422,), id="limit=1NUL"),
        pytest.param("x%00=1", (200,), id="NUL-in-name"),
        pytest.param("before=0", (422,), id="before=0"),
        pytest.param("before=1", (200,), id="before=1"),
        pytest.param(f"before={MAX_ID}", (200,), id="before=2^63-1"),
        pytest.param(f"before={MAX_ID + 1}", (422,), id="before=2^63"),
        pytest.param(f"before={2**64}", (422,), id="before=2^64"),
        pytest.param("before=1e400", (422,), id="before=1e400"),
        pytest.param("before=-0", (422,), id="before=-0"),
        pytest.param("before=null", (422,), id="before=null"),
        pytest.param("before=", (422,), id="before-empty"),
        pytest.param("before=1%00", (422,), id="before=1NUL"),
    ],
)
def test_list_query(client: httpx.Client, query: str, expected: Sequence[int]) -> None:
    assert_answer(client.get(f"/messages?{query}"), expected)


# --- raw requests: paths, headers, framing, request lines -------------------------------------

RAW = [
    # paths (an HTTP client would normalise most of these)
    pytest.param(http1(b"GET /messages/../health/live HTTP/1.1"), FOUND_OR_NOT, id="dot-dot"),
    pytest.param(http1(b"GET //messages HTTP/1.1"), FOUND_OR_NOT, id="double-slash"),
    pytest.param(http1(b"GET /messages/%2e%2e/ HTTP/1.1"), FOUND_OR_NOT, id="encoded-dot-dot"),
    pytest.param(http1(b"GET /messages/1%00 HTTP/1.1"), CLIENT_ERROR, id="encoded-NUL-in-path"),
    pytest.param(http1(b"GET /messages/1\x00 HTTP/1.1"), CLIENT_ERROR, id="raw-NUL-in-path"),
    pytest.param(http1(b"GET /messages?limit=\x00 HTTP/1.1"), CLIENT_ERROR, id="raw-NUL-in-query"),
    pytest.param(http1(b"GET /messages/1%2F2 HTTP/1.1"), (404, 422), id="encoded-slash"),
    pytest.param(http1(b"GET /messages%2F1 HTTP/1.1"), FOUND_OR_NOT, id="encoded-slash-id"),
    pytest.param(http1(b"GET /messages\\1 HTTP/1.1"), (404,), id="backslash"),
    pytest.param(http1(b"GET /messages/1/ HTTP/1.1"), (307, 404), id="trailing-slash"),
    pytest.param(http1(b"GET /messages/" + b"1" * 9000 + b" HTTP/1.1"), CLIENT_ERROR, id="9k-path"),
    pytest.param(http1(b"GET /messages/" + b"a" * 7000 + b" HTTP/1.1"), (422,), id="7k-path"),
    # the docs are for loopback only, however the path is spelled
    pytest.param(http1(b"GET /docs/ HTTP/1.1"), (403, 404), id="docs-slash"),
    pytest.param(http1(b"GET /%6fpenapi.json HTTP/1.1"), (403, 404), id="openapi-encoded"),
    pytest.param(http1(b"GET //openapi.json HTTP/1.1"), (403, 404), id="openapi-double-slash"),
    pytest.param(http1(b"GET /./openapi.json HTTP/1.1"), (403, 404), id="openapi-dot"),
    pytest.param(http1(b"GET /health/../openapi.json HTTP/1.1"), (403, 404), id="openapi-up"),
    pytest.param(
        http1(b"GET /health/..%2Fopenapi.json HTTP/1.1"), (403, 404), id="openapi-encoded-up"
    ),
    pytest.param(http1(b"GET /openapi.json;x HTTP/1.1"), (403, 404), id="openapi-semicolon"),
    pytest.param(http1(b"GET /openapi.JSON HTTP/1.1"), (403, 404), id="openapi-case"),
    pytest.param(
        http1(b"GET https://127.0.0.1/openapi.json HTTP/1.1", host=b"Host: 127.0.0.1"),
        (403, 404),
        id="openapi-absolute-uri",
    ),
    pytest.param(
        http1(b"GET /openapi.json HTTP/1.1", b"X-Forwarded-For: 127.0.0.1", b"X-Real-IP: ::1"),
        (403, 404),
        id="openapi-forwarded-for",
    ),
    # header floods
    pytest.param(
        http1(b"GET /messages/1 HTTP/1.1", *(b"X-Hostile-%d: v" % n for n in range(100))),
        FOUND_OR_NOT,
        id="100-headers",
    ),
    pytest.param(
        http1(b"GET /messages/1 HTTP/1.1", b"X-Big: " + b"a" * 16 * 1024),
        CLIENT_ERROR,
        id="16k-header",
    ),
    pytest.param(
        http1(b"GET /messages/1 HTTP/1.1", b"Cookie: a=" + b"a" * 16 * 1024),
        CLIENT_ERROR,
        id="16k-cookie",
    ),
    pytest.param(
        http1(b"GET /messages/1 HTTP/1.1", b"X-A: a\x00b"), CLIENT_ERROR, id="NUL-in-header"
    ),
    pytest.param(
        http1(b"GET /messages/1 HTTP/1.1", b"X-A: a", b" folded"), CLIENT_ERROR, id="obs-fold"
    ),
    pytest.param(
        http1(b"GET /messages/1 HTTP/1.1", b"X-A: \xc3\xa9\xff\xfe"),
        FOUND_OR_NOT,
        id="8-bit-header",
    ),
    # Host
    pytest.param(http1(host=b"Host: bad host/\\x"), CLIENT_ERROR, id="bad-host"),
    pytest.param(http1(host=b"Host: .."), CLIENT_ERROR, id="dot-dot-host"),
    pytest.param(http1(host=b"Host: "), CLIENT_ERROR, id="empty-host"),
    pytest.param(http1(host=b""), CLIENT_ERROR, id="no-host"),
    pytest.param(http1(b"GET /messages/1 HTTP/1.1", b"Host: b"), CLIENT_ERROR, id="two-hosts"),
    pytest.param(http1(host=b"Host: evil.example"), FOUND_OR_NOT, id="other-host"),
    pytest.param(http1(host=b"Host: " + b"a" * 5000), FOUND_OR_NOT, id="5k-host"),
    # body framing
    pytest.param(
        post_raw(b"Content-Length: 5", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n"),
        CLIENT_ERROR,
        id="TE-and-CL",
    ),
    pytest.param(
        post_raw(b"Content-Length: 2", b"Content-Length: 3", body=b"{}"),
        CLIENT_ERROR,
        id="two-CL",
    ),
    pytest.param(post_raw(b"Content-Length: -1", body=b"{}"), CLIENT_ERROR, id="negative-CL"),
    pytest.param(post_raw(b"Content-Length: 2x", body=b"{}"), CLIENT_ERROR, id="junk-CL"),
    pytest.param(post_raw(b"Content-Length: " + b"9" * 23, body=b"{}"), CLIENT_ERROR, id="huge-CL"),
    pytest.param(post_raw(b"Transfer-Encoding: gzip"), CLIENT_ERROR, id="TE-gzip"),
    pytest.param(
        post_raw(b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n"),
        CLIENT_ERROR,
        id="TE-twice",
    ),
    pytest.param(
        post_raw(b"Transfer-Encoding : chunked", body=b"0\r\n\r\n"),
        CLIENT_ERROR,
        id="TE-space-before-colon",
    ),
    pytest.param(
        post_raw(b"Transfer-Encoding: chunked", body=b"zz\r\nabc\r\n0\r\n\r\n"),
        CLIENT_ERROR,
        id="bad-chunk-size",
    ),
    pytest.param(
        post_raw(
            b"Transfer-Encoding: chunked", body=b'5\r\n{"mes\r\nc\r\nsage": 1234}\r\n0\r\n\r\n'
        ),
        (422,),
        id="chunked",
    ),
    pytest.param(
        post_raw(
            b"Transfer-Encoding: chunked",
            body=b"%x\r\n{" % 70_000 + b" " * 69_999 + b"\r\n0\r\n\r\n",
        ),
        (413,),  # above client_max_body_size (64k), with no Content-Length to tell
        id="chunked-70k",
    ),
    pytest.param(
        post_raw(b"Content-Length: 1048576", b"Expect: 100-continue"), (413,), id="expect-1-MB"
    ),
    pytest.param(
        post_raw(b"Content-Encoding: gzip", b"Content-Length: 2", body=b"{}"),
        CLIENT_ERROR,
        id="content-encoding-gzip",
    ),
    # request lines
    pytest.param(b"HELLO\r\n\r\n", CLIENT_ERROR, id="garbage"),
    pytest.param(http1(b"get /messages/1 HTTP/1.1"), CLIENT_ERROR, id="lower-case-method"),
    pytest.param(http1(b"GET /messages/1 2 HTTP/1.1"), CLIENT_ERROR, id="space-in-path"),
    pytest.param(http1(b"GET /messages/1 HTTP/2.0"), CLIENT_ERROR, id="HTTP/2.0-line"),
    pytest.param(http1(b"GET /messages/1 HTTP/9.9"), CLIENT_ERROR, id="HTTP/9.9"),
    pytest.param(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", CLIENT_ERROR, id="h2-preface"),
    pytest.param(http1(b"OPTIONS * HTTP/1.1"), CLIENT_ERROR, id="OPTIONS-star"),
    pytest.param(http1(b"CONNECT 127.0.0.1:5432 HTTP/1.1"), CLIENT_ERROR, id="CONNECT"),
    pytest.param(
        http1(b"GET http://evil.example/messages/1 HTTP/1.1"), FOUND_OR_NOT, id="absolute-uri"
    ),
]


@pytest.mark.parametrize(("data", "expected"), RAW)
def test_raw_request(
    address: str,
    setting: Setting,
    tls_context: ssl.SSLContext,
    data: bytes,
    expected: Sequence[int],
) -> None:
    response = send_raw(address, int(setting("nginx_https_port")), tls_context, data)
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


# --- schemathesis (last: the longest) ---------------------------------------------------------


def with_edge_responses(schema: dict[str, Any]) -> dict[str, Any]:
    """The app's schema plus what nginx adds in front of it: 413 to an operation with a body."""
    schema = copy.deepcopy(schema)
    too_large = {
        "description": "The body is larger than nginx's client_max_body_size",
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/ErrorMessage"}}},
    }
    for operations in schema["paths"].values():
        for operation in operations.values():
            if "requestBody" in operation:
                operation["responses"].setdefault("413", too_large)
    return schema


def trusted_certificates(address: str, port: int, tls_context: ssl.SSLContext) -> str:
    """What `tls_context` trusts, as PEM: its CAs, and the host's certificate once it verified
    (a self-signed one is no CA, so get_ca_certs leaves it out)."""
    with (
        socket.create_connection((address, port), timeout=10) as sock,
        tls_context.wrap_socket(sock, server_hostname=address) as tls,
    ):
        verified = tls.getpeercert(binary_form=True)
    certificates = [*tls_context.get_ca_certs(binary_form=True), verified]
    return "".join(ssl.DER_cert_to_PEM_cert(der) for der in certificates if der)


def schemathesis_report(output: str) -> str:
    """The failures part of the CLI's output, with hints for the usual outside causes."""
    start = output.find("\n====")  # the ERRORS or FAILURES heading, after the phases
    report = output[start + 1 :] if start >= 0 else output
    hints = []
    if "Received: 429" in output:
        hints.append("429: the pacing failed, or another client from this address spent the budget")
    if "database unavailable" in output:
        hints.append("503 database unavailable: was the database restarted (a deploy, a test)?")
    return "\n".join([*hints, report[-30_000:]])


def test_schemathesis_finds_nothing(
    openapi: dict[str, Any],
    address: str,
    setting: Setting,
    page_url: str,
    tls_context: ssl.SSLContext,
    tmp_path: Path,
) -> None:
    schema = tmp_path / "openapi.json"
    schema.write_text(json.dumps(with_edge_responses(openapi)))
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    ca_bundle = tmp_path / "ca.pem"
    ca_bundle.write_text(
        trusted_certificates(address, int(setting("nginx_https_port")), tls_context)
    )
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        f"--config-file={config}",
        "--no-color",
        "run",
        str(schema),
        f"--url={page_url}",
        "--checks=all",
        f"--max-examples={SCHEMATHESIS_EXAMPLES}",
        f"--rate-limit={SCHEMATHESIS_RATE}",
        "--workers=1",
        f"--tls-verify={ca_bundle}",
        "--request-timeout=10",
        "--generation-database=none",  # no .hypothesis directory
    ]
    try:
        result = subprocess.run(
            command, cwd=tmp_path, capture_output=True, text=True, timeout=SCHEMATHESIS_DEADLINE
        )
    except subprocess.TimeoutExpired as expired:
        output = expired.stdout.decode() if isinstance(expired.stdout, bytes) else expired.stdout
        pytest.fail(f"schemathesis ran over {SCHEMATHESIS_DEADLINE} s:\n{(output or '')[-5000:]}")
    assert result.returncode == 0, schemathesis_report(result.stdout + result.stderr)
