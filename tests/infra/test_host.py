"""What a deployed host must be: read like a list of facts."""

import re
import shlex
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


def allowed_addresses(addresses: list[str]) -> set[str]:
    """Where a service may listen: its settings' addresses, "localhost" being loopback."""
    allowed = set(addresses) - {"localhost"}
    return allowed | LOOPBACK if allowed & LOOPBACK or "localhost" in addresses else allowed


def test_app_instances_listen_on_their_bind_address_only(
    host: Any, groups: set[str], ports: list[int], setting: Setting
) -> None:
    """Loopback where nginx is on the same host, the private address in a cluster."""
    if "app" not in groups:
        pytest.skip("not an app host")
    allowed = allowed_addresses([setting("app_bind_address")])
    for port in ports:
        addresses = listening_addresses(host, port)
        assert addresses, f"no instance listens on port {port}"
        assert addresses <= allowed, f"port {port} listens on {addresses}"


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


@pytest.mark.parametrize("suffix", ["", "-migrate"])
def test_env_files_are_root_only(
    host: Any, groups: set[str], setting: Setting, suffix: str
) -> None:
    """The instances' (the app role's password) and the migrations' (the schema owner's)."""
    if "app" not in groups:
        pytest.skip("not an app host")
    env_file = host.file(f"{setting('app_config_dir')}/{setting('app_name')}{suffix}.env")
    assert env_file.is_file
    assert (env_file.user, env_file.group, env_file.mode) == ("root", "root", 0o600)


# What may go wrong while a user searches the file system for a string: the files and folders
# it may not read, and files that vanish under it.
EXPECTED_GREP_ERRORS = re.compile(r"^grep: .*: (Permission denied|No such file or directory)$")
SSH_NOISE = re.compile(r"^Warning: Permanently added .* to the list of known hosts\.$")


def test_app_user_cannot_read_the_passwords_anywhere(
    host: Any, groups: set[str], setting: Setting
) -> None:
    """As the app's user, search the file system for both passwords. Its own environment
    holds the app role's password by design; no file it can read may hold either."""
    if "app" not in groups:
        pytest.skip("not an app host")
    user, config = setting("app_user"), f"{setting('app_config_dir')}/{setting('app_name')}"
    read_passwords = (
        f"sed -n 's/^DATABASE_PASSWORD=\"\\(.*\\)\"$/\\1/p' {config}.env {config}-migrate.env"
    )
    assert host.check_output(f"{read_passwords} | wc -l") == "2", "not two DATABASE_PASSWORDs"
    # A string the user can read in /etc/passwd: proves that grep ran, as that user, and read.
    canary = f"{user}:x:"
    # The passwords reach grep through a pipe, never on a command line (sudo logs those).
    search = host.run(
        f"{{ {read_passwords}; echo {shlex.quote(canary)}; }} | runuser -u {user} -- "
        "grep -rHoaF --exclude-dir=proc -f - /etc /opt /var /home /tmp /srv /root"
    )
    # Nothing from `search` goes into an assertion as is: its output may hold a password.
    rc, errors = (
        search.rc,
        [line for line in search.stderr.splitlines() if not SSH_NOISE.match(line)],
    )
    # grep: 0 found something, 1 found nothing, 2 an error (here: one of the expected ones).
    assert rc in (0, 2), f"grep or runuser failed ({rc}): {errors[:5]}"
    unexpected = [line for line in errors if not EXPECTED_GREP_ERRORS.match(line)]
    assert not unexpected, f"grep or runuser failed ({rc}): {unexpected[:5]}"
    found = search.stdout.splitlines()
    read_passwd = f"/etc/passwd:{canary}" in found
    assert read_passwd, "the search did not read /etc/passwd"
    # Lines are FILE:MATCH; only the file names are shown, never a match.
    leaks = sorted({line.split(":", 1)[0] for line in found if not line.endswith(f":{canary}")})
    assert not leaks, f"readable by {user}: {leaks}"


# --- the release ------------------------------------------------------------


def test_the_instances_run_the_current_release(
    host: Any, groups: set[str], setting: Setting, ports: list[int]
) -> None:
    """root/current points at root/releases/<id>, a complete release (its code, its
    virtualenv, its marker naming it), and every instance runs from there."""
    if "app" not in groups:
        pytest.skip("not an app host")
    root = setting("app_root")
    current = host.file(f"{root}/current")
    assert current.is_symlink
    release = current.linked_to
    assert release.startswith(f"{root}/releases/"), release
    assert host.file(f"{release}/installed").content_string.strip() == release.rsplit("/", 1)[1]
    assert host.file(f"{release}/app/main.py").is_file
    assert host.file(f"{release}/venv/bin/uvicorn").is_file
    for port in ports:
        pid = host.check_output(
            "systemctl show -p MainPID --value %s@%s", setting("app_name"), str(port)
        )
        assert host.file(f"/proc/{pid}/cwd").linked_to == f"{release}/app"


def test_the_shipped_wheels_install_without_a_network(
    host: Any, groups: set[str], setting: Setting
) -> None:
    """The server does not need PyPI: each wheel set the deploy shipped installs its pinned
    requirements into a new virtualenv in a sandbox with no network at all (and a private
    /tmp that goes with it), and the code of a release built on it imports with them."""
    if "app" not in groups:
        pytest.skip("not an app host")
    root = setting("app_root")
    wheels = f"{root}/wheels"
    sets = host.check_output("ls %s", wheels).split()
    assert sets, f"no wheel set in {wheels}"
    # Each release's virtualenv is the one of its wheel set: venvs/<set>.
    built_on = {
        link.rsplit("/", 1)[1]: path.removesuffix("/venv")
        for path, link in (
            line.split(" ", 1)
            for line in host.check_output(
                'for v in %s/releases/*/venv; do echo "$v $(readlink $v)"; done', root
            ).splitlines()
        )
    }
    current = host.file(f"{root}/current").linked_to
    for name in sets:
        folder = f"{wheels}/{name}"
        release = built_on.get(name, current)
        install = (
            f"/usr/bin/python3 -m venv /tmp/venv && /tmp/venv/bin/pip install --quiet --no-index"
            f" --no-cache-dir --disable-pip-version-check --find-links {folder}"
            f" -r {folder}/requirements.txt && /tmp/venv/bin/python -c 'import main'"
        )
        # The code imports with what got installed (settings of its own: nothing connects).
        result = host.run(
            "systemd-run --wait --pipe --collect --quiet -p PrivateNetwork=yes "
            "-p DynamicUser=yes -p PrivateTmp=yes -E DATABASE_USER=none -E DATABASE_PASSWORD=none "
            "-E DATABASE_HOST=none -E DATABASE_NAME=none --working-directory=%s /bin/sh -c %s",
            f"{release}/app",
            install,
        )
        assert result.rc == 0, f"{name} with {release}: {result.stderr[-2000:]}"


# --- the database -----------------------------------------------------------


def test_postgresql_listens_on_its_listen_addresses_only(
    host: Any, groups: set[str], setting: Setting
) -> None:
    """Loopback where the app is on the same host; also the private address for other hosts."""
    if "db" not in groups:
        pytest.skip("not a db host")
    wanted = setting("postgresql_listen_addresses")
    addresses = listening_addresses(host, int(setting("postgresql_port")))
    assert addresses, "PostgreSQL does not listen"
    assert addresses <= allowed_addresses(wanted), f"PostgreSQL listens on {addresses}"
    assert set(wanted) - {"localhost"} <= addresses, f"PostgreSQL listens on {addresses}"


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


@pytest.mark.destructive  # it writes
def test_a_message_posted_through_nginx_reads_back(
    https: httpx.Client, writer: httpx.Client
) -> None:
    """Written with a key, read back by anyone."""
    text = f"testinfra {time.time_ns()}"
    created = writer.post("/messages", json={"message": text})
    assert created.status_code == 201, created.text
    read = https.get(created.headers["Location"])
    assert read.status_code == 200
    assert read.json()["message"] == text
    assert writer.delete(created.headers["Location"]).status_code == 204


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
