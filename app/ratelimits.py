"""Limits on what can be guessed or flooded: failed logins (per account and
per client address), guesses at the current password, password reset
requests and registrations.

Each `Limit` lets a few attempts through freely; after that, every further
attempt makes the next one wait longer (1 s, 2 s, 4 s, ... up to a cap), so
guessing a password becomes hopeless while someone who mistyped a few times
barely notices. Counts start again after a quiet `window`. A refused request
is a 429 with `Retry-After`, refused before any password is hashed, so being
refused costs the server nothing.

The counts are rows of the `rate_limits` table, so every worker and every
machine counts together. An attempt is counted before the work it guards,
in a short transaction of its own that commits at once: a request that
fails afterwards (a wrong password is a 401) still counts, and attempts sent
at the same moment each see the ones before them (the row is locked from the
count to the commit), so a burst cannot slip through together. A refused
attempt counts nowhere. The
request's own transaction stays read-only meanwhile: on SQLite, whose one
write lock lasts until the commit, it never waits on Argon2 holding it.
"""

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, case, delete, inspect, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, or_
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import insert_for_conflicts
from app.errors import AppError
from app.models import RateLimit, utcnow


@dataclass(frozen=True, slots=True)
class Limit:
    name: str
    # Attempts within a window that are never delayed.
    free: int
    # After this long without an attempt, the count starts again.
    window: timedelta = timedelta(hours=1)
    # The longest wait; the first is one second, and each doubles it.
    max_delay: timedelta = timedelta(minutes=15)

    def delay_after(self, hits: int) -> timedelta | None:
        """How long to refuse attempts after the `hits`th."""
        if hits <= self.free:
            return None
        seconds = 2.0 ** min(hits - self.free - 1, 30)
        return min(timedelta(seconds=seconds), self.max_delay)


# Logins to one account (from anywhere) and from one client address (to any
# account). A successful login clears the account's count and takes itself
# off the address's; a password reset clears the account's.
LOGIN_ACCOUNT = Limit("login-account", free=5)
LOGIN_ADDRESS = Limit("login-address", free=20)
# Guesses at the current password by someone logged in (a stolen login
# trying to change the password, the email or delete the account).
PASSWORD_CHECK = Limit("password-check", free=5)
# Verification mails asked again by one user.
VERIFY_MAIL = Limit("verify-mail", free=3)
# Reset mails asked for one address, and by one client.
RESET_EMAIL = Limit("reset-email", free=3)
RESET_ADDRESS = Limit("reset-address", free=10)
# Registrations (taken names and addresses included) from one client.
REGISTER_ADDRESS = Limit("register-address", free=10)

Counted = tuple[Limit, str]


class RateLimited(AppError):
    status_code = 429

    def __init__(self, retry_after: int) -> None:
        wait = f"{retry_after} seconds" if retry_after < 120 else f"{retry_after // 60} minutes"
        super().__init__(f"Too many attempts. Please wait {wait} before trying again.")
        self.retry_after = retry_after


class RateLimiter:
    """Counts attempts in the database; one per app, made in its lifespan."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, enabled: bool) -> None:
        self.sessionmaker = sessionmaker
        self.enabled = enabled

    async def attempt(self, *counted: Counted) -> None:
        """Count one attempt for each (limit, value), or raise RateLimited if
        any of them must wait. A refused attempt counts nowhere: only attempts
        that go on to the work (a password check) make the waits grow, so a
        client refused for its own address cannot keep someone's account
        locked."""
        if not self.enabled:
            return
        now = utcnow()
        # Raising inside the transaction rolls it back: a refusal counts nowhere.
        async with self.sessionmaker() as session, session.begin():
            waits: list[datetime] = []
            blocks: list[tuple[str, datetime]] = []
            for limit, value in counted:
                key = _key(limit, value)
                # Counting first locks the row until the commit (SQLite: the
                # database), so attempts sent together are counted one by one.
                hits, blocked_until = await _count(session, key, limit.window, now)
                if blocked_until is not None and blocked_until > now:
                    waits.append(blocked_until)
                delay = limit.delay_after(hits)
                if delay is not None:
                    blocks.append((key, now + delay))
            if waits:
                raise RateLimited(max(1, math.ceil((max(waits) - now).total_seconds())))
            for key, until in blocks:
                await session.exec(
                    update(RateLimit).where(col(RateLimit.key) == key).values(blocked_until=until)
                )

    async def forget(self, limit: Limit, value: str) -> None:
        """Start the count again (a successful login, a password reset)."""
        if not self.enabled:
            return
        async with self.sessionmaker() as session, session.begin():
            await session.exec(delete(RateLimit).where(col(RateLimit.key) == _key(limit, value)))

    async def take_back(self, limit: Limit, value: str) -> None:
        """Uncount one attempt that turned out well (a successful login)."""
        if not self.enabled:
            return
        async with self.sessionmaker() as session, session.begin():
            table = _table()
            await session.exec(
                update(table)
                .where(table.c.key == _key(limit, value))
                .values(hits=case((table.c.hits > 0, table.c.hits - 1), else_=0))
            )


def _key(limit: Limit, value: str) -> str:
    # Hashed: the table holds no email addresses or IP addresses in clear.
    # (surrogatepass: any text can be counted, even text the app later refuses.)
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{limit.name}:{digest[:40]}"


def _table() -> Table:
    table = inspect(RateLimit).local_table
    assert isinstance(table, Table)
    return table


async def _count(
    session: AsyncSession, key: str, window: timedelta, now: datetime
) -> tuple[int, datetime | None]:
    """Add one to the key's count (or start it at 1) in one statement: the new
    count, and until when the key was blocked before this attempt."""
    table = _table()
    quiet = table.c.last_at < now - window
    statement = (
        (await insert_for_conflicts(session, RateLimit))
        .values(key=key, hits=1, last_at=now, blocked_until=None)
        .on_conflict_do_update(
            index_elements=[table.c.key],
            set_={"hits": case((quiet, 1), else_=table.c.hits + 1), "last_at": now},
        )
        .returning(table.c.hits, table.c.blocked_until)
    )
    hits, blocked_until = (await session.exec(statement)).one()
    return hits, blocked_until


async def prune(session: AsyncSession, *, older_than: timedelta) -> int:
    """Delete counts nobody has added to for `older_than` and that block
    nothing: `python -m app tidy` runs it. How many went."""
    now = utcnow()
    result = await session.exec(
        delete(RateLimit).where(
            col(RateLimit.last_at) < now - older_than,
            or_(col(RateLimit.blocked_until).is_(None), col(RateLimit.blocked_until) < now),
        )
    )
    return result.rowcount
