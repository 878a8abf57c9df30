"""The hand-made hostile cases of test_hostile.py, as data: bodies, message ids, list queries
and raw requests, each with the statuses a correct answer may have.

Bounds the app declares are placeholders ({max_id}, {max_page}, ...): the tests fill them in
from the deployed schema (hostcheck.AppLimits.fill), so no limit of the app is repeated here.
"""

import json

import pytest
from rawhttp import http1

VALID = "valid"  # the input is acceptable: 201 to a POST, 200 to a PUT
NOT_JSON = (400, 415, 422)  # a body that is not (UTF-8) JSON: 400 and 422 are both fair
CLIENT_ERROR = tuple(status for status in range(400, 500) if status != 429)
FOUND_OR_NOT = (200, 404)  # a valid id that may or may not exist


def post_raw(*headers: bytes, body: bytes = b"") -> bytes:
    """A POST with the API key ("{key}": test_hostile's send_raw fills it in)."""
    return http1(
        b"POST /messages HTTP/1.1",
        b"Content-Type: application/json",
        b"Authorization: Bearer {key}",
        *headers,
        body=body,
    )


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


# --- numbers in the path and the query ------------------------------------------------------

# GET /messages/{id}
MESSAGE_IDS = [
    pytest.param("{max_id}", FOUND_OR_NOT, id="max-id"),
    pytest.param("{max_id_plus_1}", (422,), id="max-id+1"),
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
]

# PUT and DELETE /messages/{id}: never a valid id
IMPOSSIBLE_IDS = [pytest.param("{max_id_plus_1}", id="max-id+1"), "0", "-0", "1e400"]

# GET /messages?... The `limit` and the `before` rows mirror each other on purpose (the same
# tricks on both parameters): a table of cases reads better than a loop that makes them.
QUERIES = [
    pytest.param("limit=0", (422,), id="limit=0"),
    pytest.param("limit=1", (200,), id="limit=1"),
    pytest.param("limit={max_page}", (200,), id="limit=max"),
    pytest.param("limit={max_page_plus_1}", (422,), id="limit=max+1"),
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
    pytest.param("before={max_id}", (200,), id="before=max-id"),
    pytest.param("before={max_id_plus_1}", (422,), id="before=max-id+1"),
    pytest.param(f"before={2**64}", (422,), id="before=2^64"),
    pytest.param("before=1e400", (422,), id="before=1e400"),
    pytest.param("before=-0", (422,), id="before=-0"),
    pytest.param("before=null", (422,), id="before=null"),
    pytest.param("before=", (422,), id="before-empty"),
    pytest.param("before=1%00", (422,), id="before=1NUL"),
]


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
        (403, 404, 421),
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
    # a name this site does not answer to: misdirected (test_edge.py checks the details)
    pytest.param(http1(host=b"Host: evil.example"), (421,), id="other-host"),
    pytest.param(http1(host=b"Host: " + b"a" * 5000), (421,), id="5k-host"),
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
    pytest.param(http1(b"GET http://evil.example/messages/1 HTTP/1.1"), (421,), id="absolute-uri"),
]
