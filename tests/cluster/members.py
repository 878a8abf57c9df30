"""What Patroni says about the cluster, read on a database host from its REST API (whose
port only the database hosts reach), and the hosts' containers (the local cluster's)."""

import json
import subprocess
from dataclasses import dataclass
from typing import Any

PATRONI_PORT = 8008
RUNNING = {"running", "streaming"}


@dataclass(frozen=True)
class Cluster:
    """The inventory's hosts: testinfra hosts by name, their groups and private addresses."""

    hosts: dict[str, Any]
    groups: dict[str, list[str]]
    addresses: dict[str, str]

    def group(self, name: str) -> list[str]:
        return self.groups.get(name, [])

    def lb(self) -> Any:
        return self.hosts[self.group("web")[0]]


def members(cluster: Any, ask: str | None = None) -> list[dict[str, Any]]:
    """Patroni's members (name, role, state, lag...), asked of `ask` or the first db host
    that answers."""
    for name in [ask] if ask else cluster.group("db"):
        address = cluster.addresses[name]
        result = cluster.hosts[name].run(
            "curl -sf --max-time 3 http://%s:%s/cluster", address, str(PATRONI_PORT)
        )
        if result.rc == 0:
            found: list[dict[str, Any]] = json.loads(result.stdout)["members"]
            return found
    return []


def leader(cluster: Any, ask: str | None = None) -> str | None:
    return next((m["name"] for m in members(cluster, ask) if m["role"] == "leader"), None)


def roles(cluster: Any, ask: str | None = None) -> dict[str, tuple[str, str]]:
    """{member: (role, state)}."""
    return {m["name"]: (m["role"], m["state"]) for m in members(cluster, ask)}


def whole(cluster: Any) -> bool:
    """A leader and a synchronous replica, both running."""
    running = [role for role, state in roles(cluster).values() if state in RUNNING]
    return sorted(running) == ["leader", "sync_standby"]


def container(name: str) -> str:
    """The docker container of a local cluster host (the Vagrantfile's naming)."""
    return f"fastapi-postgres-{name}"


def docker(*arguments: str) -> None:
    subprocess.run(["docker", *arguments], check=True, capture_output=True, timeout=120)
