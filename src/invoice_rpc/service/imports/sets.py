"""Set-based SQL for batches of a thousand: one parameter per list, one statement per insert.

On PostgreSQL a list of values is bound as one array (`= ANY(:values)`) rather than an IN list
of a thousand placeholders (which costs the driver more to prepare than the query costs to
run), and new rows are written with COPY into the table inside the session's transaction
(one round trip for the whole batch, instead of an INSERT per row). SQLite gets plain IN
lists and executemany, which it handles well.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ARRAY, JSON, ColumnElement, String, Uuid, any_, cast, insert, literal
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession


def is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def column_in(session: AsyncSession, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN values`, as `column = ANY(array)` on PostgreSQL (string or UUID columns)."""
    if not is_postgresql(session):
        return column.in_(values)  # type: ignore[no-any-return]
    element = Uuid() if values and isinstance(values[0], uuid.UUID) else String()
    return column == any_(cast(literal(list(values), type_=ARRAY(element)), ARRAY(element)))  # type: ignore[no-any-return]


class DuplicateKey(Exception):
    """A bulk insert hit a unique constraint (another transaction wrote the same key)."""


def _with_defaults(model: Any, rows: list[dict[str, Any]]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and value tuples with every column's Python-side default filled in, as an
    ORM insert would (COPY applies no SQLAlchemy defaults)."""
    columns = list(model.__table__.columns)
    names = [c.name for c in columns]
    defaults: dict[str, Any] = {}
    for column in columns:
        default = column.default
        if default is None or not (default.is_scalar or default.is_callable):
            continue
        defaults[column.name] = default
    tuples = []
    for row in rows:
        values = []
        for name in names:
            if name in row:
                values.append(row[name])
            elif name in defaults:
                default = defaults[name]
                values.append(default.arg(None) if default.is_callable else default.arg)
            else:
                values.append(None)
        tuples.append(tuple(values))
    return names, tuples


async def bulk_insert(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> None:
    """Insert the rows (dicts of column values) in the session's transaction; DuplicateKey if
    a unique constraint is violated."""
    if not rows:
        return
    if not is_postgresql(session):
        try:
            await session.execute(insert(model), rows)
        except IntegrityError as exc:
            raise DuplicateKey(str(exc)) from exc
        return
    from psycopg import errors
    from psycopg.types.json import Jsonb

    names, tuples = _with_defaults(model, rows)
    json_columns = {i for i, c in enumerate(model.__table__.columns) if isinstance(c.type, JSON)}
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    columns = ", ".join(f'"{name}"' for name in names)
    try:
        async with raw.cursor() as cursor, cursor.copy(f'COPY "{model.__tablename__}" ({columns}) FROM STDIN') as copy:
            for values in tuples:
                if json_columns:
                    values = tuple(Jsonb(v) if i in json_columns else v for i, v in enumerate(values))
                await copy.write_row(values)
    except errors.UniqueViolation as exc:
        raise DuplicateKey(str(exc)) from exc
