"""Prints the CPU seconds used so far by each part of the stack on this host, as JSON.

Run on the host by bench/run.py before and after each load run: the difference, per
request, shows where the CPU goes (nginx, the app, PostgreSQL, the seed's pattern).
Exited children count too (PostgreSQL forks a backend per connection of the seed's
pattern), through the parent's cutime and cstime.
"""

import json
import os

PARTS = {"nginx": "nginx", "main:app": "app", "baseline:app": "baseline", "postgres": "postgresql"}


def part(command: str) -> str | None:
    for marker, name in PARTS.items():
        if command.startswith(marker) or f" {marker}" in command:
            return name
    return None


def cpu_seconds() -> dict[str, float]:
    ticks = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = part(command)
        if name:
            # utime, stime, cutime, cstime
            used[name] = used.get(name, 0) + sum(int(f) for f in fields[11:15]) / ticks
    return used


if __name__ == "__main__":
    print(json.dumps(cpu_seconds()))
