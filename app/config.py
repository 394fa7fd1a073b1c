"""Application settings, read from the environment and from `.env`."""

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from fastapi import Request
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_PRODUCTION_KEY_LENGTH = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./blog.db"
    secret_key: SecretStr | None = None
    # Where development keeps its generated key; git-ignored.
    secret_key_file: Path = Path(".secret_key")
    environment: Literal["development", "production"] = "development"
    access_token_expire_minutes: int = Field(default=60 * 24 * 7, ge=1)
    # /docs, /redoc and /openapi.json; a production site may turn them off.
    docs_enabled: bool = True

    storage_backend: Literal["local", "s3"] = "local"
    media_root: Path = Path("./media")
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_prefix: str = ""
    s3_public_url: str | None = None

    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    avatar_size: int = Field(default=256, ge=16, le=2048)
    posts_per_page: int = Field(default=10, ge=1, le=100)

    # Accounts and mail (see app/mail.py).
    public_url: str = "http://127.0.0.1:8000"
    smtp_host: str | None = None
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    mail_from: str = "Blog <noreply@localhost>"
    mail_dir: Path = Path("./mail")
    require_verified_email: bool = False
    # False turns every rate limit off (load tests, benchmarks).
    rate_limits_enabled: bool = True

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @model_validator(mode="after")
    def _check_storage(self) -> "Settings":
        if self.storage_backend == "s3" and not self.s3_bucket:
            raise ValueError("STORAGE_BACKEND=s3 needs S3_BUCKET (and usually S3_ENDPOINT_URL).")
        return self

    @model_validator(mode="after")
    def _ensure_secret_key(self) -> "Settings":
        if self.secret_key is not None:
            key = self.secret_key.get_secret_value()
            if self.is_production and len(key) < MIN_PRODUCTION_KEY_LENGTH:
                raise ValueError(
                    f"SECRET_KEY must be at least {MIN_PRODUCTION_KEY_LENGTH} characters "
                    "when ENVIRONMENT=production."
                )
            return self
        if self.is_production:
            raise ValueError(
                "SECRET_KEY is not set. With ENVIRONMENT=production the app refuses to "
                "start without one; generate it with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(64))'`."
            )
        self.secret_key = SecretStr(_development_key(self.secret_key_file))
        return self


def _development_key(path: Path) -> str:
    """Read the development key, creating it on first use so restarts keep sessions."""
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(64)
    path.touch(mode=0o600)
    path.write_text(key)
    return key


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, for entry points (CLI, Alembic, the app factory)."""
    return Settings()


def app_settings(request: Request) -> Settings:
    """The settings the running app was built with (tests build apps with their own)."""
    settings: Settings = request.app.state.settings
    return settings
