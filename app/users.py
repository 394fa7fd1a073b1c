"""Queries and rules for users, shared by the JSON API and the pages."""

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import security
from app.db import release_connection
from app.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.images import ProcessedImage, save_image
from app.models import Post, User, UserCreate, UserUpdate, text_problem
from app.storage import Storage, forget_files

USERNAME_TAKEN = "That username is already taken."
EMAIL_TAKEN = "An account with that email already exists."


async def get_user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("User not found.")
    return user


def ensure_self(user: User, current_user: User) -> None:
    if user.id != current_user.id:
        raise Forbidden("You can only change your own account.")


async def _ensure_unique(
    session: AsyncSession, *, username: str | None, email: str | None, exclude_id: int | None
) -> None:
    conditions = []
    if username is not None:
        conditions.append(User.username == username)
    if email is not None:
        conditions.append(User.email == email)
    if not conditions:
        return
    statement = select(User.username, User.email).where(or_(*conditions))
    if exclude_id is not None:
        statement = statement.where(User.id != exclude_id)
    for taken_username, taken_email in await session.exec(statement):
        if taken_username == username:
            raise Conflict(USERNAME_TAKEN, field="username")
        if taken_email == email:
            raise Conflict(EMAIL_TAKEN, field="email")


async def _flush_unique(session: AsyncSession, user: User) -> None:
    """Flush, turning a unique-constraint race (two sign-ups at once) into a 409."""
    username, email, user_id = user.username, user.email, user.id
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        if user in session:
            # The rollback expired it; reload so the caller can still read it
            # (an implicit load would fail in async code).
            await session.refresh(user)
        await _ensure_unique(session, username=username, email=email, exclude_id=user_id)
        raise Conflict("That username or email was taken just now.", field="username") from None


async def create_user(session: AsyncSession, data: UserCreate) -> User:
    # Hashed before the first statement, so no connection waits on Argon2.
    password_hash = await security.hash_password(data.password)
    await _ensure_unique(session, username=data.username, email=data.email, exclude_id=None)
    user = User(username=data.username, email=data.email, password_hash=password_hash)
    session.add(user)
    await _flush_unique(session, user)
    return user


async def update_user(session: AsyncSession, user: User, data: UserUpdate) -> User:
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    await _ensure_unique(
        session,
        username=changes.get("username"),
        email=changes.get("email"),
        exclude_id=user.id,
    )
    user.sqlmodel_update(changes)
    session.add(user)
    await _flush_unique(session, user)
    return user


async def delete_user(session: AsyncSession, user: User) -> None:
    # The database's ON DELETE CASCADE removes the user's posts without the
    # session seeing them, so their images are looked up here and deleted
    # with the user's own picture once the transaction commits.
    post_images = await session.exec(
        select(col(Post.image)).where(Post.user_id == user.id, col(Post.image).is_not(None))
    )
    forget_files(session, post_images)
    await session.delete(user)
    await session.flush()


async def set_picture(
    session: AsyncSession, storage: Storage, user: User, image: ProcessedImage
) -> User:
    """Store a new profile picture; the old one is deleted after the commit."""
    user.image = await save_image(session, storage, image, kind="avatars")
    session.add(user)
    await session.flush()
    return user


async def remove_picture(session: AsyncSession, user: User) -> User:
    """Back to the default picture; the file is deleted after the commit."""
    user.image = None
    session.add(user)
    await session.flush()
    return user


async def authenticate(session: AsyncSession, email: str, password: str) -> User | None:
    """The user these credentials belong to, or None. Takes as long either way."""
    for value in (email, password):
        problem = text_problem(value)
        if problem is not None:
            raise Unprocessable(problem)
    user = (await session.exec(select(User).where(User.email == email.strip().lower()))).first()
    # Argon2 takes tens of milliseconds in a worker thread: no connection held.
    await release_connection(session)
    if user is None:
        await security.verify_against_dummy(password)
        return None
    if not await security.verify_password(user.password_hash, password):
        return None
    if security.needs_rehash(user.password_hash):
        user.password_hash = await security.hash_password(password)
        session.add(user)
    return user
