"""Faults on the five-host cluster under a bounded load through the load balancer (three
clients writing and reading, tests/infra/loadgen.py), counting what the clients were told:
every write answered 2xx is in the database afterwards, and every failure is one the test
allows. They stop, kill and start the hosts' containers, like a lost and returning server."""

import ssl
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from deploys import run_playbook
from hostcheck import ApiKeys, wait_for
from loadgen import Load, background_load
from members import RUNNING, Cluster, container, docker, leader, roles

pytestmark = [pytest.mark.destructive, pytest.mark.usefixtures("healthy")]

# A failover: the leader's key expires in etcd (postgresql_patroni_ttl, 20 s), the replica
# is promoted, and the app's next connection finds it.
WRITES_BACK_WITHIN = 30
# A returning member: its host boots, Patroni rewinds and restarts its PostgreSQL.
REJOINS_WITHIN = 120


def failures(load: Load) -> list[tuple[float, str, str]]:
    return [answer for answer in load.answers if not answer[2].startswith("2")]


def writes_again(writer: httpx.Client) -> bool:
    try:
        created = writer.post("/messages", json={"message": "after the fault"})
    except httpx.HTTPError:
        return False
    return created.status_code == 201


@pytest.fixture
def returns(cluster: Cluster) -> Iterator[list[str]]:
    """The hosts a test stops: started again afterwards, whatever happened."""
    stopped: list[str] = []
    yield stopped
    for name in stopped:
        docker("start", container(name))


def rejoined(cluster: Cluster, name: str, ask: str) -> bool:
    role, state = roles(cluster, ask).get(name, ("", ""))
    return role in {"replica", "sync_standby"} and state in RUNNING


def test_a_killed_leader_is_replaced_and_no_acknowledged_write_is_lost(
    cluster: Cluster,
    page_url: str,
    tls_context: ssl.SSLContext,
    api_keys: ApiKeys,
    writer: httpx.Client,
    returns: list[str],
) -> None:
    old = leader(cluster)
    assert old, roles(cluster)
    survivor = next(name for name in cluster.group("db") if name != old)
    with background_load(page_url, tls_context, api_keys.valid, seconds=180) as (load, started):
        time.sleep(5)
        returns.append(old)
        docker("kill", container(old))
        back = wait_for(lambda: writes_again(writer), WRITES_BACK_WITHIN + 30, step=0.5)
        time.sleep(5)
    assert back is not None and back <= WRITES_BACK_WITHIN, f"writes back after {back} s"
    assert leader(cluster, survivor) == survivor
    # What the clients were told while the leader was gone: 503 (database unavailable).
    assert {outcome for _, _, outcome in failures(load)} <= {"503"}, failures(load)
    assert load.lost_writes(cluster.hosts[survivor]) == []

    docker("start", container(old))
    returns.remove(old)
    took = wait_for(lambda: rejoined(cluster, old, survivor), REJOINS_WITHIN, step=2)
    assert took is not None, f"{old} did not rejoin: {roles(cluster, survivor)}"


def test_a_switchover_under_load_costs_at_most_5_seconds_of_503s(
    cluster: Cluster,
    inventory: str,
    page_url: str,
    tls_context: ssl.SSLContext,
    api_keys: ApiKeys,
) -> None:
    old = leader(cluster)
    assert old, roles(cluster)
    new = next(name for name in cluster.group("db") if name != old)
    with background_load(page_url, tls_context, api_keys.valid, seconds=180) as (load, _):
        time.sleep(3)
        run = run_playbook(inventory, "switchover.yml")
        time.sleep(3)
    assert run.returncode == 0, run.stdout[-3000:]
    assert leader(cluster, new) == new
    assert rejoined(cluster, old, new), roles(cluster, new)
    failed = failures(load)
    assert {outcome for _, _, outcome in failed} <= {"503"}, failed
    if failed:
        assert failed[-1][0] - failed[0][0] <= 5, failed
    assert load.lost_writes(cluster.hosts[new]) == []


def booted(host: Any) -> bool:
    """The host takes ssh logins and has finished booting."""
    try:
        return bool(host.run("systemctl is-system-running --wait").rc in (0, 1))
    except RuntimeError:  # ssh refused: sshd is not up yet
        return False


def connections_from(host: Any, source: str) -> int:
    """Established connections from `source` to the app's instances on the host (nginx
    keeps its connections to an instance it sends requests to)."""
    lines = host.check_output("ss -Htn state established '( sport >= :8001 and sport <= :8099 )'")
    return sum(1 for line in lines.splitlines() if f" {source}:" in f" {line.split()[-1]}")


def test_a_stopped_app_host_fails_no_read_and_rejoins_the_pool(
    cluster: Cluster,
    page_url: str,
    tls_context: ssl.SSLContext,
    api_keys: ApiKeys,
    returns: list[str],
) -> None:
    """Its host stopped (cleanly: its instances finish what they serve) under the load: no
    GET or PUT fails (nginx sends them to the other host); a POST fails only when it was
    sent to the stopping host (nginx does not resend it). Started again, it serves within
    seconds."""
    name = cluster.group("app")[0]
    with background_load(page_url, tls_context, api_keys.valid, seconds=180) as (load, _):
        time.sleep(3)
        returns.append(name)
        docker("stop", container(name))
        time.sleep(10)
        docker("start", container(name))
        returns.remove(name)
        host = cluster.hosts[name]
        assert wait_for(lambda: booted(host), 60, step=1)
        lb = cluster.addresses[cluster.group("web")[0]]
        back = wait_for(lambda: connections_from(host, lb) > 0, 30, step=1)
    assert back is not None, f"{name} got no request within 30 s of its return"
    failed = failures(load)
    assert [f for f in failed if f[1] != "POST"] == [], failed
    assert len(failed) <= 3, failed
    assert load.lost_writes(cluster.hosts[leader(cluster) or cluster.group("db")[0]]) == []
