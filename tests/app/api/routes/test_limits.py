"""``GET /limits`` announces the settings' limits (the page reads it)."""

import httpx
from tests.app.helpers import MAX_LENGTH


def test_limits_answer_the_settings(client: httpx.Client) -> None:
    response = client.get("/limits")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"message_max_length": MAX_LENGTH}
    # Cached briefly: they change only with a restart.
    assert response.headers["cache-control"] == "public, max-age=60"


def test_limits_are_the_ones_enforced(client: httpx.Client) -> None:
    longest = client.get("/limits").json()["message_max_length"]
    assert client.post("/messages", json={"message": "x" * longest}).status_code == 201
    response = client.post("/messages", json={"message": "x" * (longest + 1)})
    assert response.status_code == 422
    assert f"at most {longest} characters" in response.json()["detail"][0]["msg"]


def test_openapi_documents_the_limits(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    answer = spec["paths"]["/limits"]["get"]["responses"]["200"]["content"]["application/json"]
    assert answer["schema"] == {"$ref": "#/components/schemas/Limits"}
    limits = spec["components"]["schemas"]["Limits"]
    assert limits["properties"]["message_max_length"]["type"] == "integer"
    assert limits["required"] == ["message_max_length"]
