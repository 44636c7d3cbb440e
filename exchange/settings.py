"""Configuration from `EXCHANGE_*` environment variables, checked once at start-up.

Paths derived from `home` (database file, keyring) are filled in after parsing so that setting
only `EXCHANGE_HOME` moves everything. Production refusals live in `check_production`, which
reads the filesystem and therefore runs at start-up rather than at construction.
"""

from __future__ import annotations

import stat
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Mode = Literal["development", "production"]
LogFormat = Literal["console", "json"]


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
    audit_origin: str = "chengyang.exchange/audit"
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_page_size: int = Field(default=200, ge=1, le=10_000)
    auth_failures_per_minute: int = Field(default=30, ge=1)
    # seconds between scheduled audit checkpoints (issued only if the log grew); 0 turns it off
    checkpoint_interval: float = Field(default=300.0, ge=0)
    # the web console's sessions (docs/console.md)
    console_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    console_absolute_hours: int = Field(default=12, ge=1, le=7 * 24)
    console_max_failures: int = Field(default=5, ge=1, le=100)
    # None: Secure `__Host-` cookie over HTTPS (and always in production), plain name over HTTP
    console_secure_cookie: bool | None = None

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
    path = settings.keyring_file
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigurationError(
                f"production mode refuses keyring {path}: readable by group or others "
                f"(mode {mode:04o}); run chmod 600"
            )
    if development_keys:
        raise ConfigurationError(
            "production mode refuses development keys; provision a production keyring"
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
