"""deploy.yml refuses bad input before it changes anything, with a message naming it.

Each run is also in --check mode, so even a check that failed to stop it changes nothing.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def deploy(inventory: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ansible-playbook", "-i", inventory, "ansible/deploy.yml", "--check", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_refused(run: subprocess.CompletedProcess[str], reason: str) -> None:
    assert run.returncode != 0, run.stdout[-2000:]
    assert reason in run.stdout + run.stderr, (run.stdout + run.stderr)[-3000:]
    assert "changed=0" in run.stdout.split("PLAY RECAP")[-1]
    # Stopped in the first play: no role's play started.
    assert "PLAY [Every host]" not in run.stdout


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("app_port_base", "70000", "app_port_base must be 1-65535"),
        ("nginx_https_port", "0", "nginx_https_port must be 1-65535"),
        ("postgresql_port", "http", "postgresql_port"),
        ("app_instances", "0", "app_instances must be 1-"),
    ],
)
def test_a_wrong_variable_stops_the_deploy(
    inventory: str, variable: str, value: str, reason: str
) -> None:
    assert_refused(deploy(inventory, "-e", f"{variable}={value}"), reason)


def test_a_firewall_that_would_lock_the_deploy_out_stops_it(inventory: str) -> None:
    without_ssh = json.dumps({"base_firewall_allowed_tcp_ports": [80, 443]})
    assert_refused(
        deploy(inventory, "-e", without_ssh), "must include the port this deploy reached sshd on"
    )


def test_a_missing_vault_value_stops_the_deploy(inventory: str, tmp_path: Path) -> None:
    without_vault = tmp_path / "inventory"
    shutil.copytree(ROOT / inventory, without_vault, ignore=shutil.ignore_patterns("vault.yml"))
    assert_refused(deploy(str(without_vault)), "the vault lacks vault_app_database_owner_password")


def test_the_local_vault_is_refused_for_another_host(inventory: str) -> None:
    if not (ROOT / inventory / "vault-password-INSECURE-local-only.txt").exists():
        pytest.skip("not the local inventory")
    # A loopback address that is not the local host: nothing leaves the machine.
    run = deploy(inventory, "-e", "ansible_host=127.0.0.2")
    assert_refused(run, "would get the insecure local secrets")
