"""Restores, staged on a host that carries db, app and web: a point-in-time restore brings
back exactly the rows of that moment, a restore to a backup those at its end; a lost data
directory comes back with every message acknowledged before its WAL was archived, and the
app serves again without a redeploy; a target outside the recovery window and a wrong
passphrase are refused before anything changes; the restore-test timer's service records
a success, and the verify check fails once that success is older than the limit.
"""

import datetime
import json
import re
import secrets
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from backups import (
    RESTORE_TEST_SERVICE,
    Cluster,
    info,
    instance_starts,
    next_second,
    pgbackrest,
    post,
    restore,
    restore_test_record,
    said,
    sql,
    table,
    utc,
    watching,
)
from deploys import ROOT, run_playbook
from hostcheck import Setting, wait_for

# Stops the app and PostgreSQL, removes the data directory: only on hosts made for testing.
pytestmark = [pytest.mark.destructive, pytest.mark.usefixtures("single_host")]


@pytest.fixture
def database(setting: Setting) -> str:
    return str(setting("app_database_name"))


def untouched(host: Any, setting: Setting, database: str, ports: list[int]) -> dict[str, str]:
    """What a refused restore must leave as it was."""
    repository = f"{setting('backup_repo_path')}/backup/{setting('backup_stanza')}/backup.info"
    return {
        "postgresql started": sql(host, "postgres", "SELECT pg_postmaster_start_time()"),
        "rows": table(host, database),
        "configuration": host.file("/etc/pgbackrest/pgbackrest.conf").sha256sum,
        "repository": host.file(repository).sha256sum,
        "instances started": str(instance_starts(host, setting, ports)),
    }


def last_audit_entry(host: Any, setting: Setting) -> dict[str, Any]:
    lines = host.file(setting("app_audit_log")).content_string.splitlines()
    entry: dict[str, Any] = json.loads(lines[-1])
    return entry


def test_a_point_in_time_restore_brings_back_exactly_that_state(
    host: Any, inventory: str, writer: httpx.Client, page_url: str, tls_context: Any,
    setting: Setting, database: str, ports: list[int],
) -> None:  # fmt: skip
    ids = [post(writer, f"before the target {n} {secrets.token_hex(4)}") for n in range(6)]
    at_target = table(host, database)
    target = next_second(host, database)
    assert writer.put(f"/messages/{ids[0]}", json={"message": "changed later"}).status_code == 200
    assert writer.delete(f"/messages/{ids[1]}").status_code == 204
    post(writer, "written later")
    assert table(host, database) != at_target

    started = instance_starts(host, setting, ports)
    with watching(page_url, tls_context) as seen:
        run = restore(inventory, backup_restore_target_time=target)
        time.sleep(1)
    assert run.returncode == 0, run.stdout[-3000:]
    assert f"to {target} from backup" in said(run)
    assert table(host, database) == at_target
    # The instances were stopped for the restore and started again.
    after = instance_starts(host, setting, ports)
    assert all(after[port] != started[port] for port in ports), (started, after)
    # Meanwhile nginx answered 503 with its JSON error, and 200 again afterwards.
    assert {status for status, _ in seen} <= {200, 503}, seen
    assert (503, "application/json") in seen, seen
    assert seen[-1][0] == 200, seen


def test_a_restore_to_a_backup_brings_back_the_state_at_its_end(
    host: Any, inventory: str, writer: httpx.Client, database: str
) -> None:
    post(writer, "before the backup")
    backup = run_playbook(inventory, "backup.yml", "-e", "backup_type=diff")
    assert backup.returncode == 0, backup.stdout[-3000:]
    label = re.search(r"diff backup (\S+D) in repository 1", backup.stdout)
    assert label, backup.stdout[-2000:]
    at_backup = table(host, database)
    listing = run_playbook(inventory, "backups.yml")
    assert re.search(rf"^ *1 +{label[1]} +diff ", listing.stdout, re.MULTILINE), listing.stdout
    post(writer, "after the backup")

    run = restore(inventory, backup_restore_target=label[1])
    assert run.returncode == 0, run.stdout[-3000:]
    assert f"to the end of backup {label[1]} from backup {label[1]}" in said(run)
    assert table(host, database) == at_backup


def test_a_lost_data_directory_comes_back_with_every_archived_message(
    host: Any, inventory: str, writer: httpx.Client, database: str, ports: list[int]
) -> None:
    acknowledged = {post(writer, f"in the backup {n}"): f"in the backup {n}" for n in range(4)}
    backup = run_playbook(inventory, "backup.yml", "-e", "backup_type=incr")
    assert backup.returncode == 0, backup.stdout[-3000:]
    assert re.search(r"incr backup \S+I in repository 1", backup.stdout), backup.stdout[-2000:]
    acknowledged |= {post(writer, f"only in the WAL {n}"): f"only in the WAL {n}" for n in range(4)}
    segment = sql(host, database, "SELECT pg_walfile_name(pg_switch_wal())")
    assert wait_for(
        lambda: sql(host, "postgres", "SELECT last_archived_wal FROM pg_stat_archiver") >= segment,
        60,
    ), f"{segment} was not archived within 60 s"
    releases = {port: live_release(host, port) for port in ports}

    cluster = Cluster.of(host)
    host.check_output("systemctl stop %s", cluster.unit)
    host.check_output("rm -rf %s", cluster.data_directory)
    run = restore(inventory)

    assert run.returncode == 0, run.stdout[-3000:]
    assert "to the latest archived WAL from backup" in said(run)
    # As JSON: other tests' messages may hold newlines.
    stored = json.loads(
        sql(host, database, "SELECT coalesce(json_object_agg(id, message), '{}') FROM messages")
    )
    lost = {key: text for key, text in acknowledged.items() if stored.get(str(key)) != text}
    assert not lost, f"acknowledged with 201 but not restored: {lost}"
    # The instances run again on the release they ran, and serve: no redeploy.
    assert {port: live_release(host, port) for port in ports} == releases
    assert writer.get("/health/ready").status_code == 200
    post(writer, "after the restore")


def live_release(host: Any, port: int) -> str:
    answer = host.check_output("curl -fsS http://127.0.0.1:%s/health/live", str(port))
    release: str = json.loads(answer)["releaseId"]
    return release


@pytest.mark.parametrize("days", [-20000, 1], ids=["long-before-any-backup", "tomorrow"])
def test_a_target_time_outside_the_window_is_refused_naming_the_window(
    host: Any, inventory: str, setting: Setting, database: str, ports: list[int], days: int
) -> None:
    target = sql(
        host,
        "postgres",
        f"SELECT to_char((now() + interval '{days} days') AT TIME ZONE 'UTC',"
        " 'YYYY-MM-DD HH24:MI:SS') || '+00'",
    )
    before = untouched(host, setting, database, ports)
    run = restore(inventory, backup_restore_target_time=target)
    assert run.returncode != 0
    window = re.search(
        rf"the target time {re.escape(target)} is outside the recovery window: "
        r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\+00 to (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\+00",
        said(run),
    )
    assert window, run.stdout[-3000:]
    start, end = window[1], window[2]
    # It starts where the oldest backup ends, and the target is indeed outside it.
    oldest_backup_end = min(backup["timestamp"]["stop"] for backup in info(host, setting)["backup"])
    assert datetime.datetime.fromisoformat(f"{start}+00:00").timestamp() == oldest_backup_end + 1
    assert (end < target[:19]) if days > 0 else (target[:19] < start), (start, end, target)
    assert untouched(host, setting, database, ports) == before
    entry = last_audit_entry(host, setting)
    assert (entry["kind"], entry["result"]) == ("restore", "failed"), entry
    assert entry["reason"].startswith(f"the target time {target} is outside"), entry
    assert not host.file(f"/run/lock/{setting('app_name')}-deploy").exists


def test_a_wrong_passphrase_is_refused_and_changes_nothing(
    host: Any, inventory: str, setting: Setting, database: str, ports: list[int]
) -> None:
    wrong = "not-the-passphrase-" + secrets.token_hex(8)
    before = untouched(host, setting, database, ports)
    run = restore(inventory, backup_cipher_pass=wrong)
    assert run.returncode != 0
    reason = "backup repository 1 ({}) does not open with backup_cipher_pass".format(
        setting("backup_repo_path")
    )
    assert reason in said(run), run.stdout[-3000:]
    assert wrong not in run.stdout + run.stderr
    assert untouched(host, setting, database, ports) == before
    entry = last_audit_entry(host, setting)
    assert (entry["kind"], entry["result"]) == ("restore", "failed"), entry
    assert entry["reason"].startswith(reason), entry


def test_the_restore_test_timer_records_a_success(
    host: Any, setting: Setting, database: str
) -> None:
    timer = "pgbackrest-restore-test.timer"
    assert host.check_output("systemctl show --property=Triggers --value %s", timer) == (
        RESTORE_TEST_SERVICE
    )
    rows = int(sql(host, database, "SELECT count(*) FROM messages"))
    assert pgbackrest(host, setting, "check").rc == 0  # every row's WAL archived
    started = int(host.check_output("date +%s"))
    host.check_output("systemctl start %s", RESTORE_TEST_SERVICE)
    record = restore_test_record(host, setting)
    assert record["result"] == "ok", record
    assert utc(record["time"]).timestamp() >= started
    assert record["last_success"] == record["time"]
    assert record["rows"] == rows, record
    assert record["backup"] in {backup["label"] for backup in info(host, setting)["backup"]}
    assert not host.file(f"{setting('backup_restore_test_dir')}/data").exists


def test_verify_fails_once_the_last_successful_restore_test_is_too_old(
    host: Any, inventory: str, setting: Setting
) -> None:
    path = f"{setting('backup_restore_test_dir')}/last.json"
    original = host.file(path).content_string
    limit = int(setting("backup_restore_test_max_age_days"))

    def verify_after_a_success(days_ago: float) -> subprocess.CompletedProcess[str]:
        then = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=days_ago)
        record = json.loads(original) | {"last_success": then.isoformat(timespec="seconds")}
        host.check_output("printf %%s %s > %s", json.dumps(record), path)
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--sudo",
             "--hosts=ansible://all", f"--ansible-inventory={inventory}",
             "tests/infra/test_backups.py::test_the_last_restore_test_succeeded_recently"],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    try:
        stale = verify_after_a_success(limit + 0.5)
        recent = verify_after_a_success(limit - 0.5)
    finally:
        host.check_output("printf %%s %s > %s", original, path)
    assert stale.returncode != 0, stale.stdout[-2000:]
    assert f"older than {limit} days" in stale.stdout, stale.stdout[-2000:]
    assert recent.returncode == 0, recent.stdout[-2000:]
