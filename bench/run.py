#!/usr/bin/env python3
"""`make bench`: the deployed stack measured against the seed's pattern and its own limits.

One run, on this machine, on hosts it creates and tears down itself:

1. deploy speed: a fresh deploy on a new local host (192.168.56.10), a no-op redeploy
   next to the floor of an Ansible round (ping + facts), and, on a second new host
   (192.168.56.11), a bare install of the same packages and wheels;
2. load: wrk inside the deployed host against nginx over HTTP and HTTPS, the app
   instances directly, and the seed's pattern (bench/baseline.py), for GET by id,
   GET a page and POST, at several connection counts;
3. a report: bench/results/<date>.md, .json and .png (bench/report.py).

Ratios, not absolute times, are the results: every compared number comes from the same
run on the same host. Run it with `make bench`; `bench/run.py --help` lists the options.
"""

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import report

REPO = Path(__file__).resolve().parent.parent
INVENTORY = "ansible/inventories/local"
LOCAL_IP = "192.168.56.10"
BARE_IP = "192.168.56.11"
BARE_CONTAINER = "fastapi-postgres-bench-bare"
IMAGE = "fastapi-postgres/bookworm"
# The flags that boot systemd in a container here (see the Vagrantfile).
CONTAINER_FLAGS = [
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--cap-drop", "SYS_MODULE",
    "--security-opt", "seccomp=unconfined", "--cgroupns=host",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock",
    "--stop-signal", "SIGRTMIN+3",
]  # fmt: skip
VAGRANT_KEY = "/usr/share/rubygems-integration/all/gems/vagrant-2.3.4/keys/vagrant"
SSH_OPTIONS = [
    "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR", "-o", "ControlMaster=auto", "-o", "ControlPath=/tmp/bench-ssh-%C",
    "-o", "ControlPersist=120",
]  # fmt: skip

ENDPOINTS = ("get_by_id", "get_page", "post")
PATHS = ("nginx-http", "nginx-https", "direct", "baseline")
SEED_ROWS = 10000
BASELINE_PORT = 8100
WRK_TIMEOUT = "30s"
# The connection count of the targets' comparisons.
TARGET_CONNECTIONS = 64
# The packages warmed in the package proxy before either install is timed, so the
# first of the two does not pay for the second's downloads.
WARM_PACKAGES = "postgresql nginx nftables python3-venv python3-cryptography python3-psycopg2 wrk"

START = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - START:6.0f}s] {message}", flush=True)


def run(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO, text=True, check=True, **kwargs)


def output(argv: Sequence[str]) -> str:
    return run(argv, capture_output=True).stdout.strip()


def require_local(address: str) -> None:
    """Refuse to send anything to an address that is not on a local bridge."""
    route = subprocess.run(["ip", "route", "get", address], capture_output=True, text=True)
    if route.returncode != 0 or " via " in route.stdout:
        sys.exit(f"error: {address} is not on a local bridge (no test host up): not sending to it")


class Host:
    """A test host reached over ssh as the vagrant user."""

    def __init__(self, address: str, key: str) -> None:
        self.address = address
        self.key = key

    def ssh(self, command: str, check: bool = True) -> str:
        require_local(self.address)
        argv = ["ssh", *SSH_OPTIONS, "-i", self.key, f"vagrant@{self.address}", command]
        done = subprocess.run(argv, text=True, capture_output=True)
        if check and done.returncode != 0:
            raise RuntimeError(f"{command!r} on {self.address} failed:\n{done.stderr[-2000:]}")
        return done.stdout

    def send(self, local: Path, remote: str) -> None:
        require_local(self.address)
        argv = ["scp", "-q", *SSH_OPTIONS, "-i", self.key, str(local)]
        run([*argv, f"vagrant@{self.address}:{remote}"])


def playbook(*arguments: str) -> tuple[float, str]:
    """Run ansible-playbook on the local inventory: its wall time and its recap
    (with the time of each task, slowest first)."""
    started = time.monotonic()
    done = subprocess.run(
        ["ansible-playbook", "-i", INVENTORY, *arguments],
        cwd=REPO,
        text=True,
        capture_output=True,
        env={**os.environ, "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"},
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-6000:] + done.stderr[-2000:])
        raise RuntimeError(f"ansible-playbook {' '.join(arguments)} failed")
    recap = done.stdout[done.stdout.rfind("PLAY RECAP") :]
    return seconds, recap


def recap_count(recap: str, key: str) -> int:
    return sum(int(n) for n in re.findall(rf"\b{key}=(\d+)", recap))


def slowest_tasks(recap: str, count: int = 8) -> list[tuple[str, float]]:
    """The slowest tasks of a run, from the profile_tasks callback's summary."""
    rows = re.findall(r"^(\S.*?) -+ (\d+\.\d+)s$", recap, flags=re.MULTILINE)
    return [(name, float(seconds)) for name, seconds in rows[:count]]


# ---------------------------------------------------------------- hosts


def docker_network() -> str:
    """The docker network that Vagrant made for 192.168.56.0/24."""
    for name in output(["docker", "network", "ls", "--format", "{{.Name}}"]).split():
        subnets = output(
            [
                "docker",
                "network",
                "inspect",
                "--format",
                "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
                name,
            ]
        )
        if "192.168.56.0/24" in subnets.split():
            return name
    raise RuntimeError("no docker network for 192.168.56.0/24: is the local host up?")


def remove_bare_host() -> None:
    subprocess.run(["docker", "rm", "--force", BARE_CONTAINER], capture_output=True)


def create_bare_host() -> Host:
    remove_bare_host()
    run(
        ["docker", "run", "--detach", "--name", BARE_CONTAINER, "--hostname", "bare",
         "--network", docker_network(), "--ip", BARE_IP, *CONTAINER_FLAGS,
         IMAGE, "/lib/systemd/systemd"],
        capture_output=True,
    )  # fmt: skip
    # ssh refuses the package's world-readable copy of the key.
    key = REPO / ".vagrant/bench-bare-key"
    key.write_bytes(Path(VAGRANT_KEY).read_bytes())
    key.chmod(0o600)
    host = Host(BARE_IP, str(key))
    for _ in range(60):
        try:
            host.ssh("true")
            return host
        except RuntimeError:
            time.sleep(1)
    raise RuntimeError(f"the bare host at {BARE_IP} never answered ssh")


@contextmanager
def hosts_torn_down() -> Iterator[None]:
    """Stale hosts removed before, and every host removed after, also on failure."""
    remove_bare_host()
    run(["scripts/local-host.sh", "down"])
    try:
        yield
    finally:
        say("tearing the hosts down")
        remove_bare_host()
        run(["scripts/local-host.sh", "down"])


# ---------------------------------------------------------------- deploy speed


def measure_deploy(results: dict[str, Any], extra_vars: list[str]) -> Host:
    say("bringing up a new local host")
    run(["scripts/local-host.sh", "create"], capture_output=True)
    host = Host(LOCAL_IP, str(REPO / ".vagrant/local-vm-key"))
    bare = create_bare_host()
    baseline_packages = set(bare.ssh("apt-mark showmanual").split())

    say("warming the package proxy (untimed)")
    bare.ssh(
        "sudo apt-get update -qq && sudo apt-get install -qq --download-only "
        f"{WARM_PACKAGES} >/dev/null && sudo apt-get clean && sudo rm -rf /var/lib/apt/lists/*"
    )
    say("building the wheels and archives on the controller (untimed)")
    playbook("ansible/deploy.yml", "--tags", "app-build", *extra_vars)

    say("fresh deploy")
    fresh, recap = playbook("ansible/deploy.yml", *extra_vars)
    deploy = results["deploy"]
    deploy["fresh_s"] = round(fresh, 1)
    deploy["fresh_tasks"] = recap_count(recap, "ok")
    deploy["fresh_slowest"] = slowest_tasks(recap)
    say(f"  fresh deploy: {fresh:.1f} s, {recap_count(recap, 'changed')} changed")

    noops, floors = [], []
    for attempt in range(2):
        seconds, recap = playbook("ansible/deploy.yml", *extra_vars)
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

    packages = sorted(set(host.ssh("apt-mark showmanual").split()) - baseline_packages)
    wheel_sets = sorted(
        (REPO / "build/wheels").glob("*.tar"), key=lambda path: path.stat().st_mtime
    )
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


# ---------------------------------------------------------------- load


def wrk_command(url: str, endpoint: str, connections: int, duration: int, threads: int) -> str:
    """A wrk run with bench.lua, which prints its results as one BENCH_JSON line."""
    mode = f"get_by_id {SEED_ROWS}" if endpoint == "get_by_id" else endpoint
    return (
        f"wrk -t{threads} -c{connections} -d{duration}s --timeout {WRK_TIMEOUT} --latency "
        f"-s /opt/bench/bench.lua {shlex.quote(url)} -- {mode}"
    )


def wrk_results(host: Host, command: str, runs: int = 1) -> list[dict[str, Any]]:
    """Run a command of ``runs`` wrk runs on the host: each run's BENCH_JSON results."""
    lines = [line for line in host.ssh(command).splitlines() if line.startswith("BENCH_JSON ")]
    if len(lines) != runs:
        raise RuntimeError(f"expected {runs} wrk results from {command}, got {len(lines)}")
    return [dict(json.loads(line.removeprefix("BENCH_JSON "))) for line in lines]


def wrk(
    host: Host, url: str, endpoint: str, connections: int, duration: int, threads: int
) -> dict[str, Any]:
    return wrk_results(host, wrk_command(url, endpoint, connections, duration, threads))[0]


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Parallel wrk runs (one per instance) as one: counts summed, p50 weighted by
    requests, p99 the worst of them."""
    if len(runs) == 1:
        return runs[0]
    requests = sum(r["requests"] for r in runs) or 1
    return {
        "requests": sum(r["requests"] for r in runs),
        "duration_us": max(r["duration_us"] for r in runs),
        "errors": {k: sum(r["errors"][k] for r in runs) for k in runs[0]["errors"]},
        "latency_us": {
            "p50": sum(r["latency_us"]["p50"] * r["requests"] for r in runs) / requests,
            "p99": max(r["latency_us"]["p99"] for r in runs),
        },
    }


def measure_one(
    host: Host, path: str, endpoint: str, connections: int, duration: int, instances: list[int]
) -> dict[str, Any]:
    threads = min(2, connections)
    cpu_before = json.loads(host.ssh("sudo python3 /opt/bench/cpu.py"))
    if path == "nginx-http":
        raw = wrk(host, "http://127.0.0.1", endpoint, connections, duration, threads)
    elif path == "nginx-https":
        raw = wrk(host, "https://127.0.0.1", endpoint, connections, duration, threads)
    elif path == "baseline":
        raw = wrk(
            host, f"http://127.0.0.1:{BASELINE_PORT}", endpoint, connections, duration, threads
        )
    else:
        # Straight to every instance at once, the connections shared out: one wrk
        # each, started together over one ssh command.
        targets = instances[: max(1, min(len(instances), connections))]
        share = connections // len(targets)
        commands = [
            wrk_command(f"http://127.0.0.1:{port}", endpoint, share, duration, 1)
            for port in targets
        ]
        script = " & ".join(commands) + " & wait"
        raw = combine(wrk_results(host, script, len(targets)))
    cpu_after = json.loads(host.ssh("sudo python3 /opt/bench/cpu.py"))
    errors = raw["errors"]
    failed = errors["status"] + errors["timeout"]
    ok = max(0, raw["requests"] - failed)
    seconds = raw["duration_us"] / 1e6
    # CPU milliseconds per successful response, by part of the stack.
    cpu_ms = {
        part: round((cpu_after[part] - cpu_before.get(part, 0)) * 1000 / max(ok, 1), 3)
        for part in cpu_after
        if cpu_after[part] > cpu_before.get(part, 0)
    }
    return {
        "path": path,
        "endpoint": endpoint,
        "connections": connections,
        "requests": raw["requests"],
        "ok": ok,
        "errors": failed + errors["connect"] + errors["read"] + errors["write"],
        "duration_s": round(seconds, 2),
        "rps": round(ok / seconds, 1),
        "p50_ms": round(raw["latency_us"]["p50"] / 1000, 2),
        "p99_ms": round(raw["latency_us"]["p99"] / 1000, 2),
        "cpu_ms_per_request": cpu_ms,
    }


def measure_load(
    host: Host,
    results: dict[str, Any],
    connection_counts: list[int],
    duration: int,
    endpoints: Sequence[str],
    paths: Sequence[str],
    target_rounds: int,
) -> None:
    instances = sorted(
        int(port)
        for port in re.findall(
            r"messages@(\d+)\.service",
            host.ssh("systemctl list-units --plain --no-legend 'messages@*'"),
        )
    )
    # A path that does not answer 200 here would measure redirects or errors.
    for url in (
        "http://127.0.0.1/messages/1",
        "https://127.0.0.1/messages/1",
        f"http://127.0.0.1:{BASELINE_PORT}/messages/1",
    ):
        status = host.ssh(f"curl -ks -o /dev/null -w '%{{http_code}}' {url}")
        if status != "200":
            raise RuntimeError(
                f"{url} answered {status}, not 200: is the bench configuration deployed?"
            )
    say("warming up every path (untimed)")
    for path in paths:
        measure_one(host, path, "get_by_id", 16, 2, instances)
    total = len(endpoints) * len(connection_counts) * len(paths) + target_rounds * len(paths)
    done = 0
    for endpoint in endpoints:
        for connections in connection_counts:
            # The compared paths back to back, so they see the same machine.
            for path in paths:
                entry = measure_one(host, path, endpoint, connections, duration, instances)
                results["load"].append(entry)
                done += 1
                errors = f", {entry['errors']} errors" if entry["errors"] else ""
                say(
                    f"  [{done}/{total}] {endpoint:9} {path:11} c={connections:<3} "
                    f"{entry['rps']:8.0f} rps  p50 {entry['p50_ms']:7.1f} ms"
                    f"  p99 {entry['p99_ms']:7.1f} ms{errors}"
                )
    # The targets' cell again, every path back to back in each round: the report
    # takes the median ratio, as one 5 s run per path swings by 15 % on a busy machine.
    results["target_rounds"] = []
    for round_number in range(target_rounds):
        sample = {}
        for path in paths:
            sample[path] = measure_one(
                host, path, "get_by_id", TARGET_CONNECTIONS, duration, instances
            )
            done += 1
        results["target_rounds"].append(sample)
        rates = ", ".join(f"{path} {entry['rps']:.0f}" for path, entry in sample.items())
        round_name = f"GET by id c={TARGET_CONNECTIONS} round {round_number + 2}"
        say(f"  [{done}/{total}] {round_name}: {rates} rps")


# ---------------------------------------------------------------- report


def describe_machine(host: Host) -> tuple[dict[str, Any], dict[str, Any]]:
    with open("/proc/meminfo") as meminfo:
        kib = int(meminfo.readline().split()[1])
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "?")
    os_release = Path("/etc/os-release").read_text().splitlines()
    release = dict(line.split("=", 1) for line in os_release if "=" in line)
    machine = {
        "cores": os.cpu_count(),
        "memory_gib": round(kib / 2**20, 1),
        "cpu": cpu,
        "kernel": os.uname().release,
        "host_os": release.get("PRETTY_NAME", "").strip('"'),
    }
    pip_show = host.ssh("/opt/messages/current/venv/bin/pip list --format=json 2>/dev/null")
    python_packages = {p["name"].lower(): p["version"] for p in json.loads(pip_show)}
    versions = {
        "nginx": host.ssh("/usr/sbin/nginx -v 2>&1").strip().split("/")[-1],
        "postgresql": host.ssh("psql --version").split()[-1],
        "python": host.ssh("python3 --version").split()[-1],
        "uvicorn": python_packages.get("uvicorn", "?"),
        "fastapi": python_packages.get("fastapi", "?"),
        "psycopg2": python_packages.get("psycopg2-binary", python_packages.get("psycopg2", "?")),
        "wrk": host.ssh("wrk -v 2>&1 | head -n 1", check=False).split()[1],
        "ansible-core": output(["ansible", "--version"]).splitlines()[0].split()[-1].rstrip("]"),
        "guest": host.ssh(". /etc/os-release; echo $PRETTY_NAME").strip(),
    }
    return machine, versions


def deployed_settings(host: Host) -> dict[str, str]:
    """The tunables as the host has them, read from the files the deploy wrote."""
    commands = {
        "app instances": "systemctl list-units --plain --no-legend 'messages@*' | wc -l",
        "pool size": "sudo sed -n 's/^DATABASE_POOL_SIZE=//p' /etc/messages/messages.env",
        "app access log": "sudo sed -n 's/^ACCESS_LOG=//p' /etc/messages/messages.env",
        "nginx upstream keepalive": "grep -ho '^ *keepalive [0-9]*' /etc/nginx/sites-enabled/*",
        "nginx worker_processes": "grep -ho '^worker_processes [a-z0-9]*' /etc/nginx/nginx.conf",
    }
    settings = {}
    for name, command in commands.items():
        value = host.ssh(command, check=False).split()
        settings[name] = value[-1].strip('"') if value else "?"
    return settings


def write_report(results: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / results["date"][:10]
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    markdown = report.render(results)
    stem.with_suffix(".md").write_text(markdown)
    report.chart(results, stem.with_suffix(".png"))
    return stem.with_suffix(".md")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--connections", default="1,16,64,256", help="connection counts (default: %(default)s)"
    )
    parser.add_argument(
        "--duration", type=int, default=5, help="seconds per load run (default: %(default)s)"
    )
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS), help="default: %(default)s")
    parser.add_argument("--paths", default=",".join(PATHS), help="default: %(default)s")
    parser.add_argument(
        "--target-rounds",
        type=int,
        default=4,
        help="more rounds of GET by id at 64 connections, for the targets (default: %(default)s)",
    )
    parser.add_argument(
        "--no-deploy-timing", action="store_true", help="skip the deploy speed runs"
    )
    parser.add_argument(
        "-e",
        "--extra-vars",
        action="append",
        default=[],
        help="more deploy variables, as for ansible-playbook -e",
    )
    parser.add_argument(
        "--out", default=str(REPO / "bench/results"), help="report folder (default: %(default)s)"
    )
    options = parser.parse_args()

    extra_vars = ["-e", "@bench/vars.yml"]
    for value in options.extra_vars:
        extra_vars += ["-e", value]
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load": [],
        "deploy": {},
        "settings": {
            "duration_s": options.duration,
            "extra_vars": " ".join(options.extra_vars) or "none",
        },
    }
    with hosts_torn_down():
        if options.no_deploy_timing:
            say("bringing up a new local host and deploying")
            run(["scripts/local-host.sh", "create"], capture_output=True)
            playbook("ansible/deploy.yml", *extra_vars)
            host = Host(LOCAL_IP, str(REPO / ".vagrant/local-vm-key"))
        else:
            host = measure_deploy(results, extra_vars)
        say("preparing the load runs: wrk, seed rows, the seed's pattern (bench/bench.yml)")
        playbook("bench/bench.yml")
        results["machine"], results["versions"] = describe_machine(host)
        results["settings"].update(deployed_settings(host))
        measure_load(
            host,
            results,
            [int(c) for c in options.connections.split(",")],
            options.duration,
            options.endpoints.split(","),
            options.paths.split(","),
            options.target_rounds,
        )
    path = write_report(results, Path(options.out))
    say(f"report: {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    print()
    print("\n".join(report.targets(results)))
    if results["deploy"].get("noop_changed"):
        print(
            f"FAIL: the no-op redeploy changed {results['deploy']['noop_changed']} tasks",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
