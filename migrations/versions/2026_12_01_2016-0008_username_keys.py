"""Usernames compared by a key (app/names.py): names that look alike are one name.

Each existing user gets the key of their name. Where an older account
already has a name that looks the same (ADA beside ada, or a Cyrillic "a"),
the newer account is renamed: "-2" (or the next free number) is appended,
and a line says so.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 20:08:14.053512
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.names import username_key

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("username_key", sa.String(length=200), nullable=True))
    users = sa.table(
        "users",
        sa.column("id", sa.Integer),
        sa.column("username", sa.String),
        sa.column("username_key", sa.String),
    )
    connection = op.get_bind()
    taken: set[str] = set()
    rows = connection.execute(sa.select(users.c.id, users.c.username).order_by(users.c.id))
    for user_id, username in rows.all():
        name, number = username, 2
        # The oldest account keeps its name; a newer one that looks the same
        # gets the first free number.
        while username_key(name) in taken:
            suffix = f"-{number}"
            name = username[: 50 - len(suffix)] + suffix
            number += 1
        if name != username:
            print(
                f"users.id {user_id}: {username!r} looks like an older account's name: renamed {name!r}"
            )
        taken.add(username_key(name))
        connection.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(username=name, username_key=username_key(name))
        )
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        batch_op.alter_column("username_key", existing_type=sa.String(length=200), nullable=False)
        batch_op.drop_constraint("uq_users_username", type_="unique")
        batch_op.create_unique_constraint("uq_users_username_key", ["username_key"])


def downgrade() -> None:
    # Names renamed on the way up keep their new names.
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        batch_op.drop_constraint("uq_users_username_key", type_="unique")
        batch_op.create_unique_constraint("uq_users_username", ["username"])
        batch_op.drop_column("username_key")
