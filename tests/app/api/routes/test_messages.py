"""CRUD, pagination and validation over real HTTP."""

from typing import Any

import httpx
import pytest
from tests.app.helpers import MAX_LENGTH, assert_json_error, create

from models import MAX_ID


@pytest.mark.usefixtures("empty_table")
def test_crud_round_trip(client: httpx.Client) -> None:
    response = client.post("/messages", json={"message": "hello"})
    assert response.status_code == 201
    created = response.json()
    assert set(created) == {"id", "message", "created_at", "updated_at"}
    assert created["message"] == "hello"
    assert response.headers["location"] == f"/messages/{created['id']}"

    assert client.get(response.headers["location"]).json() == created

    replaced = client.put(f"/messages/{created['id']}", json={"message": "bye"})
    assert replaced.status_code == 200
    assert replaced.json()["message"] == "bye"
    assert replaced.json()["created_at"] == created["created_at"]
    assert replaced.json()["updated_at"] > created["updated_at"]
    assert client.get(f"/messages/{created['id']}").json() == replaced.json()

    deleted = client.delete(f"/messages/{created['id']}")
    assert deleted.status_code == 204
    assert deleted.content == b""

    for method in ("GET", "PUT", "DELETE"):
        response = client.request(method, f"/messages/{created['id']}", json={"message": "x"})
        detail = assert_json_error(response, 404)
        assert detail == f"message {created['id']} not found"


@pytest.mark.usefixtures("empty_table")
def test_text_is_stored_as_sent(client: httpx.Client) -> None:
    for text in ("  padded  ", "émoji 😀 and 中文", "line\nbreak", "x" * MAX_LENGTH):
        created = create(client, text)
        assert created["message"] == text
        assert client.get(f"/messages/{created['id']}").json()["message"] == text


@pytest.mark.usefixtures("empty_table")
def test_empty_table_gives_empty_last_page(client: httpx.Client) -> None:
    response = client.get("/messages")
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_before": None}


@pytest.mark.usefixtures("empty_table")
def test_pages_newest_first_until_last(client: httpx.Client) -> None:
    ids = [create(client, f"m{i}")["id"] for i in range(7)]
    seen = []
    before = None
    pages = 0
    while True:
        params = {"limit": 3} | ({"before": before} if before else {})
        page = client.get("/messages", params=params).json()
        pages += 1
        seen += [item["id"] for item in page["items"]]
        before = page["next_before"]
        if before is None:
            break
        assert before == page["items"][-1]["id"]
    assert pages == 3
    assert seen == sorted(ids, reverse=True)


@pytest.mark.usefixtures("empty_table")
def test_exact_multiple_of_limit(client: httpx.Client) -> None:
    for i in range(4):
        create(client, f"m{i}")
    first = client.get("/messages", params={"limit": 2}).json()
    assert [m["id"] for m in first["items"]] == [4, 3]
    assert first["next_before"] == 3
    second = client.get("/messages", params={"limit": 2, "before": 3}).json()
    assert [m["id"] for m in second["items"]] == [2, 1]
    assert second["next_before"] is None  # no empty extra page

    whole = client.get("/messages", params={"limit": 4}).json()
    assert len(whole["items"]) == 4
    assert whole["next_before"] is None


@pytest.mark.usefixtures("empty_table")
def test_before_bounds_and_limits(client: httpx.Client) -> None:
    for i in range(3):
        create(client, f"m{i}")
    assert client.get("/messages", params={"before": 1}).json() == {
        "items": [],
        "next_before": None,
    }
    page = client.get("/messages", params={"before": MAX_ID}).json()
    assert [m["id"] for m in page["items"]] == [3, 2, 1]
    assert len(client.get("/messages", params={"limit": 1}).json()["items"]) == 1
    assert client.get("/messages", params={"limit": 500}).status_code == 200
    assert len(client.get("/messages").json()["items"]) == 3  # default limit 50


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 501},
        {"limit": -1},
        {"limit": "99999999999999999999"},
        {"limit": "1e3"},
        {"limit": "abc"},
        {"limit": ""},
        {"before": 0},
        {"before": -1},
        {"before": "abc"},
        {"before": str(MAX_ID + 1)},
        {"before": "1.5"},
    ],
)
def test_bad_query_parameters(client: httpx.Client, params: dict[str, Any]) -> None:
    detail = assert_json_error(client.get("/messages", params=params), 422)
    assert detail[0]["loc"][0] == "query"


@pytest.mark.parametrize("message_id", ["0", "-1", str(MAX_ID + 1), "abc", "1.5", "1e3", " "])
def test_bad_ids(client: httpx.Client, message_id: str) -> None:
    for method in ("GET", "PUT", "DELETE"):
        response = client.request(method, f"/messages/{message_id}", json={"message": "x"})
        assert_json_error(response, 422)


def test_largest_id_is_just_missing(client: httpx.Client) -> None:
    detail = assert_json_error(client.get(f"/messages/{MAX_ID}"), 404)
    assert detail == f"message {MAX_ID} not found"
    assert_json_error(client.put(f"/messages/{MAX_ID}", json={"message": "x"}), 404)
    assert_json_error(client.delete(f"/messages/{MAX_ID}"), 404)


BAD_BODIES = {
    "empty": b'{"message": ""}',
    "whitespace only": b'{"message": " \\t\\n "}',
    "one too long": b'{"message": "' + b"x" * (MAX_LENGTH + 1) + b'"}',
    "NUL character": b'{"message": "a\\u0000b"}',
    "lone surrogate": b'{"message": "a\\ud800b"}',
    "lone low surrogate": b'{"message": "\\udc00"}',
    "number": b'{"message": 42}',
    "null": b'{"message": null}',
    "list": b'{"message": ["a"]}',
    "extra field": b'{"message": "a", "author": "me"}',
    "missing field": b"{}",
    "not an object": b'["a"]',
    "malformed JSON": b'{"message": "a"',
    "trailing garbage": b'{"message": "a"} x',
    "invalid UTF-8": b'{"message": "\xff"}',
}


@pytest.mark.usefixtures("empty_table")
@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_bodies_are_refused(client: httpx.Client, body: bytes, db_count: Any) -> None:
    target = create(client, "original")
    headers = {"content-type": "application/json"}
    for method, url in (("POST", "/messages"), ("PUT", f"/messages/{target['id']}")):
        response = client.request(method, url, content=body, headers=headers)
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"] == "application/json"
        assert response.json()["detail"]
    assert db_count() == 1
    assert client.get(f"/messages/{target['id']}").json()["message"] == "original"


@pytest.mark.usefixtures("empty_table")
def test_validation_messages_say_what_is_wrong(client: httpx.Client) -> None:
    def problem(text: Any) -> str:
        detail = assert_json_error(client.post("/messages", json={"message": text}), 422)
        assert detail[0]["loc"] == ["body", "message"]
        return str(detail[0]["msg"])

    assert "blank" in problem("   ")
    assert f"at most {MAX_LENGTH}" in problem("y" * (MAX_LENGTH + 1))
    assert "NUL" in problem("a\x00")
    assert "string" in problem(1)


@pytest.mark.parametrize(
    "headers, content, status",
    [
        ({"content-type": "text/plain"}, b'{"message": "a"}', 415),
        ({"content-type": "application/x-www-form-urlencoded"}, b"message=a", 415),
        ({}, b'{"message": "a"}', 415),  # no content type at all
        ({"content-type": "application/json"}, b"", 422),  # no body
        ({"content-type": "application/json; charset=utf-8"}, b'{"message": "a"}', 201),
    ],
    ids=["text/plain", "form", "no content type", "no body", "json with charset"],
)
@pytest.mark.usefixtures("empty_table")
def test_only_json_bodies_are_accepted(
    client: httpx.Client, headers: dict[str, str], content: bytes, status: int
) -> None:
    target = create(client, "original")
    for method, url in (("POST", "/messages"), ("PUT", f"/messages/{target['id']}")):
        response = client.request(method, url, content=content, headers=headers)
        expected = 200 if status == 201 and method == "PUT" else status
        assert response.status_code == expected, response.text
        assert response.headers["content-type"] == "application/json"
        if status == 415:
            assert response.json() == {"detail": "Content-Type must be application/json"}
