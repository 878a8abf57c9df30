"""A bounded background load that counts what the clients were told, for tests that
break things (or release, or roll back) while it runs. Traffic goes only to the test host."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from hostcheck import Setting

# Below nginx's per-client rate limit (20 r/s by default): every answer counts.
LOAD_THREADS = 3
PAUSE = 0.4  # two requests a pause per thread: 15 r/s in all


@dataclass
class Load:
    """What the clients of a background load saw, as (seconds since start, outcome)."""

    outcomes: list[tuple[float, str]] = field(default_factory=list)
    created_ids: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, started: float, outcome: str, created: int | None = None) -> None:
        with self.lock:
            self.outcomes.append((time.monotonic() - started, outcome))
            if created is not None:
                self.created_ids.append(created)

    def between(self, start: float, end: float) -> list[str]:
        return [outcome for at, outcome in self.outcomes if start <= at < end]


@contextmanager
def background_load(
    page_url: str, tls_context: Any, write: bool = True, seconds: float = 120
) -> Iterator[tuple[Load, float]]:
    """Each thread: POST a message (when `write`) and read one, until the block ends (bounded)."""
    load, stop, started = Load(), threading.Event(), time.monotonic()
    with httpx.Client(base_url=page_url, verify=tls_context, timeout=10) as client:
        readable = client.post("/messages", json={"message": "read under load"})
        readable.raise_for_status()

    def client_loop(number: int) -> None:
        with httpx.Client(base_url=page_url, verify=tls_context, timeout=10) as client:
            while not stop.is_set() and time.monotonic() - started < seconds:
                try:
                    if write:
                        response = client.post("/messages", json={"message": f"load {number}"})
                        created = response.json()["id"] if response.status_code == 201 else None
                        load.record(started, str(response.status_code), created)
                    response = client.get(readable.headers["location"])
                    load.record(started, str(response.status_code))
                except httpx.HTTPError as error:
                    load.record(started, type(error).__name__)
                time.sleep(PAUSE)

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(LOAD_THREADS)]
    for thread in threads:
        thread.start()
    try:
        yield load, started
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def ready(https: httpx.Client) -> bool:
    try:
        return https.get("/health/ready").status_code == 200
    except httpx.HTTPError:
        return False


def stored_ids(host: Any, setting: Setting) -> set[int]:
    database = host.ansible.get_variables()["app_database_name"]
    out = host.check_output(
        "runuser -u postgres -- psql -XAtq -d %s -c 'SELECT id FROM messages'", database
    )
    return {int(line) for line in out.split()}
