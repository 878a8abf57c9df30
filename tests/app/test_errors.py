"""Every error is answered in JSON (errors.py), over real HTTP and in process."""

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.app.helpers import assert_json_error


def test_every_client_error_has_a_json_body(client: httpx.Client) -> None:
    cases = [
        client.get("/nowhere"),
        client.post("/health/live"),
        client.patch("/messages/1", json={"message": "a"}),
        client.get("/messages/abc"),
        client.post("/messages", content=b"{", headers={"content-type": "application/json"}),
    ]
    for response in cases:
        assert 400 <= response.status_code < 500
        assert response.headers["content-type"] == "application/json"
        assert "detail" in response.json()


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/messages", "GET, POST"),
        ("PATCH", "/messages/1", "DELETE, GET, PUT"),
        ("POST", "/messages/1", "DELETE, GET, PUT"),
        ("DELETE", "/health/live", "GET"),
        ("POST", "/limits", "GET"),
    ],
)
def test_a_wrong_method_is_405_listing_every_method_of_the_path(
    client: httpx.Client, method: str, path: str, allowed: str
) -> None:
    response = client.request(method, path)
    assert_json_error(response, 405)
    assert response.headers["allow"] == allowed


def test_data_error_is_422(inprocess: TestClient) -> None:
    response = inprocess.get("/test/data-error")
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["type"] == "database_data_error"
    assert "invalid input syntax for type integer" in problem["msg"]
    assert inprocess.get("/messages").status_code == 200  # the connection is still fine


def test_unexpected_error_is_500_without_details(inprocess: TestClient) -> None:
    response = inprocess.get("/test/bug")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error"}
