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
from app.models import MAX_ID, PasswordResetToken, User, utcnow

RESET_TOKEN_LIFETIME = timedelta(minutes=60)
VERIFICATION_LIFETIME = timedelta(days=7)
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
    session: AsyncSession, settings: Settings, email: str, password: str, *, address: str
) -> User | None:
    """The user these credentials belong to, or None (the failure counted),
    or RateLimited when this account or this client failed too often lately.

    A route that gets None must answer with a response, not raise, so that
    the failure's count is committed (app/ratelimits.py).
    """
    counted = [
        (ratelimits.LOGIN_ACCOUNT, email.strip().lower()),
        (ratelimits.LOGIN_ADDRESS, address),
    ]
    if settings.rate_limits_enabled:
        await ratelimits.check(session, *counted)
    user = await security.authenticate(session, email, password)
    if settings.rate_limits_enabled:
        if user is None:
            await ratelimits.hit(session, *counted)
        else:
            await ratelimits.clear(session, *counted[0])
    return user


async def check_registration(session: AsyncSession, settings: Settings, *, address: str) -> None:
    """Count a registration from this client, or refuse it (RateLimited)."""
    if settings.rate_limits_enabled:
        await ratelimits.check(session, (ratelimits.REGISTER_ADDRESS, address))
        await ratelimits.hit(session, (ratelimits.REGISTER_ADDRESS, address))


# --- passwords and logins ------------------------------------------------------------------


async def set_password(session: AsyncSession, user: User, password_hash: str) -> None:
    """Give the user a new password hash: every login ends, and so does every
    reset link they were sent."""
    user.password_hash = password_hash
    await end_logins(session, user)
    await session.exec(delete(PasswordResetToken).where(col(PasswordResetToken.user_id) == user.id))


async def change_password(
    session: AsyncSession, user: User, current_password: str, new_password: str
) -> None:
    """The current password, checked, for a new one. Every login ends: the
    caller gives the browser or client that asked a new token."""
    await users.check_current_password(session, user, current_password)
    await set_password(session, user, await security.hash_password(new_password))


async def end_logins(session: AsyncSession, user: User) -> None:
    """End every login of the user (every token issued so far stops working)."""
    user.token_version += 1
    user.updated_at = utcnow()
    session.add(user)
    await session.flush()


async def delete_account(session: AsyncSession, user: User, password: str) -> None:
    """Delete the account, after checking its password; its posts go with it
    and every file of theirs after the commit."""
    await users.check_current_password(session, user, password, field="password")
    await users.delete_user(session, user)


# --- resetting a forgotten password ----------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def start_password_reset(
    session: AsyncSession, settings: Settings, email: str, *, address: str
) -> tuple[User, str] | None:
    """A new reset token for the account with this address (and the user),
    or None when there is no such account. Callers answer the same either
    way. RateLimited when this address or this client asked too often."""
    email = email.strip().lower()
    if settings.rate_limits_enabled:
        counted = [(ratelimits.RESET_EMAIL, email), (ratelimits.RESET_ADDRESS, address)]
        await ratelimits.check(session, *counted)
        await ratelimits.hit(session, *counted)
    user = (await session.exec(select(User).where(User.email == email))).first()
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


async def reset_password(session: AsyncSession, token: str, new_password: str) -> User:
    """Use a reset token for a new password, or Invalid (beside `token`)."""
    found = (
        await session.exec(
            select(PasswordResetToken).where(
                PasswordResetToken.token_hash == _token_hash(token),
                col(PasswordResetToken.expires_at) > utcnow(),
            )
        )
    ).first()
    if found is None:
        raise Invalid(INVALID_RESET_LINK, field="token")
    await end_read_only_transaction(session)
    password_hash = await security.hash_password(new_password)
    # Deleting the row is what uses the token: of two requests with one
    # link, the second deletes nothing and is refused.
    used = await session.exec(
        delete(PasswordResetToken).where(col(PasswordResetToken.id) == found.id)
    )
    user = await session.get(User, found.user_id)
    if used.rowcount != 1 or user is None:
        raise Invalid(INVALID_RESET_LINK, field="token")
    await set_password(session, user, password_hash)
    # Whoever was guessing at the account has no hold on it any more.
    await ratelimits.clear(session, ratelimits.LOGIN_ACCOUNT, user.email)
    return user


def reset_mail(user: User, token: str, settings: Settings) -> Mail:
    link = f"{settings.public_url.rstrip('/')}/reset-password?token={token}"
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
    return security.timed_serializer(settings, "verify-email").dumps([user.id, user.email])


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
    serializer = security.timed_serializer(settings, "verify-email")
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
