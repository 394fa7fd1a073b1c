"""Command line: `python -m app seed`, `create-user`, `make-admin`, `tidy`, and
`storage gc`, `migrate` and `regenerate`."""

import argparse
import asyncio
import getpass
import io
import re
import sys
from collections.abc import Sequence
from datetime import timedelta

from fastapi import UploadFile
from PIL import Image, ImageChops
from pydantic import ValidationError
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import comments, likes, posts, ratelimits, users
from app.config import Settings, get_settings
from app.db import create_engine, create_sessionmaker
from app.errors import Conflict, Invalid, NotFound
from app.models import (
    CommentCreate,
    PasswordResetToken,
    Post,
    PostCreate,
    User,
    UserCreate,
    utcnow,
)
from app.pictures import profile_picture_policy, regenerate_renditions
from app.policies import FilePolicy, policy_of
from app.storage import (
    Storage,
    StorageError,
    create_storage,
    create_storages,
    register_storage,
)
from app.storage.gc import collect_garbage
from app.storage.migrate import migrate_files
from app.uploads import accept_upload, store_accepted
from app.workers import ImageWorkers

DEMO_PASSWORD = "demo-password"  # published on purpose: the demo accounts

DEMO_USERS = [
    ("ada", "ada@example.com"),
    ("grace", "grace@example.com"),
    ("linus", "linus@example.com"),
]

# (title, Markdown, tags): the demo posts, oldest first.
DEMO_POSTS = [
    (
        "Why async?",
        "An async view frees the worker while it waits on the database or "
        "the network, so one process can serve many slow clients at once.",
        ["async-python"],
    ),
    (
        "expire_on_commit=False",
        "With the default, every attribute **expires at commit** and the next read "
        "needs SQL: in async code that is a `MissingGreenlet` error. So:\n\n"
        "```python\n"
        "sessionmaker = async_sessionmaker(engine, expire_on_commit=False)\n"
        "```\n\n"
        "See [SQLAlchemy's asyncio docs](https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html).",
        ["sqlalchemy", "async-python"],
    ),
    (
        "Say how to load, always",
        "A page of posts and their authors in one query, with `joinedload`. "
        "Lazy loading is switched off so a forgotten option fails loudly in tests:\n\n"
        "| relationship | loader |\n|---|---|\n"
        "| many-to-one (a post's author) | `joinedload` |\n"
        "| collection (a post's tags) | `selectinload` |",
        ["sqlalchemy", "performance"],
    ),
    (
        "Hashing off the loop",
        "Argon2 takes tens of milliseconds *on purpose*. In a worker "
        "thread it costs the login that needs it, not every other request.",
        ["security", "async-python"],
    ),
    (
        "Files and transactions",
        "1. Upload before commit.\n2. Delete on rollback.\n"
        "3. Remove a replaced file only once the new row is safely committed.",
        ["files"],
    ),
    (
        "Post/redirect/get",
        "A form that answers with a redirect can be refreshed without posting twice.",
        ["forms"],
    ),
    (
        "SQLite in production?",
        "For one machine, often yes: WAL mode lets readers carry on "
        "while a writer commits. For several machines, PostgreSQL.",
        ["sqlite", "postgresql"],
    ),
    (
        "Pagination that scales",
        "No `OFFSET`, no count: each page starts where the last one ended, "
        "read off an index, so page 10,000 costs what page 1 does.",
        ["performance", "postgresql"],
    ),
    (
        "Tokens in cookies",
        "The pages keep the same signed token the API hands out, in an "
        "HttpOnly cookie that scripts cannot read.",
        ["security"],
    ),
    (
        "CSRF in one dependency",
        "Every form posts a token signed with the secret key; a "
        "site that cannot read our cookie cannot forge it.",
        ["security", "forms"],
    ),
    (
        "Migrations first",
        "The app never creates tables itself. Alembic does, and a test "
        "checks that the migrations and the models agree.",
        ["sqlalchemy"],
    ),
    (
        "One query, two faces",
        "The home page and `GET /api/posts` call the same function, "
        "so there is one place to make it fast.",
        ["fastapi"],
    ),
    (
        "Errors people can read",
        "A bad form comes back with your input and a note beside the field, never a stack trace.",
        ["forms", "fastapi"],
    ),
    (
        "Dark mode for free",
        "The stylesheet follows `prefers-color-scheme` with a handful of custom properties.",
        ["css"],
    ),
]
# The posts (by number) that get a cover picture, and its two colours.
DEMO_COVERS = {
    1: ((32, 84, 160), (120, 200, 230)),
    4: ((150, 60, 40), (240, 190, 90)),
    12: ((40, 110, 70), (170, 220, 150)),
}
# (post, user, comment): users by their place in DEMO_USERS.
DEMO_COMMENTS = [
    (1, 1, "This one bit me twice before I read the docs. Thanks!"),
    (1, 2, "Worth adding: `refresh()` when you *do* need the new values."),
    (4, 0, "Would this work the same with S3 behind it?"),
    (4, 2, "Yes: the same hooks, another storage backend."),
    (7, 1, "Keyset pages are the best thing I learned this year."),
]
DEMO_LIKES = [(1, 1), (1, 2), (2, 0), (4, 0), (4, 1), (7, 0), (7, 1), (7, 2), (13, 2)]


def demo_cover(number: int) -> UploadFile:
    """A picture for a demo post's cover: a diagonal blend of its two colours."""
    start, end = DEMO_COVERS[number]
    horizontal = Image.linear_gradient("L").rotate(90).resize((1600, 900))
    vertical = Image.linear_gradient("L").resize((1600, 900))
    mask = ImageChops.add(horizontal, vertical, scale=2)
    picture = Image.composite(
        Image.new("RGB", mask.size, end), Image.new("RGB", mask.size, start), mask
    )
    data = io.BytesIO()
    picture.save(data, "PNG")
    data.seek(0)
    return UploadFile(data, filename=f"cover-{number}.png")


async def seed(session: AsyncSession, storage: Storage, images: ImageWorkers) -> tuple[int, int]:
    """Demo users, posts with tags and covers, comments and likes, unless the
    demo users exist. Returns (users, posts) added."""
    taken = select(User.id).where(col(User.email).in_([email for _name, email in DEMO_USERS]))
    if (await session.exec(taken)).first() is not None:
        return 0, 0
    # The covers first: pictures are processed before the transaction writes
    # anything, as in a request (app/uploads.py).
    policy = policy_of(Post, "image")
    covers = {
        # Drawing a picture is CPU work: in a thread, off the event loop.
        number: await accept_upload(
            session, images, await asyncio.to_thread(demo_cover, number), policy
        )
        for number in DEMO_COVERS
    }
    people = []
    for index, (username, email) in enumerate(DEMO_USERS):
        account = UserCreate(username=username, email=email, password=DEMO_PASSWORD)
        user = await users.create_user(session, account)
        # Demo addresses cannot receive mail: they count as confirmed.
        user.email_verified = True
        # The first may delete anything, to show what an admin sees.
        user.is_admin = index == 0
        people.append(user)
    published = []
    for number, (title, content, tags) in enumerate(DEMO_POSTS):
        author = people[number % len(people)]
        cover = covers.get(number)
        image = None if cover is None else await store_accepted(session, storage, cover)
        data = PostCreate(title=title, content=content, tags=tags)
        published.append(await posts.create_post(session, author, data, image=image))
    for number, person, text in DEMO_COMMENTS:
        post_id = published[number].id
        assert post_id is not None
        await comments.add_comment(session, post_id, people[person], CommentCreate(content=text))
    for number, person in DEMO_LIKES:
        await likes.like(session, published[number], people[person])
    return len(people), len(published)


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


async def _seed(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> tuple[int, int]:
    storages = create_storages(settings)
    for storage in storages.values():
        register_storage(storage)
    images = ImageWorkers(max_upload_bytes=settings.max_upload_bytes, workers=1)
    # A session of its own, ended as a request's is (app/db.py): the covers
    # end its read-only start early, which a `session.begin()` block forbids.
    try:
        async with sessionmaker() as session:
            try:
                added = await seed(session, storages[settings.storage_backend], images)
            except BaseException:
                await session.rollback()
                raise
            await session.commit()
            return added
    finally:
        images.close()


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
                added_users, added_posts = await _seed(settings, create_sessionmaker(engine))
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
            elif command == "make-admin":
                user = await users.make_admin(session, args.email)
                print(f"{user.username} (id {user.id}) is an admin.")
            else:
                data = UserCreate(username=args.username, email=args.email, password=args.password)
                user = await users.create_user(session, data)
                # Made by whoever runs the server, who vouches for the address.
                user.email_verified = True
                user.is_admin = args.admin
                role = "admin" if user.is_admin else "user"
                print(f"Created {role} {user.username} (id {user.id}).")
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
    create.add_argument("--admin", action="store_true", help="may delete any post or comment")
    make_admin = commands.add_parser("make-admin", help="let an account delete any post or comment")
    make_admin.add_argument("email")
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
        try:
            args.password = getpass.getpass("Password: ")
        except EOFError:
            print("error: no password given (type one, or pass --password)", file=sys.stderr)
            return 1
    try:
        return asyncio.run(_run(args.command, args))
    except ValidationError as exc:
        for error in exc.errors():
            print(f"error: {'.'.join(map(str, error['loc']))}: {error['msg']}", file=sys.stderr)
    except (Conflict, Invalid, NotFound) as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
    except StorageError as exc:
        print(f"error: storage unavailable: {exc}", file=sys.stderr)
    return 1
