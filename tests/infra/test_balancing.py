"""nginx in front of the instances: least_conn over every instance with passive health checks
(max_fails, fail_timeout), upstream keep-alive below uvicorn's own, and the per-client
connection limit answering 429. (Failover with an instance killed: test_edge.py.)"""

import re
import select
import socket
import ssl
import time
from typing import Any

import httpx
import pytest
from hostcheck import ApiKeys, Setting, app_ports
from rawhttp import http1
from tlsprobe import client_context


# Module scope: before the module-scoped fixtures that read the web host (its certificate).
@pytest.fixture(scope="module", autouse=True)
def only_on_web_hosts(groups: set[str]) -> None:
    if "web" not in groups:
        pytest.skip("not a web host")


def upstream_block(host: Any, site: str) -> list[str]:
    """The directives of the site's upstream block in the configuration nginx runs."""
    config = host.check_output("nginx -T 2>/dev/null")
    block = re.search(rf"^upstream {site}_app {{\n(.*?)^}}", config, re.M | re.S)
    assert block, f"no upstream {site}_app in nginx -T"
    return [line.strip().rstrip(";") for line in block[1].splitlines() if line.strip()]


def test_the_upstream_is_least_conn_with_health_checks_and_keepalive(
    host: Any, groups: set[str], setting: Setting, ports: list[int]
) -> None:
    directives = upstream_block(host, setting("nginx_site_name"))
    health = (
        f"max_fails={setting('nginx_upstream_max_fails')}"
        f" fail_timeout={setting('nginx_upstream_fail_timeout')}"
    )
    servers = [line for line in directives if line.startswith("server ")]
    assert servers and all(line.endswith(f" {health}") for line in servers), servers
    if "app" in groups:  # the instances of this host, every one of them (else: other hosts')
        bind = setting("app_bind_address")
        assert servers == [f"server {bind}:{port} {health}" for port in ports]
    keepalive = [
        f"keepalive {setting('nginx_upstream_keepalive')}",
        f"keepalive_timeout {setting('nginx_upstream_keepalive_timeout')}",
    ]
    assert directives == ["least_conn", *servers, *keepalive]


def test_upstream_connections_are_kept_alive(
    host: Any, https: httpx.Client, setting: Setting, app_host: Any
) -> None:
    """After a few requests nginx holds idle connections to the instances, and gives them up
    before uvicorn would (its keep-alive timeout is shorter than the instances')."""
    for _ in range(4):
        assert https.get("/health/live").status_code == 200
    servers = [
        line.split()[1]
        for line in upstream_block(host, setting("nginx_site_name"))
        if line.startswith("server ")
    ]
    filter_ = " or ".join(f"dst {server}" for server in servers)
    held = host.check_output("ss -Htnp state established '( %s )'", filter_)
    assert '"nginx"' in held, f"no kept-alive connection from nginx to {servers}"
    unit = f"{setting('app_name')}@{app_ports(app_host)[0]}.service"
    exec_start = app_host.check_output("systemctl show -p ExecStart --value %s", unit)
    uvicorn = int(re.search(r"--timeout-keep-alive (\d+)", exec_start)[1])  # type: ignore[index]
    nginx = int(str(setting("nginx_upstream_keepalive_timeout")).removesuffix("s"))
    assert nginx < uvicorn, (nginx, uvicorn)


def test_the_limits_in_force_are_the_settings(host: Any, setting: Setting) -> None:
    """The per-client rate (its burst) and connection limits and the body limit, as the
    running nginx has them (the 429s and 413s themselves: the tests that provoke them)."""
    config = host.check_output("nginx -T 2>/dev/null")
    site = setting("nginx_site_name")
    for zone, rate in (
        ("client_requests", "nginx_rate_limit"),
        ("keyless_writes", "nginx_keyless_rate_limit"),
    ):
        assert re.search(
            rf"limit_req_zone \${site}_(keyless_)?client zone={site}_{zone}:\S+ "
            rf"rate={re.escape(setting(rate))};",
            config,
        ), f"no per-client limit {zone}"
    for zone, burst in (
        ("client_requests", "nginx_rate_limit_burst"),
        ("keyless_writes", "nginx_keyless_rate_limit_burst"),
    ):
        bursts = set(re.findall(rf"limit_req zone={site}_{zone} burst=(\d+) nodelay;", config))
        assert bursts == {str(setting(burst))}, (zone, bursts)
    # Every server, the probes' too, counts connections per client, and every location
    # that proxies to the app (the probes, the API, the docs) limits the rate.
    servers = len(re.findall(r"^    server_tokens off;$", config, re.M))
    connections = re.findall(rf"limit_conn {site}_client_connections (\d+);", config)
    assert connections == [str(setting("nginx_connection_limit"))] * servers, connections
    assert f"limit_conn_zone ${site}_client zone={site}_client_connections:" in config
    for block in re.findall(r"location /health/ \{(.*?)\n    \}", config, re.S):
        assert f"limit_req zone={site}_client_requests" in block, block
    bodies = set(re.findall(r"^\s*client_max_body_size (\S+);", config, re.M)) - {"0"}
    assert bodies == {str(setting("nginx_client_max_body_size"))}, bodies


def hold_a_request(address: str, port: int, context: ssl.SSLContext, key: str) -> ssl.SSLSocket:
    """A connection whose POST (with a valid key: a keyless one is refused at once) has sent
    its headers and promised a body that never comes: nginx counts it while it waits.
    Returns the socket, open."""
    sock = context.wrap_socket(socket.create_connection((address, port), timeout=5))
    head = http1(
        b"POST /messages HTTP/1.1",
        b"Content-Type: application/json",
        b"Authorization: Bearer " + key.encode(),
        b"Content-Length: 1000",
    ).replace(b"{host}", address.encode())
    sock.sendall(head.replace(b"Connection: close\r\n", b""))
    return sock


@pytest.mark.destructive
@pytest.mark.usefixtures("spends_rate_budget")
def test_more_connections_than_the_limit_get_429(
    host: Any, address: str, setting: Setting, api_keys: ApiKeys
) -> None:
    """nginx_connection_limit requests held open at once, then more: those get 429 from the
    connection limit (paced below the rate limit, so not from that)."""
    limit, port = int(setting("nginx_connection_limit")), int(setting("nginx_https_port"))
    logged = host.run("grep -c 'limiting connections by zone' /var/log/nginx/error.log")
    assert logged.rc in (0, 1), logged.stderr
    # TLS 1.2: no session tickets after the handshake, so a readable socket means an answer.
    context, held = client_context(ssl.TLSVersion.TLSv1_2), []
    try:
        for _ in range(limit + 5):
            time.sleep(0.1)  # 10 r/s: under the rate limit
            held.append(hold_a_request(address, port, context, api_keys.valid))
        time.sleep(1)
        # nginx answers a refused one at once; a held one waits for its body.
        readable, _, _ = select.select(held, [], [], 0)
        refused = [sock.recv(4096) for sock in readable]
    finally:
        for sock in held:
            sock.close()
    assert len(refused) >= 5, f"{len(refused)} of {limit + 5} held requests were refused"
    for answer in refused:
        assert answer.startswith(b"HTTP/1.1 429 "), answer[:200]
        assert answer.endswith(b'{"detail":"too many requests"}'), answer[-200:]
    now = host.run("grep -c 'limiting connections by zone' /var/log/nginx/error.log")
    assert int(now.stdout) > int(logged.stdout or 0), "429s not from the connection limit"
