"""A reboot of the host: everything comes back by itself, with its data, and the firewall is
loaded at boot. Only the tests here get a freshly rebooted host (the `rebooted` fixture)."""

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from firewall import expected_accepts, free_port, listener_on_all_addresses, reachable, ruleset
from hostcheck import Setting, app_ports, host_setting, wait_for
from loadgen import database_fingerprint, ready

# Reboots the host: only on hosts made for testing (see `make verify`).
pytestmark = pytest.mark.destructive


@dataclass(frozen=True)
class Reboot:
    fingerprint_before: dict[str, Any]
    fingerprint_after: dict[str, Any]


@pytest.fixture(scope="module")
def rebooted(host: Any, groups: set[str], https: httpx.Client) -> Reboot:
    if not {"db", "app", "web"} <= groups:
        pytest.skip("these faults are staged on a host that carries db, app and web")
    before = database_fingerprint(host)
    # A container keeps the kernel's boot id: PID 1's start time tells a new boot.
    booted = host.check_output("ps -o lstart= -p 1")
    host.run("systemctl reboot")
    came_back = wait_for(lambda: pid1_started(host) not in ("", booted), 120)
    assert came_back is not None, "the host did not come back within 120 s"
    assert wait_for(lambda: ready(https), 60) is not None, "not ready after the reboot"
    return Reboot(before, database_fingerprint(host))


def pid1_started(host: Any) -> str:
    try:
        result = host.run("ps -o lstart= -p 1")
    except Exception:  # noqa: BLE001 - the connection fails while the host is down
        return ""
    return result.stdout.strip() if result.rc == 0 else ""


def test_everything_comes_back_with_its_data(host: Any, rebooted: Reboot) -> None:
    units = ["postgresql", "nginx", host_setting(host, "base_firewall_table")]
    units += [f"{host_setting(host, 'app_name')}@{port}" for port in app_ports(host)]
    for unit in units:
        assert host.service(unit).is_enabled, unit
        assert host.service(unit).is_running, unit
    assert rebooted.fingerprint_after == rebooted.fingerprint_before


def test_the_firewall_is_loaded_at_boot(
    host: Any, rebooted: Reboot, address: str, setting: Setting
) -> None:
    _, rules = ruleset(host, setting("base_firewall_table"))
    assert {rule for rule in rules if rule[1] == "accept"} == expected_accepts(setting)
    port = free_port(host, {int(p) for p in setting("base_firewall_allowed_tcp_ports")})
    with listener_on_all_addresses(host, port):
        assert not reachable(address, port), f"port {port} is open after the reboot"
