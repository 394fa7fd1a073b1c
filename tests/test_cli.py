"""`python -m app seed` and `python -m app create-user`."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cli import DEMO_USERS, main
from app.config import get_settings


@pytest.fixture
def database(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def test_seed_adds_demo_data_once(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["seed"]) == 0
    first = capsys.readouterr().out
    assert f"Seeded {len(DEMO_USERS)} users and" in first
    assert "demo-password" in first
    assert main(["seed"]) == 0
    assert "Seeded 0 users and 0 posts." in capsys.readouterr().out


def test_create_user_then_duplicate_is_refused(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "create-user",
        "--username",
        "root",
        "--email",
        "Root@Example.com",
        "--password",
        "s3cret-pass",
    ]
    assert main(args) == 0
    assert "Created user root" in capsys.readouterr().out
    assert main(args) == 1
    assert "username is already taken" in capsys.readouterr().err


def test_create_user_with_bad_email_explains_why(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["create-user", "--username", "x", "--email", "nope", "--password", "s3cret-pass"]
    assert main(args) == 1
    assert "email" in capsys.readouterr().err


def test_storage_commands_explain_what_they_did(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["seed"]) == 0
    capsys.readouterr()
    assert main(["storage", "regenerate"]) == 0
    assert "Checked 0 pictures; rebuilt the renditions of 0." in capsys.readouterr().out
    assert main(["storage", "migrate", "--to", "local"]) == 0
    assert "Moved 0 files to local" in capsys.readouterr().out
    assert main(["storage", "migrate", "--to", "s3"]) == 1
    assert "--to s3 needs that backend's settings" in capsys.readouterr().err
