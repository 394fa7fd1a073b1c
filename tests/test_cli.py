"""`python -m app seed`, `create-user`, `make-admin`, `tidy` and `storage`."""

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import selectinload
from sqlmodel import col, select

from app import search
from app.cli import DEMO_COMMENTS, DEMO_COVERS, DEMO_LIKES, DEMO_POSTS, DEMO_USERS, main
from app.config import get_settings
from app.db import create_engine, create_sessionmaker
from app.models import PasswordResetToken, Post, RateLimit, User, utcnow


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
    assert f"Seeded {len(DEMO_USERS)} users and {len(DEMO_POSTS)} posts." in first
    assert "demo-password" in first
    assert main(["seed"]) == 0
    assert "Seeded 0 users and 0 posts." in capsys.readouterr().out
    # Everything the blog shows has an example: tags, covers, comments, likes, a
    # code block, an admin, and the search index.
    shown = asyncio.run(_demo_counts(database))
    assert shown == {
        "tagged": len(DEMO_POSTS),
        "covers": len(DEMO_COVERS),
        "comments": len(DEMO_COMMENTS),
        "likes": len(DEMO_LIKES),
        "code blocks": 1,
        "admins": 1,
        "found": 1,
    }


async def _demo_counts(database_url: str) -> dict[str, int]:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            tags = selectinload(Post.tags)  # type: ignore[arg-type]
            posts = (await session.exec(select(Post).options(tags))).all()
            admins = (await session.exec(select(User).where(col(User.is_admin)))).all()
            found = await search.search_posts(session, "MissingGreenlet", limit=10)
    finally:
        await engine.dispose()
    return {
        "tagged": sum(1 for post in posts if post.tags),
        "covers": sum(1 for post in posts if post.image),
        "comments": sum(post.comment_count for post in posts),
        "likes": sum(post.like_count for post in posts),
        "code blocks": sum("<pre><code" in post.content_html for post in posts),
        "admins": len(admins),
        "found": len(found.posts),
    }


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


def test_admins_are_made_at_creation_or_later(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    password = ["--password", "s3cret-pass"]
    boss = ["create-user", "--username", "boss", "--email", "boss@example.com", *password]
    assert main([*boss, "--admin"]) == 0
    assert "Created admin boss" in capsys.readouterr().out
    helper = ["create-user", "--username", "helper", "--email", "helper@example.com", *password]
    assert main(helper) == 0
    assert main(["make-admin", "Helper@Example.com"]) == 0
    assert "helper (id " in capsys.readouterr().out
    assert main(["make-admin", "nobody@example.com"]) == 1
    assert "No account has the email nobody@example.com." in capsys.readouterr().err

    async def admins() -> list[str]:
        engine = create_engine(database)
        try:
            async with create_sessionmaker(engine)() as session:
                query = select(User.username).where(User.is_admin).order_by(User.username)
                return list((await session.exec(query)).all())
        finally:
            await engine.dispose()

    assert asyncio.run(admins()) == ["boss", "helper"]


def test_create_user_without_a_password_to_read_says_so(
    database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def end_of_input(prompt: str) -> str:
        raise EOFError  # what getpass does when stdin is empty (</dev/null)

    monkeypatch.setattr("getpass.getpass", end_of_input)
    args = ["create-user", "--username", "quiet", "--email", "quiet@example.com"]
    assert main(args) == 1
    assert "error: no password given" in capsys.readouterr().err


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
    # The demo covers, made by the seed with their renditions.
    assert "Checked 3 pictures; rebuilt the renditions of 0." in capsys.readouterr().out
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
