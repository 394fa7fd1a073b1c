"""Passwords (Argon2id), logging in, access tokens (JWT) and signed values
(itsdangerous). The dependencies that say who is asking (`CurrentUser`,
`PageUser`) are in app/deps.py; the pages' cookie and CSRF checks in
app/pages/auth.py.

Argon2 is deliberately slow (tens of milliseconds of CPU and 64 MiB per hash).
Run on the event loop, one login would freeze every other request, so hashing
and verifying go to threads of their own (argon2-cffi releases the GIL while
it works, so the loop keeps serving). Not to the thread pool FastAPI shares
with file responses: forty guesses at once there would take forty threads
and 2.5 GB. The pool has one low-priority thread per core but one (at
most 4), so
hashes take at most `threads x 64 MiB` and leave a core to the event loop,
and a bounded queue: beyond it a login is refused at once with a 503 and
`Retry-After` instead of waiting behind hundreds of others.
"""

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, TypeVar

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.config import Settings
from app.db import end_read_only_transaction
from app.errors import AppError, Unprocessable
from app.models import MAX_ID, User, text_problem
from app.workers import default_workers, lower_thread_priority

T = TypeVar("T")

TOKEN_ALGORITHM = "HS256"

# argon2-cffi's defaults are Argon2id with the RFC 9106 "low memory" profile.
_hasher = PasswordHasher()

# Password checks that may wait for a thread, per thread, before more are refused.
HASHES_QUEUED_PER_THREAD = 16
RETRY_AFTER_SECONDS = 2


class PasswordChecksBusy(AppError):
    status_code = 503
    retry_after = RETRY_AFTER_SECONDS

    def __init__(self) -> None:
        super().__init__("The server is busy checking passwords. Please try again in a moment.")


class HashPool:
    """Threads for Argon2 alone, at a lower priority, with a bounded queue."""

    def __init__(self, threads: int) -> None:
        # Threads are started on first use, not when the module is imported.
        self.executor = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="argon2", initializer=lower_thread_priority
        )
        self.limit = threads * (1 + HASHES_QUEUED_PER_THREAD)
        self.pending = 0

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        if self.pending >= self.limit:
            raise PasswordChecksBusy
        self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)
        finally:
            self.pending -= 1


# One thread per core but one (at most 4), which stays with the event loop (as for images).
hash_pool = HashPool(threads=default_workers())


async def hash_password(password: str) -> str:
    return await hash_pool.run(_hasher.hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str, password: str) -> bool:
    return await hash_pool.run(_verify, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash("not a real password")


async def verify_against_dummy(password: str) -> None:
    """Spend the same time as a real check, so response time does not reveal
    whether an email has an account."""
    dummy = await hash_pool.run(_dummy_hash)
    await verify_password(dummy, password)


async def authenticate(session: AsyncSession, email: str, password: str) -> User | None:
    """The user these credentials belong to, or None. Takes as long either way."""
    for value in (email, password):
        problem = text_problem(value)
        if problem is not None:
            raise Unprocessable(problem)
    user = (await session.exec(select(User).where(User.email == email.strip().lower()))).first()
    # Argon2 takes tens of milliseconds in a worker thread: the connection
    # goes back to the pool meanwhile.
    await end_read_only_transaction(session)
    if user is None:
        await verify_against_dummy(password)
        return None
    if not await verify_password(user.password_hash, password):
        return None
    return user


async def upgrade_hash(session: AsyncSession, user: User, password: str) -> None:
    """After a successful login: store the password's hash anew if it was
    made with weaker parameters than today's. A write: call it last."""
    if not needs_rehash(user.password_hash):
        return
    # Only if the hash is still the one checked: a password changed
    # meanwhile stays changed. A statement rather than the ORM, so the row's
    # version (updated_at) does not make a correct login fail when the
    # profile changed meanwhile.
    await session.exec(
        update(User)
        .where(col(User.id) == user.id, col(User.password_hash) == user.password_hash)
        .values(password_hash=await hash_password(password))
    )


# --- tokens ------------------------------------------------------------------


def create_access_token(user: User, settings: Settings) -> str:
    """A signed token for `user`, valid until it expires or until the user's
    token version moves on (a new password, "log out everywhere")."""
    assert settings.secret_key is not None
    now = datetime.now(UTC)
    claims = {
        "sub": str(user.id),
        "ver": user.token_version,
        "iat": now,
        "exp": now + timedelta(minutes=settings.access_token_expire_minutes),
    }
    return jwt.encode(claims, settings.secret_key.get_secret_value(), TOKEN_ALGORITHM)


def read_access_token(token: str, settings: Settings) -> tuple[int, int] | None:
    """(user id, token version) a token was issued for, or None if it is
    forged, expired or malformed. Tokens from before versions count as 0."""
    assert settings.secret_key is not None
    try:
        claims = jwt.decode(
            token,
            settings.secret_key.get_secret_value(),
            algorithms=[TOKEN_ALGORITHM],
            options={"require": ["sub", "exp"]},
        )
        user_id, version = int(claims["sub"]), claims.get("ver", 0)
    except (jwt.InvalidTokenError, ValueError, TypeError):
        return None
    if not 1 <= user_id <= MAX_ID or type(version) is not int:
        return None
    return user_id, version


async def user_from_token(
    token: str | None, settings: Settings, session: AsyncSession
) -> User | None:
    """The user a token belongs to; None for no token, a bad one, one issued
    before the user's logins were ended, or a deleted user."""
    if not token:
        return None
    claims = read_access_token(token, settings)
    if claims is None:
        return None
    user_id, version = claims
    user = await session.get(User, user_id)
    if user is None or user.token_version != version:
        return None
    return user


# --- signed values ----------------------------------------------------------------


def serializer(settings: Settings, purpose: str) -> URLSafeSerializer:
    """Signs values under the secret key and checks them (itsdangerous).

    `purpose` is the salt: a value signed for one use (a flash message, a
    cursor) is never accepted for another.
    """
    assert settings.secret_key is not None
    return URLSafeSerializer(settings.secret_key.get_secret_value(), salt=purpose)


def timed_serializer(settings: Settings, purpose: str) -> URLSafeTimedSerializer:
    """Like `serializer`, for values that expire: `loads(value, max_age=...)`."""
    assert settings.secret_key is not None
    return URLSafeTimedSerializer(settings.secret_key.get_secret_value(), salt=purpose)
