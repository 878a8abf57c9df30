"""Breaking things on purpose while a bounded load keeps going, then checking what
the clients saw and what the database holds: every answer is one the test allows, and
every write answered with a 2xx is in the database. Traffic goes only to the test host.
(The reboot: test_reboot.py.)"""

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import httpx
import pytest
from deploys import invocations, journal_lines, playbook
from hostcheck import (
    ApiKeys,
    Setting,
    app_ports,
    controller_address,
    host_setting,
    listening_addresses,
    wait_for,
)
from loadgen import (
    LOAD_THREADS,
    POST_UNANSWERED,
    Load,
    background_load,
    instances_rss_kib,
    ready,
)

# Stops services, floods, redeploys: only on hosts made for testing (see `make verify`).
pytestmark = [pytest.mark.destructive, pytest.mark.usefixtures("single_host")]


def test_postgresql_outage_under_load(
    host: Any,
    https: httpx.Client,
    page_url: str,
    tls_context: Any,
    setting: Setting,
    api_keys: ApiKeys,
) -> None:
    port = int(setting("postgresql_port"))
    with background_load(page_url, tls_context, api_keys.valid) as (load, started):
        time.sleep(3)
        stopped_at = time.monotonic() - started
        host.check_output("systemctl stop postgresql")
        assert wait_for(lambda: not listening_addresses(host, port)) is not None
        readiness_during_outage = https.get("/health/ready")
        time.sleep(10)
        host.check_output("systemctl start postgresql")
        back_at = time.monotonic() - started
        recovered_in = wait_for(lambda: ready(https), 5)
        time.sleep(3)
    during = load.between(stopped_at, back_at)
    after = load.between(back_at + (recovered_in or 5) + 0.5, float("inf"))

    assert readiness_during_outage.status_code == 503
    assert "503" in during, "no 503 while PostgreSQL was down"
    assert recovered_in is not None, "not ready within 5 s of PostgreSQL's start"
    every = [outcome for _, outcome in load.outcomes]
    assert "500" not in every
    assert set(every) <= {"200", "201", "503"}, load.counts()
    assert after and set(after) <= {"200", "201"}, after
    assert load.lost_writes(host) == []


def test_nginx_reload_under_load_fails_no_request(
    host: Any, page_url: str, tls_context: Any, api_keys: ApiKeys
) -> None:
    """Requests in flight are answered; a reload closes only idle kept-alive connections, so
    at most each client's one connection per reload goes unanswered, and only a request the
    client sent as it closed, which nginx never read (a POST among them is not in the
    database; a GET or PUT the client sends again)."""
    reloads = 3
    with background_load(page_url, tls_context, api_keys.valid) as (load, _):
        for _ in range(reloads):
            time.sleep(1)
            host.check_output("systemctl reload nginx")
        time.sleep(2)
    counts = load.counts()
    assert {"200", "201"} <= set(counts) <= {"200", "201", POST_UNANSWERED}, counts
    assert load.resent + counts.get(POST_UNANSWERED, 0) <= LOAD_THREADS * reloads, counts
    assert load.unanswered_posts_stored(host) == []
    assert load.lost_writes(host) == []


def test_nginx_restart_under_load_recovers(
    host: Any, https: httpx.Client, page_url: str, tls_context: Any, api_keys: ApiKeys
) -> None:
    with background_load(page_url, tls_context, api_keys.valid, write=False) as (load, started):
        time.sleep(1)
        host.check_output("systemctl restart nginx")
        restarted_at = time.monotonic() - started
        time.sleep(3)
    every = [outcome for _, outcome in load.outcomes]
    assert not [outcome for outcome in every if outcome.startswith("5")], every
    assert set(load.between(restarted_at + 1, float("inf"))) == {"200"}


@pytest.mark.usefixtures("spends_rate_budget")
def test_a_bounded_load_run_has_no_5xx_and_no_memory_growth(
    host: Any,
    page_url: str,
    tls_context: Any,
    setting: Setting,
    ports: list[int],
    api_keys: ApiKeys,
) -> None:
    """LOAD_SECONDS at LOAD_CONNECTIONS (60 s at 64 by default): 429 is allowed, 5xx not."""
    seconds = float(os.environ.get("LOAD_SECONDS", "60"))
    connections = int(os.environ.get("LOAD_CONNECTIONS", "64"))
    name = setting("app_name")
    with httpx.Client(base_url=page_url, verify=tls_context, headers=api_keys.header()) as client:
        location = client.post("/messages", json={"message": "load run"}).headers["location"]
    statuses: dict[str, int] = {}
    lock, started = threading.Lock(), time.monotonic()

    def client_loop() -> None:
        with httpx.Client(base_url=page_url, verify=tls_context, timeout=10) as client:
            while time.monotonic() - started < seconds:
                try:
                    outcome = str(client.get(location).status_code)
                except httpx.HTTPError as error:
                    outcome = type(error).__name__
                with lock:
                    statuses[outcome] = statuses.get(outcome, 0) + 1

    threads = [threading.Thread(target=client_loop) for _ in range(connections)]
    for thread in threads:
        thread.start()
    samples = []
    while time.monotonic() - started < seconds:
        samples.append(instances_rss_kib(host, name, ports))
        time.sleep(seconds / 20)
    for thread in threads:
        thread.join()

    assert statuses.get("200"), statuses
    assert set(statuses) <= {"200", "429"}, statuses
    quarter = max(1, len(samples) // 4)
    first, last = sum(samples[:quarter]) / quarter, sum(samples[-quarter:]) / quarter
    assert last <= first * 1.10, f"app memory grew from {first:.0f} to {last:.0f} KiB"


# --- two deploys that change a setting, under load -----------------------------------------

# Documentation addresses (RFC 5737): what a client may claim to be in X-Forwarded-For.
SPOOFED = ("203.0.113.7", "203.0.113.8", "203.0.113.9")


@dataclass
class Redeploys:
    """What two deploys under load showed: the first turns the app's access log on and
    public reads off (which restarts the instances), the second turns both back (and restarts
    them again)."""

    load: Load
    runs: list["subprocess.CompletedProcess[str]"]
    restarted: list[set[str]]  # per deploy, the units it did not restart
    stops: dict[str, list[str]]  # per unit, what systemd said when it stopped (clean or not)
    env_file_changed: bool  # the first deploy rendered the secret env files anew
    migration_runs: int  # of the schema owner's migration unit, during the deploys
    releases: tuple[list[str], list[str]]  # before and after the first deploy, newest first
    app_log: dict[str, list[str]]  # per marker, the app's log lines for it
    reads_without_public_reads: dict[str, int]  # status of a read without and with a key


@pytest.fixture(scope="module")
def redeploys(
    request: Any, host: Any, groups: set[str], page_url: str, tls_context: Any, api_keys: ApiKeys
) -> Iterator[Redeploys]:
    if not {"db", "app", "web"} <= groups:
        pytest.skip("these faults are staged on a host that carries db, app and web")
    inventory = str(request.config.getoption("ansible_inventory"))
    name, root = host_setting(host, "app_name"), host_setting(host, "app_root")
    units = [f"{name}@{port}.service" for port in app_ports(host)]
    env_file = f"{host_setting(host, 'app_config_dir')}/{name}.env"
    since = host.check_output("date '+%F %T'")
    ids, env_before = [invocations(host, units)], host.file(env_file).sha256sum
    make_old_releases(host, root, int(host_setting(host, "app_keep_releases")) + 2)
    releases_before = releases_by_age(host, root)
    runs, markers = [], {}
    try:
        with background_load(page_url, tls_context, api_keys.valid, seconds=600) as (load, _):
            changed = '{"app_access_log": true, "app_public_reads": false}'
            runs.append(playbook(inventory, "-e", changed, "-vvv", "--diff"))
            ids.append(invocations(host, units))
            reads = reads_with_and_without_a_key(page_url, tls_context, api_keys)
            env_changed = host.file(env_file).sha256sum != env_before
            releases_after = releases_by_age(host, root)
            markers = send_markers(host, page_url, tls_context, api_keys, app_ports(host)[0])
            app_log = {
                marker: wait_for_lines(host, f"{name}@*", since, marker) for marker in markers
            }
            runs.append(playbook(inventory, "-vvv", "--diff"))
            ids.append(invocations(host, units))
    finally:
        host.run("rm -rf %s/releases/old-*", root)
    migration_runs = len(journal_lines(host, f"{name}-migrate.service", since, "^Started "))
    restarted = [{u for u in units if new[u] == old[u]} for old, new in pairwise(ids)]
    stopped = "Deactivated successfully|Failed with result|code=(killed|dumped)"
    stops = {unit: journal_lines(host, unit, since, stopped) for unit in units}
    yield Redeploys(
        load, runs, restarted, stops, env_changed, migration_runs,
        (releases_before, releases_after), app_log, reads,
    )  # fmt: skip


def reads_with_and_without_a_key(
    page_url: str, tls_context: Any, api_keys: ApiKeys
) -> dict[str, int]:
    with httpx.Client(base_url=page_url, verify=tls_context, timeout=10) as client:
        return {
            "without": client.get("/messages?limit=1").status_code,
            "with": client.get("/messages?limit=1", headers=api_keys.header()).status_code,
        }


def make_old_releases(host: Any, root: str, count: int) -> None:
    """Release folders older than any real one (a day apart), for the deploy to prune."""
    for age in range(1, count + 1):
        path = f"{root}/releases/old-{age}"
        host.check_output("mkdir -p %s && touch -d %s %s", path, f"{age + 30} days ago", path)


def releases_by_age(host: Any, root: str) -> list[str]:
    return host.check_output("ls -t %s/releases", root).split()


def send_markers(
    host: Any, page_url: str, tls_context: Any, api_keys: ApiKeys, port: int
) -> dict[str, str]:
    """Requests that claim another client in X-Forwarded-For, each for a path of its own:
    through nginx from the controller, and to an instance from 127.0.0.2 (not trusted) and
    from 127.0.0.1 (trusted: where nginx is). Returns marker -> the spoofed address. (Public
    reads are off: the instances refuse the two without a key, which still logs them; a key
    never goes on a command line on the host.)"""
    stamp = time.time_ns() % 10**12
    markers = {f"/messages/{stamp}{n}": spoofed for n, spoofed in enumerate(SPOOFED)}
    (through_nginx, untrusted, trusted) = markers
    with httpx.Client(base_url=page_url, verify=tls_context, timeout=10) as client:
        headers = {"X-Forwarded-For": SPOOFED[0], **api_keys.header()}
        response = client.get(through_nginx, headers=headers)
        assert response.status_code == 404
    for marker, source in ((untrusted, "127.0.0.2"), (trusted, "127.0.0.1")):
        status = host.check_output(
            "curl -s -o /dev/null -w '%%{http_code}' --interface %s -H %s http://127.0.0.1:%s%s",
            source, f"X-Forwarded-For: {markers[marker]}", str(port), marker,
        )  # fmt: skip
        assert status == "401"
    return markers


def wait_for_lines(host: Any, unit: str, since: str, marker: str) -> list[str]:
    lines: list[str] = []
    wait_for(lambda: bool(lines.extend(journal_lines(host, unit, since, marker)) or lines), 10)
    return lines


def test_a_deploy_that_restarts_the_app_drops_no_request(redeploys: Redeploys, host: Any) -> None:
    """Every request of the load (reads, POSTs and PUTs, which nginx never retries) answered
    2xx while both deploys restarted every instance, and every write is in the database.
    Each instance stopped cleanly: a kill also drops the requests it is serving, which a
    load of 15 r/s catches only when one is in flight at that moment."""
    for run in redeploys.runs:
        assert run.returncode == 0, run.stdout[-3000:]
    assert redeploys.restarted == [set(), set()], "units the deploys did not restart"
    deploys = len(redeploys.runs)
    for unit, lines in redeploys.stops.items():
        clean = [line for line in lines if line.endswith("Deactivated successfully.")]
        assert len(clean) >= deploys and clean == lines, (unit, lines)
    counts = redeploys.load.counts()
    assert counts and set(counts) == {"200", "201"}, counts
    assert redeploys.load.lost_writes(host) == []


def test_secrets_never_reach_the_verbose_output_of_real_deploys(
    redeploys: Redeploys, secrets: list[str]
) -> None:
    """-vvv --diff on runs that render the secret env files anew and run the migrations."""
    assert redeploys.env_file_changed, "the first deploy did not rewrite the env file"
    # Once per deploy (run_once), as the schema's owner (its own unit and env file).
    assert redeploys.migration_runs == len(redeploys.runs), redeploys.migration_runs
    for run in redeploys.runs:
        output = run.stdout + run.stderr
        assert "<<< EXEC" in output or "EXEC " in output, "not -vvv output"
        for index, secret in enumerate(secrets):
            leaked = secret in output  # never `secret in ...` in an assert: pytest would show it
            assert not leaked, f"secret {index} is in the -vvv --diff output"


def test_old_releases_are_kept_for_rollback(redeploys: Redeploys, setting: Setting) -> None:
    before, after = redeploys.releases
    keep = int(setting("app_keep_releases"))
    assert len(before) > keep + 1, before
    # The current release (the newest) and the `keep` newest others stay; older ones go.
    assert after == before[: keep + 1], (before, after)


def test_the_app_sees_each_client_by_its_own_address(redeploys: Redeploys, address: str) -> None:
    """With app_access_log on: uvicorn takes the client from X-Forwarded-For only from a
    trusted proxy (nginx, on 127.0.0.1), and nginx passes the real address, not the client's
    own header."""
    through_nginx, untrusted, trusted = redeploys.app_log.values()
    controller = controller_address(address)
    assert through_nginx and all(f"{controller}:" in line for line in through_nginx), through_nginx
    assert not any(SPOOFED[0] in line for line in through_nginx), through_nginx
    assert untrusted and all("127.0.0.2:" in line for line in untrusted), untrusted
    assert trusted and all(f"{SPOOFED[2]}:" in line for line in trusted), trusted


def test_reads_need_a_key_with_public_reads_off(redeploys: Redeploys) -> None:
    """Through nginx, while app_public_reads was false: 401 without a key, 200 with one."""
    assert redeploys.reads_without_public_reads == {"without": 401, "with": 200}
