"""Safe releases, under a bounded load that counts every answer: a good code change rolls
out with no failed request; a broken release is stopped at the gate, marked bad and refused
afterwards, while the clients never notice; a rollback goes back gated; a second run fails
on the deploy lock; a run that stopped after switching `current` is finished by the next.

The releases are copies of the app's code made by the tests; at the end the host runs the
repository's release again, as the deploy left it.
"""

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from deploys import (
    GATE_TIMEOUT,
    ROOT,
    app_copy,
    audit,
    current,
    last_release,
    release,
    release_repository,
    run_playbook,
    running,
)
from hostcheck import ApiKeys, Setting, wait_for
from loadgen import Load, background_load, stored_ids

# Releases, rollbacks, a broken canary: only on hosts made for testing.
pytestmark = [pytest.mark.destructive, pytest.mark.usefixtures("single_host")]


@pytest.fixture(scope="module", autouse=True)
def repository_release_restored(inventory: str) -> Iterator[None]:
    yield
    release_repository(inventory)


def releases_table(inventory: str) -> str:
    run = run_playbook(inventory, "releases.yml")
    assert run.returncode == 0, run.stdout[-3000:]
    return run.stdout


def assert_clients_saw_no_failure(host: Any, setting: Setting, load: Load) -> None:
    outcomes = [outcome for _, outcome in load.outcomes]
    assert outcomes, "the load sent nothing"
    assert set(outcomes) <= {"200", "201"}, {o: outcomes.count(o) for o in set(outcomes)}
    missing = set(load.created_ids) - stored_ids(host, setting)
    assert not missing, f"acknowledged with 201 but lost: {sorted(missing)}"


def test_a_code_change_rolls_out_with_no_failed_request(
    host: Any, inventory: str, page_url: str, tls_context: Any, setting: Setting,
    ports: list[int], tmp_path: Path, api_keys: ApiKeys,
) -> None:  # fmt: skip
    with background_load(page_url, tls_context, api_keys.valid, seconds=300) as (load, _):
        run = release(inventory, app_copy(tmp_path))
    assert run.returncode == 0, run.stdout[-3000:]
    new = last_release(host)
    assert current(host) == new
    assert running(host) == [new] * len(ports)
    assert_clients_saw_no_failure(host, setting, load)


@pytest.mark.parametrize(
    ("change", "failed_check"),
    [
        pytest.param("raise RuntimeError('broken on purpose')\n", "/health/ready", id="import"),
        # Ready, but every write answers 500: only the gate's round trip can tell.
        pytest.param(
            "import crud\ncrud.create_message = lambda *args: 1 / 0\n",
            "POST /messages answers 201",
            id="answers-500",
        ),
    ],
)
def test_a_broken_release_is_stopped_at_the_gate(
    host: Any, inventory: str, page_url: str, tls_context: Any, setting: Setting,
    ports: list[int], tmp_path: Path, change: str, failed_check: str, api_keys: ApiKeys,
) -> None:  # fmt: skip
    before, instances_before = current(host), running(host)
    source = app_copy(tmp_path, change)
    with background_load(page_url, tls_context, api_keys.valid, seconds=300) as (load, _):
        run = release(inventory, source, "-e", GATE_TIMEOUT)
    assert run.returncode != 0, run.stdout[-3000:]
    entry = audit(host)[-1]
    broken = entry["release"]
    assert entry["result"] == "failed", entry
    # One line, naming the release and the check.
    assert entry["reason"].startswith(f"release {broken} failed the gate on the canary"), entry
    assert failed_check in entry["reason"], entry
    assert f"release {broken} failed the gate on the canary" in run.stdout
    assert current(host) == before
    assert running(host) == instances_before
    assert_clients_saw_no_failure(host, setting, load)
    assert re.search(rf"{broken}\s+bad", releases_table(inventory))

    again = release(inventory, source)
    assert again.returncode != 0
    assert audit(host)[-1]["reason"].startswith(f"release {broken} is marked bad")
    assert "Apply the database migrations" not in again.stdout


def test_rollback_goes_back_gated_and_refuses_bad_or_missing_releases(
    host: Any, inventory: str, page_url: str, tls_context: Any, setting: Setting,
    ports: list[int], tmp_path: Path, api_keys: ApiKeys,
) -> None:  # fmt: skip
    first = release(inventory, app_copy(tmp_path / "first"))
    assert first.returncode == 0, first.stdout[-3000:]
    good = last_release(host)
    second = release(inventory, app_copy(tmp_path / "second"))
    assert second.returncode == 0, second.stdout[-3000:]
    left = last_release(host)

    with background_load(page_url, tls_context, api_keys.valid, seconds=300) as (load, _):
        run = run_playbook(inventory, "rollback.yml")
    assert run.returncode == 0, run.stdout[-3000:]
    assert current(host) == good
    assert running(host) == [good] * len(ports)
    assert_clients_saw_no_failure(host, setting, load)
    # The release rolled back from is bad now: neither a rollback nor a deploy brings it back.
    assert re.search(rf"{left}\s+bad\s+\S+ \S+\s+rolled back to {good}", releases_table(inventory))

    for target, refusal in [(left, "is marked bad"), ("0123456789ab", "is not on")]:
        refused = run_playbook(inventory, "rollback.yml", "-e", f"app_rollback_to={target}")
        assert refused.returncode != 0
        assert audit(host)[-1]["reason"].startswith(f"release {target} {refusal}")
        # The refusal lists the releases on the host.
        assert re.search(rf"{good}\s+good\s+\S+ \S+\s+current", refused.stdout), refused.stdout
    assert current(host) == good


def test_a_second_run_fails_on_the_deploy_lock_naming_its_holder(
    host: Any, inventory: str, setting: Setting, tmp_path: Path
) -> None:
    entries_before = len(audit(host))
    lock = f"/run/lock/{setting('app_name')}-deploy"
    first_log = tmp_path / "first.log"
    with first_log.open("w") as output:
        first = subprocess.Popen(
            ["ansible-playbook", "-i", inventory, "ansible/release.yml",
             "-e", f"app_source_dir={app_copy(tmp_path)}"],
            cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            assert wait_for(lambda: host.file(lock).is_directory, 120) is not None, "no lock"
            second = run_playbook(inventory, "release.yml")
        finally:
            first.wait(timeout=600)
    out = first_log.read_text()
    assert first.returncode == 0, out[-3000:]
    assert second.returncode != 0
    # Refused before its first change: the preflight play is the only one it ran.
    assert "PLAY [Release the app's code]" not in second.stdout
    entries = audit(host)[entries_before:]
    assert sorted(entry["result"] for entry in entries) == ["ok", "refused"], entries
    assert all(entry["kind"] == "release" for entry in entries), entries
    refusal = next(entry["reason"] for entry in entries if entry["result"] == "refused")
    holder = r"another run holds the deploy lock of \S+: the release of \S+@\S+ \(pid \d+\)"
    assert re.match(holder, refusal), refusal
    assert not host.file(lock).exists


def test_a_run_stopped_after_the_switch_is_finished_by_the_next(
    host: Any, inventory: str, setting: Setting, ports: list[int], tmp_path: Path
) -> None:
    source = app_copy(tmp_path)
    run = release(inventory, source)
    assert run.returncode == 0, run.stdout[-3000:]
    target = last_release(host)
    before = release(inventory, app_copy(tmp_path / "other"))
    assert before.returncode == 0, before.stdout[-3000:]
    # The state a run killed right after `current` switched leaves: current names the
    # release, every instance still runs the one before.
    host.check_output(
        "ln -sfn %s/releases/%s %s/current", setting("app_root"), target, setting("app_root")
    )
    assert running(host) == [last_release(host)] * len(ports)

    rerun = release(inventory, source)
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    assert current(host) == target
    assert running(host) == [target] * len(ports)


def test_an_instance_that_keeps_crashing_is_never_given_up(
    host: Any, setting: Setting, ports: list[int]
) -> None:
    """systemd's default stops restarting a unit after 5 starts in 10 s; a crash-looping
    instance (a database that is down for a minute, a full disk) must come back whenever
    its cause goes away."""
    for port in ports:
        unit = f"{setting('app_name')}@{port}.service"
        limit = host.check_output(
            "systemctl show --property=StartLimitIntervalUSec --value %s", unit
        )
        assert limit in ("0", "infinity"), f"{unit} gives up after a burst of starts ({limit})"
        assert host.check_output("systemctl show --property=Restart --value %s", unit) != "no"
