"""Deploy speed: a fresh deploy on a new local host, no-op redeploys next to the floor of
an Ansible round (bench/floor.yml, bench/module-calls.yml), and a bare install of the same
packages and wheels on a new bare host, with the package proxy warmed for both.
"""

import json
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hosts import REPO, Host, create_bare_host, create_local_host, playbook, remove_bare_host, say

# Where the deploys of a run build their wheel sets (the app role's app_build_dir, given to
# every deploy): the bare install takes the newest set from here.
BUILD_DIR = REPO / "build"
# The packages warmed in the package proxy before either install is timed, so the
# first of the two does not pay for the second's downloads.
WARM_PACKAGES = "postgresql nginx nftables python3-venv python3-cryptography python3-psycopg2 wrk"


def deploy_arguments(extra_vars: Sequence[str]) -> list[str]:
    """The variables of every deploy of a run: bench/vars.yml, the ``-e`` values given to
    bench/run.py, and the build folder last (the bare install looks there)."""
    arguments = ["-e", "@bench/vars.yml"]
    for value in extra_vars:
        arguments += ["-e", value]
    return [*arguments, "-e", json.dumps({"app_build_dir": str(BUILD_DIR)})]


def recap_count(recap: str, key: str) -> int:
    return sum(int(n) for n in re.findall(rf"\b{key}=(\d+)", recap))


def slowest_tasks(recap: str, count: int = 8) -> list[tuple[str, float]]:
    """The slowest tasks of a run, from the profile_tasks callback's summary."""
    rows = re.findall(r"^(\S.*?) -+ (\d+\.\d+)s$", recap, flags=re.MULTILINE)
    return [(name, float(seconds)) for name, seconds in rows[:count]]


def measure_deploy(results: dict[str, Any], deploy_vars: list[str]) -> Host:
    """The deploy timings into ``results["deploy"]``; returns the deployed local host."""
    say("bringing up a new local host")
    host = create_local_host()
    bare = create_bare_host()
    baseline_packages = set(bare.ssh("apt-mark showmanual").split())

    say("warming the package proxy (untimed)")
    bare.ssh(
        "sudo apt-get update -qq && sudo apt-get install -qq --download-only "
        f"{WARM_PACKAGES} >/dev/null && sudo apt-get clean && sudo rm -rf /var/lib/apt/lists/*"
    )
    say("building the wheels and archives on the controller (untimed)")
    playbook("ansible/deploy.yml", "--tags", "app-build", *deploy_vars)

    say("fresh deploy")
    fresh, recap = playbook("ansible/deploy.yml", *deploy_vars)
    deploy = results["deploy"]
    deploy["fresh_s"] = round(fresh, 1)
    deploy["fresh_tasks"] = recap_count(recap, "ok")
    deploy["fresh_slowest"] = slowest_tasks(recap)
    say(f"  fresh deploy: {fresh:.1f} s, {recap_count(recap, 'changed')} changed")

    noops, floors = [], []
    for attempt in range(2):
        seconds, recap = playbook("ansible/deploy.yml", *deploy_vars)
        noops.append(seconds)
        deploy["noop_changed"] = max(deploy.get("noop_changed", 0), recap_count(recap, "changed"))
        deploy["noop_tasks"] = recap_count(recap, "ok")
        deploy["noop_slowest"] = slowest_tasks(recap)
        changed = recap_count(recap, "changed")
        say(f"  no-op redeploy {attempt + 1}: {seconds:.1f} s, changed={changed}")
    for attempt in range(3):
        seconds, _ = playbook("bench/floor.yml")
        floors.append(seconds)
        say(f"  Ansible floor (facts + ping) {attempt + 1}: {seconds:.1f} s")
    deploy["noop_s"] = round(statistics.median(noops), 1)
    deploy["floor_s"] = round(statistics.median(floors), 1)
    # What one more module call costs: 20 pings in a row, less the floor's one.
    seconds, _ = playbook("bench/module-calls.yml")
    deploy["module_call_s"] = round((seconds - deploy["floor_s"]) / 19, 2)
    say(f"  one module call: {deploy['module_call_s']:.2f} s")

    measure_release(host, deploy, deploy_vars)

    packages = sorted(set(host.ssh("apt-mark showmanual").split()) - baseline_packages)
    wheel_sets = sorted((BUILD_DIR / "wheels").glob("*.tar"), key=lambda path: path.stat().st_mtime)
    wheels = wheel_sets[-1]
    say(f"bare install: apt-get install {' '.join(packages)}; venv from {wheels.name}")
    started = time.monotonic()
    bare.send(wheels, "wheels.tar")
    wheel_dir = "/opt/bare/" + wheels.name.removesuffix(".tar")
    bare.ssh(
        "set -e; sudo apt-get update -qq; "
        f"sudo DEBIAN_FRONTEND=noninteractive apt-get install -qq {' '.join(packages)} >/dev/null; "
        "sudo mkdir -p /opt/bare; sudo tar -xf wheels.tar -C /opt/bare; "
        "sudo python3 -m venv /opt/bare/venv; "
        f"sudo /opt/bare/venv/bin/pip install -q --no-index --find-links {wheel_dir} "
        f"-r {wheel_dir}/requirements.txt"
    )
    deploy["bare_s"] = round(time.monotonic() - started, 1)
    deploy["bare_packages"] = packages
    say(f"  bare install: {deploy['bare_s']:.1f} s")
    remove_bare_host()
    return host


def instance_releases(host: Host) -> set[str]:
    """The releases the enabled app instances answer with (their /health/live releaseId)."""
    wants = host.ssh("ls /etc/systemd/system/multi-user.target.wants")
    ports = re.findall(r"@(\d+)\.service", wants)
    answers = [host.ssh(f"curl -fsS http://127.0.0.1:{port}/health/live") for port in ports]
    return {json.loads(answer)["releaseId"] for answer in answers}


def measure_release(host: Host, deploy: dict[str, Any], deploy_vars: Sequence[str]) -> None:
    """`make release` of a one-line code change: build, ship, migrate, gate on a canary and
    roll every instance. Checks that every instance runs the new release afterwards."""
    before = instance_releases(host)
    with tempfile.TemporaryDirectory(prefix="bench-release-") as folder:
        source = Path(folder) / "app"
        shutil.copytree(REPO / "app", source, ignore=shutil.ignore_patterns("__pycache__"))
        with (source / "main.py").open("a") as main:
            main.write(f"# a one-line change, {time.time_ns()}\n")
        seconds, recap = playbook(
            "ansible/release.yml", *deploy_vars, "-e", f"app_source_dir={source}"
        )
    after = instance_releases(host)
    if len(after) != 1 or after == before:
        raise RuntimeError(f"make release did not roll every instance: {before} -> {after}")
    deploy["release_s"] = round(seconds, 1)
    deploy["release_slowest"] = slowest_tasks(recap)
    say(f"  make release (one-line change): {seconds:.1f} s, every instance on {after.pop()}")
