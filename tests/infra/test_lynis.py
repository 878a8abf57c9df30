"""Lynis, the auditor Debian ships, run on the deployed host: its hardening index must reach
the inventory's verify_lynis_min_hardening_index, with no warning. The report (index,
warnings, suggestions) lands in test-output/lynis-HOST.txt."""

import ipaddress
from pathlib import Path
from typing import Any

import pytest
from hostcheck import host_setting

from conftest import LOCAL_HOST_NETWORK

REPORT = "/var/log/lynis-report.dat"


def is_local_test_host(address: str) -> bool:
    try:
        return ipaddress.ip_address(address) in LOCAL_HOST_NETWORK
    except ValueError:
        return False


@pytest.fixture(scope="module")
def lynis_report(host: Any, address: str) -> dict[str, list[str]]:
    """Runs `lynis audit system --quick` (about a minute) and reads its report."""
    if not host.package("lynis").is_installed:
        # The product does not install an auditor on your server; the test hosts get it here.
        if not is_local_test_host(address):
            pytest.skip("lynis is not installed on this server: apt-get install lynis to audit it")
        host.check_output("DEBIAN_FRONTEND=noninteractive apt-get install -y -q lynis")
    host.check_output("lynis audit system --quick --no-colors >/dev/null")
    report: dict[str, list[str]] = {}
    for line in host.file(REPORT).content_string.splitlines():
        if "=" in line and not line.startswith("#"):
            name, value = line.split("=", 1)
            report.setdefault(name.removesuffix("[]"), []).append(value)
    return report


def test_lynis_finds_no_warning_and_scores_at_least_the_threshold(
    host: Any, lynis_report: dict[str, list[str]], artifacts_dir: Path
) -> None:
    index = int(lynis_report["hardening_index"][0])
    warnings = lynis_report.get("warning", [])
    suggestions = lynis_report.get("suggestion", [])
    # PKGS-7392 names them: security updates that the deploy's first unattended-upgrade run
    # left out, or that Debian published since.
    vulnerable = lynis_report.get("vulnerable_package", [])
    name = host.ansible.get_variables()["inventory_hostname"]
    (artifacts_dir / f"lynis-{name}.txt").write_text(
        f"hardening index: {index}\n"
        + "".join(f"warning: {line}\n" for line in warnings)
        + "".join(f"suggestion: {line}\n" for line in suggestions)
        + "".join(f"vulnerable package: {line}\n" for line in vulnerable)
    )
    print(f"\nLynis on {name}: hardening index {index}, {len(warnings)} warnings")
    for line in warnings:
        print(f"  warning: {line}")
    assert warnings == [], (warnings, {"vulnerable packages": vulnerable})
    threshold = int(host_setting(host, "verify_lynis_min_hardening_index"))
    assert index >= threshold, f"index {index} < {threshold}: see test-output/lynis-{name}.txt"
