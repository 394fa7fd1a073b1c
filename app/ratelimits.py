"""Limits on what can be guessed or flooded: failed logins (per account and
per client address), password reset requests and registrations.

Each `Limit` lets a few attempts through freely; after that, every further
attempt makes the next one wait longer (1 s, 2 s, 4 s, ... up to a cap), so
guessing a password becomes hopeless while someone who mistyped a few times
barely notices. Counts start again after a quiet `window`. A refused request
is a 429 with `Retry-After`, refused before any password is hashed, so being
refused costs the server nothing.

The counters are rows of the `rate_limits` table, in the request's own
transaction: every worker and every machine reads and writes the same rows.
They are written with one atomic statement each (INSERT ... ON CONFLICT DO
UPDATE), so two workers counting at the same moment both count. A route
that records a failure answers with a response rather than raising, so that
its transaction commits with the count in it.
"""

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, case, delete, inspect, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

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


# Failed logins to one account (from anywhere) and from one client address
# (to any account); a successful login or a password reset clears the account's.
LOGIN_ACCOUNT = Limit("login-account", free=5)
LOGIN_ADDRESS = Limit("login-address", free=20)
# Reset mails asked for one address, and by one client.
RESET_EMAIL = Limit("reset-email", free=3)
RESET_ADDRESS = Limit("reset-address", free=10)
# Registrations (taken names and addresses included) from one client.
REGISTER_ADDRESS = Limit("register-address", free=10)


class RateLimited(AppError):
    status_code = 429

    def __init__(self, retry_after: int) -> None:
        wait = f"{retry_after} seconds" if retry_after < 120 else f"{retry_after // 60} minutes"
        super().__init__(f"Too many attempts. Please wait {wait} before trying again.")
        self.retry_after = retry_after


def _key(limit: Limit, value: str) -> str:
    # Hashed: the table holds no email addresses or IP addresses in clear.
    # (surrogatepass: any text can be counted, even text the app later refuses.)
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{limit.name}:{digest[:40]}"


def _table() -> Table:
    table = inspect(RateLimit).local_table
    assert isinstance(table, Table)
    return table


async def check(session: AsyncSession, *counted: tuple[Limit, str]) -> None:
    """Raise RateLimited if any of these (limit, value) pairs is refused now."""
    keys = [_key(limit, value) for limit, value in counted]
    now = utcnow()
    statement = select(RateLimit.blocked_until).where(
        col(RateLimit.key).in_(keys), col(RateLimit.blocked_until) > now
    )
    until = [value for value in (await session.exec(statement)).all() if value is not None]
    if until:
        raise RateLimited(max(1, math.ceil((max(until) - now).total_seconds())))


async def hit(session: AsyncSession, *counted: tuple[Limit, str]) -> None:
    """Count one attempt for each (limit, value) pair; past its free
    attempts, refuse the next for a while."""
    now = utcnow()
    for limit, value in counted:
        hits = await _count(session, _key(limit, value), limit.window, now)
        delay = limit.delay_after(hits)
        if delay is not None:
            await session.exec(
                update(_table())
                .where(_table().c.key == _key(limit, value))
                .values(blocked_until=now + delay)
            )


async def _count(session: AsyncSession, key: str, window: timedelta, now: datetime) -> int:
    """Add one to the key's count (or start it at 1) in one statement; the new count."""
    table = _table()
    dialect = (await session.connection()).dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    quiet = table.c.last_at < now - window
    statement = (
        insert(table)
        .values(key=key, hits=1, last_at=now, blocked_until=None)
        .on_conflict_do_update(
            index_elements=[table.c.key],
            set_={"hits": case((quiet, 1), else_=table.c.hits + 1), "last_at": now},
        )
        .returning(table.c.hits)
    )
    hits: int = (await session.exec(statement)).scalar_one()
    return hits


async def clear(session: AsyncSession, limit: Limit, value: str) -> None:
    """Forget the count (a successful login clears its account's failures)."""
    await session.exec(delete(RateLimit).where(col(RateLimit.key) == _key(limit, value)))
