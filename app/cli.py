"""Command line: `python -m app seed`, `create-user`, `tidy`, and `storage gc`, `migrate`
and `regenerate`."""

import argparse
import asyncio
import getpass
import re
import sys
from collections.abc import Sequence
from datetime import timedelta

from pydantic import ValidationError
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import posts, ratelimits, users
from app.config import Settings, get_settings
from app.db import create_engine, create_sessionmaker
from app.errors import Conflict
from app.markdown import render_post
from app.models import PasswordResetToken, Post, User, UserCreate, utcnow
from app.pictures import profile_picture_policy, regenerate_renditions
from app.policies import FilePolicy, policy_of
from app.storage import StorageError, create_storage, create_storages, register_storage
from app.storage.gc import collect_garbage
from app.storage.migrate import migrate_files

DEMO_PASSWORD = "demo-password"  # published on purpose: the demo accounts

DEMO_USERS = [
    ("ada", "ada@example.com"),
    ("grace", "grace@example.com"),
    ("linus", "linus@example.com"),
]

DEMO_POSTS = [
    (
        "Why async?",
        "An async view frees the worker while it waits on the database or "
        "the network, so one process can serve many slow clients at once.",
    ),
    (
        "expire_on_commit=False",
        "With the default, every attribute **expires at commit** and the next read "
        "needs SQL: in async code that is a `MissingGreenlet` error. So:\n\n"
        "```python\n"
        "sessionmaker = async_sessionmaker(engine, expire_on_commit=False)\n"
        "```\n\n"
        "See [SQLAlchemy's asyncio docs](https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html).",
    ),
    (
        "Say how to load, always",
        "A page of posts and their authors in one query, with joinedload. "
        "Lazy loading is switched off so a forgotten option fails loudly in tests.",
    ),
    (
        "Hashing off the loop",
        "Argon2 takes tens of milliseconds on purpose. In a worker "
        "thread it costs the login that needs it, not every other request.",
    ),
    (
        "Files and transactions",
        "Upload before commit, delete on rollback, and remove a "
        "replaced file only once the new row is safely committed.",
    ),
    (
        "Post/redirect/get",
        "A form that answers with a redirect can be refreshed without posting twice.",
    ),
    (
        "SQLite in production?",
        "For one machine, often yes: WAL mode lets readers carry on "
        "while a writer commits. For several machines, PostgreSQL.",
    ),
    (
        "Pagination that scales",
        "Count once, fetch one page, fetch its authors: three "
        "statements whether the page holds ten posts or a hundred.",
    ),
    (
        "Tokens in cookies",
        "The pages keep the same signed token the API hands out, in an "
        "HttpOnly cookie that scripts cannot read.",
    ),
    (
        "CSRF in one dependency",
        "Every form posts a token signed with the secret key; a "
        "site that cannot read our cookie cannot forge it.",
    ),
    (
        "Migrations first",
        "The app never creates tables itself. Alembic does, and a test "
        "checks that the migrations and the models agree.",
    ),
    (
        "One query, two faces",
        "The home page and GET /api/posts call the same function, "
        "so there is one place to make it fast.",
    ),
    (
        "Errors people can read",
        "A bad form comes back with your input and a note beside the field, never a stack trace.",
    ),
    (
        "Dark mode for free",
        "The stylesheet follows prefers-color-scheme with a handful of custom properties.",
    ),
]


async def seed(session: AsyncSession) -> tuple[int, int]:
    """Create the demo users and their posts unless they exist. Returns (users, posts) added."""
    added_users = added_posts = 0
    start = utcnow() - timedelta(days=len(DEMO_POSTS))
    for index, (username, email) in enumerate(DEMO_USERS):
        user = (await session.exec(select(User).where(User.username == username))).first()
        if user is None:
            user = await users.create_user(
                session, UserCreate(username=username, email=email, password=DEMO_PASSWORD)
            )
            # Demo addresses cannot receive mail: they count as confirmed.
            user.email_verified = True
            added_users += 1
        assert user.id is not None  # flushed, so the database has given it one
        has_posts = (await session.exec(select(Post.id).where(Post.user_id == user.id))).first()
        if has_posts is not None:
            continue
        # The demo posts go round the users, one day apart, newest last in the list.
        numbers = range(index, len(DEMO_POSTS), len(DEMO_USERS))
        for number in numbers:
            title, content = DEMO_POSTS[number]
            posted = start + timedelta(days=number)
            rendered = await asyncio.to_thread(render_post, content)
            session.add(
                Post(
                    title=title,
                    content=content,
                    content_html=rendered.html,
                    excerpt=rendered.excerpt,
                    user_id=user.id,
                    date_posted=posted,
                    updated_at=posted,
                )
            )
            added_posts += 1
        await posts.change_post_count(session, user.id, len(numbers))
    return added_users, added_posts


async def tidy(session: AsyncSession) -> tuple[int, int]:
    """Delete what no request needs any more: rate-limit counts idle for a
    day that block nothing, and reset links past their hour. (How many of each.)"""
    counts = await ratelimits.prune(session, older_than=timedelta(days=1))
    expired = await session.exec(
        delete(PasswordResetToken).where(col(PasswordResetToken.expires_at) <= utcnow())
    )
    return counts, expired.rowcount


def duration(text: str) -> timedelta:
    """`90s`, `30m`, `24h` or `7d`."""
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 24h or 7d")
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    return timedelta(**{units[match[2]]: int(match[1])})


async def _storage_gc(settings: Settings, session: AsyncSession, args: argparse.Namespace) -> None:
    storage = create_storage(settings)
    register_storage(storage)
    report = await collect_garbage(
        session, SQLModel.metadata, storage, older_than=args.older_than, dry_run=args.dry_run
    )
    verb = "Would delete" if args.dry_run else "Deleted"
    for stored in report.deleted:
        print(f"{verb} {stored.key} ({stored.size} bytes, {stored.last_modified:%Y-%m-%d %H:%M})")
    print(
        f"{verb} {len(report.deleted)} unreferenced objects; kept {report.kept_referenced} "
        f"referenced and {report.kept_recent} newer than {args.older_than}."
    )
    if report.incomplete:
        print(f"Deleted {report.incomplete} temporary files of interrupted writes.")


async def _storage_migrate(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], to: str
) -> None:
    storages = create_storages(settings)
    for storage in storages.values():
        register_storage(storage)
    if to not in storages:
        raise StorageError(f"--to {to} needs that backend's settings (S3_BUCKET and the rest)")
    report = await migrate_files(sessionmaker, SQLModel.metadata, storages[to])
    print(
        f"Moved {report.moved} files to {to} ({report.already_there} were copied by an "
        f"earlier run). Set STORAGE_BACKEND={to} so that new files go there too."
    )


async def _storage_regenerate(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    for storage in create_storages(settings).values():
        register_storage(storage)
    policies: list[tuple[type[User] | type[Post], FilePolicy]] = [
        (User, profile_picture_policy(settings)),
        (Post, policy_of(Post, "image")),
    ]
    report = await regenerate_renditions(sessionmaker, policies)
    print(f"Checked {report.checked} pictures; rebuilt the renditions of {report.rebuilt}.")


async def _run(command: str, args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            if command == "seed":
                added_users, added_posts = await seed(session)
                print(f"Seeded {added_users} users and {added_posts} posts.")
                if added_users:
                    print(f"Demo accounts log in with the password {DEMO_PASSWORD!r}.")
            elif command == "storage" and args.storage_command == "regenerate":
                await _storage_regenerate(settings, create_sessionmaker(engine))
            elif command == "storage" and args.storage_command == "migrate":
                await _storage_migrate(settings, create_sessionmaker(engine), args.to)
            elif command == "storage":
                await _storage_gc(settings, session, args)
            elif command == "tidy":
                counts, tokens = await tidy(session)
                print(f"Deleted {counts} idle rate-limit counts and {tokens} expired reset links.")
            else:
                data = UserCreate(username=args.username, email=args.email, password=args.password)
                user = await users.create_user(session, data)
                # Made by whoever runs the server, who vouches for the address.
                user.email_verified = True
                print(f"Created user {user.username} (id {user.id}).")
    finally:
        await engine.dispose()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("seed", help="add demo users and posts (safe to run again)")
    commands.add_parser(
        "tidy", help="delete idle rate-limit counts and expired reset links (run it daily)"
    )
    create = commands.add_parser("create-user", help="create an account")
    create.add_argument("--username", required=True)
    create.add_argument("--email", required=True)
    create.add_argument("--password", help="prompted for when omitted")
    storage = commands.add_parser("storage", help="manage stored files")
    storage_commands = storage.add_subparsers(dest="storage_command", required=True)
    gc = storage_commands.add_parser("gc", help="delete stored files that no row references")
    gc.add_argument("--dry-run", action="store_true", help="only print what would be deleted")
    gc.add_argument(
        "--older-than",
        type=duration,
        default=timedelta(hours=24),
        metavar="AGE",
        help="grace period, like 30m, 24h (the default) or 7d",
    )
    migrate = storage_commands.add_parser(
        "migrate", help="move every stored file to another backend (safe to run again)"
    )
    migrate.add_argument("--to", required=True, choices=["local", "s3"])
    storage_commands.add_parser(
        "regenerate",
        help="make the renditions that today's settings ask for (safe to run again)",
    )
    args = parser.parse_args(argv)

    if args.command == "create-user" and args.password is None:
        args.password = getpass.getpass("Password: ")
    try:
        return asyncio.run(_run(args.command, args))
    except ValidationError as exc:
        for error in exc.errors():
            print(f"error: {'.'.join(map(str, error['loc']))}: {error['msg']}", file=sys.stderr)
    except Conflict as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
    except StorageError as exc:
        print(f"error: storage unavailable: {exc}", file=sys.stderr)
    return 1
