"""Settings: a development key is made once and kept; production insists on one."""

import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import Settings


@pytest.fixture(autouse=True)
def _no_key_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("ENVIRONMENT", raising=False)


def test_development_generates_a_key_once_and_keeps_it(tmp_path: Path) -> None:
    key_file = tmp_path / ".secret_key"
    first = Settings(_env_file=None, secret_key_file=key_file)
    second = Settings(_env_file=None, secret_key_file=key_file)
    assert first.secret_key is not None
    assert second.secret_key is not None
    assert len(first.secret_key.get_secret_value()) >= 64
    assert first.secret_key.get_secret_value() == second.secret_key.get_secret_value()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_production_without_a_key_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY is not set"):
        Settings(_env_file=None, environment="production", secret_key_file=tmp_path / "k")
    assert not (tmp_path / "k").exists()


def test_production_refuses_a_short_key() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(_env_file=None, environment="production", secret_key="short")


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTS_PER_PAGE", "25")
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    monkeypatch.setenv("ENVIRONMENT", "production")
    settings = Settings(_env_file=None)
    assert settings.posts_per_page == 25
    assert settings.is_production
