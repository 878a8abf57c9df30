"""Every migration keeps the previous release working (expand first, contract in a later
release): a deploy migrates while the previous release still serves, and a rollback runs
it again on the new schema. So the previous release of app/ (from git) must pass the API
checks against a database that the current migrations made."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.app.harness import APP_DIR, AUTH, AppServer

REPO = APP_DIR.parent


def git(*arguments: str) -> str:
    done = subprocess.run(["git", *arguments], cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"git {' '.join(arguments)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def previous_release() -> str:
    """The last commit whose app/ differs from the app/ under test."""
    changed_app = git("log", "--format=%H", "-n", "2", "--", "app").split()
    edited = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "app"], cwd=REPO).returncode
    candidates = changed_app if edited else changed_app[1:]
    if not candidates:
        pytest.fail("the git history has no earlier release of app/ (a shallow clone?)")
    return candidates[0]


@pytest.fixture(scope="module")
def previous_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("previous-release")
    archive = subprocess.run(
        ["git", "archive", previous_release(), "app"], cwd=REPO, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder / "app"


@pytest.fixture(scope="module")
def previous_server(postgres: Any, previous_app: Path, logdir: Path) -> Iterator[AppServer]:
    """The previous release, on a database migrated by the current code only."""
    postgres.create_database("migrate_compat")
    env = postgres.app_env(DATABASE_NAME="migrate_compat")
    migrate = subprocess.run(
        [sys.executable, "migrate.py"], cwd=APP_DIR, env=env, capture_output=True, text=True
    )
    assert migrate.returncode == 0, migrate.stderr
    server = AppServer(
        {**env, "MIGRATE_ON_STARTUP": "false"}, logdir, "previous", folder=previous_app
    )
    try:
        server.wait_live()
        yield server
    finally:
        server.stop()


def test_the_previous_release_works_on_the_new_schema(previous_server: AppServer) -> None:
    with httpx.Client(headers=AUTH, base_url=previous_server.base_url, timeout=10) as client:
        assert client.get("/health/ready").status_code == 200
        created = client.post("/messages", json={"message": "written by the previous release"})
        assert created.status_code == 201, created.text
        location = created.headers["location"]
        assert client.get(location).json()["message"] == "written by the previous release"
        replaced = client.put(location, json={"message": "replaced"})
        assert replaced.status_code == 200, replaced.text
        listed = client.get("/messages", params={"limit": 5}).json()["items"]
        assert any(item["message"] == "replaced" for item in listed)
        assert client.delete(location).status_code == 204
        assert client.get(location).status_code == 404
