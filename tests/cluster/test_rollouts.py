"""Releases across the app hosts under a bounded load through the load balancer: one app
host at a time, in inventory order, taken out of the lb's upstream while its instances
restart (drained), gated, put back; a broken release stops at the first host, which stays
on its release, and the hosts after it are never touched. Every answer counts: no request
may fail, and every write answered 201 is in the database afterwards."""

import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from deploys import (
    GATE_TIMEOUT,
    app_copy,
    audit,
    current,
    last_release,
    release,
    release_repository,
    running,
)
from hostcheck import ApiKeys, app_ports, host_setting
from loadgen import Load, background_load
from members import Cluster, container, leader

pytestmark = pytest.mark.destructive


@pytest.fixture(scope="module", autouse=True)
def repository_release_restored(inventory: str) -> Iterator[None]:
    yield
    release_repository(inventory)


def deployed(cluster: Cluster) -> dict[str, tuple[str, list[str]]]:
    """Per app host: the release `current` names, and the one each instance runs."""
    return {
        name: (current(cluster.hosts[name]), running(cluster.hosts[name]))
        for name in cluster.group("app")
    }


class DrainWatch:
    """Reads the lb's site every 0.2 s while a release runs: which app hosts had instances
    marked down, one snapshot per read, in order."""

    def __init__(self, cluster: Cluster) -> None:
        lb = cluster.group("web")[0]
        site = host_setting(cluster.lb(), "nginx_site_name")
        self.command = [
            "docker",
            "exec",
            container(lb),
            "cat",
            f"/etc/nginx/sites-available/{site}.conf",
        ]
        self.hosts = {cluster.addresses[name]: name for name in cluster.group("app")}
        self.snapshots: list[frozenset[str]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.watch, daemon=True)

    def drained(self) -> frozenset[str]:
        site = subprocess.run(self.command, capture_output=True, text=True, timeout=10).stdout
        down = re.findall(r"^\s*server ([0-9.]+):[0-9]+ [^;]* down;$", site, re.M)
        return frozenset(self.hosts[address] for address in down)

    def watch(self) -> None:
        while not self.stop.wait(0.2):
            self.snapshots.append(self.drained())

    def __enter__(self) -> "DrainWatch":
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()

    def changes(self) -> list[frozenset[str]]:
        """The snapshots with repeats folded: e.g. [{}, {app1}, {}, {app2}, {}]."""
        folded: list[frozenset[str]] = []
        for snapshot in self.snapshots:
            if not folded or folded[-1] != snapshot:
                folded.append(snapshot)
        return folded


def assert_clients_saw_no_failure(cluster: Cluster, load: Load) -> None:
    outcomes = [outcome for _, _, outcome in load.answers]
    assert outcomes, "the load sent nothing"
    assert set(outcomes) <= {"200", "201"}, {o: outcomes.count(o) for o in set(outcomes)}
    assert load.lost_writes(cluster.hosts[leader(cluster) or cluster.group("db")[0]]) == []


def test_a_release_rolls_out_one_drained_app_host_at_a_time_with_no_failed_request(
    cluster: Cluster, inventory: str, page_url: str, tls_context: Any, api_keys: ApiKeys,
    tmp_path: Path,
) -> None:  # fmt: skip
    apps = cluster.group("app")
    with (
        background_load(page_url, tls_context, api_keys.valid, seconds=300) as (load, _),
        DrainWatch(cluster) as watch,
    ):
        run = release(inventory, app_copy(tmp_path))
    assert run.returncode == 0, run.stdout[-3000:]
    new = last_release(cluster.hosts[apps[0]])
    for name in apps:
        assert current(cluster.hosts[name]) == new, name
        assert running(cluster.hosts[name]) == [new] * len(app_ports(cluster.hosts[name]))
    # Each app host out of the upstream on its own, in inventory order, and all back at the end.
    empty = frozenset[str]()
    expected = [empty]
    for name in apps:
        expected += [frozenset({name}), empty]
    assert watch.changes() == expected, watch.changes()
    assert_clients_saw_no_failure(cluster, load)


def test_a_broken_release_stops_at_the_first_app_host(
    cluster: Cluster, inventory: str, page_url: str, tls_context: Any, api_keys: ApiKeys,
    tmp_path: Path,
) -> None:  # fmt: skip
    first, *others = cluster.group("app")
    before = deployed(cluster)
    source = app_copy(tmp_path, "raise RuntimeError('broken on purpose')\n")
    with background_load(page_url, tls_context, api_keys.valid, seconds=300) as (load, _):
        run = release(inventory, source, "-e", GATE_TIMEOUT)
    assert run.returncode != 0, run.stdout[-3000:]
    broken = audit(cluster.hosts[first])[-1]
    assert broken["result"] == "failed", broken
    assert broken["reason"].startswith(f"release {broken['release']} failed the gate"), broken
    for name in others:
        stopped = audit(cluster.hosts[name])[-1]
        assert stopped["result"] == "failed", stopped
        assert stopped["reason"].startswith(f"the run failed on {first}"), stopped
    assert deployed(cluster) == before
    assert_clients_saw_no_failure(cluster, load)
