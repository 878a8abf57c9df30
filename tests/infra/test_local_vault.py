"""The local inventories' insecure secrets reach a local test host and nothing else,
whatever the command line says: a host is one when the connection that really reaches
it finds the mark that image/build.sh and the Vagrantfile put there, at an address of
the local test network. Every run here is --check, and every address it could be sent
to is loopback or the local test host."""

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from deploys import ROOT, run_playbook

MARK = "/etc/fastapi-postgres/local-test-host"


@pytest.fixture(scope="module")
def inventory(request: Any) -> str:
    inventory = str(request.config.getoption("ansible_inventory"))
    if not (ROOT / inventory / "vault-password-INSECURE-local-only.txt").exists():
        pytest.skip("not the local inventory")
    return inventory


def assert_refused(run: subprocess.CompletedProcess[str], reason: str) -> None:
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert reason in " ".join(output.split()), output[-3000:]
    # Stopped in the first play: no role ran, no secret was used.
    assert "PLAY [Every host]" not in output


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param(["-e", "ansible_host=127.0.0.2"], id="ansible_host"),
        # The connection takes the last one set of ansible_host and ansible_ssh_host.
        pytest.param(["-e", "ansible_ssh_host=127.0.0.2"], id="ansible_ssh_host"),
        # The old switch: no variable turns the check off.
        pytest.param(
            ["-e", "vault_insecure_local_only=false", "-e", "ansible_ssh_host=127.0.0.2"],
            id="switch-off",
        ),
    ],
)
def test_an_address_off_the_local_network_is_refused_before_connecting(
    inventory: str, overrides: list[str]
) -> None:
    run = run_playbook(inventory, "deploy.yml", "--check", *overrides)
    assert_refused(run, "would get the insecure local secrets")
    assert "Take the deploy lock" not in run.stdout


def test_a_local_connection_is_refused(inventory: str) -> None:
    """-c local reaches the controller itself, which carries no mark."""
    # The controller's own Python runs the modules (the host's interpreter path may not exist).
    python = f"ansible_python_interpreter={sys.executable}"
    run = run_playbook(inventory, "deploy.yml", "--check", "-c", "local", "-e", python)
    assert_refused(run, "is not a local test host (no mark")


@pytest.fixture()
def unmarked_host(host: Any) -> Iterator[None]:
    """The local test host without its mark: to the check, a server like any other."""
    host.check_output("mv %s %s.away", MARK, MARK)
    try:
        yield
    finally:
        host.check_output("mv %s.away %s", MARK, MARK)


@pytest.mark.destructive
@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="plain"),
        # The inventory names an unused address of the local network; the ssh
        # arguments send the connection to the unmarked host, as a ProxyJump or a
        # HostName in ~/.ssh/config would send it to a real server.
        pytest.param(
            {
                "ansible_host": "192.168.56.99",
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=no"
                " -o UserKnownHostsFile=/dev/null -o HostName={address}",
            },
            id="HostName-in-ssh-args",
        ),
    ],
)
def test_a_host_without_the_mark_is_refused(
    inventory: str, address: str, unmarked_host: None, overrides: dict[str, str]
) -> None:
    variables = {name: value.format(address=address) for name, value in overrides.items()}
    run = run_playbook(inventory, "deploy.yml", "--check", "-e", json.dumps(variables))
    assert_refused(run, "is not a local test host (no mark")


def test_every_local_secret_is_recognised() -> None:
    """The digests the check compares with cover every secret of the local vaults."""
    run = subprocess.run(
        ["python3", "scripts/local_vault_digests.py", "--check"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert Path(ROOT / "ansible/inventories/insecure-local-secrets.sha256").read_text().split()
