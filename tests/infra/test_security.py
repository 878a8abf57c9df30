"""Security facts about a deployed host: sandbox, firewall, database privileges, sshd, secrets."""

import re
import socket
from typing import Any

import pytest
from hostcheck import Setting


def psql(host: Any, database: str, query: str, role: str = "") -> str:
    """A query as the postgres superuser on the db host, unaligned output; :'role' in
    the query stands for `role`, quoted by psql."""
    return host.check_output(
        "echo %s | runuser -u postgres -- psql -XAtq -v role=%s -d %s", query, role, database
    )


# --- the app's sandbox ------------------------------------------------------------------


def test_app_units_are_sandboxed(
    host: Any, groups: set[str], setting: Setting, ports: list[int]
) -> None:
    if "app" not in groups:
        pytest.skip("not an app host")
    for port in ports:
        report = host.check_output(
            "systemd-analyze security --no-pager %s@%s.service", setting("app_name"), str(port)
        )
        match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", report)
        assert match, report
        assert float(match[1]) <= 2.0, report


# --- firewall ---------------------------------------------------------------------------


def reachable(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1.5):
            return True
    except OSError:
        return False


def test_only_ssh_and_web_are_reachable_from_outside(
    groups: set[str], address: str, setting: Setting
) -> None:
    expected_open = {22}
    if "web" in groups:
        expected_open |= {int(setting("nginx_listen_port")), int(setting("nginx_https_port"))}
    probed = set(expected_open)
    if "db" in groups:
        probed.add(int(setting("postgresql_port")))
    if "app" in groups:
        base = int(setting("app_port_base"))
        probed |= {base, base + 1}
    probed |= {8000, 8080}
    assert {port for port in sorted(probed) if reachable(address, port)} == expected_open


def test_firewall_drops_by_default_in_its_own_table(host: Any, setting: Setting) -> None:
    table = setting("base_firewall_table")
    ruleset = host.check_output("nft list table inet %s", table)
    assert re.search(r"hook input priority filter; policy drop;", ruleset), ruleset


# --- PostgreSQL -------------------------------------------------------------------------


def test_app_role_is_least_privileged(host: Any, groups: set[str]) -> None:
    if "db" not in groups:
        pytest.skip("not a db host")
    variables = host.ansible.get_variables()
    user, database = variables["app_database_user"], variables["app_database_name"]
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


def test_no_trust_authentication(host: Any, groups: set[str]) -> None:
    if "db" not in groups:
        pytest.skip("not a db host")
    methods = psql(host, "postgres", "SELECT DISTINCT auth_method FROM pg_hba_file_rules")
    assert set(methods.split()) <= {"peer", "scram-sha-256"}, methods


# --- sshd -------------------------------------------------------------------------------


def test_sshd_allows_keys_only_and_no_root(host: Any) -> None:
    effective = dict(
        line.split(" ", 1) for line in host.check_output("sshd -T").splitlines() if " " in line
    )
    assert effective["passwordauthentication"] == "no"
    assert effective["kbdinteractiveauthentication"] == "no"
    assert effective["permitrootlogin"] == "no"
    assert effective["pubkeyauthentication"] == "yes"


# --- secrets ----------------------------------------------------------------------------


def test_secrets_are_not_in_the_journal_or_process_list(host: Any, secrets: list[str]) -> None:
    journal = host.run("journalctl --no-pager -q -o cat")
    processes = host.check_output("ps -eo args")
    for index, secret in enumerate(secrets):
        assert len(secret) >= 16, f"secret {index} is too short to be a real one"
        assert secret not in journal.stdout, f"secret {index} is in the journal"
        assert secret not in processes, f"secret {index} is on a command line"
