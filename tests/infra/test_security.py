"""Security facts about a deployed host: sandbox, firewall, database privileges, sshd, secrets."""

import re
from typing import Any

import pytest
from hostcheck import LOOPBACK, Setting, host_setting, render

from conftest import hosts_of


def psql(host: Any, database: str, query: str, role: str = "") -> str:
    """A query as the postgres superuser on the db host, unaligned output; :'role' in
    the query stands for `role`, quoted by psql."""
    return host.check_output(
        "echo %s | runuser -u postgres -- psql -XAtq -v role=%s -d %s", query, role, database
    )


# --- the app's sandbox ------------------------------------------------------------------

# docs/edge-and-security.md: "exposure 1.1" (systemd-analyze security, Debian 12's systemd).
EXPOSURE = 1.1
# Directives of systemd/app@.service.j2 as `systemctl show` reports them.
SANDBOX = {
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
}
# What the kernel says about the running process: no capabilities, no new privileges, a
# seccomp filter (mode 2).
PROCESS = {
    "CapEff": "0000000000000000",
    "CapBnd": "0000000000000000",
    "NoNewPrivs": "1",
    "Seccomp": "2",
}


def test_app_units_are_sandboxed(
    host: Any, groups: set[str], setting: Setting, ports: list[int]
) -> None:
    if "app" not in groups:
        pytest.skip("not an app host")
    for port in ports:
        unit = f"{setting('app_name')}@{port}.service"
        report = host.check_output("systemd-analyze security --no-pager %s", unit)
        match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", report)
        assert match, report
        assert float(match[1]) <= EXPOSURE, f"{unit}: exposure {match[1]}, above {EXPOSURE}"
        shown = host.check_output("systemctl show -p %s %s", ",".join(SANDBOX), unit)
        assert dict(line.split("=", 1) for line in shown.splitlines()) == SANDBOX
        assert host.check_output("systemctl show -p SystemCallFilter --value %s", unit)
        pid = host.check_output("systemctl show -p MainPID --value %s", unit)
        status = dict(
            line.split(":\t", 1)
            for line in host.file(f"/proc/{pid}/status").content_string.splitlines()
        )
        assert {name: status[name] for name in PROCESS} == PROCESS
        # ProtectSystem=strict: the whole file system is read-only in the unit's namespace.
        assert host.check_output("findmnt --task %s -no OPTIONS /", pid).startswith("ro,")


# --- PostgreSQL -------------------------------------------------------------------------


@pytest.fixture
def db(host: Any, groups: set[str]) -> dict[str, Any]:
    """The variables of a db host (other hosts skip)."""
    if "db" not in groups:
        pytest.skip("not a db host")
    variables: dict[str, Any] = host.ansible.get_variables()
    return variables


def test_app_role_is_least_privileged(host: Any, db: dict[str, Any]) -> None:
    user, database = db["app_database_user"], db["app_database_name"]
    flags = psql(
        host,
        database,
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls "
        "FROM pg_roles WHERE rolname = :'role'",
        user,
    )
    assert flags == "f|f|f|f"
    owned = psql(
        host,
        database,
        "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
        "WHERE r.rolname = :'role'",
        user,
    )
    assert owned == "0"
    grants = psql(
        host,
        database,
        "SELECT string_agg(privilege_type, ',' ORDER BY privilege_type) "
        "FROM information_schema.role_table_grants WHERE grantee = :'role' "
        "AND table_name = 'messages'",
        user,
    )
    assert grants == "DELETE,INSERT,SELECT,UPDATE"
    can_create = psql(
        host, database, "SELECT has_schema_privilege(:'role', 'public', 'CREATE')", user
    )
    assert can_create == "f"
    if psql(host, database, "SELECT pg_is_in_recovery()") == "t":
        return  # a replica refuses every write: the leader's attempts below are the proof
    # Nothing on the migrations' record, no temporary tables: tried as the role itself, in a
    # transaction rolled back (so that a broken grant still changes nothing).
    for attempt in (
        "UPDATE schema_migrations SET version = version",
        "SELECT count(*) FROM schema_migrations",
        "CREATE TEMP TABLE scratch (x int)",
    ):
        tried = host.run(
            "echo %s | runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -v role=%s -d %s",
            f'BEGIN; SET LOCAL ROLE :"role"; {attempt}; ROLLBACK;',
            user,
            database,
        )
        assert tried.rc != 0 and "permission denied" in tried.stderr, (attempt, tried.stderr)


# Each relation of the public schema and its owner, "NAME OWNER" a line.
RELATION_OWNERS = (
    "SELECT c.relname || ' ' || r.rolname FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_roles r ON r.oid = c.relowner "
    "WHERE n.nspname = 'public' ORDER BY 1"
)


def test_the_schema_belongs_to_the_owner_role(host: Any, db: dict[str, Any]) -> None:
    owner, database = db["app_database_owner"], db["app_database_name"]
    owners = psql(host, database, RELATION_OWNERS)
    tables = dict(line.split(" ", 1) for line in owners.splitlines())
    assert {"messages", "schema_migrations"} <= set(tables), owners
    assert set(tables.values()) == {owner}, owners
    flags = psql(host, database, "SELECT rolsuper FROM pg_roles WHERE rolname = :'role'", owner)
    assert flags == "f"


def test_instances_use_the_row_only_role_and_never_migrate(
    host: Any, groups: set[str], setting: Setting, ports: list[int]
) -> None:
    """What systemd gave each running instance (the password in it is never printed)."""
    if "app" not in groups:
        pytest.skip("not an app host")
    user = host.ansible.get_variables()["app_database_user"]
    for port in ports:
        pid = host.check_output(
            "systemctl show -p MainPID --value %s@%s", setting("app_name"), str(port)
        )
        environment = host.check_output(
            "tr '\\0' '\\n' < /proc/%s/environ | grep -E '^(DATABASE_USER|MIGRATE_ON_STARTUP)='",
            pid,
        )
        assert sorted(environment.splitlines()) == [
            f"DATABASE_USER={user}",
            "MIGRATE_ON_STARTUP=false",
        ]


@pytest.mark.usefixtures("db")
def test_only_the_listed_roles_get_in_with_scram(
    host: Any, setting: Setting, request: pytest.FixtureRequest
) -> None:
    """pg_hba.conf: the postgres user on the local socket (peer), under Patroni replication
    and pg_rewind from each database host, and over TCP only the entries of
    postgresql_hba_entries, all scram-sha-256 (hostssl from another host when the tiers
    have TLS); the login roles' passwords are stored as SCRAM verifiers. (The postgresql
    role's lists name other settings: render() fills them in.)"""
    rules = psql(
        host,
        "postgres",
        "SELECT type, array_to_string(database, ','), array_to_string(user_name, ','),"
        " coalesce(address, ''), auth_method FROM pg_hba_file_rules ORDER BY line_number",
    )
    remote = "hostssl" if setting("postgresql_tls_dir") else "host"
    expected = ["local|all|postgres||peer"]
    if setting("postgresql_ha"):
        for member in hosts_of(request.config, "db"):
            address = host_setting(member, "private_address")
            expected += [
                f"{remote}|replication|{setting('postgresql_replication_user')}|{address}|scram-sha-256",
                f"{remote}|postgres|{setting('postgresql_rewind_user')}|{address}|scram-sha-256",
            ]
    for entry in setting("postgresql_hba_entries"):
        address = entry["address"].split("/")[0]
        kind = "host" if address in LOOPBACK else remote
        expected.append(
            render(host, f"{kind}|{entry['database']}|{entry['user']}|{address}|scram-sha-256")
        )
    assert rules.splitlines() == expected
    for user in [render(host, u["name"]) for u in setting("postgresql_users")]:
        stored = psql(
            host,
            "postgres",
            "SELECT rolpassword FROM pg_authid WHERE rolname = :'role'",
            user,
        )
        scram = stored.startswith("SCRAM-SHA-256$")  # never the verifier in an assert
        assert scram, f"{user}: no SCRAM verifier"
    for database in setting("postgresql_databases"):
        name, owner = render(host, database["name"]), render(host, database["owner"])
        query = "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :'role'"
        assert psql(host, "postgres", query, name) == owner, name


# --- sshd -------------------------------------------------------------------------------


def test_sshd_allows_keys_only_and_no_root(host: Any, setting: Setting) -> None:
    if not setting("base_ssh_hardening_enabled"):
        pytest.skip("base_ssh_hardening_enabled is off")
    effective = dict(
        line.split(" ", 1) for line in host.check_output("sshd -T").splitlines() if " " in line
    )
    assert effective["passwordauthentication"] == "no"
    assert effective["kbdinteractiveauthentication"] == "no"
    assert effective["permitrootlogin"] == "no"
    assert effective["pubkeyauthentication"] == "yes"


# --- secrets ----------------------------------------------------------------------------


def test_secrets_are_not_in_the_journal_or_process_list(
    host: Any, secrets: list[str], setting: Setting, groups: set[str]
) -> None:
    # check_output: a journalctl or ps that fails fails the test, and so does an empty answer.
    # (The secrets: the database passwords and every API key of the inventory.)
    journal = host.check_output("journalctl --no-pager -q -o cat")
    nginx_logs = host.check_output("cat /var/log/nginx/*.log") if "web" in groups else ""
    processes = host.check_output("ps -eo args")
    assert journal, "journalctl printed nothing"
    # The launcher runs the release `current` names, by its own path.
    app = rf"{re.escape(setting('app_root'))}/releases/\w+/venv/bin/uvicorn "
    assert re.search(app, processes), "no app in ps"
    # Never `secret in ...` inside an assert: pytest would print both sides.
    for index, secret in enumerate(secrets):
        length = len(secret)
        assert length >= 16, f"secret {index} is too short to be a real one"
        in_journal, in_processes = secret in journal, secret in processes
        assert not in_journal, f"secret {index} is in the journal"
        assert not in_processes, f"secret {index} is on a command line"
        in_nginx_logs = secret in nginx_logs
        assert not in_nginx_logs, f"secret {index} is in nginx's logs"
