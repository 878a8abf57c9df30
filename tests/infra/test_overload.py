"""Overload through nginx: a bounded run at four times what the host serves. Every answer is a
2xx, a 429 or a 503 (the app's bounded wait, core/admission.py), never a 502/504 (nginx waits
longer than the app does); the 503s come within the pool timeout and a margin; the app's
memory stays flat; and a PUT whose client gave up never lands after a newer PUT.

The load runs on the host itself (overload_client.py: many loopback addresses, so that each is
a client of its own for nginx's per-client limits), while the app's instances are held to a
small CPU quota: the host's capacity is then small enough for one Python process to offer four
times as much, and is measured first, under the same quota, by the same generator.
"""

import json
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from hostcheck import ApiKeys, Setting
from loadgen import instances_rss_kib, stored_messages

pytestmark = [pytest.mark.destructive, pytest.mark.usefixtures("single_host")]

GENERATOR = Path(__file__).with_name("overload_client.py")
CPU_QUOTA = "25%"  # of one core, per instance, for the run
MEASURE_SECONDS, OVERLOAD_SECONDS, FACTOR = 6, 20, 4
# The app's wait for a turn (DATABASE_POOL_TIMEOUT, its default), and what may come on top
# (nginx, TLS, a host shared with other runs).
POOL_TIMEOUT, MARGIN = 5.0, 3.0


@contextmanager
def held_to_a_cpu_quota(host: Any, units: list[str]) -> Iterator[None]:
    for unit in units:
        host.check_output("systemctl set-property --runtime %s CPUQuota=%s", unit, CPU_QUOTA)
    try:
        yield
    finally:
        for unit in units:
            host.run(
                "systemctl set-property --runtime %s CPUQuota= && systemctl revert %s", unit, unit
            )


def generate(host: Any, setting: Setting, mode: str, path: str, seconds: int, amount: float) -> Any:
    name, port = str(setting("nginx_server_name")), str(setting("nginx_https_port"))
    out = host.check_output(
        "python3 /tmp/overload_client.py %s %s %s %s %s %s",
        mode, name, port, path, str(seconds), str(amount),
    )  # fmt: skip
    return json.loads(out)


@contextmanager
def in_the_background(
    function: Any, *arguments: Any
) -> Iterator[tuple[dict[str, Any], threading.Thread]]:
    """Runs function(*arguments) in a thread: its result lands in the dict as "value"."""
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(value=function(*arguments)))
    thread.start()
    try:
        yield result, thread
    finally:
        thread.join()


def put_after_giving_up(
    page_url: str, tls_context: Any, api_keys: ApiKeys, location: str
) -> tuple[int, str]:
    """PUTs whose client gives up after 0.1 s, until one does (the older PUT), then a PUT
    that waits for its answer (the newer one): how many gave up, and the newer text."""
    gave_up, newer = 0, f"newer {time.time_ns()}"
    with httpx.Client(
        base_url=page_url, verify=tls_context, timeout=0.1, headers=api_keys.header()
    ) as impatient:
        for attempt in range(30):
            try:
                impatient.put(location, json={"message": f"older {attempt}"})
            except httpx.TimeoutException:
                gave_up += 1
                break
            time.sleep(0.1)  # under the per-client rate limit
    with httpx.Client(
        base_url=page_url, verify=tls_context, timeout=30, headers=api_keys.header()
    ) as patient:
        for _ in range(60):
            if patient.put(location, json={"message": newer}).status_code == 200:
                return gave_up, newer
            time.sleep(0.5)
    pytest.fail("the newer PUT never got through")


@pytest.mark.usefixtures("spends_rate_budget")
def test_four_times_the_capacity_gets_fast_valid_answers(
    host: Any,
    writer: httpx.Client,
    page_url: str,
    tls_context: Any,
    api_keys: ApiKeys,
    setting: Setting,
    ports: list[int],
) -> None:
    name = setting("app_name")
    units = [f"{name}@{port}.service" for port in ports]
    created = writer.post("/messages", json={"message": "read under overload"})
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    host.ansible("copy", f"src={GENERATOR} dest=/tmp/overload_client.py mode=0644", check=False)

    with held_to_a_cpu_quota(host, units):
        measured = generate(host, setting, "closed", location, MEASURE_SECONDS, 32)
        capacity = measured["outcomes"].get("200", 0) / MEASURE_SECONDS
        assert capacity > 0, measured
        rate = math.ceil(FACTOR * capacity)
        samples = []
        with in_the_background(
            generate, host, setting, "open", location, OVERLOAD_SECONDS, rate
        ) as (overload, running):
            time.sleep(2)
            probe = put_after_giving_up(page_url, tls_context, api_keys, location)
            while running.is_alive():
                samples.append(instances_rss_kib(host, name, ports))
                time.sleep(1)
    time.sleep(POOL_TIMEOUT + MARGIN)  # whatever the older PUT was to do, it has done
    run = overload["value"]
    outcomes, busy = run["outcomes"], run["busy_seconds"]
    print(f"capacity {capacity:.0f}/s, offered {rate}/s: {outcomes}")

    assert set(outcomes) <= {"200", "429", "503"}, outcomes
    assert outcomes.get("503"), f"not overloaded at {rate}/s: {outcomes}"
    p99 = busy[min(len(busy) - 1, int(len(busy) * 0.99))]
    assert p99 <= POOL_TIMEOUT + MARGIN, f"p99 of the 503s: {p99} s"
    quarter = max(1, len(samples) // 4)
    first, last = sum(samples[:quarter]) / quarter, sum(samples[-quarter:]) / quarter
    assert last <= first * 1.10, f"app memory grew from {first:.0f} to {last:.0f} KiB"
    gave_up, newer = probe
    assert gave_up, "no PUT's client gave up: the host was not overloaded"
    message_id = int(location.rsplit("/", 1)[1])
    assert stored_messages(host, [message_id]) == {message_id: newer}
    writer.delete(location)
