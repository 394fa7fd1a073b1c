"""`python -m app seed`, `create-user`, `tidy` and `storage`."""

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from app.cli import DEMO_USERS, main
from app.config import get_settings
from app.db import create_engine, create_sessionmaker
from app.models import PasswordResetToken, RateLimit, utcnow


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


async def _add_tidy_rows(database_url: str) -> None:
    now = utcnow()
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            session.add_all(
                [
                    RateLimit(key="idle", hits=3, last_at=now - timedelta(days=2)),
                    RateLimit(
                        key="blocked",
                        hits=40,
                        last_at=now - timedelta(days=2),
                        blocked_until=now + timedelta(minutes=5),
                    ),
                    RateLimit(key="recent", hits=1, last_at=now),
                    PasswordResetToken(
                        user_id=1, token_hash="a" * 64, expires_at=now - timedelta(minutes=1)
                    ),
                    PasswordResetToken(
                        user_id=1, token_hash="b" * 64, expires_at=now + timedelta(minutes=30)
                    ),
                ]
            )
    finally:
        await engine.dispose()


async def _left(database_url: str) -> tuple[set[str], set[str]]:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            keys = set((await session.exec(select(RateLimit.key))).all())
            tokens = set((await session.exec(select(PasswordResetToken.token_hash))).all())
    finally:
        await engine.dispose()
    return keys, tokens


def test_tidy_deletes_idle_counts_and_expired_links(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["seed"]) == 0
    asyncio.run(_add_tidy_rows(database))
    capsys.readouterr()
    assert main(["tidy"]) == 0
    assert "Deleted 1 idle rate-limit counts and 1 expired reset links." in capsys.readouterr().out
    assert asyncio.run(_left(database)) == ({"blocked", "recent"}, {"b" * 64})
