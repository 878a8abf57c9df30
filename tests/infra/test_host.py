"""What a deployed host must be: read like a list of facts."""

import time
from typing import Any

import httpx
import pytest
from hostcheck import LOOPBACK, Setting, listening_addresses, wait_for

# --- the edge ---------------------------------------------------------------


def test_nginx_listens_on_all_addresses(host: Any, groups: set[str], setting: Setting) -> None:
    if "web" not in groups:
        pytest.skip("not a web host")
    port = setting("nginx_listen_port")
    assert host.socket(f"tcp://0.0.0.0:{port}").is_listening


# --- the app ----------------------------------------------------------------


def test_app_instances_listen_on_loopback_only(
    host: Any, groups: set[str], ports: list[int]
) -> None:
    if "app" not in groups:
        pytest.skip("not an app host")
    for port in ports:
        addresses = listening_addresses(host, port)
        assert addresses, f"no instance listens on port {port}"
        assert addresses <= LOOPBACK, f"port {port} listens on {addresses}"


def test_app_instances_are_enabled_and_running_as_their_user(
    host: Any, groups: set[str], setting: Setting, ports: list[int]
) -> None:
    if "app" not in groups:
        pytest.skip("not an app host")
    name, user = setting("app_name"), setting("app_user")
    for port in ports:
        unit = host.service(f"{name}@{port}")
        assert unit.is_enabled
        assert unit.is_running
        pid = host.check_output(f"systemctl show --property MainPID --value {name}@{port}")
        owner = host.check_output(f"ps -o user= -p {pid}")
        assert owner == user
        assert owner != "root"


def test_env_file_is_root_only(host: Any, groups: set[str], setting: Setting) -> None:
    if "app" not in groups:
        pytest.skip("not an app host")
    name = setting("app_name")
    env_file = host.file(f"{setting('app_config_dir')}/{name}.env")
    assert env_file.is_file
    assert env_file.user == "root"
    assert env_file.group == "root"
    assert env_file.mode == 0o600


def test_app_user_cannot_read_the_password_anywhere(
    host: Any, groups: set[str], setting: Setting
) -> None:
    if "app" not in groups:
        pytest.skip("not an app host")
    name, user = setting("app_name"), setting("app_user")
    env_file = f"{setting('app_config_dir')}/{name}.env"
    read_password = f"sed -n 's/^DATABASE_PASSWORD=\"\\(.*\\)\"$/\\1/p' {env_file}"
    assert host.check_output(f"{read_password} | wc -c") != "0", "no DATABASE_PASSWORD"
    # The password goes to grep through a pipe, never on a command line (sudo logs those).
    found = host.run(
        f"{read_password} | runuser -u {user} -- grep -rlsF --exclude-dir=proc -f - "
        "/etc /opt /var /home /tmp /srv /root"
    )
    # The instances' own environment holds it by design; no file may.
    assert found.stdout.strip() == "", f"readable by {user}: {found.stdout.split()}"


# --- the database -----------------------------------------------------------


def test_postgresql_listens_on_loopback_only(host: Any, groups: set[str], setting: Setting) -> None:
    if "db" not in groups:
        pytest.skip("not a db host")
    addresses = listening_addresses(host, int(setting("postgresql_port")))
    assert addresses, "PostgreSQL does not listen"
    assert addresses <= LOOPBACK, f"PostgreSQL listens on {addresses}"


@pytest.mark.parametrize(("group", "name"), [("web", "nginx"), ("db", "postgresql")])
def test_service_is_enabled_and_running(host: Any, groups: set[str], group: str, name: str) -> None:
    if group not in groups:
        pytest.skip(f"not a {group} host")
    service = host.service(name)
    assert service.is_enabled
    assert service.is_running


# --- from the controller, through nginx -----------------------------------------


def test_health_endpoints_answer_through_nginx(web: httpx.Client) -> None:
    for path in ("/health/live", "/health/ready"):
        response = web.get(path)
        assert response.status_code == 200, (path, response.text)
        assert response.json()["status"] == "pass"


def test_a_message_posted_through_nginx_reads_back(https: httpx.Client) -> None:
    text = f"testinfra {time.time_ns()}"
    created = https.post("/messages", json={"message": text})
    assert created.status_code == 201, created.text
    read = https.get(created.headers["Location"])
    assert read.status_code == 200
    assert read.json()["message"] == text
    assert https.delete(created.headers["Location"]).status_code == 204


@pytest.mark.destructive
def test_readiness_fails_while_postgresql_is_stopped(
    host: Any, groups: set[str], setting: Setting, web: httpx.Client
) -> None:
    if "db" not in groups:
        pytest.skip("PostgreSQL is on another host")
    port = int(setting("postgresql_port"))
    # Debian's postgresql.service stops its clusters (postgresql@VERSION-main) after it returns.
    host.check_output("systemctl stop postgresql")
    try:
        assert wait_for(lambda: not listening_addresses(host, port)) is not None, (
            "PostgreSQL did not stop"
        )
        response = web.get("/health/ready")
        assert response.status_code == 503
        assert response.json()["status"] == "fail"
    finally:
        host.check_output("systemctl start postgresql")
    assert wait_for(lambda: web.get("/health/ready").status_code == 200) is not None, (
        "not ready again"
    )
