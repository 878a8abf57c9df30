"""Running the project's playbooks from a test, as a user would (the same inventory and
vault as the hosts under test), and reading what a run and the host's units say."""

import re
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_playbook(
    inventory: str, name: str, *arguments: str, timeout: int = 900
) -> "subprocess.CompletedProcess[str]":
    """ansible-playbook -i INVENTORY ansible/NAME ARGUMENTS..., its output captured."""
    return subprocess.run(
        ["ansible-playbook", "-i", inventory, f"ansible/{name}", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def playbook(
    inventory: str, *arguments: str, timeout: int = 600
) -> "subprocess.CompletedProcess[str]":
    """ansible-playbook deploy.yml against the inventory under test, output captured."""
    return run_playbook(inventory, "deploy.yml", *arguments, timeout=timeout)


def recap_counts(output: str) -> dict[str, dict[str, int]]:
    """Per host, the counters of the PLAY RECAP: {"host": {"ok": 30, "changed": 0, ...}}."""
    recap = output.split("PLAY RECAP")[-1]
    hosts = {}
    for line in recap.splitlines():
        name, _, counters = line.partition(" : ")
        if counters:
            hosts[name.strip()] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counters)}
    return hosts


def invocations(host: Any, units: list[str]) -> dict[str, str]:
    """Each unit's InvocationID: a new one each time systemd starts it."""
    return {
        unit: host.check_output("systemctl show -p InvocationID --value %s", unit) for unit in units
    }


def journal_lines(host: Any, unit: str, since: str, pattern: str) -> list[str]:
    """The unit's journal lines since a time that match a pattern ([] when none do)."""
    result = host.run(
        "journalctl --no-pager -q -o cat -u %s --since %s --grep %s", unit, since, pattern
    )
    # journalctl --grep: 0 found, 1 nothing found; anything else is an error.
    assert result.rc in (0, 1), f"journalctl failed ({result.rc}): {result.stderr[-500:]}"
    return result.stdout.splitlines() if result.rc == 0 else []
