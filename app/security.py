"""Passwords (Argon2id), access tokens (JWT), signed values (itsdangerous), and
`CurrentUser`, the API's dependency that says who is asking (Bearer token).
The pages' side (the login cookie, CSRF, `PageUser`) is app/pages/auth.py.

Argon2 is deliberately slow (tens of milliseconds of CPU and 64 MiB per hash).
Run on the event loop, one login would freeze every other request, so hashing
and verifying go to a worker thread; argon2-cffi releases the GIL while it
works, so the loop keeps serving.
"""

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, HTTPException, status
from fastapi.security import OAuth2PasswordBearer
from itsdangerous import URLSafeSerializer
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.concurrency import run_in_threadpool

from app.config import Settings, SettingsDep
from app.db import SessionDep
from app.models import User
from app.params import MAX_ID

TOKEN_ALGORITHM = "HS256"

# argon2-cffi's defaults are Argon2id with the RFC 9106 "low memory" profile.
_hasher = PasswordHasher()


async def hash_password(password: str) -> str:
    return await run_in_threadpool(_hasher.hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str, password: str) -> bool:
    return await run_in_threadpool(_verify, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash("not a real password")


async def verify_against_dummy(password: str) -> None:
    """Spend the same time as a real check, so response time does not reveal
    whether an email has an account."""
    dummy = await run_in_threadpool(_dummy_hash)
    await verify_password(dummy, password)


# --- tokens ------------------------------------------------------------------


def create_access_token(user_id: int, settings: Settings) -> str:
    assert settings.secret_key is not None
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "iat": now,
        "exp": now + timedelta(minutes=settings.access_token_expire_minutes),
    }
    return jwt.encode(claims, settings.secret_key.get_secret_value(), TOKEN_ALGORITHM)


def read_access_token(token: str, settings: Settings) -> int | None:
    """The user id a token was issued for, or None if it is forged, expired or malformed."""
    assert settings.secret_key is not None
    try:
        claims = jwt.decode(
            token,
            settings.secret_key.get_secret_value(),
            algorithms=[TOKEN_ALGORITHM],
            options={"require": ["sub", "exp"]},
        )
        user_id = int(claims["sub"])
    except (jwt.InvalidTokenError, ValueError):
        return None
    return user_id if 1 <= user_id <= MAX_ID else None


async def user_from_token(
    token: str | None, settings: Settings, session: AsyncSession
) -> User | None:
    """The user a token belongs to; None for no token, a bad one, or a deleted user."""
    if not token:
        return None
    user_id = read_access_token(token, settings)
    if user_id is None:
        return None
    return await session.get(User, user_id)


# --- dependencies ------------------------------------------------------------


# auto_error=False so that a missing token gets the same clear 401 as a bad one.
_bearer = OAuth2PasswordBearer(tokenUrl="/api/users/token", auto_error=False)


async def get_current_user(
    token: Annotated[str | None, Depends(_bearer)], settings: SettingsDep, session: SessionDep
) -> User:
    user = await user_from_token(token, settings, session)
    if user is None:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="Not authenticated: log in and send 'Authorization: Bearer <token>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


# --- signed values ----------------------------------------------------------------


def serializer(settings: Settings, purpose: str) -> URLSafeSerializer:
    """Signs values under the secret key and checks them (itsdangerous).

    `purpose` is the salt: a value signed for one use (a flash message, a
    cursor) is never accepted for another.
    """
    assert settings.secret_key is not None
    return URLSafeSerializer(settings.secret_key.get_secret_value(), salt=purpose)
