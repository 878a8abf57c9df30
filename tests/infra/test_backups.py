"""Backups, checked without changing any data: on a database host WAL archiving works, a
recent backup exists and a restore test succeeded lately; on the hosts of the backup role
the timers are on and neither the repository nor its passphrase is readable by the app's
user. Also: a wrong passphrase stops a deploy before any change, and no playbook prints
the passphrase. Where things are: on one database host, everything; under Patroni, the
`backup` host keeps the repository and takes the backups, the database hosts archive to
it and run the restore test."""

import datetime
import time
from typing import Any

import pytest
from backups import RESTORE_TEST_SERVICE, info, pgbackrest, restore_test_record, sql, utc
from deploys import run_playbook
from hostcheck import Setting


@pytest.fixture
def database_host(groups: set[str]) -> None:
    if "db" not in groups:
        pytest.skip("not a db host")


@pytest.fixture
def backup_role_host(groups: set[str]) -> None:
    if not {"db", "backup"} & groups:
        pytest.skip("not a db or backup host")


def takes_backups(groups: set[str], setting: Setting) -> bool:
    """The backup host under Patroni (from a replica), else the database host."""
    return ("backup" if setting("postgresql_ha") else "db") in groups


def holds_repository(groups: set[str], setting: Setting) -> bool:
    """The backup host, and a database host unless under Patroni."""
    return "backup" in groups or ("db" in groups and not setting("postgresql_ha"))


def repository_owner(groups: set[str], setting: Setting) -> str:
    return setting("backup_repo2_user") if "backup" in groups else "postgres"


def repository_path(groups: set[str], setting: Setting) -> str:
    return str(setting("backup_repo2_path" if "backup" in groups else "backup_repo_path"))


@pytest.mark.usefixtures("database_host")
def test_wal_is_archived_to_pgbackrest(host: Any, setting: Setting) -> None:
    settings = dict(
        line.split("|")
        for line in sql(
            host,
            "postgres",
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('archive_mode', 'archive_command', 'archive_timeout')",
        ).splitlines()
    )
    assert settings["archive_mode"] == "on"
    assert settings["archive_command"].startswith(
        f"pgbackrest --stanza={setting('backup_stanza')} archive-push"
    )
    assert int(settings["archive_timeout"]) == int(setting("backup_archive_timeout"))
    # pgBackRest's own check: the stanza in every repository, and a WAL file archived now.
    check = pgbackrest(host, setting, "check")
    assert check.rc == 0, check.stderr


@pytest.mark.usefixtures("database_host")
def test_the_newest_backup_is_recent(host: Any, setting: Setting) -> None:
    backups = info(host, setting)["backup"]
    assert backups, "no backup in the repositories"
    newest = max(backup["timestamp"]["stop"] for backup in backups)
    age_hours = (time.time() - newest) / 3600
    assert age_hours <= int(setting("backup_max_age_hours")), (
        f"the newest backup is {age_hours:.1f} hours old "
        f"(backup_max_age_hours: {setting('backup_max_age_hours')})"
    )


@pytest.mark.usefixtures("backup_role_host")
def test_the_backup_and_restore_test_timers_are_on(
    host: Any, groups: set[str], setting: Setting
) -> None:
    """The backup timers where backups are taken, the restore test's on a database host,
    and no other."""
    timers = {}
    if takes_backups(groups, setting):
        timers = {
            f"pgbackrest-backup-{kind}.timer": f"pgbackrest-backup@{kind}.service"
            for kind in setting("backup_schedule")
        }
    if "db" in groups:
        timers["pgbackrest-restore-test.timer"] = RESTORE_TEST_SERVICE
    present = host.check_output(
        "systemctl list-unit-files --no-legend 'pgbackrest-*.timer' | cut -d' ' -f1"
    )
    assert set(present.split()) == set(timers)
    for timer, service in timers.items():
        unit = host.service(timer)
        assert unit.is_enabled and unit.is_running, timer
        properties = dict(
            line.split("=", 1)
            for line in host.check_output(
                "systemctl show --property=Persistent,Triggers %s", timer
            ).splitlines()
        )
        assert properties == {"Persistent": "yes", "Triggers": service}, timer


@pytest.mark.usefixtures("database_host")
def test_the_last_restore_test_succeeded_recently(host: Any, setting: Setting) -> None:
    record = restore_test_record(host, setting)
    assert record["last_success"], f"no restore test has succeeded yet: {record}"
    age = datetime.datetime.now(datetime.UTC) - utc(record["last_success"])
    limit = datetime.timedelta(days=int(setting("backup_restore_test_max_age_days")))
    assert age <= limit, (
        f"the last successful restore test is older than {limit.days} days "
        f"({record['last_success']}; last result: {record['result']}): "
        f"systemctl start {RESTORE_TEST_SERVICE} runs one"
    )


@pytest.mark.usefixtures("backup_role_host")
def test_the_repository_and_passphrase_are_closed_to_the_app_user(
    host: Any, groups: set[str], setting: Setting
) -> None:
    """Tried as the app's user where it runs beside, else as `nobody`."""
    user = setting("app_user") if host.user(setting("app_user")).exists else "nobody"
    owner, repository = repository_owner(groups, setting), repository_path(groups, setting)
    paths = ["/etc/pgbackrest/pgbackrest.conf"]
    if holds_repository(groups, setting):
        paths.append(f"{repository}/backup/{setting('backup_stanza')}/backup.info")
    if "db" in groups:
        paths.append(f"{setting('backup_restore_test_dir')}/last.json")
    for path in paths:
        assert host.file(path).exists, path
        attempt = host.run("runuser -u %s -- cat %s", user, path)
        assert attempt.rc != 0 and "Permission denied" in attempt.stderr, path
    config = host.file("/etc/pgbackrest/pgbackrest.conf")
    assert (config.user, config.group, config.mode) == ("root", owner, 0o640)
    directory = host.file(repository)
    assert (directory.user, directory.mode) == (owner, 0o750)


def test_a_wrong_passphrase_stops_the_deploy_before_any_change(inventory: str) -> None:
    run = run_playbook(
        inventory, "deploy.yml", "--check", "-e", "backup_cipher_pass=" + "not-the-passphrase-" * 2
    )
    assert run.returncode != 0
    assert "does not open with backup_cipher_pass" in run.stdout, run.stdout[-3000:]
    assert "PLAY [Every host]" not in run.stdout
    assert "not-the-passphrase" not in run.stdout + run.stderr


def test_the_passphrase_never_reaches_verbose_output(
    host: Any, groups: set[str], setting: Setting, inventory: str
) -> None:
    if not holds_repository(groups, setting):
        pytest.skip("no repository here: its passphrase is on the backup host")
    config = host.file("/etc/pgbackrest/pgbackrest.conf").content_string
    passphrase = next(
        line.split("=", 1)[1] for line in config.splitlines() if "-cipher-pass=" in line
    )
    runs = [
        # A changed setting: the configuration's diff would show the passphrase.
        run_playbook(
            inventory,
            "deploy.yml",
            "--check",
            "--diff",
            "-vvv",
            "--tags",
            "backup-configure",
            "-e",
            "backup_process_max=7",
        ),  # fmt: skip
        run_playbook(inventory, "backups.yml", "-vvv"),
    ]
    for run in runs:
        assert run.returncode == 0, run.stdout[-3000:]
        # A bool, so that a failure does not print the passphrase itself.
        leaked = passphrase in run.stdout + run.stderr
        assert not leaked, f"the passphrase is in the -vvv output of {run.args}"
