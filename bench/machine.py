"""What the results record about the run: the machine, the versions of the stack, and the
tunables as the deployed host has them (read from the files the deploy wrote there).
"""

import json
import os
import shlex
from pathlib import Path
from typing import Any

from hosts import Host, output


def describe_machine(host: Host, app: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
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
    pip_show = host.ssh(f"{shlex.quote(app['virtualenv'])}/bin/pip list --format=json 2>/dev/null")
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


def deployed_settings(host: Host, app: dict[str, str]) -> dict[str, str]:
    """The tunables as the host has them, read from the files the deploy wrote."""
    units = shlex.quote(app["name"] + "@*")
    environment = shlex.quote(app["environment_file"])
    commands = {
        "app instances": f"systemctl list-units --plain --no-legend {units} | wc -l",
        "pool size": f"sudo sed -n 's/^DATABASE_POOL_SIZE=//p' {environment}",
        "app access log": f"sudo sed -n 's/^ACCESS_LOG=//p' {environment}",
        "nginx upstream keepalive": "grep -ho '^ *keepalive [0-9]*' /etc/nginx/sites-enabled/*",
        "nginx worker_processes": "grep -ho '^worker_processes [a-z0-9]*' /etc/nginx/nginx.conf",
    }
    settings = {}
    for name, command in commands.items():
        value = host.ssh(command, check=False).split()
        settings[name] = value[-1].strip('"') if value else "?"
    return settings
