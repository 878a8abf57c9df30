#!/usr/bin/env python3
"""`make bench`: the deployed stack measured against the seed's pattern and its own limits.

One run, on this machine, on hosts it creates and tears down itself:

1. deploy speed: a fresh deploy on a new local host (the one host of
   ansible/inventories/local), a no-op redeploy next to the floor of an Ansible round
   (ping + facts), and, on a second new host (Vagrant's bench-bare), a bare install of
   the same packages and wheels;
2. load: wrk inside the deployed host against nginx over HTTP and HTTPS, the app
   instances directly, and the seed's pattern (bench/baseline.py), for GET by id,
   GET a page and POST, at several connection counts;
3. a report: bench/results/<date>.md, .json and .png.

Ratios, not absolute times, are the results: every compared number comes from the same
run on the same host. Run it with `make bench`; `bench/run.py --help` lists the options.

The parts: hosts.py (the hosts and the commands that reach them), deploy_timing.py,
load.py (with bench.yml, which prepares the host), machine.py (what the results record
about the run); report.py, ratios.py and chart.py turn the results into the report;
schema.py holds what both sides share.
"""

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chart import chart
from deploy_timing import deploy_arguments, measure_deploy
from hosts import REPO, create_local_host, hosts_torn_down, playbook, say
from load import measure_load, prepare
from machine import deployed_settings, describe_machine
from ratios import targets
from report import render
from schema import ENDPOINTS, PATHS, TARGET_CONNECTIONS


def write_report(results: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / str(results["date"])[:10]
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    stem.with_suffix(".md").write_text(render(results))
    chart(results, stem.with_suffix(".png"))
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
        help=f"more rounds of GET by id at {TARGET_CONNECTIONS} connections, for the targets"
        " (default: %(default)s)",
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

    deploy_vars = deploy_arguments(options.extra_vars)
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
            host = create_local_host()
            playbook("ansible/deploy.yml", *deploy_vars)
        else:
            host = measure_deploy(results, deploy_vars)
        say("preparing the load runs: wrk, seed rows, the seed's pattern (bench/bench.yml)")
        app = prepare(host, deploy_vars)
        results["machine"], results["versions"] = describe_machine(host, app)
        results["settings"].update(deployed_settings(host, app))
        measure_load(
            host,
            app,
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
    print("\n".join(targets(results)))
    if results["deploy"].get("noop_changed"):
        print(
            f"FAIL: the no-op redeploy changed {results['deploy']['noop_changed']} tasks",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
