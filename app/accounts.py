"""Keeping an account safe: changing and resetting the password, ending
logins, verifying the email address, deleting the account. Shared by the
JSON API and the pages; like every service, it never commits.

Logins end through the user's token version: every token carries the
version it was issued under (app/security.py), so raising it ends every
login at once, API tokens and browser cookies alike.

A reset link carries a random token; the database keeps only its SHA-256,
so a leaked copy of the database resets nobody's password. The token is
used up by deleting its row (of two requests racing with one link, only one
deletes it), lives 60 minutes, and dies with every other of the user's when
their password changes. A verification link is signed instead (nothing to
store): it names the user and the address, and works only while the account
still has that address.
"""

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from itsdangerous import BadData
from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import ratelimits, security, users
from app.config import Settings
from app.db import end_read_only_transaction
from app.errors import Invalid
from app.mail import Mail, render_mail
from app.models import (
    MAX_ID,
    PASSWORD_IS_NAME,
    PasswordResetToken,
    User,
    UserCreate,
    password_is_name,
    utcnow,
)
from app.ratelimits import RateLimiter

RESET_TOKEN_LIFETIME = timedelta(minutes=60)
VERIFICATION_LIFETIME = timedelta(days=7)
# What verification links are signed for (no other signed value passes as one).
VERIFY_PURPOSE = "verify-email"
INVALID_RESET_LINK = (
    "This password reset link is not valid: it was used already, it expired, "
    "or it was copied incompletely. Ask for a new one."
)
INVALID_VERIFICATION_LINK = (
    "This verification link is not valid: it expired, it was copied "
    "incompletely, or your address changed since. Ask for a new one from your account page."
)


# --- logging in -----------------------------------------------------------------------------


async def log_in(
    session: AsyncSession, limiter: RateLimiter, email: str, password: str, *, address: str
) -> User | None:
    """The user these credentials belong to, or None; RateLimited when this
    account or this client failed too often lately.

    Every attempt is counted before the password is checked (so that a burst
    of guesses cannot pass together); a successful one clears its account's
    count and takes itself off the client's.
    """
    account = email.strip().lower()
    # The count takes a connection of its own: this request gives its back first.
    await end_read_only_transaction(session)
    await limiter.attempt((ratelimits.LOGIN_ACCOUNT, account), (ratelimits.LOGIN_ADDRESS, address))
    user = await security.authenticate(session, email, password)
    if user is not None:
        # (The counts are written in transactions of their own: before this
        # request writes, or on SQLite the two would wait for each other.)
        await limiter.forget(ratelimits.LOGIN_ACCOUNT, account)
        await limiter.take_back(ratelimits.LOGIN_ADDRESS, address)
        await security.upgrade_hash(session, user, password)
    return user


# --- passwords and logins ------------------------------------------------------------------


async def set_password(session: AsyncSession, user: User, password_hash: str) -> None:
    """Give the user a new password hash: every login ends, and so does every
    reset link they were sent."""
    user.password_hash = password_hash
    await end_logins(session, user)


async def register(
    session: AsyncSession, limiter: RateLimiter, data: UserCreate, *, address: str
) -> User:
    """A new account; RateLimited when this client registered too often lately
    (taken names and addresses count too, or the 409s would tell anyone which
    addresses have an account, as fast as they can ask)."""
    await end_read_only_transaction(session)
    await limiter.attempt((ratelimits.REGISTER_ADDRESS, address))
    return await users.create_user(session, data)


def check_not_the_name(user: User, password: str) -> None:
    """A new password may not be the user's name or address (sign-up checks
    the same in `UserCreate`)."""
    if password_is_name(password, user.username, user.email):
        raise Invalid(PASSWORD_IS_NAME, field="new_password")


async def end_logins(session: AsyncSession, user: User) -> None:
    """End every login of the user (every token issued so far stops working),
    and every password reset link they were sent."""
    user.token_version += 1
    user.updated_at = utcnow()
    session.add(user)
    await session.flush()
    await users.forget_reset_links(session, user)


async def change_password(
    session: AsyncSession,
    limiter: RateLimiter,
    user: User,
    current_password: str,
    new_password: str,
) -> None:
    """The current password, checked, for a new one. Every login ends: the
    caller gives the browser or client that asked a new token."""
    check_not_the_name(user, new_password)
    await users.check_current_password(session, limiter, user, current_password)
    await set_password(session, user, await security.hash_password(new_password))


async def delete_account(
    session: AsyncSession, limiter: RateLimiter, user: User, password: str
) -> None:
    """Delete the account, after checking its password; its posts go with it
    and every file of theirs after the commit."""
    await users.check_current_password(session, limiter, user, password, field="password")
    await users.delete_user(session, user)


# --- resetting a forgotten password ----------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def start_password_reset(
    session: AsyncSession, limiter: RateLimiter, email: str, *, address: str
) -> tuple[User, str] | None:
    """A new reset token for the account with this address (and the user),
    or None when there is no such account. Callers answer the same either
    way. RateLimited when this address or this client asked too often."""
    email = email.strip().lower()
    await end_read_only_transaction(session)
    await limiter.attempt((ratelimits.RESET_EMAIL, email), (ratelimits.RESET_ADDRESS, address))
    user = await users.find_by_email(session, email)
    if user is None:
        return None
    now = utcnow()
    # Expired links of this user are of no use to anyone: tidied up here.
    await session.exec(
        delete(PasswordResetToken).where(
            col(PasswordResetToken.user_id) == user.id,
            col(PasswordResetToken.expires_at) <= now,
        )
    )
    token = secrets.token_urlsafe(32)
    assert user.id is not None
    session.add(
        PasswordResetToken(
            user_id=user.id, token_hash=_token_hash(token), expires_at=now + RESET_TOKEN_LIFETIME
        )
    )
    await session.flush()
    return user, token


async def reset_password(
    session: AsyncSession, limiter: RateLimiter, token: str, new_password: str
) -> User:
    """Use a reset token for a new password, or Invalid (beside `token`)."""
    found = (
        await session.exec(
            select(PasswordResetToken).where(
                PasswordResetToken.token_hash == _token_hash(token),
                col(PasswordResetToken.expires_at) > utcnow(),
            )
        )
    ).first()
    user = None if found is None else await session.get(User, found.user_id)
    if found is None or user is None:
        raise Invalid(INVALID_RESET_LINK, field="token")
    check_not_the_name(user, new_password)
    await end_read_only_transaction(session)
    password_hash = await security.hash_password(new_password)
    # Whoever was guessing at the account has no hold on it any more (done
    # before this request writes: see log_in).
    await limiter.forget(ratelimits.LOGIN_ACCOUNT, user.email)
    await limiter.forget(ratelimits.PASSWORD_CHECK, str(user.id))
    # Deleting the row is what uses the token: of two requests with one
    # link, the second deletes nothing and is refused.
    used = await session.exec(
        delete(PasswordResetToken).where(col(PasswordResetToken.id) == found.id)
    )
    if used.rowcount != 1:
        raise Invalid(INVALID_RESET_LINK, field="token")
    await set_password(session, user, password_hash)
    return user


def _link(settings: Settings, path: str, token: str) -> str:
    """An absolute link to this site, for mail."""
    return f"{settings.public_url.rstrip('/')}{path}?token={token}"


def reset_mail(user: User, token: str, settings: Settings) -> Mail:
    link = _link(settings, "/reset-password", token)
    minutes = int(RESET_TOKEN_LIFETIME.total_seconds() // 60)
    return render_mail(
        "reset_password",
        to=user.email,
        subject="Reset your password",
        link=link,
        username=user.username,
        minutes=minutes,
    )


# --- verifying an email address ----------------------------------------------------------------


def verification_token(user: User, settings: Settings) -> str:
    return security.timed_serializer(settings, VERIFY_PURPOSE).dumps([user.id, user.email])


async def send_verification_again(limiter: RateLimiter, user: User) -> None:
    """RateLimited when the user asked for the link too often lately: the
    mail goes to an address nobody confirmed yet, maybe not theirs."""
    await limiter.attempt((ratelimits.VERIFY_MAIL, str(user.id)))


def verification_mail(user: User, settings: Settings) -> Mail:
    link = (
        f"{settings.public_url.rstrip('/')}/verify-email?token={verification_token(user, settings)}"
    )
    return render_mail(
        "verify_email",
        to=user.email,
        subject="Confirm your email address",
        link=link,
        username=user.username,
        email=user.email,
    )


async def verify_email(session: AsyncSession, token: str, settings: Settings) -> User:
    """Mark the address the token was made for as verified, or Invalid."""
    serializer = security.timed_serializer(settings, VERIFY_PURPOSE)
    try:
        value: Any = serializer.loads(token, max_age=int(VERIFICATION_LIFETIME.total_seconds()))
        user_id, email = value
    except (BadData, TypeError, ValueError):
        raise Invalid(INVALID_VERIFICATION_LINK, field="token") from None
    if type(user_id) is not int or not 1 <= user_id <= MAX_ID:
        raise Invalid(INVALID_VERIFICATION_LINK, field="token")
    user = await session.get(User, user_id)
    if user is None or user.email != email:
        raise Invalid(INVALID_VERIFICATION_LINK, field="token")
    if not user.email_verified:
        user.email_verified = True
        user.updated_at = utcnow()
        session.add(user)
        await session.flush()
    return user
