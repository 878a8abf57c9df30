"""API keys (api/deps.py, core/security.py): writes need a valid key, reads are public unless
PUBLIC_READS is false, a refusal is a 401 in JSON with WWW-Authenticate and changes nothing,
and the log names the client and the key (never the key itself)."""

from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.app.harness import API_KEY, AUTH, REVOKED_API_KEY, AppServer, PostgresServer, digest
from tests.app.helpers import create

from core.config import Settings
from core.security import KeyRing

WRONG_KEY = "wrong-" + API_KEY[6:]
REFUSED = {
    "no key": {},
    "a wrong key": {"Authorization": f"Bearer {WRONG_KEY}"},
    "a revoked key": {"Authorization": f"Bearer {REVOKED_API_KEY}"},
    "another scheme": {"Authorization": f"Basic {API_KEY}"},
    "no key after the scheme": {"Authorization": "Bearer"},
}


@pytest.fixture()
def anonymous(app_server: AppServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=app_server.base_url, timeout=10) as http:
        yield http


def table(postgres: PostgresServer) -> list[tuple[int, str]]:
    conn = postgres.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id, message FROM messages ORDER BY id")
            return list(cur.fetchall())
    finally:
        conn.close()


def test_the_key_ring_knows_keys_only_by_their_digests() -> None:
    keys = KeyRing(
        Settings(
            database_user="u",
            database_password="p",
            database_host="h",
            database_name="d",
            api_key_digests={"alice": digest("a" * 40), "bob": digest("b" * 40)},
            revoked_api_key_digests={"carol": digest("c" * 40)},
        )  # fmt: skip
    )
    assert keys.identify("a" * 40).state == "valid"
    assert keys.identify("b" * 40).name == "bob"
    assert (keys.identify("c" * 40).state, keys.identify("c" * 40).name) == ("revoked", "carol")
    assert (keys.identify("a" * 39).state, keys.identify("a" * 39).name) == ("unknown", None)
    assert keys.identify(digest("a" * 40)).state == "unknown"  # the digest is no key


@pytest.mark.parametrize("headers", REFUSED.values(), ids=REFUSED.keys())
def test_every_write_without_a_valid_key_is_refused_and_changes_nothing(
    client: httpx.Client,
    anonymous: httpx.Client,
    postgres: PostgresServer,
    headers: dict[str, str],
) -> None:
    target = create(client, "kept as it is")
    before = table(postgres)
    for method, path, body in [
        ("POST", "/messages", {"message": "not written"}),
        ("PUT", f"/messages/{target['id']}", {"message": "not replaced"}),
        ("DELETE", f"/messages/{target['id']}", None),
    ]:
        response = anonymous.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (method, response.text)
        assert response.headers["content-type"] == "application/json"
        assert response.headers["www-authenticate"].startswith('Bearer realm="messages"')
        assert isinstance(response.json()["detail"], str)
    assert table(postgres) == before


def test_a_wrong_key_is_told_apart_from_a_missing_one(anonymous: httpx.Client) -> None:
    missing = anonymous.post("/messages", json={"message": "x"})
    wrong = anonymous.post("/messages", json={"message": "x"}, headers=REFUSED["a wrong key"])
    assert "error=" not in missing.headers["www-authenticate"]
    assert wrong.headers["www-authenticate"].endswith('error="invalid_token"')


def test_reads_are_public_but_a_given_key_must_be_valid(
    client: httpx.Client, anonymous: httpx.Client
) -> None:
    created = create(client, "anyone may read this")
    assert anonymous.get(f"/messages/{created['id']}").status_code == 200
    assert anonymous.get("/messages").status_code == 200
    assert client.get("/messages").status_code == 200
    # A read with a key skips nginx's cache: a made-up key must not.
    wrong = anonymous.get("/messages", headers=REFUSED["a wrong key"])
    assert wrong.status_code == 401, wrong.text


def test_reads_need_a_key_when_public_reads_is_off(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(public_reads=False)
    with TestClient(app) as anonymous, TestClient(app, headers=AUTH) as keyed:
        for path in ("/messages", "/messages/1"):
            response = anonymous.get(path)
            assert response.status_code == 401, response.text
            assert response.headers["www-authenticate"].startswith("Bearer")
        assert keyed.get("/messages").status_code == 200
        assert anonymous.get("/health/live").status_code == 200
        assert anonymous.get("/limits").status_code == 200


def test_refusals_are_logged_with_the_client_and_key_name_never_the_key(
    app_server: AppServer, anonymous: httpx.Client
) -> None:
    for headers in REFUSED.values():
        anonymous.post("/messages", json={"message": "x"}, headers=headers)
    log = app_server.log()
    assert "POST /messages from 127.0.0.1: no API key" in log
    assert "POST /messages from 127.0.0.1: an unknown API key" in log
    assert "POST /messages from 127.0.0.1: the revoked API key 'old-laptop'" in log
    for key in (API_KEY, WRONG_KEY, REVOKED_API_KEY, digest(API_KEY)):
        leaked = key in log  # never `key in log` in an assert: pytest would print both
        assert not leaked, "a key is in the app's log"


def test_the_schema_declares_the_key_on_writes_only(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["APIKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key the server knows: `Authorization: Bearer <key>`.",
    }
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            writes = path.startswith("/messages") and method in ("post", "put", "delete")
            assert ("security" in operation) == writes, (method, path)
            if writes:
                assert operation["security"] == [{"APIKey": []}]
                assert "401" in operation["responses"]
