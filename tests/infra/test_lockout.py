"""A change to sshd's settings or to the firewall that cuts the deploy off its host undoes
itself: the host puts the previous settings back unless a new connection gets in."""

import json
import time
from typing import Any

import pytest
from hostcheck import Setting
from playbooks import run_playbook

pytestmark = pytest.mark.destructive

REVERT_SECONDS = 20


def new_connection_gets_in(inventory: str, name: str) -> bool:
    """A new ssh connection (a new ansible process: no persistent one to reuse)."""
    return run_playbook(inventory, "../bench/floor.yml", "-l", name).returncode == 0


def test_an_sshd_change_that_locks_the_deploy_out_undoes_itself(
    request: Any, host: Any, setting: Setting
) -> None:
    inventory = str(request.config.getoption("ansible_inventory"))
    name = host.ansible.get_variables()["inventory_hostname"]
    settings = dict(setting("base_ssh_settings"), AllowUsers="nobody")
    run = run_playbook(
        inventory,
        "deploy.yml",
        "-e",
        json.dumps({"base_ssh_settings": settings, "base_revert_seconds": REVERT_SECONDS}),
    )
    output = " ".join(run.stdout.split())
    assert run.returncode != 0, run.stdout[-3000:]
    assert "a new connection failed after the sshd change" in output, run.stdout[-3000:]
    assert "PLAY [App]" not in run.stdout

    deadline = time.monotonic() + REVERT_SECONDS + 60
    while not new_connection_gets_in(inventory, name):
        assert time.monotonic() < deadline, "the host did not put the previous sshd settings back"
        time.sleep(5)
    assert "AllowUsers" not in host.file("/etc/ssh/sshd_config.d/10-hardening.conf").content_string
    again = run_playbook(inventory, "deploy.yml")
    assert again.returncode == 0, again.stdout[-3000:]
