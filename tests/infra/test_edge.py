"""The nginx edge, seen from the controller: redirects, headers, access control, logs, cache,
rate limit, failover. (TLS: test_tls.py.)"""

import concurrent.futures
import json
import ssl
import time
from typing import Any

import httpx
import pytest
from deploys import journal_lines
from hostcheck import AppLimits, Setting, controller_address, on_the_host_curl
from rawhttp import http1, send_raw

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


# Module scope: before the module-scoped fixtures that read the web host (its certificate).
@pytest.fixture(scope="module", autouse=True)
def only_on_web_hosts(groups: set[str]) -> None:
    if "web" not in groups:
        pytest.skip("not a web host")


def assert_security_headers(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.url, name, response.headers)
    assert "frame-ancestors 'none'" in response.headers.get("content-security-policy", "")
    assert response.headers.get("strict-transport-security") == "max-age=63072000"
    assert "nginx/" not in response.headers.get("server", ""), "server_tokens must be off"


# --- redirects -------------------------------------------------------------------------


def canonical_url(setting: Setting) -> str:
    """https:// and the configured name (nginx_server_name), with the port if not 443."""
    name, port = str(setting("nginx_server_name")), int(setting("nginx_https_port"))
    return f"https://{f'[{name}]' if ':' in name else name}" + ("" if port == 443 else f":{port}")


def test_http_redirects_to_https_except_health(web: httpx.Client, setting: Setting) -> None:
    if not setting("nginx_http_redirect"):
        pytest.skip("nginx_http_redirect is off: port 80 serves the site")
    redirect = web.get("/messages?limit=1")
    assert redirect.status_code == 308
    assert redirect.headers["location"] == f"{canonical_url(setting)}/messages?limit=1"
    assert web.get("/").status_code == 308
    for path in ("/health/live", "/health/ready"):
        assert web.get(path).status_code == 200, path


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_another_name_is_misdirected_but_probes_answer(
    web: httpx.Client, https: httpx.Client, setting: Setting, scheme: str
) -> None:
    """A Host this site does not answer to gets 421 (never a redirect to that name); the
    probes answer whatever the name."""
    client = web if scheme == "http" else https
    evil = {"Host": "evil.example"}
    for path in ("/", "/messages", "/docs"):
        response = client.get(path, headers=evil)
        assert response.status_code == 421, (path, response.status_code)
        assert response.json()["detail"].startswith("misdirected request"), response.text
        assert "location" not in response.headers
    assert client.get("/health/live", headers=evil).status_code == 200


def test_the_apps_own_redirects_go_to_the_configured_name(
    https: httpx.Client, setting: Setting
) -> None:
    """The app's slash redirect is built from the name nginx gives it, not the client's."""
    redirect = https.get("/messages/")
    assert redirect.status_code == 307
    assert redirect.headers["location"] == f"{canonical_url(setting)}/messages"


def test_an_unknown_tls_name_is_misdirected(
    address: str, setting: Setting, tls_context: Any
) -> None:
    """SNI names another host (and Host is ours): 421, but for the probes."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    port = int(setting("nginx_https_port"))
    host = f"Host: {setting('nginx_server_name')}".encode()
    for path, expected in (("/messages", 421), ("/health/live", 200)):
        request = http1(f"GET {path} HTTP/1.1".encode(), host=host)
        response = send_raw(address, port, context, request, server_name="evil.example")
        assert response.status_code == expected, (path, response.text)


# --- headers -------------------------------------------------------------------------


def test_security_headers_on_pages_api_and_errors(
    https: httpx.Client, app_limits: AppLimits
) -> None:
    for path, status in [
        ("/", 200),
        ("/messages", 200),
        (f"/messages/{app_limits.max_id}", 404),
        ("/messages/not-a-number", 422),
        ("/docs", 403),
    ]:
        response = https.get(path)
        assert response.status_code == status, (path, response.text)
        assert_security_headers(response)


def test_errors_from_nginx_are_json(https: httpx.Client, writer: httpx.Client) -> None:
    too_large = writer.post("/messages", json={"message": "x" * 200_000})
    assert too_large.status_code == 413
    assert too_large.json() == {"detail": "request body too large"}
    assert_security_headers(too_large)
    forbidden = https.get("/openapi.json")
    assert forbidden.status_code == 403
    assert forbidden.json() == {"detail": "forbidden"}


@pytest.mark.destructive  # it writes
def test_a_message_of_the_maximum_length_fits_the_body_limit(
    writer: httpx.Client, app_limits: AppLimits
) -> None:
    # The longest message the app takes, each character JSON-escaped to 6 bytes (\u00e9).
    body = json.dumps({"message": "\u00e9" * app_limits.message_max_length})
    created = writer.post("/messages", content=body, headers={"content-type": "application/json"})
    assert created.status_code == 201, created.text
    assert writer.delete(created.headers["location"]).status_code == 204


def test_the_limits_are_public_and_match_the_schema(
    https: httpx.Client, app_limits: AppLimits
) -> None:
    # The app's public statement of its limits (for the page), through nginx, agrees with
    # what its schema declares and its validation enforces.
    response = https.get("/limits")
    assert response.status_code == 200, response.text
    assert response.json() == {"message_max_length": app_limits.message_max_length}
    assert_security_headers(response)


# --- access control ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/docs", "/redoc", "/openapi.json", "/docs/assets/swagger-ui.css"]
)
def test_docs_only_from_the_admin_networks(
    host: Any, https: httpx.Client, setting: Setting, path: str
) -> None:
    forbidden = https.get(path)
    assert forbidden.status_code == 403
    assert forbidden.json() == {"detail": "forbidden"}
    if "127.0.0.1" not in setting("nginx_admin_allow"):
        return
    # From the host itself, on the allow-list (by default): what the app answers.
    port = int(setting("nginx_https_port"))
    status = host.check_output(on_the_host_curl(host, port, path, "-o /dev/null -w %{http_code}"))
    assert status == "200"


def test_nginx_logs_every_request_with_the_client_address(
    host: Any, https: httpx.Client, address: str, setting: Setting
) -> None:
    """nginx's access log has the request, with the controller's address; the app logs it
    too only when app_access_log is on. (The app's own log with it on: test_resilience.py's
    test_the_app_sees_each_client_by_its_own_address.)"""
    since = host.check_output("date '+%F %T'")
    marker = f"/messages/{time.time_ns() % 10**15}"
    assert https.get(marker).status_code == 404
    lines: list[str] = []
    for _ in range(20):
        found = host.run("grep -F -- %s /var/log/nginx/access.log", marker)
        # grep: 0 found, 1 not (yet) found, 2 an error (no log, no permission).
        assert found.rc in (0, 1), f"grep failed ({found.rc}): {found.stderr[-300:]}"
        lines = found.stdout.splitlines()
        if lines:
            break
        time.sleep(0.25)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{controller_address(address)} "), lines
    app_lines = journal_lines(host, f"{setting('app_name')}@*", since, marker)
    app_logs = str(setting("app_access_log")).lower() in ("true", "yes", "1")
    assert len(app_lines) == (1 if app_logs else 0), app_lines


# --- cache ---------------------------------------------------------------------------


def test_message_list_is_micro_cached(https: httpx.Client, setting: Setting) -> None:
    if int(setting("nginx_microcache_ttl")) == 0:
        pytest.skip("micro-cache disabled")
    path = f"/messages?limit=3&before={time.time_ns() % 10**15}"  # a key nobody asked for yet
    first, second = https.get(path), https.get(path)
    assert first.headers.get("x-cache-status") == "MISS"
    assert second.headers.get("x-cache-status") == "HIT"
    assert second.json() == first.json()
    assert_security_headers(second)


def test_junk_arguments_do_not_get_past_the_cache(https: httpx.Client, setting: Setting) -> None:
    """The cache key holds only the list's own arguments, normalised: junk arguments and
    leading zeros hit the entry of the plain request."""
    if int(setting("nginx_microcache_ttl")) == 0:
        pytest.skip("micro-cache disabled")
    before = time.time_ns() % 10**15
    plain = https.get(f"/messages?limit=3&before={before}")
    assert plain.headers.get("x-cache-status") == "MISS"
    for variant in (f"limit=3&before={before}&x=1", f"x=2&before=0{before}&limit=03&y"):
        again = https.get(f"/messages?{variant}")
        assert again.headers.get("x-cache-status") == "HIT", variant
        assert again.json() == plain.json()


@pytest.mark.destructive  # it writes
def test_a_writer_sees_its_own_write_in_the_next_list(
    https: httpx.Client, writer: httpx.Client, setting: Setting
) -> None:
    """The list is cached for everyone else, but a request with a key (what a writer sends)
    is never answered from the cache, nor stored in it."""
    if int(setting("nginx_microcache_ttl")) == 0:
        pytest.skip("micro-cache disabled")
    https.get("/messages?limit=5")  # now cached for the TTL
    posted = writer.post("/messages", json={"message": "see me at once"})
    assert posted.status_code == 201
    listed = writer.get("/messages?limit=5")
    assert listed.headers.get("x-cache-status") == "BYPASS"
    assert posted.json()["id"] in [item["id"] for item in listed.json()["items"]]
    assert writer.delete(posted.headers["location"]).status_code == 204


@pytest.mark.destructive  # it writes
def test_errors_and_writes_are_not_cached(https: httpx.Client, writer: httpx.Client) -> None:
    bad = "/messages?limit=0"
    assert https.get(bad).status_code == 422
    assert https.get(bad).headers.get("x-cache-status") != "HIT"
    posted = writer.post("/messages", json={"message": "not cached"})
    assert posted.status_code == 201
    assert posted.headers.get("x-cache-status") in (None, "BYPASS")
    assert writer.delete(posted.headers["location"]).status_code == 204


@pytest.mark.destructive  # it writes
def test_a_single_read_after_put_or_delete_is_never_stale(
    https: httpx.Client, writer: httpx.Client
) -> None:
    location = writer.post("/messages", json={"message": "before"}).headers["location"]
    assert https.get(location).json()["message"] == "before"
    assert writer.put(location, json={"message": "after"}).status_code == 200
    assert https.get(location).json()["message"] == "after"
    assert writer.delete(location).status_code == 204
    assert https.get(location).status_code == 404


def test_static_assets_are_long_lived(https: httpx.Client) -> None:
    page = https.get("/")
    assert page.headers.get("cache-control") == "no-cache"
    assets = [part.split('"')[0] for part in page.text.split('"/static/')[1:]]
    assert assets, "the page references no /static/ asset"
    for asset in assets:
        response = https.get(f"/static/{asset}")
        assert response.status_code == 200, asset
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert_security_headers(response)


# --- load balancing ------------------------------------------------------------------


@pytest.mark.destructive
def test_one_killed_instance_costs_no_failed_get(
    host: Any, https: httpx.Client, writer: httpx.Client, setting: Setting, ports: list[int]
) -> None:
    if len(ports) < 2:
        pytest.skip("a single app instance")
    name = setting("app_name")
    location = writer.post("/messages", json={"message": "failover"}).headers["location"]
    unit = f"{name}@{ports[0]}.service"
    host.check_output("systemctl kill --signal=SIGKILL %s", unit)
    statuses = []
    for _ in range(40):  # paced under the rate limit
        statuses.append(https.get(location).status_code)
        time.sleep(0.06)
    assert statuses == [200] * len(statuses)
    # systemd restarts it (Restart=on-failure).
    for _ in range(50):
        if (
            host.service(unit).is_running
            and host.socket(f"tcp://127.0.0.1:{ports[0]}").is_listening
        ):
            break
        time.sleep(0.1)
    assert host.socket(f"tcp://127.0.0.1:{ports[0]}").is_listening
    writer.delete(location)


# --- rate limit ----------------------------------------------------------------------


@pytest.mark.destructive
@pytest.mark.usefixtures("spends_rate_budget")
def test_a_burst_gets_429_and_never_5xx(
    https: httpx.Client, page_url: str, tls_context: Any
) -> None:
    def get(_: int) -> httpx.Response:
        with httpx.Client(base_url=page_url, verify=tls_context, timeout=10) as client:
            return client.get("/messages/1")

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(get, range(160)))
    statuses = [response.status_code for response in responses]
    assert 429 in statuses
    assert not [status for status in statuses if status >= 500], statuses
    limited = next(response for response in responses if response.status_code == 429)
    assert limited.json() == {"detail": "too many requests"}
    assert_security_headers(limited)
