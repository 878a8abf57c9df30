"""Who may do what, through nginx: writes need a valid API key (refused with a JSON 401 that
changes nothing, logged with the client and the key's name), reads need none,
writes without any key are refused at the edge on a stricter budget, and the limits count a
client behind a trusted proxy by its own address (an IPv6 client by its /64).
(Reads with public reads off: test_resilience.py's redeploys; no key in any log:
test_security.py; the app's side: tests/app.)"""

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from deploys import journal_lines
from hostcheck import ApiKeys, AppLimits, Setting, controller_address, inventory_value
from loadgen import psql_json, stored_messages


@pytest.fixture(autouse=True)
def only_on_web_hosts(groups: set[str]) -> None:
    if "web" not in groups:
        pytest.skip("not a web host")


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/json"
    assert isinstance(response.json()["detail"], str)
    assert response.headers["www-authenticate"].startswith("Bearer realm="), response.headers


def test_reads_need_no_key(https: httpx.Client, app_limits: AppLimits) -> None:
    assert https.get("/messages?limit=1").status_code == 200
    assert https.get(f"/messages/{app_limits.max_id}").status_code == 404


@pytest.mark.destructive  # it writes (with the valid key)
def test_every_write_needs_a_valid_key_and_a_refused_one_changes_nothing(
    host: Any,
    https: httpx.Client,
    writer: httpx.Client,
    api_keys: ApiKeys,
    address: str,
    setting: Setting,
) -> None:
    if api_keys.revoked is None:
        pytest.skip("no revoked key in app_api_keys")
    since = host.check_output("date '+%F %T'")
    target = writer.post("/messages", json={"message": "kept as it is"})
    assert target.status_code == 201, target.text
    location, message_id = target.headers["location"], target.json()["id"]
    count = "SELECT count(*) FROM messages"
    before = (stored_messages(host, [message_id]), psql_json(host, count))
    refused = {
        "no key": {},
        "a wrong key": api_keys.header("x" * len(api_keys.valid)),
        "a revoked key": api_keys.header(api_keys.revoked),
    }
    for name, headers in refused.items():
        for method, path, body in [
            ("POST", "/messages", {"message": "not written"}),
            ("PUT", location, {"message": "not replaced"}),
            ("DELETE", location, None),
        ]:
            response = https.request(method, path, json=body, headers=headers)
            assert_refused(response)
            assert ("error=" in response.headers["www-authenticate"]) == (name != "no key"), name
    assert (stored_messages(host, [message_id]), psql_json(host, count)) == before

    # The valid key: as ever.
    assert writer.put(location, json={"message": "replaced"}).json()["message"] == "replaced"
    assert writer.delete(location).status_code == 204

    # The app logged the refusals it saw (nginx refused those without a key) with the
    # client's address, and the revoked key by its name.
    client = controller_address(address)
    lines = journal_lines(host, f"{setting('app_name')}@*", since, "refused ")
    revoked = [line for line in lines if "the revoked API key" in line]
    unknown = [line for line in lines if "an unknown API key" in line]
    assert len(revoked) == 3 and len(unknown) == 3, lines
    assert all(f" from {client}: " in line for line in revoked + unknown), lines
    entries = inventory_value(host, "app_api_keys")
    revoked_name = next(entry["name"] for entry in entries if entry.get("revoked"))
    assert all(line.endswith(f"'{revoked_name}'") for line in revoked), revoked


@pytest.fixture
def spends_keyless_budget(setting: Setting) -> Iterator[None]:
    """Afterwards, wait for this client's budget of writes without a key to refill."""
    yield
    count, unit = str(setting("nginx_keyless_rate_limit")).split("r/")
    per_second = int(count) / (60 if unit == "m" else 1)
    time.sleep(int(setting("nginx_keyless_rate_limit_burst")) / per_second + 0.5)


@pytest.mark.destructive  # it floods
@pytest.mark.usefixtures("spends_keyless_budget")
def test_writes_without_a_key_have_a_stricter_budget(
    https: httpx.Client, writer: httpx.Client, setting: Setting
) -> None:
    burst = int(setting("nginx_keyless_rate_limit_burst"))
    statuses = [
        https.post("/messages", json={"message": "no"}).status_code for _ in range(burst + 6)
    ]
    assert set(statuses) == {401, 429}, statuses
    assert statuses.index(429) <= burst + 2, statuses  # a token may come back meanwhile
    limited = https.post("/messages", json={"message": "no"})
    assert limited.status_code == 429 and limited.json() == {"detail": "too many requests"}
    # The client's other requests have their own budget still.
    assert https.get("/messages?limit=1").status_code == 200
    assert writer.get("/messages?limit=1").status_code == 200


def curl_many(
    host: Any, setting: Setting, batches: list[tuple[str, str, str, int]]
) -> list[list[int]]:
    """For each batch (source, claimed, path, count): `count` GETs of `path` from `source`
    (an address of the host's loopback) claiming to be `claimed` in X-Forwarded-For, one
    after the other; every batch in one command on the host, with no pause between them
    (the rate limit's bucket has no time to refill). Their statuses, batch by batch."""
    port = int(setting("nginx_https_port"))
    name = str(setting("nginx_server_name"))
    base = f"https://{f'[{name}]' if ':' in name else name}:{port}"
    commands, arguments = [], []
    for source, claimed, path, count in batches:
        # curl's -o applies to one URL: each URL gets its own.
        commands.append(
            "curl -sk --connect-to ::127.0.0.1:%s --interface %s -H %s -w '%%{http_code}\\n' "
            + " ".join(["-o /dev/null %s"] * count)
        )
        arguments += [str(port), source, f"X-Forwarded-For: {claimed}", *[base + path] * count]
    out = host.check_output(" && echo - && ".join(commands), *arguments)
    return [[int(status) for status in batch.split()] for batch in out.split("-")]


@pytest.mark.destructive  # it floods, from the host itself, as made-up clients
def test_clients_behind_a_trusted_proxy_count_by_address_ipv6_by_its_64(
    host: Any, setting: Setting
) -> None:
    proxies = [p for p in setting("nginx_trusted_proxies") if str(p).startswith("127.")]
    if not proxies:
        pytest.skip("no trusted proxy on the host's loopback")
    proxy, untrusted = str(proxies[0]).split("/")[0], "127.0.0.3"
    burst = int(setting("nginx_rate_limit_burst"))
    stamp = time.time_ns() % 10**12
    # One IPv6 client empties its budget; another address of the same /64 shares it.
    # An untrusted peer's X-Forwarded-For is not believed: it is counted as itself.
    first, same_64, other_64, spoofer = curl_many(
        host,
        setting,
        [
            (proxy, "2001:db8:1:2::a", "/health/live", burst + 15),
            (proxy, "2001:db8:1:2::b", "/health/live", 5),
            (proxy, "2001:db8:1:3::a", f"/health/live?m={stamp}", 5),
            (untrusted, "2001:db8:1:2::a", f"/health/live?u={stamp}", 5),
        ],
    )
    assert 429 in first and set(first) == {200, 429}, first
    assert same_64.count(429) >= 4, same_64
    assert other_64 == [200] * 5, other_64
    assert spoofer == [200] * 5, spoofer
    # nginx logs each by the address it counted.
    log = host.check_output("grep -aF -- %s /var/log/nginx/access.log", str(stamp)).splitlines()
    assert [line.split()[0] for line in log] == ["2001:db8:1:3::a"] * 5 + [untrusted] * 5, log
