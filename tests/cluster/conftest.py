"""Fixtures of the cluster checks: the hosts of a multi-host inventory, by name and group.

    pytest tests/cluster --ansible-inventory=ansible/inventories/cluster

They are the local five-host cluster's (scripts/e2e.sh runs them): they stop and kill the
hosts' containers. Traffic goes only to hosts whose address is on a local bridge."""

import ssl
import subprocess
from collections.abc import Iterator

import httpx
import pytest
import testinfra
from hostcheck import ApiKeys, host_setting, wait_for
from members import Cluster, roles, whole

LOCAL_NETWORK_PREFIX = "192.168.56."


def ensure_local_test_host(address: str) -> None:
    """Stop unless the address is one of the local test hosts, on a local bridge."""
    route = subprocess.run(["ip", "route", "get", address], capture_output=True, text=True).stdout
    if not address.startswith(LOCAL_NETWORK_PREFIX) or not route or " via " in route:
        pytest.exit(f"{address} is not a local test host that is up: run make up TOPOLOGY=cluster")


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Cluster:
    inventory = str(request.config.getoption("ansible_inventory"))
    first = testinfra.get_host(f"ansible://all?ansible_inventory={inventory}")
    groups: dict[str, list[str]] = first.ansible.get_variables()["groups"]
    hosts, addresses = {}, {}
    for name in groups["all"]:
        host = testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory}", sudo=True)
        addresses[name] = str(host_setting(host, "private_address"))
        ensure_local_test_host(addresses[name])
        hosts[name] = host
    if len(groups.get("db", [])) < 2:
        pytest.exit("the cluster checks need an inventory with two db hosts or more")
    return Cluster(hosts, groups, addresses)


@pytest.fixture(scope="session")
def page_url(cluster: Cluster) -> str:
    return f"https://{cluster.addresses[cluster.group('web')[0]]}"


@pytest.fixture(scope="session")
def tls_context(cluster: Cluster) -> ssl.SSLContext:
    """Trusts the load balancer's self-signed certificate."""
    lb = cluster.lb()
    name = host_setting(lb, "nginx_site_name")
    context = ssl.create_default_context()
    context.load_verify_locations(cadata=lb.file(f"/etc/nginx/tls/{name}.crt").content_string)
    return context


@pytest.fixture(scope="session")
def api_keys(cluster: Cluster) -> ApiKeys:
    return ApiKeys.of(cluster.lb())


@pytest.fixture
def writer(page_url: str, tls_context: ssl.SSLContext, api_keys: ApiKeys) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=page_url, verify=tls_context, timeout=10, headers=api_keys.header()
    ) as client:
        yield client


@pytest.fixture(scope="session")
def inventory(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("ansible_inventory"))


@pytest.fixture
def healthy(cluster: Cluster) -> None:
    """The test starts from a leader and a synchronous replica (an earlier test's returning
    member becomes synchronous once it has caught up)."""
    assert wait_for(lambda: whole(cluster), 60, step=2) is not None, roles(cluster)
