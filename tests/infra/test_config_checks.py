"""Daemon configurations are checked before they replace the old ones: sshd's settings by
`sshd -t` (and after a reload the play proves with a new connection that the deploy still
gets in), nginx's site by `nginx -t`; a rejected one changes nothing. Staged with real
deploys of settings the daemons refuse."""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from deploys import playbook, recap_counts
from hostcheck import Setting, wait_for

# Deploys settings that sshd or nginx refuse, or that lock the deploy out for a while: only
# on hosts made for testing (see `make verify`).
pytestmark = pytest.mark.destructive

SETTINGS_FILE = "/etc/ssh/sshd_config.d/10-hardening.conf"


@pytest.fixture
def sshd_hardening(setting: Setting) -> None:
    if not setting("base_ssh_hardening_enabled"):
        pytest.skip("base_ssh_hardening_enabled is off")


def deploy_sshd_settings(request: Any, settings: dict[str, str]) -> Any:
    extra = json.dumps({"base_ssh_settings": settings})
    inventory = str(request.config.getoption("ansible_inventory"))
    return playbook(inventory, "--tags", "base-ssh", "-e", extra, timeout=300)


def reachable(host: Any) -> bool:
    try:
        return bool(host.run("true").rc == 0)
    except Exception:  # noqa: BLE001 - the connection fails while the deploy is locked out
        return False


@pytest.mark.usefixtures("sshd_hardening")
def test_settings_sshd_rejects_change_nothing(request: Any, host: Any, setting: Setting) -> None:
    before = host.file(SETTINGS_FILE).sha256sum
    run = deploy_sshd_settings(request, {**setting("base_ssh_settings"), "MaxAuthTries": "lots"})
    assert run.returncode != 0, run.stdout[-2000:]
    assert "failed to validate" in run.stdout, run.stdout[-2000:]
    assert host.file(SETTINGS_FILE).sha256sum == before
    assert host.service("ssh").is_running
    assert "maxauthtries lots" not in host.check_output("sshd -T").lower()


@pytest.fixture
def restore_sshd_when_locked_out(host: Any) -> Iterator[None]:
    """A dead man's switch on the host: once sshd has turned the deploy user away (or after
    90 s), the settings file as it was comes back and sshd reloads."""
    host.check_output("cp -p %s /run/sshd-settings-before", SETTINGS_FILE)
    # sshd's own messages only (_COMM=sshd): sudo logs this script's text too.
    script = (
        "end=$(( $(date +%s) + 90 )); since=$(date '+%F %T')\n"
        'while [ "$(date +%s)" -lt "$end" ]; do\n'
        "  journalctl -q _COMM=sshd --since \"$since\" | grep -q 'not listed in AllowUsers' \\\n"
        "    && break\n"
        "  sleep 0.5\n"
        "done\n"
        f"cp -p /run/sshd-settings-before {SETTINGS_FILE} && systemctl reload ssh\n"
    )
    # In a file: systemd would expand $ and % on the unit's command line.
    host.check_output("printf %%s %s > /run/sshd-restore.sh", script)
    host.check_output(
        "systemd-run --unit=sshd-restore --collect --quiet -p RuntimeMaxSec=300 "
        "/bin/sh /run/sshd-restore.sh"
    )
    try:
        yield
    finally:
        assert wait_for(lambda: reachable(host), 180) is not None, "sshd was not restored"
        host.run("systemctl stop sshd-restore.service")
        host.run("rm -f /run/sshd-settings-before /run/sshd-restore.sh")


@pytest.mark.usefixtures("sshd_hardening", "restore_sshd_when_locked_out")
def test_settings_that_lock_the_deploy_out_fail_the_run(
    request: Any, host: Any, setting: Setting
) -> None:
    """sshd -t accepts AllowUsers for another user; the new connection the play makes
    afterwards is refused, and the run fails there, not later."""
    run = deploy_sshd_settings(request, {**setting("base_ssh_settings"), "AllowUsers": "nobody"})
    assert run.returncode != 0, run.stdout[-2000:]
    counts = recap_counts(run.stdout)
    assert counts and all(tally["unreachable"] == 1 for tally in counts.values()), counts
    failed_at = run.stdout.split("UNREACHABLE!")[0].rsplit("TASK [", 1)[-1]
    assert failed_at.startswith("base : Check the deploy user can still log in"), failed_at[:200]


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
