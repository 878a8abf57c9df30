"""Helpers shared by the host checks (the fixtures are in conftest.py)."""

import time
from collections.abc import Callable
from typing import Any

Setting = Callable[[str], Any]  # the `setting` fixture: a host variable by name

LOOPBACK = {"127.0.0.1", "::1"}


def wait_for(condition: Callable[[], bool], seconds: float = 15) -> float | None:
    """Seconds until condition() held, or None if it did not within `seconds`."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if condition():
            return time.monotonic() - start
        time.sleep(0.1)
    return None


def listening_addresses(host: Any, port: int) -> set[str]:
    """Local addresses with a TCP listener on port, e.g. {"127.0.0.1", "::1"}."""
    addresses = set()
    for spec in host.socket.get_listening_sockets():
        if spec.startswith("tcp://") and spec.rsplit(":", 1)[1] == str(port):
            addresses.add(spec[len("tcp://") :].rsplit(":", 1)[0].strip("[]"))
    return addresses
