"""Prints the CPU seconds used so far by each part of the stack on this host, as JSON.

Run on the host by bench/run.py before and after each load run: the difference, per
request, shows where the CPU goes (nginx, the app, PostgreSQL, the seed's pattern).
Exited children count too (PostgreSQL forks a backend per connection of the seed's
pattern), through the parent's cutime and cstime.
"""

import json
import os


def part(command: str) -> str | None:
    """The part of the stack a process belongs to, by its command line."""
    program = command.split(" ", 1)[0]
    if program.startswith("nginx"):
        return "nginx"
    if "baseline:app" in command:
        return "baseline"
    if "main:app" in command:
        return "app"
    # The postmaster ("/usr/lib/postgresql/15/bin/postgres -D ...") and its backends
    # ("postgres: 15/main: ..."); exited backends count in the postmaster's cutime.
    if program.startswith("postgres") or program.endswith("/postgres"):
        return "postgresql"
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
