"""Facts about a deployed host, read from the inventory the deploy used.

Run through `make verify` (any INVENTORY) or `make test` (a fresh local host):
    pytest tests/infra --sudo --hosts=ansible://all --ansible-inventory=INVENTORY
Expected values (ports, names) come from the inventory's variables, falling back
to the roles' defaults, never from values written here.
"""

import ipaddress
import json
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import testinfra
from hostcheck import (
    ApiKeys,
    AppLimits,
    Setting,
    app_ports,
    host_setting,
    inventory_value,
    on_the_host_curl,
)
from loadgen import database_fingerprint

ROOT = Path(__file__).resolve().parents[2]
# Vagrant's private network, where the local host lives: only reachable through a local bridge.
LOCAL_HOST_NETWORK = ipaddress.ip_network("192.168.56.0/24")


def ensure_directly_connected(address: str) -> None:
    """Refuse to send a packet to the local host's network unless it is on a local bridge."""
    try:
        in_local_network = ipaddress.ip_address(address) in LOCAL_HOST_NETWORK
    except ValueError:
        return  # a host name: a real server the user asked to verify
    if not in_local_network:
        return
    route = subprocess.run(
        ["ip", "route", "get", address], capture_output=True, text=True, check=False
    ).stdout
    if not route or " via " in route:
        pytest.exit("the local host is not up: run make up", returncode=1)


# --- a run of the read-only checks changes no data --------------------------------------

FINGERPRINTS = pytest.StashKey[dict[str, dict[str, Any]]]()
CHANGED = pytest.StashKey[list[str]]()


def read_only(config: pytest.Config) -> bool:
    """The checks that change nothing: `make verify` on a real server (-m "not destructive")."""
    return str(config.getoption("markexpr", "")).strip() == "not destructive"


def hosts_of(config: pytest.Config, group: str) -> list[Any]:
    """The hosts of an inventory group, connected as the host under test is."""
    return list(
        testinfra.get_hosts(
            [f"ansible://{group}"],
            ansible_inventory=config.getoption("ansible_inventory"),
            sudo=config.getoption("sudo"),
            force_ansible=config.getoption("force_ansible"),
        )
    )


def fingerprints(config: pytest.Config) -> dict[str, dict[str, Any]]:
    """Per db host, what its app database holds (loadgen.database_fingerprint)."""
    result = {}
    for host in hosts_of(config, "db"):
        variables = host.ansible.get_variables()
        ensure_directly_connected(
            str(variables.get("ansible_host", variables["inventory_hostname"]))
        )
        result[variables["inventory_hostname"]] = database_fingerprint(host)
    return result


def pytest_sessionstart(session: pytest.Session) -> None:
    if read_only(session.config):
        session.config.stash[FINGERPRINTS] = fingerprints(session.config)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = session.config.stash.get(FINGERPRINTS, None)
    if before is None:
        return
    after = fingerprints(session.config)
    changed = [
        f"{name}: {before[name]} -> {after.get(name)}"
        for name in before
        if before[name] != after.get(name)
    ]
    session.config.stash[CHANGED] = changed
    if changed and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    changed = config.stash.get(CHANGED, [])
    if changed:
        terminalreporter.section("the read-only checks changed the database", red=True)
        for line in changed:
            terminalreporter.line(line)


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture
def setting(host: Any) -> Setting:
    return lambda name: host_setting(host, name)


@pytest.fixture(scope="session")
def app_host(request: pytest.FixtureRequest) -> Any:
    """An app host: the host under test's peer in a multi-host inventory."""
    return hosts_of(request.config, "app")[0]


@pytest.fixture(scope="module")
def inventory(request: pytest.FixtureRequest) -> str:
    """The inventory of the hosts under test (--ansible-inventory), for running playbooks."""
    return str(request.config.getoption("ansible_inventory"))


@pytest.fixture(scope="module")
def groups(host: Any) -> set[str]:
    """The inventory groups of the host: db, app, web."""
    return set(host.ansible.get_variables()["group_names"])


@pytest.fixture
def single_host(groups: set[str]) -> None:
    """For the fault tests, staged where one host carries the database, the app and nginx."""
    if not {"db", "app", "web"} <= groups:
        pytest.skip("these faults are staged on a host that carries db, app and web")


@pytest.fixture
def ports(host: Any) -> list[int]:
    """The app instances' ports."""
    return app_ports(host)


@pytest.fixture(scope="module")
def address(host: Any) -> str:
    variables = host.ansible.get_variables()
    value = str(variables.get("ansible_host", variables["inventory_hostname"]))
    ensure_directly_connected(value)
    return value


@pytest.fixture(scope="module")
def web(host: Any, groups: set[str], address: str) -> Iterator[httpx.Client]:
    if "web" not in groups:
        pytest.skip("not a web host")
    port = int(host_setting(host, "nginx_listen_port"))
    with httpx.Client(base_url=f"http://{address}:{port}", timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def tls_context(host: Any) -> ssl.SSLContext:
    """Trusts the system's CAs, and the host's own certificate when it made a self-signed one."""
    context = ssl.create_default_context()
    variables = host.ansible.get_variables()
    if not (
        variables.get("nginx_tls_certificate_path") or variables.get("nginx_tls_certificate_pem")
    ):
        name = host_setting(host, "nginx_site_name")
        context.load_verify_locations(cadata=host.file(f"/etc/nginx/tls/{name}.crt").content_string)
    return context


@pytest.fixture(scope="module")
def page_url(host: Any, groups: set[str], address: str) -> str:
    """The HTTPS base URL of a web host."""
    if "web" not in groups:
        pytest.skip("not a web host")
    port = int(host_setting(host, "nginx_https_port"))
    return f"https://{address}" + ("" if port == 443 else f":{port}")


@pytest.fixture(scope="module")
def https(page_url: str, tls_context: ssl.SSLContext) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=page_url, verify=tls_context, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def api_keys(host: Any) -> ApiKeys:
    return ApiKeys.of(host)


@pytest.fixture(scope="module")
def writer(page_url: str, tls_context: ssl.SSLContext, api_keys: ApiKeys) -> Iterator[httpx.Client]:
    """An HTTPS client that sends a valid API key (``https`` sends none)."""
    with httpx.Client(
        base_url=page_url, verify=tls_context, timeout=10, headers=api_keys.header()
    ) as client:
        yield client


@pytest.fixture(scope="module")
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


def refill_seconds(host: Any) -> float:
    """How long nginx's per-client bucket takes to refill from empty: its burst at its rate."""
    count, unit = str(host_setting(host, "nginx_rate_limit")).split("r/")
    per_second = int(count) / (60 if unit == "m" else 1)
    return int(host_setting(host, "nginx_rate_limit_burst")) / per_second + 0.5


@pytest.fixture
def spends_rate_budget(host: Any) -> Iterator[None]:
    """For a test that may empty this client's request budget at nginx (a burst, a flood):
    afterwards it waits for the bucket to refill, so every test starts with a full budget."""
    yield
    time.sleep(refill_seconds(host))


@pytest.fixture(scope="module")
def openapi(host: Any, groups: set[str]) -> dict[str, Any]:
    """The deployed schema, as the host itself reads it (only loopback may)."""
    if "web" not in groups:
        pytest.skip("not a web host")
    port = int(host_setting(host, "nginx_https_port"))
    schema: dict[str, Any] = json.loads(
        host.check_output(on_the_host_curl(host, port, "/openapi.json"))
    )
    return schema


@pytest.fixture(scope="module")
def app_limits(openapi: dict[str, Any]) -> AppLimits:
    """The id bound, the message length limit and the page size limit the app declares."""
    return AppLimits.from_schema(openapi)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests leave what a person may want to look at (screenshots)."""
    path = ROOT / "test-output"
    path.mkdir(exist_ok=True)
    return path


def env_value(host: Any, path: str, name: str) -> str:
    for line in host.file(path).content_string.splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].strip('"')
    raise AssertionError(f"{name} not in {path}")


@pytest.fixture
def secrets(host: Any, groups: set[str], setting: Setting) -> list[str]:
    """The vault-held values of this app host (never printed): the passwords the deploy put
    on it, and the API keys (of which the host has only the digests)."""
    if "app" not in groups:
        pytest.skip("not an app host")
    config_dir, name = setting("app_config_dir"), setting("app_name")
    return [
        env_value(host, f"{config_dir}/{name}.env", "DATABASE_PASSWORD"),
        env_value(host, f"{config_dir}/{name}-migrate.env", "DATABASE_PASSWORD"),
        *(str(entry["key"]) for entry in inventory_value(host, "app_api_keys") or []),
        str(inventory_value(host, "app_deploy_api_key")),
    ]
