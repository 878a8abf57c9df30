"""Running the project's playbooks from a test, as a user would (the same inventory and
vault as the hosts under test), and reading what a run and the host's units say."""

import functools
import json
import re
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hostcheck import app_ports, host_setting

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


# A broken canary fails the gate this fast (the deploy's default is 30 s, like Kamal's).
GATE_TIMEOUT = "app_gate_timeout=10"


def app_copy(tmp_path: Path, change: str = "") -> Path:
    """A copy of the app's code with a unique comment (so a new release) and `change`
    appended to main.py."""
    source = tmp_path / "app"
    shutil.copytree(ROOT / "app", source, ignore=shutil.ignore_patterns("__pycache__"))
    main = source / "main.py"
    main.write_text(main.read_text() + f"\n# release {secrets.token_hex(4)}\n{change}")
    return source


def release(inventory: str, source: Path, *extra: str) -> "subprocess.CompletedProcess[str]":
    """release.yml with the app's code taken from `source`."""
    return run_playbook(inventory, "release.yml", "-e", f"app_source_dir={source}", *extra)


def release_repository(inventory: str) -> None:
    """Whatever a test released, the app hosts end on the repository's code, gated."""
    run = run_playbook(inventory, "release.yml")
    assert run.returncode == 0, run.stdout[-3000:]


def audit(host: Any) -> list[dict[str, Any]]:
    """The app host's audit log, oldest first: one entry per deploy, release or rollback."""
    lines = host.file(host_setting(host, "app_audit_log")).content_string.splitlines()
    return [json.loads(line) for line in lines]


def last_release(host: Any) -> str:
    """The release the app host's last run deployed (or tried to)."""
    release: str = audit(host)[-1]["release"]
    return release


def current(host: Any) -> str:
    """The release the app host's `current` link names."""
    return Path(host.check_output("readlink %s/current", host_setting(host, "app_root"))).name


@functools.cache
def instance_addresses(host: Any) -> tuple[str, ...]:
    """Each instance of the app host as "ADDRESS:PORT", read from the inventory once per
    host (Ansible evaluates the bind address: seconds, not worth repeating)."""
    address = host_setting(host, "app_bind_address")
    return tuple(f"{address}:{port}" for port in app_ports(host))


def running(host: Any) -> list[str]:
    """The release each instance of the app host says it runs."""
    answers = [
        host.check_output("curl -fsS http://%s/health/live", instance)
        for instance in instance_addresses(host)
    ]
    return [json.loads(answer)["releaseId"] for answer in answers]


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
