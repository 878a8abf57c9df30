"""The firewall is ordered at boot like Debian's own nftables.service: with cloud-init and
ifupdown (on most Debian cloud images) systemd finds no ordering cycle, so it never drops
the firewall's job (or the network's) to break one."""

from typing import Any

import pytest
from hostcheck import Setting

pytestmark = pytest.mark.destructive

CLOUD_IMAGE_PACKAGES = "cloud-init ifupdown"


def test_the_firewall_makes_no_ordering_cycle_with_cloud_init(host: Any, setting: Setting) -> None:
    unit = f"{setting('base_firewall_table')}.service"
    apt = "DEBIAN_FRONTEND=noninteractive apt-get -y -q"
    host.check_output(f"{apt} install --no-install-recommends {CLOUD_IMAGE_PACKAGES}")
    try:
        verify = host.run("systemd-analyze verify %s cloud-init.service networking.service", unit)
        report = verify.stdout + verify.stderr
        assert "ordering cycle" not in report, report
        after = host.check_output("systemctl show --property=After --value %s", unit)
        assert "sysinit.target" not in after.split(), after
    finally:
        host.run(f"{apt} purge {CLOUD_IMAGE_PACKAGES}")
