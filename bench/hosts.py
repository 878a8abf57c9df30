"""The hosts of a run and the commands that reach them.

- This machine, the controller: ``run`` and ``output`` for its commands, ``playbook`` for
  ansible-playbook on the local inventory, ``say`` for progress.
- The local host: the one host of the local inventory, which names it and gives its
  address, user and key (ansible/inventories/local/hosts.yml); ``scripts/local-host.sh
  create`` makes it, ``down`` removes it.
- The bare host: the Vagrantfile's ``bench-bare`` machine (``vagrant up`` alone leaves it
  out), a pristine host beside the local one for the bare install, reached as ``vagrant
  ssh-config`` says.

Nothing is sent to a host whose address is not directly connected (a local bridge or
loopback): with no test host up, the default route would carry it off the machine.
"""

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

REPO = Path(__file__).resolve().parent.parent
# The single-host topology: scripts/local-host.sh and the Vagrantfile read this same
# inventory when TOPOLOGY names it.
TOPOLOGY = "local"
INVENTORY = f"ansible/inventories/{TOPOLOGY}"
ENVIRONMENT = {**os.environ, "TOPOLOGY": TOPOLOGY}
BARE_MACHINE = "bench-bare"
# Its container under the docker provider, as the Vagrantfile names it: removed by name
# too, as one left by another checkout is not in this checkout's .vagrant.
BARE_CONTAINER = f"fastapi-postgres-{BARE_MACHINE}"
SSH_OPTIONS = [
    "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR", "-o", "ControlMaster=auto", "-o", "ControlPath=/tmp/bench-ssh-%C",
    "-o", "ControlPersist=120",
]  # fmt: skip

START = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - START:6.0f}s] {message}", flush=True)


def run(argv: Sequence[str], check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """A command on the controller, from the repository root. On failure, what it printed
    (if captured) goes to stderr before the error is raised."""
    kwargs.setdefault("env", ENVIRONMENT)
    done = subprocess.run(argv, cwd=REPO, text=True, check=False, **kwargs)
    if check and done.returncode != 0:
        sys.stderr.write((done.stdout or "")[-6000:] + (done.stderr or "")[-2000:])
        done.check_returncode()
    return done


def output(argv: Sequence[str]) -> str:
    return run(argv, capture_output=True).stdout.strip()


def playbook(*arguments: str) -> tuple[float, str]:
    """Run ansible-playbook on the local inventory: its wall time and its recap
    (with the time of each task, slowest first)."""
    started = time.monotonic()
    done = run(
        ["ansible-playbook", "-i", INVENTORY, *arguments],
        capture_output=True,
        env={**ENVIRONMENT, "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"},
    )
    seconds = time.monotonic() - started
    recap = done.stdout[done.stdout.rfind("PLAY RECAP") :]
    return seconds, recap


def require_local(name: str, address: str) -> None:
    """Refuse to send anything to an address that is not directly connected."""
    route = subprocess.run(["ip", "route", "get", address], capture_output=True, text=True)
    if route.returncode != 0 or " via " in route.stdout:
        sys.exit(f"error: {name} ({address}) is not up on a local bridge: not sending to it")


@dataclass(frozen=True)
class Host:
    """A test host reached over ssh."""

    name: str
    address: str
    user: str
    key: str
    port: int = 22

    def ssh(self, command: str, check: bool = True) -> str:
        require_local(self.name, self.address)
        argv = ["ssh", *SSH_OPTIONS, "-i", self.key, "-p", str(self.port)]
        done = run(
            [*argv, f"{self.user}@{self.address}", command], check=False, capture_output=True
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{command!r} on {self.name} failed:\n{done.stderr[-2000:]}")
        return done.stdout

    def send(self, local: Path, remote: str) -> None:
        require_local(self.name, self.address)
        argv = ["scp", "-q", *SSH_OPTIONS, "-i", self.key, "-P", str(self.port), str(local)]
        run([*argv, f"{self.user}@{self.address}:{remote}"])


def local_host() -> Host:
    """The local inventory's host, reached as the inventory reaches it."""
    inventory = yaml.safe_load((REPO / INVENTORY / "hosts.yml").read_text(encoding="utf-8"))
    hosts = inventory["all"]["hosts"]
    if len(hosts) != 1:
        sys.exit(f"error: {INVENTORY} has {len(hosts)} hosts: the benchmark measures one")
    [(name, variables)] = hosts.items()
    # The key's path is a template of the host's name (.vagrant/keys/{{ inventory_hostname }});
    # any other variable in it fails here rather than naming the wrong file. (No
    # autoescape: it renders a path, not HTML.)
    templates = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701
    key = templates.from_string(variables["ansible_ssh_private_key_file"])
    return Host(
        name, variables["ansible_host"], variables["ansible_user"],
        str(REPO / key.render(inventory_hostname=name)),
    )  # fmt: skip


def create_local_host() -> Host:
    run(["scripts/local-host.sh", "create"], capture_output=True)
    return local_host()


def remove_bare_host() -> None:
    run(["vagrant", "destroy", "--force", BARE_MACHINE], check=False, capture_output=True)
    if shutil.which("docker"):
        run(["docker", "rm", "--force", BARE_CONTAINER], check=False, capture_output=True)


def create_bare_host() -> Host:
    """A new bare host; ``vagrant up`` returns once it answers ssh with its own key."""
    remove_bare_host()
    run(["vagrant", "up", BARE_MACHINE, "--no-provision"], capture_output=True)
    config: dict[str, str] = {}
    for line in output(["vagrant", "ssh-config", BARE_MACHINE]).splitlines():
        option, _, value = line.strip().partition(" ")
        config.setdefault(option, value.strip().strip('"'))
    return Host(
        BARE_MACHINE, config["HostName"], config["User"], config["IdentityFile"],
        int(config["Port"]),
    )  # fmt: skip


def remove_hosts() -> None:
    remove_bare_host()
    run(["scripts/local-host.sh", "down"])


@contextmanager
def hosts_torn_down() -> Iterator[None]:
    """Stale hosts removed before, and every host removed after, also on failure."""
    remove_hosts()
    try:
        yield
    finally:
        say("tearing the hosts down")
        remove_hosts()
