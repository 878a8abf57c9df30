"""Load: wrk inside the deployed host, against nginx over HTTP and HTTPS, the app's
instances directly, and the seed's pattern (bench/baseline.py), for every endpoint at
several connection counts, with the CPU each part of the stack used per response
(bench/cpu.py). bench/bench.yml prepares the host first.
"""

import json
import re
import shlex
from collections.abc import Sequence
from typing import Any

from hosts import Host, playbook, say
from schema import TARGET_CONNECTIONS

# On the host, as bench/bench.yml makes it (this module gives it these values).
BENCH_DIR = "/opt/bench"
# The API key the POSTs write with, put there by bench/bench.yml (readable by the ssh user).
KEY_FILE = f"{BENCH_DIR}/api-key"
SEED_ROWS = 10000
BASELINE_PORT = 8100
WRK_TIMEOUT = "30s"


def prepare(host: Host, deploy_vars: Sequence[str]) -> dict[str, str]:
    """bench/bench.yml with the deploy's variables: wrk, the seed rows and the seed's
    pattern on the host. Returns where the deploy put the app (``name``,
    ``environment_file``, ``virtualenv``), as the play worked it out."""
    bench_vars = {
        "bench_dir": BENCH_DIR,
        "bench_rows": SEED_ROWS,
        "bench_baseline_port": BASELINE_PORT,
    }
    playbook("bench/bench.yml", *deploy_vars, "-e", json.dumps(bench_vars))
    return dict(json.loads(host.ssh(f"cat {BENCH_DIR}/app.json")))


def instance_ports(host: Host, app: dict[str, str]) -> list[int]:
    """The ports of the app's instances, from their units (NAME@PORT.service)."""
    units = host.ssh(f"systemctl list-units --plain --no-legend {shlex.quote(app['name'] + '@*')}")
    return sorted(
        int(port) for port in re.findall(rf"{re.escape(app['name'])}@(\d+)\.service", units)
    )


def wrk_command(url: str, endpoint: str, connections: int, duration: int, threads: int) -> str:
    """A wrk run with bench.lua, which prints its results as one BENCH_JSON line."""
    mode = {"get_by_id": f"get_by_id {SEED_ROWS}", "post": f"post {KEY_FILE}"}.get(
        endpoint, endpoint
    )
    return (
        f"wrk -t{threads} -c{connections} -d{duration}s --timeout {WRK_TIMEOUT} --latency "
        f"-s {BENCH_DIR}/bench.lua {shlex.quote(url)} -- {mode}"
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
    cpu_before = json.loads(host.ssh(f"sudo python3 {BENCH_DIR}/cpu.py"))
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
    cpu_after = json.loads(host.ssh(f"sudo python3 {BENCH_DIR}/cpu.py"))
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
    app: dict[str, str],
    results: dict[str, Any],
    connection_counts: list[int],
    duration: int,
    endpoints: Sequence[str],
    paths: Sequence[str],
    target_rounds: int,
) -> None:
    instances = instance_ports(host, app)
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
