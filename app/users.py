"""Queries and rules for users, shared by the JSON API and the pages."""

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import comments, likes, ratelimits, security
from app.db import end_read_only_transaction
from app.errors import Conflict, Invalid, NotFound
from app.models import (
    PasswordResetToken,
    Post,
    User,
    UserCreate,
    UserUpdate,
    text_problem,
    utcnow,
)
from app.names import username_key
from app.ratelimits import RateLimiter

USERNAME_TAKEN = "That username is already taken (or one that looks the same)."
EMAIL_TAKEN = "An account with that email already exists."


async def get_user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("User not found.")
    return user


async def _ensure_unique(
    session: AsyncSession, *, username: str | None, email: str | None, exclude_id: int | None
) -> None:
    key = None if username is None else username_key(username)
    conditions = []
    if key is not None:
        conditions.append(User.username_key == key)
    if email is not None:
        conditions.append(User.email == email)
    if not conditions:
        return
    statement = select(User.username_key, User.email).where(or_(*conditions))
    if exclude_id is not None:
        statement = statement.where(User.id != exclude_id)
    for taken_key, taken_email in await session.exec(statement):
        if taken_key == key:
            raise Conflict(USERNAME_TAKEN, field="username")
        if taken_email == email:
            raise Conflict(EMAIL_TAKEN, field="email")


async def _conflict(
    session: AsyncSession, *, username: str | None, email: str | None, exclude_id: int | None
) -> Conflict:
    """The Conflict to raise after a unique constraint refused a row: the
    value was free when checked, and another request took it just after."""
    try:
        await _ensure_unique(session, username=username, email=email, exclude_id=exclude_id)
    except Conflict as exc:
        return exc
    return Conflict("That username or email was taken just now.", field="username")


async def create_user(session: AsyncSession, data: UserCreate) -> User:
    # Hashed before this function's first statement, so that no connection
    # it uses waits on Argon2.
    password_hash = await security.hash_password(data.password)
    await _ensure_unique(session, username=data.username, email=data.email, exclude_id=None)
    user = User(
        username=data.username,
        username_key=username_key(data.username),
        email=data.email,
        password_hash=password_hash,
    )
    # Two sign-ups at once can both pass the check above; the database's
    # unique constraints refuse the second INSERT. It runs in a SAVEPOINT, so
    # that refusal undoes the INSERT alone, not the request's transaction.
    try:
        async with session.begin_nested():
            session.add(user)
    except IntegrityError:
        raise await _conflict(
            session, username=data.username, email=data.email, exclude_id=None
        ) from None
    return user


async def check_current_password(
    session: AsyncSession,
    limiter: RateLimiter,
    user: User,
    password: str | None,
    *,
    field: str = "current_password",
) -> None:
    """Refuse (Invalid, beside `field`) unless `password` is the user's;
    RateLimited after a few wrong ones.

    Asked before changes that a stolen login must not be able to make, and
    limited like logins, or a stolen login could guess at it freely. Call it
    before the request writes: Argon2 runs with no connection held.
    """
    if not password:
        raise Invalid("Enter your current password to confirm this change.", field=field)
    await end_read_only_transaction(session)
    await limiter.attempt((ratelimits.PASSWORD_CHECK, str(user.id)))
    if not await security.verify_password(user.password_hash, password):
        raise Invalid("That is not your current password.", field=field)
    await limiter.forget(ratelimits.PASSWORD_CHECK, str(user.id))


async def forget_reset_links(session: AsyncSession, user: User) -> None:
    """Make every password reset link the user was sent useless."""
    await session.exec(delete(PasswordResetToken).where(col(PasswordResetToken.user_id) == user.id))


def changes_email(user: User, data: UserUpdate) -> bool:
    return data.email is not None and data.email != user.email


async def check_update_allowed(
    session: AsyncSession, limiter: RateLimiter, user: User, data: UserUpdate
) -> None:
    """A new email address needs the current password: call this before the
    request writes anything, then `update_user`."""
    if changes_email(user, data):
        await check_current_password(session, limiter, user, data.current_password)


async def update_user(session: AsyncSession, user: User, data: UserUpdate) -> User:
    """Change the username or email (after `check_update_allowed`). A new
    email address is unverified until the link mailed to it is opened."""
    changes = data.model_dump(exclude_unset=True, exclude_none=True, exclude={"current_password"})
    if not changes_email(user, data):
        changes.pop("email", None)
    if not changes:
        return user
    username, email = changes.get("username"), changes.get("email")
    if email is not None:
        changes["email_verified"] = False
    if username is not None:
        changes["username_key"] = username_key(username)
    await _ensure_unique(session, username=username, email=email, exclude_id=user.id)
    try:
        async with session.begin_nested():
            user.sqlmodel_update(changes)
            user.updated_at = utcnow()
            session.add(user)
    except IntegrityError:
        # Rolling back to the savepoint expired the user's changed values;
        # reload them (an implicit load would fail in async code).
        await session.refresh(user)
        raise await _conflict(session, username=username, email=email, exclude_id=user.id) from None
    if email is not None:
        # A reset link sent to the old address must not open the account.
        await forget_reset_links(session, user)
    return user


async def find_by_email(session: AsyncSession, email: str) -> User | None:
    """The account with this address (stored lower-case), or None."""
    statement = select(User).where(col(User.email) == email.strip().lower())
    return (await session.exec(statement)).one_or_none()


async def make_admin(session: AsyncSession, email: str) -> User:
    """Let the account with this email delete any post or comment."""
    email = email.strip().lower()
    problem = text_problem(email)
    if problem is not None:
        raise Invalid(problem, field="email")
    user = await find_by_email(session, email)
    if user is None:
        raise NotFound(f"No account has the email {email}.")
    user.is_admin = True
    session.add(user)
    return user


async def delete_user(session: AsyncSession, user: User) -> None:
    """Delete the user and their posts; every file of theirs goes after the
    commit (app/storage/lifecycle.py reads them before each DELETE).

    The database's ON DELETE CASCADE would remove the posts with the user;
    they go first so that rows are locked in the order `posts.delete_post`
    locks them (post, then user), and the two never wait for each other.
    """
    await session.exec(delete(Post).where(col(Post.user_id) == user.id))
    # Their row next: a like or comment of theirs needs a share lock on it
    # (the foreign key), so from here on nothing of theirs can be added behind
    # the counts taken below. (On SQLite, one writer at a time already.)
    await session.exec(select(User.id).where(col(User.id) == user.id).with_for_update())
    await comments.forget_comments_of(session, user)
    await likes.forget_likes_of(session, user)
    await session.delete(user)
    await session.flush()
