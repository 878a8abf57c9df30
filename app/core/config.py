"""Settings, read once from environment variables (see ``Settings`` for names and defaults).

main.py reads them once when it builds the app and keeps them on ``app.state.settings``;
routes get them as ``settings: SettingsDep`` (api/deps.py). ``python migrate.py`` reads its
own when run on its own.

A missing or malformed setting stops the process with one line on stderr, e.g.::

    configuration error: DATABASE_PORT: Input should be less than or equal to 65535
"""

from typing import Annotated, Literal

from pydantic import Field, SecretStr, StringConstraints, ValidationError, field_validator
from pydantic_settings import BaseSettings

LogLevel = Literal["critical", "error", "warning", "info", "debug"]
# An API key's name (it shows in the log) and the SHA-256 of the key, in hex.
KeyName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
KeyDigest = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class Settings(BaseSettings):
    """Each field is read from the environment variable of the same name in upper case."""

    database_user: str = Field(min_length=1)
    database_password: SecretStr
    # One host, or several separated by commas (libpq's multi-host form): with
    # DATABASE_TARGET_SESSION_ATTRS=read-write the first that takes writes is used.
    database_host: str = Field(min_length=1)
    database_name: str = Field(min_length=1)
    database_port: int = Field(default=5432, ge=1, le=65535)
    database_target_session_attrs: Literal["any", "read-write"] = "read-write"
    # TLS to PostgreSQL: verify-full checks the server's certificate against
    # DATABASE_SSLROOTCERT and its name (or address) against DATABASE_HOST.
    database_sslmode: Literal[
        "disable", "allow", "prefer", "require", "verify-ca", "verify-full"
    ] = "prefer"
    database_sslrootcert: str | None = Field(default=None, min_length=1)
    database_pool_size: int = Field(default=16, ge=1, le=1000)
    # libpq waits at least 2 seconds whatever is asked for here.
    database_connect_timeout: int = Field(default=2, ge=1)
    database_statement_timeout: float = Field(default=5, gt=0)
    # Seconds a request may wait, from its arrival, for a worker and a connection.
    database_pool_timeout: float = Field(default=5, gt=0)
    # Requests that may wait for one at a time; more get 503 at once.
    request_queue_size: int = Field(default=64, ge=0)
    readiness_timeout: float = Field(default=1.0, gt=0)
    message_max_length: int = Field(default=4096, ge=1)
    migrate_on_startup: bool = True
    # Seconds a migration waits for a table lock before it rolls back and tries again.
    migration_lock_timeout: float = Field(default=5, gt=0)
    migration_lock_retries: int = Field(default=3, ge=0)
    # The release this process runs, shown by the health endpoints (set by the deploy).
    release_id: str | None = Field(default=None, min_length=1, max_length=64)
    log_level: LogLevel = "info"
    # One line per request (behind nginx, its access log has them already).
    access_log: bool = True
    # The API keys that may write, by name: their SHA-256 digests (JSON), never the keys.
    # With none, nothing can be written.
    api_key_digests: dict[KeyName, KeyDigest] = {}
    # Revoked keys, still known by name so that the log can say whose key was refused.
    revoked_api_key_digests: dict[KeyName, KeyDigest] = {}
    # false: reading needs a key too.
    public_reads: bool = True

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


def load_settings() -> Settings:
    """Read the settings, or stop the process with a one-line message naming the bad setting.

    Only the setting's name and pydantic's message are shown, never the value, so a
    password cannot leak through here.
    """
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        raise SystemExit(f"configuration error: {problems}") from None
