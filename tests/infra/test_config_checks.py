"""Daemon configurations are checked before they replace the old ones: sshd's settings by
`sshd -t` (and after a reload a new connection must get in, else the host puts the old
settings back by itself), nginx's site by `nginx -t`; a rejected one changes nothing. Staged
with real deploys of settings the daemons refuse."""

import json
import time
from typing import Any

import pytest
from deploys import playbook, run_playbook
from hostcheck import Setting

# Deploys settings that sshd or nginx refuse, or that lock the deploy out for a while: only
# on hosts made for testing (see `make verify`).
pytestmark = pytest.mark.destructive

SETTINGS_FILE = "/etc/ssh/sshd_config.d/10-hardening.conf"


@pytest.fixture
def sshd_hardening(setting: Setting) -> None:
    if not setting("base_ssh_hardening_enabled"):
        pytest.skip("base_ssh_hardening_enabled is off")


def deploy_sshd_settings(request: Any, settings: dict[str, str], **more: Any) -> Any:
    extra = json.dumps({"base_ssh_settings": settings, **more})
    inventory = str(request.config.getoption("ansible_inventory"))
    return playbook(inventory, "--tags", "base-ssh", "-e", extra, timeout=300)


@pytest.mark.usefixtures("sshd_hardening")
def test_settings_sshd_rejects_change_nothing(request: Any, host: Any, setting: Setting) -> None:
    before = host.file(SETTINGS_FILE).sha256sum
    run = deploy_sshd_settings(request, {**setting("base_ssh_settings"), "MaxAuthTries": "lots"})
    assert run.returncode != 0, run.stdout[-2000:]
    assert "failed to validate" in run.stdout, run.stdout[-2000:]
    assert host.file(SETTINGS_FILE).sha256sum == before
    assert host.service("ssh").is_running
    assert "maxauthtries lots" not in host.check_output("sshd -T").lower()


# Short, so that the test waits little; the deploy's default is 60 s.
REVERT_SECONDS = 20


def new_connection_gets_in(request: Any, host: Any) -> bool:
    """A new ssh connection (a new ansible process: no persistent one to reuse)."""
    inventory = str(request.config.getoption("ansible_inventory"))
    name = host.ansible.get_variables()["inventory_hostname"]
    return run_playbook(inventory, "../bench/floor.yml", "-l", name).returncode == 0


@pytest.mark.usefixtures("sshd_hardening")
def test_settings_that_lock_the_deploy_out_undo_themselves(
    request: Any, host: Any, setting: Setting
) -> None:
    """sshd -t accepts AllowUsers for another user; the new connection the play makes after
    the reload is turned away: the run stops there, and the host puts the previous settings
    back by itself, base_revert_seconds later."""
    before = host.file(SETTINGS_FILE).sha256sum
    settings = {**setting("base_ssh_settings"), "AllowUsers": "nobody"}
    run = deploy_sshd_settings(request, settings, base_revert_seconds=REVERT_SECONDS)
    assert run.returncode != 0, run.stdout[-2000:]
    assert "a new connection failed after the sshd change" in " ".join(run.stdout.split())
    deadline = time.monotonic() + REVERT_SECONDS + 60
    while not new_connection_gets_in(request, host):
        assert time.monotonic() < deadline, "the host did not put the previous sshd settings back"
        time.sleep(5)
    assert host.file(SETTINGS_FILE).sha256sum == before


def test_a_site_nginx_rejects_changes_nothing(
    request: Any, host: Any, groups: set[str], setting: Setting, https: Any
) -> None:
    if "web" not in groups:
        pytest.skip("not a web host")
    site = f"/etc/nginx/sites-available/{setting('nginx_site_name')}.conf"
    before, running = host.file(site).sha256sum, host.check_output("nginx -T 2>/dev/null")
    inventory = str(request.config.getoption("ansible_inventory"))
    run = playbook(inventory, "-e", "nginx_client_max_body_size=lots", timeout=600)
    assert run.returncode != 0, run.stdout[-2000:]
    failed_at = run.stdout.split("FAILED!")[0].rsplit("TASK [", 1)[-1]
    assert failed_at.startswith("nginx : Install the site, checked by nginx -t"), failed_at[:300]
    assert "failed to validate" in run.stdout, run.stdout[-2000:]
    assert host.file(site).sha256sum == before
    assert host.check_output("nginx -T 2>/dev/null") == running
    assert https.get("/health/ready").status_code == 200
