"""Guards for real servers: weak or example secrets, more instances than the host can
take, limits that could not work, PostgreSQL's connections, and what a release ships.
Every run here is --check or builds on the controller only: nothing on the host changes."""

import json
import re
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest
from deploys import ROOT, run_playbook

from conftest import hosts_of


def refused(inventory: str, variables: dict[str, Any]) -> str:
    run = run_playbook(inventory, "deploy.yml", "--check", "-e", json.dumps(variables))
    assert run.returncode != 0, run.stdout[-3000:]
    assert "PLAY [Every host]" not in run.stdout
    return " ".join((run.stdout + run.stderr).split())


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("short-secret", id="short"),
        pytest.param("use-a-long-random-value", id="example"),
    ],
)
def test_a_weak_or_example_password_stops_the_deploy(inventory: str, password: str) -> None:
    output = refused(inventory, {"vault_app_database_password": password})
    assert "must be long random values" in output


@pytest.mark.parametrize(
    ("variables", "reason"),
    [
        ({"app_instances": 100000}, "app_instances must be 1-"),
        ({"app_memory_max_mb": 10}, "app_memory_max_mb must be 64 or more"),
        ({"app_tasks_max": 8}, "app_tasks_max must leave room"),
        ({"base_revert_seconds": 0}, "base_revert_seconds must be 1-3600"),
    ],
)
def test_limits_that_cannot_work_stop_the_deploy(
    inventory: str, variables: dict[str, Any], reason: str
) -> None:
    assert reason in refused(inventory, variables)


def test_postgresql_takes_every_connection_the_app_may_open(
    inventory: str, request: pytest.FixtureRequest
) -> None:
    """Per app host: instances (and the canary) × (pool + readiness) + migrations; plus the
    reserved ones. The diff is PostgreSQL's configuration file, or under Patroni its
    cluster-wide settings."""
    variables = {"app_instances": 2, "app_database_pool_size": 100}
    run = run_playbook(inventory, "deploy.yml", "--check", "--diff", "-e", json.dumps(variables))
    assert run.returncode == 0, run.stdout[-3000:]
    demand = len(hosts_of(request.config, "app")) * ((2 + 1) * (100 + 1) + 1)
    written = rf'^\+\s*"?max_connections"?\s*[=:]\s*"?{demand + 10}\b'
    assert re.search(written, run.stdout, re.M), run.stdout[-3000:]


def test_a_release_ships_what_git_tracks_and_no_hidden_file(inventory: str, tmp_path: Path) -> None:
    """Built on the controller only (--tags app-build): a developer's .env never ships."""
    source = tmp_path / "app"
    shutil.copytree(ROOT / "app", source, ignore=shutil.ignore_patterns("__pycache__"))
    (source / ".env").write_text("DATABASE_PASSWORD=a-developer-secret\n")
    (source / "scratch").mkdir()
    (source / "scratch" / ".notes").write_text("not for the server\n")
    build = tmp_path / "build"
    variables = {"app_source_dir": str(source), "app_build_dir": str(build)}
    run = run_playbook(inventory, "deploy.yml", "--tags", "app-build", "-e", json.dumps(variables))
    assert run.returncode == 0, run.stdout[-3000:]
    (archive,) = (build / "releases").glob("*.tar.gz")
    with tarfile.open(archive) as release:
        names = release.getnames()
    assert "app/main.py" in names, names
    assert not [name for name in names if "/." in name], names
