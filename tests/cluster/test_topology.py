"""The five-host cluster as deployed: the service answers through the load balancer, each
host runs what its groups say, PostgreSQL has a leader and a synchronous replica, etcd has
all its members, and the host firewalls let through exactly the tiers' traffic."""

import json
import subprocess
import sys
from typing import Any

import httpx
from hostcheck import host_setting, inventory_value
from members import RUNNING, leader, roles

# Every port a tier serves on the private network (the app's instances: two per host here).
PORTS = [22, 80, 443, 2379, 2380, 5432, 8001, 8002, 8008]


def test_the_api_round_trip_through_the_load_balancer(writer: httpx.Client) -> None:
    assert writer.get("/health/ready").status_code == 200
    created = writer.post("/messages", json={"message": "through the lb"})
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    assert writer.get(location).json()["message"] == "through the lb"
    assert writer.delete(location).status_code == 204


def test_each_host_runs_the_services_of_its_groups(cluster: Any) -> None:
    expected = {
        "web": ["nginx"],
        "app": ["messages@8001", "messages@8002"],
        "db": ["patroni"],
        "etcd": ["etcd"],
    }
    wrong = []
    for name, host in cluster.hosts.items():
        for group, units in expected.items():
            for unit in units:
                service = host.service(unit)
                want = name in cluster.group(group)
                if (service.is_running and service.is_enabled) != want:
                    wrong.append(f"{name}: {unit} running and enabled is not {want}")
        # Debian's own PostgreSQL service never runs a cluster beside Patroni's.
        if name in cluster.group("db"):
            assert host.run("pg_lsclusters --no-header").stdout.strip() == "", name
    assert not wrong, wrong


def test_postgresql_has_a_leader_and_a_synchronous_replica(cluster: Any) -> None:
    seen = roles(cluster)
    assert sorted(seen) == sorted(cluster.group("db")), seen
    assert sorted(role for role, _ in seen.values()) == ["leader", "sync_standby"], seen
    assert all(state in RUNNING for _, state in seen.values()), seen


def test_etcd_has_every_member_healthy(cluster: Any) -> None:
    host = cluster.hosts[cluster.group("etcd")[0]]
    listed = json.loads(host.check_output("ETCDCTL_API=3 etcdctl member list -w json"))
    names = sorted(member["name"] for member in listed["members"])
    assert names == sorted(cluster.group("etcd"))
    endpoints = ",".join(f"http://{cluster.addresses[n]}:2379" for n in cluster.group("etcd"))
    host.check_output("ETCDCTL_API=3 etcdctl --endpoints=%s endpoint health", endpoints)


def allowed(cluster: Any, source: str | None, target: str, port: int) -> bool:
    """The tiers' matrix: who may open a connection to which port of which host (source None:
    the machine running the tests, an outside client)."""

    def among(*groups: str) -> bool:
        return source is not None and any(source in cluster.group(g) for g in groups)

    def serves(group: str) -> bool:
        return target in cluster.group(group)

    return (
        port == 22
        or (port in (80, 443) and serves("web"))
        or (port in (8001, 8002) and serves("app") and among("web"))
        or (port == 5432 and serves("db") and among("app", "db"))
        or (port == 8008 and serves("db") and among("db"))
        or (port == 2379 and serves("etcd") and among("etcd", "db"))
        or (port == 2380 and serves("etcd") and among("etcd"))
    )


PROBE = """
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
def probe(target):
    address, port = target
    try:
        socket.create_connection((address, port), timeout=2).close()
        return "open"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "dropped"
targets = json.loads(sys.argv[1])
with ThreadPoolExecutor(len(targets)) as pool:
    print(json.dumps(list(pool.map(probe, targets))))
"""


def probe_from(host: Any, targets: list[tuple[str, int]]) -> list[str]:
    """Each target as "open", "refused" (nothing listens) or "dropped" (the firewall)."""
    if host is None:
        out = subprocess.run(
            [sys.executable, "-c", PROBE, json.dumps(targets)], capture_output=True, text=True
        ).stdout
        return list(json.loads(out))
    return list(json.loads(host.check_output("python3 -c %s %s", PROBE, json.dumps(targets))))


def test_the_firewalls_let_through_exactly_the_tiers_traffic(cluster: Any) -> None:
    """From every host (and from outside) to every other host's private address and port:
    open where the matrix allows it, dropped everywhere else."""
    differences = []
    for source in [None, *cluster.hosts]:
        targets = [
            (cluster.addresses[target], port)
            for target in cluster.hosts
            if target != source
            for port in PORTS
        ]
        seen = probe_from(cluster.hosts[source] if source else None, targets)
        names = {address: name for name, address in cluster.addresses.items()}
        for (address, port), outcome in zip(targets, seen, strict=True):
            target = names[address]
            want = "open" if allowed(cluster, source, target, port) else "dropped"
            if outcome != want:
                differences.append(
                    f"{source or 'outside'} -> {target}:{port} {outcome}, not {want}"
                )
    assert not differences, "\n".join(differences)


def psql(host: Any, query: str, database: str = "postgres") -> list[str]:
    out = host.check_output("runuser -u postgres -- psql -XAtq -d %s -c %s", database, query)
    return [line for line in out.splitlines() if line]


def test_the_app_and_the_replica_reach_postgresql_over_tls(
    cluster: Any, writer: httpx.Client
) -> None:
    """On the leader, every connection from another host (the app's, the replica's
    walsender) is encrypted."""
    assert writer.get("/messages?limit=1").status_code == 200  # the app holds connections
    host = cluster.hosts[leader(cluster)]
    rows = psql(
        host,
        "SELECT a.backend_type, a.client_addr, s.ssl FROM pg_stat_activity a"
        " JOIN pg_stat_ssl s USING (pid) WHERE a.client_addr IS NOT NULL",
    )
    kinds = {row.split("|")[0] for row in rows}
    assert {"client backend", "walsender"} <= kinds, rows
    assert all(row.endswith("|t") for row in rows), rows


def test_pg_hba_admits_each_peer_by_address_with_tls_only(cluster: Any) -> None:
    """The leader's pg_hba.conf (Patroni's): one hostssl line per app host for the app's
    roles, per database host for replication and pg_rewind, the postgres system user on
    the socket, and nothing wider."""
    lb = cluster.lb()
    database = inventory_value(lb, "app_database_name")
    users = (
        f"{inventory_value(lb, 'app_database_owner')},{inventory_value(lb, 'app_database_user')}"
    )
    replication = host_setting(lb, "postgresql_replication_user")
    rewind = host_setting(lb, "postgresql_rewind_user")
    expected = {"local all postgres peer"}
    for name in cluster.group("app"):
        expected.add(f"hostssl {database} {users} {cluster.addresses[name]}/32 scram-sha-256")
    for name in cluster.group("db"):
        address = cluster.addresses[name]
        expected.add(f"hostssl replication {replication} {address}/32 scram-sha-256")
        expected.add(f"hostssl postgres {rewind} {address}/32 scram-sha-256")
    for name in cluster.group("db"):
        lines = psql(
            cluster.hosts[name],
            "SELECT concat_ws(' ', type, array_to_string(database, ','),"
            " array_to_string(user_name, ','),"
            " address || '/' || masklen(netmask::inet), auth_method)"
            " FROM pg_hba_file_rules WHERE error IS NULL",
        )
        seen = set(lines)
        assert seen == expected, (name, seen ^ expected)


CONNECT_WITHOUT_TLS = """
import os, psycopg2
try:
    psycopg2.connect(host=os.environ["TARGET"], port=os.environ["DATABASE_PORT"],
                     dbname=os.environ["DATABASE_NAME"], user=os.environ["DATABASE_USER"],
                     password=os.environ["DATABASE_PASSWORD"], sslmode="disable", connect_timeout=5)
except psycopg2.OperationalError as error:
    print(str(error).strip().splitlines()[-1])
else:
    print("connected")
"""


def test_a_connection_without_tls_is_refused(cluster: Any) -> None:
    """From an app host, with the app's own role and password but sslmode=disable."""
    app = cluster.hosts[cluster.group("app")[0]]
    target = cluster.addresses[leader(cluster)]
    said = app.check_output(
        "set -a && . /etc/messages/messages.env && TARGET=%s"
        " /opt/messages/current/venv/bin/python -c %s",
        target,
        CONNECT_WITHOUT_TLS,
    )
    assert "no encryption" in said, said
