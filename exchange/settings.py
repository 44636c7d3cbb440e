"""Configuration from `EXCHANGE_*` environment variables, checked once at start-up.

Paths derived from `home` (database file, keyring) are filled in after parsing so that setting
only `EXCHANGE_HOME` moves everything. Production refusals live in `check_production`, which
reads the filesystem and therefore runs at start-up rather than at construction.
"""

from __future__ import annotations

import re
import stat
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Mode = Literal["development", "production"]
LogFormat = Literal["console", "json"]
DEFAULT_AUDIT_ORIGIN = "chengyang.exchange/audit"
# C2SP tlog-checkpoint: the origin SHOULD be a schema-less URL without spaces or '+'. Ours: a
# lower-case host name with at least one dot, an optional port, then optional path segments.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_ORIGIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})+(?::[0-9]{{1,5}})?(?:/[A-Za-z0-9._~-]+)*\Z")


class ConfigurationError(Exception):
    """A setting that makes the service unsafe or unable to start; the message is one line."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXCHANGE_", extra="ignore", frozen=True)

    home: Path = Path("var")
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    mode: Mode = "development"
    keyring_path: Path | None = None
    allow_sqlite_in_production: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: LogFormat | None = None
    # the log's name on every checkpoint; fixed in the database at `exchange admin init`
    audit_origin: str = DEFAULT_AUDIT_ORIGIN
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_page_size: int = Field(default=200, ge=1, le=10_000)
    auth_failures_per_minute: int = Field(default=30, ge=1)
    # seconds between scheduled audit checkpoints (issued only if the log grew); 0 turns it off
    checkpoint_interval: float = Field(default=300.0, ge=0)
    # the TLS proxy's addresses (IPs or networks, comma-separated): only their Client-Cert and
    # X-Forwarded-* headers are believed; empty believes nobody's
    forwarded_allow_ips: str = ""
    # /metrics answers only `Authorization: Bearer <this>` (Prometheus: `authorization:
    # credentials_file`); unset, /metrics is off (404). At least 32 characters.
    metrics_token: SecretStr | None = Field(default=None, min_length=32)
    workers: int = Field(default=1, ge=1, le=64)
    # SIGTERM: seconds in-flight requests get to finish before the worker stops anyway
    drain_seconds: float = Field(default=20.0, gt=0, le=600)
    # released statistics: counts of 1..threshold-1 distinct residents are suppressed (<5)
    statistics_threshold: int = Field(default=5, ge=3, le=1000)
    # the web console's sessions (docs/console.md)
    console_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    console_absolute_hours: int = Field(default=12, ge=1, le=7 * 24)
    console_max_failures: int = Field(default=5, ge=1, le=100)
    # None: Secure `__Host-` cookie over HTTPS (and always in production), plain name over HTTP
    console_secure_cookie: bool | None = None
    # 查看明文: reveals one user may make in any hour, and how long a page shows the value
    console_reveals_per_hour: int = Field(default=20, ge=1, le=1000)
    console_reveal_seconds: int = Field(default=30, ge=5, le=600)

    @field_validator("audit_origin")
    @classmethod
    def _schema_less_url(cls, value: str) -> str:
        if len(value) > 255 or not _ORIGIN.match(value):
            raise ValueError(
                "must be a schema-less URL naming this office's log, e.g. "
                "chengyang.example.gov.cn/exchange/audit: a lower-case host name with a dot, an "
                "optional /path; no https://, spaces, '+' or trailing '/'"
            )
        return value

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        # frozen model: fill derived defaults through object.__setattr__ once, at construction
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.home / 'exchange.db'}")
        if self.keyring_path is None:
            object.__setattr__(self, "keyring_path", self.home / "keyring.json")
        if self.log_format is None:
            fmt: LogFormat = "json" if self.mode == "production" else "console"
            object.__setattr__(self, "log_format", fmt)
        return self

    @property
    def keyring_file(self) -> Path:
        assert self.keyring_path is not None  # filled by _derive_paths
        return self.keyring_path

    @property
    def effective_log_format(self) -> LogFormat:
        assert self.log_format is not None  # filled by _derive_paths
        return self.log_format

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def is_production(self) -> bool:
        return self.mode == "production"


def check_production(settings: Settings, *, development_keys: bool) -> None:
    """Refuse unsafe production configurations with one clear line.

    `development_keys` says whether the loaded keyring was generated for development (the
    keyring reports it); such keys are on disk next to the database and guard nothing.
    """
    if not settings.is_production:
        return
    if settings.is_sqlite and not settings.allow_sqlite_in_production:
        raise ConfigurationError(
            "production mode refuses SQLite; set EXCHANGE_DATABASE_URL to PostgreSQL "
            "or EXCHANGE_ALLOW_SQLITE_IN_PRODUCTION=true"
        )
    check_keyring_path(settings.keyring_file)
    if development_keys:
        raise ConfigurationError(
            "production mode refuses development keys; provision a production keyring"
        )


def check_keyring_path(path: Path) -> None:
    """Production refusals about the keyring file itself, each one line: it must be a regular
    file (not a directory, device or dangling link) readable by its owner only."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return  # loading it says so
    except OSError as exc:
        raise ConfigurationError(
            f"production mode refuses keyring {path}: {exc.strerror or type(exc).__name__}"
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigurationError(
            f"production mode refuses keyring {path}: not a regular file; "
            "point EXCHANGE_KEYRING_PATH at the keyring file"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"production mode refuses keyring {path}: readable by group or others "
            f"(mode {mode:04o}); run chmod 600"
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
