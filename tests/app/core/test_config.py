"""A bad configuration stops the app at start with one line naming the setting."""

import subprocess
import sys
from typing import Any

import pytest

from core import config, db

UVICORN = [sys.executable, "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", "0"]
IMPORT = [sys.executable, "-c", "import main"]


@pytest.mark.parametrize("command", [UVICORN, IMPORT], ids=["uvicorn", "import"])
@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("DATABASE_USER", None, "DATABASE_USER: Field required"),
        ("DATABASE_PORT", "abc", "DATABASE_PORT: Input should be a valid integer"),
    ],
)
def test_bad_setting_stops_the_process(
    postgres: Any, command: list[str], name: str, value: str | None, expected: str
) -> None:
    env = postgres.app_env()
    if value is None:
        del env[name]
    else:
        env[name] = value
    result = subprocess.run(
        command, cwd=postgres.app_dir, env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode != 0
    [line] = result.stderr.splitlines()
    assert line.startswith(f"configuration error: {expected}")
    assert "Traceback" not in result.stderr + result.stdout
    assert postgres.app_password not in result.stderr + result.stdout


GOOD = {
    "DATABASE_USER": "app",
    "DATABASE_PASSWORD": "secret-password-value",
    "DATABASE_HOST": "127.0.0.1",
    "DATABASE_NAME": "messages",
}


@pytest.fixture()
def environ(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in list(config.Settings.model_fields):
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in GOOD.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_defaults(environ: Any) -> None:
    settings = config.load_settings()
    assert settings.database_port == 5432
    assert settings.database_pool_size == 16
    assert settings.database_connect_timeout == 2
    assert settings.database_statement_timeout == 5
    assert settings.database_pool_timeout == 5
    assert settings.readiness_timeout == 1.0
    assert settings.message_max_length == 4096  # the documented default; other tests read it
    assert settings.migrate_on_startup is True
    assert settings.log_level == "info"
    assert "secret-password-value" not in repr(settings)
    # Several hosts in DATABASE_HOST: the one that takes writes.
    assert settings.database_target_session_attrs == "read-write"
    assert (settings.database_sslmode, settings.database_sslrootcert) == ("prefer", None)


def test_tls_to_postgresql_reaches_libpq(environ: Any) -> None:
    """What the tiers' hosts set (ansible/group_vars/all.yml): libpq gets it as is."""
    environ.setenv("DATABASE_HOST", "10.0.0.23,10.0.0.24")
    environ.setenv("DATABASE_SSLMODE", "verify-full")
    environ.setenv("DATABASE_SSLROOTCERT", "/etc/ssl/fastapi-postgres/ca.crt")
    arguments = db.connect_kwargs(config.load_settings())
    assert arguments["host"] == "10.0.0.23,10.0.0.24"
    assert arguments["target_session_attrs"] == "read-write"
    assert arguments["sslmode"] == "verify-full"
    assert arguments["sslrootcert"] == "/etc/ssl/fastapi-postgres/ca.crt"


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("DATABASE_PORT", "65536", "DATABASE_PORT: Input should be less than or equal to 65535"),
        ("DATABASE_PORT", "0", "DATABASE_PORT: Input should be greater than or equal to 1"),
        ("DATABASE_POOL_SIZE", "0", "DATABASE_POOL_SIZE: Input should be greater than"),
        ("DATABASE_STATEMENT_TIMEOUT", "-1", "DATABASE_STATEMENT_TIMEOUT: Input should be"),
        ("READINESS_TIMEOUT", "soon", "READINESS_TIMEOUT: Input should be a valid number"),
        ("MESSAGE_MAX_LENGTH", "0", "MESSAGE_MAX_LENGTH: Input should be greater than"),
        ("MIGRATE_ON_STARTUP", "perhaps", "MIGRATE_ON_STARTUP: Input should be a valid boolean"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL: Input should be"),
        ("DATABASE_HOST", "", "DATABASE_HOST: String should have at least 1 character"),
        ("DATABASE_PASSWORD", None, "DATABASE_PASSWORD: Field required"),
        ("DATABASE_SSLMODE", "verify", "DATABASE_SSLMODE: Input should be"),
        ("DATABASE_TARGET_SESSION_ATTRS", "primary", "DATABASE_TARGET_SESSION_ATTRS: Input"),
        ("DATABASE_SSLROOTCERT", "", "DATABASE_SSLROOTCERT: String should have at least 1"),
    ],
)
def test_bad_settings_are_named(environ: Any, name: str, value: str | None, expected: str) -> None:
    if value is None:
        environ.delenv(name)
    else:
        environ.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        config.load_settings()
    message = str(stopped.value.code)
    assert message.startswith(f"configuration error: {expected}")
    assert "\n" not in message
    assert "secret-password-value" not in message


def test_several_bad_settings_still_give_one_line(environ: Any) -> None:
    environ.delenv("DATABASE_USER")
    environ.setenv("DATABASE_PORT", "abc")
    with pytest.raises(SystemExit) as stopped:
        config.load_settings()
    message = str(stopped.value.code)
    assert "DATABASE_USER" in message and "DATABASE_PORT" in message
    assert "\n" not in message


def test_log_level_is_case_insensitive(environ: Any) -> None:
    environ.setenv("LOG_LEVEL", "DEBUG")
    assert config.load_settings().log_level == "debug"
