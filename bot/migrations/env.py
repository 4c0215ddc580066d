"""Alembic's environment: migrate the connection ``bot.schema`` hands in, against the models' metadata.

Revisions are written to stand alone: autogenerate renders the product's column types (``UTCDateTime``, sqlmodel's
``AutoString``, non-native enums) as the plain SQLAlchemy types they store as, so a revision never imports
``bot`` and keeps meaning the same thing after the models move on. ``render_as_batch`` makes ALTERs work on
SQLite too (alembic's copy-and-move), and is plain ALTER on PostgreSQL.
"""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import bot.models  # noqa: F401 - registers every table on SQLModel.metadata
from bot.models import UTCDateTime


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Column types as plain SQLAlchemy (see the module doc); False lets alembic render everything else."""
    if type_ != "type":
        return False
    if isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if isinstance(obj, sa.Enum) and not obj.native_enum:
        return f"sa.String(length={obj.length})"
    if isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=True,
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if not isinstance(_connection, Connection):
    raise RuntimeError("resetbot's migrations run through bot.schema (resetbot migrate), which hands in a connection")
run(_connection)
