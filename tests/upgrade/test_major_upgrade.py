"""A deployed Debian 12 host upgraded to Debian 13 as its owner would do it (the sources to
trixie, `apt full-upgrade`): PostgreSQL 17 arrives beside the 15 cluster that holds the
data (and, on hosts where Debian makes one, an empty cluster of its own). The next deploy
must stop before any change, naming the old cluster and the command; upgrade-postgresql.yml
must move the data into 17 and deploy; every message and applied migration is then still
there byte for byte, the service is ready, backups go on, and a deploy after it changes
nothing.

It turns the host into a Debian 13 host for good: scripts/e2e.sh runs it on a Debian 12
local host after everything else, just before tearing the host down:
    pytest tests/upgrade --sudo --hosts=ansible://all --ansible-inventory=INVENTORY
Traffic goes only to that host (e2e.sh checks its address is on a local bridge first)."""

import shlex
from typing import Any

import pytest
from deploys import playbook, recap_counts, run_playbook
from loadgen import database_fingerprint

pytestmark = pytest.mark.destructive

NONINTERACTIVE = (
    "DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get -q -y "
    "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
)


@pytest.fixture(scope="module")
def inventory(request: Any) -> str:
    return str(request.config.getoption("ansible_inventory"))


def clusters(host: Any) -> list[str]:
    """`pg_lsclusters` as "VERSION/NAME PORT STATUS" lines."""
    lines = host.check_output("pg_lsclusters --no-header").splitlines()
    return [f"{v}/{name} {port} {status}" for v, name, port, status, *_ in map(str.split, lines)]


def test_a_debian_12_host_upgraded_to_13_keeps_every_message(host: Any, inventory: str) -> None:
    assert host.system_info.codename == "bookworm", "this test starts from a Debian 12 host"
    port = host.ansible.get_variables().get("postgresql_port", 5432)
    assert clusters(host) == [f"15/main {port} online"]
    before = database_fingerprint(host)
    assert before["messages"]["count"] > 0, "no messages to keep: seed the host first"

    sources = host.check_output("grep -rl bookworm /etc/apt/sources.list /etc/apt/sources.list.d")
    host.check_output(
        f"sed -i 's/bookworm/trixie/g' {' '.join(map(shlex.quote, sources.split()))}"
        f" && apt-get -q update && {NONINTERACTIVE} full-upgrade"
    )
    assert host.check_output(". /etc/os-release && echo $VERSION_ID") == "13"
    # PostgreSQL 17 is installed; it makes no cluster of its own where one exists already.
    assert host.package("postgresql-17").is_installed
    assert f"15/main {port} online" in clusters(host)

    refused = playbook(inventory)
    assert refused.returncode != 0, refused.stdout[-2000:]
    said = " ".join(refused.stdout.split())
    assert "PostgreSQL 15 (cluster main, /var/lib/postgresql/15/main) holds" in said, said[-2000:]
    assert "make upgrade-postgresql" in said
    assert all(counts["changed"] == 0 for counts in recap_counts(refused.stdout).values())

    upgraded = run_playbook(inventory, "upgrade-postgresql.yml", timeout=1800)
    assert upgraded.returncode == 0, upgraded.stdout[-4000:]
    assert "PostgreSQL 15 upgraded to 17" in " ".join(upgraded.stdout.split())

    assert clusters(host) == [f"17/main {port} online"]
    after = database_fingerprint(host)
    assert after["messages"] == before["messages"]
    assert after["migrations"] == before["migrations"]
    host.check_output("curl -sf http://127.0.0.1/health/ready")
    stanza = host.ansible.get_variables().get("backup_stanza", "main")
    host.check_output("runuser -u postgres -- pgbackrest --stanza=%s check", stanza)

    again = playbook(inventory)
    assert again.returncode == 0, again.stdout[-2000:]
    assert all(counts["changed"] == 0 for counts in recap_counts(again.stdout).values()), (
        again.stdout.split("PLAY RECAP")[-1]
    )
