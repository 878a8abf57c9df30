"""The firewall: only the listed TCP ports get in from outside, default drop, in the project's
own nftables table (other tables untouched). Probed from the controller, and read from the
ruleset as what its rules accept."""

from typing import Any

import pytest
from firewall import (
    expected_accepts,
    free_port,
    listener_on_all_addresses,
    port_range,
    reachable,
    ruleset,
)
from hostcheck import LOOPBACK, Setting, listening_addresses


@pytest.fixture(autouse=True)
def firewall_enabled(setting: Setting) -> None:
    if not setting("base_firewall_enabled"):
        pytest.skip("base_firewall_enabled is off")


def listed_ports(setting: Setting) -> set[int]:
    ports = {int(port) for port in setting("base_firewall_allowed_tcp_ports")}
    for rule in setting("base_firewall_allowed_sources"):
        ports.update(port_range(rule["port"]))
    return ports


def test_a_listener_on_an_unlisted_port_is_unreachable_from_outside(
    host: Any, address: str, setting: Setting
) -> None:
    port = free_port(host, listed_ports(setting))
    with listener_on_all_addresses(host, port):
        # It accepts connections (here from the host itself)...
        host.check_output(
            "python3 -c %s",
            f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2).close()",
        )
        # ... but not from outside.
        assert not reachable(address, port), f"port {port} is open to the controller"


def test_the_listed_ports_are_reachable_from_outside(
    host: Any, address: str, setting: Setting
) -> None:
    listening = {
        int(port)
        for port in setting("base_firewall_allowed_tcp_ports")
        if listening_addresses(host, int(port)) - LOOPBACK
    }
    # At least sshd's port: the one the deploy and this run came in by.
    assert int(host.ansible.get_variables().get("ansible_port", 22)) in listening, listening
    assert {port for port in listening if not reachable(address, port)} == set()


def test_the_table_drops_by_default_and_accepts_only_the_listed_ports(
    host: Any, setting: Setting
) -> None:
    chains, rules = ruleset(host, setting("base_firewall_table"))
    hooked = [chain for chain in chains if "hook" in chain]
    assert [(c["name"], c["hook"], c["type"], c["policy"]) for c in hooked] == [
        ("input", "input", "filter", "drop")
    ], chains
    assert len(chains) == 1, f"chains beyond input: {chains}"
    accepts = {rule for rule in rules if rule[1] == "accept"}
    assert accepts == expected_accepts(setting)
    others = [rule for rule in rules if rule[1] not in ("accept", "drop", "reject")]
    assert others == [], f"rules that neither accept nor drop: {others}"


@pytest.mark.destructive
def test_loading_the_table_leaves_other_tables_alone(host: Any, setting: Setting) -> None:
    table = setting("base_firewall_table")
    sentinel = "verify_sentinel"
    host.check_output("nft add table inet %s", sentinel)
    try:
        # What a deploy's handler and the boot do: load the table's file again.
        host.check_output("systemctl reload %s.service", table)
        assert host.run("nft list table inet %s", sentinel).rc == 0, "another table was removed"
    finally:
        host.run("nft delete table inet %s", sentinel)
    chains, rules = ruleset(host, table)
    assert {rule for rule in rules if rule[1] == "accept"} == expected_accepts(setting)
