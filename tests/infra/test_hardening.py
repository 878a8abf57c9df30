"""The operating system hardened by the `hardening` role: security updates, audit log,
kernel settings and modules, core dumps, logins. Read-only: nothing here changes the host."""

import re
from typing import Any

import pytest
from hostcheck import Setting


def in_container(host: Any) -> bool:
    return host.run("systemd-detect-virt --container --quiet").rc == 0


def unit_properties(host: Any, unit: str, *names: str) -> dict[str, str]:
    output = host.check_output("systemctl show %s " + " ".join(f"-p {n}" for n in names), unit)
    return dict(line.split("=", 1) for line in output.splitlines())


def login_defs(host: Any) -> dict[str, str]:
    lines = host.file("/etc/login.defs").content_string.splitlines()
    return dict(line.split(None, 1) for line in lines if line.strip() and not line.startswith("#"))


# --- security updates ---------------------------------------------------------------


def test_unattended_upgrades_take_the_security_suite_only(host: Any, setting: Setting) -> None:
    origins = host.check_output(
        "apt-config dump --format '%v%n' Unattended-Upgrade::Origins-Pattern"
    )
    assert [origin for origin in origins.splitlines() if origin] == setting(
        "hardening_updates_origins"
    )
    assert (
        host.check_output("apt-config dump --format '%v' APT::Periodic::Unattended-Upgrade") == "1"
    )
    codename = host.system_info.codename
    assert f"{codename}-security" in host.check_output("apt-cache policy"), (
        "no security suite in apt"
    )


@pytest.mark.parametrize(
    ("timer", "time_setting"),
    [
        ("apt-daily.timer", "hardening_updates_download_time"),
        ("apt-daily-upgrade.timer", "hardening_updates_upgrade_time"),
    ],
)
def test_nightly_update_timers_are_on_and_never_make_up_a_run_at_boot(
    host: Any, setting: Setting, timer: str, time_setting: str
) -> None:
    state = unit_properties(
        host, timer, "ActiveState", "UnitFileState", "TimersCalendar", "Persistent"
    )
    assert state["ActiveState"] == "active"
    assert state["UnitFileState"] == "enabled"
    assert f"OnCalendar=*-*-* {setting(time_setting)}:00 " in state["TimersCalendar"]
    # A boot is a deploy or a test: no catch-up run then, holding the dpkg lock.
    assert state["Persistent"] == "no"


def test_security_updates_ran_and_none_is_pending(host: Any) -> None:
    log = host.file("/var/log/unattended-upgrades/unattended-upgrades.log")
    assert log.exists, "unattended-upgrades never ran"
    runs = log.content_string.split("Starting unattended upgrades script")
    assert len(runs) > 1, "unattended-upgrades never ran"
    assert "All upgrades installed" in runs[-1] or "No packages found" in runs[-1], runs[-1]
    upgrades = host.check_output("apt-get --simulate upgrade")
    pending = [
        line for line in upgrades.splitlines() if line.startswith("Inst ") and "-security" in line
    ]
    assert pending == [], pending


def test_needrestart_restarts_services_without_asking(host: Any, setting: Setting) -> None:
    config = host.file("/etc/needrestart/conf.d/50-hardening.conf").content_string
    assert f"$nrconf{{restart}} = '{setting('hardening_needrestart_mode')}';" in config


# --- audit --------------------------------------------------------------------------


def test_audit_log_is_bounded(host: Any, setting: Setting) -> None:
    lines = host.file("/etc/audit/auditd.conf").content_string.splitlines()
    config = dict(re.split(r"\s*=\s*", line, maxsplit=1) for line in lines if "=" in line)
    assert config["max_log_file_action"] == "ROTATE"
    assert int(config["max_log_file"]) == setting("hardening_audit_max_log_file")
    assert int(config["num_logs"]) == setting("hardening_audit_num_logs")
    assert config["disk_full_action"] in {"SUSPEND", "IGNORE", "SYSLOG", "ROTATE"}
    assert config["admin_space_left_action"] not in {"HALT", "SINGLE"}


def test_audit_watches_the_files_that_matter(host: Any, setting: Setting) -> None:
    watches = setting("hardening_audit_watches") + setting("hardening_audit_extra_watches")
    expected = {f"-w {watch['path']} -p wa -k {watch['key']}" for watch in watches}
    rules = host.file("/etc/audit/rules.d/50-hardening.rules").content_string
    assert expected <= set(rules.splitlines())
    auditd = unit_properties(host, "auditd", "ActiveState", "ConditionResult", "UnitFileState")
    assert auditd["UnitFileState"] == "enabled"
    if in_container(host):
        # The kernel audits only from its initial PID namespace: auditd is skipped, not failed.
        assert auditd["ConditionResult"] == "no", auditd
        assert auditd["ActiveState"] == "inactive", auditd
    else:
        assert auditd["ActiveState"] == "active", auditd
        loaded = {
            line.replace(" -F ", " ") for line in host.check_output("auditctl -l").splitlines()
        }
        assert expected <= loaded, expected - loaded


# --- kernel -------------------------------------------------------------------------


def test_kernel_settings_are_written_and_in_effect_where_the_kernel_allows(
    host: Any, setting: Setting
) -> None:
    wanted = {name: str(value) for name, value in setting("hardening_sysctl_settings").items()}
    written = dict(
        re.split(r"\s*=\s*", line, maxsplit=1)
        for line in host.file("/etc/sysctl.d/90-hardening.conf").content_string.splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert written == wanted
    current = dict(
        line.split(" = ", 1)
        for line in host.check_output("sysctl --ignore %s", " ".join(wanted)).splitlines()
    )
    differing = {name for name, value in wanted.items() if current.get(name) != value}
    if differing:
        # Only a kernel that refuses writes may keep them: a container's /proc/sys is read-only.
        assert "ro" in host.mount_point("/proc/sys").options, sorted(differing)


def test_uncommon_protocols_and_filesystems_never_load(host: Any, setting: Setting) -> None:
    config = set(host.check_output("modprobe --showconfig").splitlines())
    for module in setting("hardening_modules_disabled"):
        name = module.replace("-", "_")
        assert f"install {name} /bin/true" in config, module
        assert f"blacklist {name}" in config, module


def test_no_core_dumps_for_logins_services_or_setuid_programs(
    host: Any, groups: set[str], setting: Setting, ports: list[int]
) -> None:
    assert host.check_output("sh -c 'ulimit -Hc'") == "0"
    assert host.check_output("systemctl show --property DefaultLimitCORE") == "DefaultLimitCORE=0"
    coredump = host.check_output("systemd-analyze cat-config systemd/coredump.conf")
    assert "Storage=none" in coredump.splitlines()
    assert host.file("/etc/sysctl.d/90-hardening.conf").contains("^fs.suid_dumpable = 0$")
    # Services started since the first hardened deploy (systemd re-executed then).
    services = ["nginx"] if "web" in groups else []
    if "app" in groups:
        services += [f"{setting('app_name')}@{port}" for port in ports]
    for service in services:
        pid = unit_properties(host, service, "MainPID")["MainPID"]
        limits = host.file(f"/proc/{pid}/limits").content_string
        assert re.search(r"^Max core file size\s+0\s+0\s", limits, re.MULTILINE), (service, limits)


# --- logins and files ---------------------------------------------------------------


def test_login_defaults_are_strict(host: Any, setting: Setting) -> None:
    defs = login_defs(host)
    assert defs["UMASK"] == setting("hardening_login_umask")
    assert defs["HOME_MODE"] == setting("hardening_home_mode")
    assert int(defs["SHA_CRYPT_MIN_ROUNDS"]) >= setting("hardening_password_hash_rounds")
    assert "PASS_MAX_DAYS" not in defs or defs["PASS_MAX_DAYS"] == "99999"


def test_home_folders_are_closed_to_other_users(host: Any) -> None:
    for line in host.check_output("getent passwd").splitlines():
        name, *_, home, shell = line.split(":")
        if home.startswith("/home/") and not shell.endswith(("nologin", "false")):
            assert host.file(home).mode & 0o027 == 0, (
                f"{home} of {name}: {oct(host.file(home).mode)}"
            )


def test_legal_banner_is_shown_before_logins(host: Any, setting: Setting) -> None:
    banner = " ".join(str(setting("hardening_banner")).split())
    for path in ("/etc/issue", "/etc/issue.net"):
        assert " ".join(host.file(path).content_string.split()) == banner, path


def test_restricted_paths_keep_their_mode_when_packages_bring_them(
    host: Any, setting: Setting
) -> None:
    """dpkg holds the modes (a stat override), so a package installed or upgraded after the
    deploy (e2fsprogs brings /etc/cron.d) cannot open them again."""
    overrides = host.check_output("dpkg-statoverride --list").splitlines()
    for restricted in setting("hardening_restricted_paths"):
        mode = int(restricted["mode"], 8)
        assert f"root root {mode:o} {restricted['path']}" in overrides, restricted
        if host.file(restricted["path"]).exists:
            assert host.file(restricted["path"]).mode == mode, restricted


def test_logins_get_a_private_tmpdir(host: Any) -> None:
    assert host.package("libpam-tmpdir").is_installed
    assert host.file("/etc/pam.d/common-session").contains("pam_tmpdir.so")


# --- nginx's global settings ----------------------------------------------------------


def test_nginx_allows_no_tls_before_1_2_anywhere_and_logs_every_request(
    host: Any, groups: set[str]
) -> None:
    if "web" not in groups:
        pytest.skip("not a web host")
    config = host.check_output("nginx -T 2>/dev/null")
    protocols = re.findall(r"^\s*ssl_protocols\s+([^;]*);", config, re.MULTILINE)
    assert protocols, "no ssl_protocols"
    for value in protocols:
        assert set(value.split()) <= {"TLSv1.2", "TLSv1.3"}, value
    assert not re.search(r"^\s*access_log\s+off;", config, re.MULTILINE)
