"""The rows of a Core SELECT that runs many times, read on PostgreSQL through psycopg directly.

`AsyncConnection.execute` spends, per call, as much CPU around psycopg as psycopg itself: it
looks the statement up in the compiled cache (hashing its whole cache key), builds a
CursorResult with its column metadata and wraps every row. For a statement object built once and
run per request (a list page's shape, `invoice_queries._page_statement`) that was 0.1-0.2 ms of
a page's ~2 ms (A/B on the 1M bench database). `fetch_all` compiles such a statement once, and
each call hands the compiled SQL and the bound values to the driver and applies the columns'
result processors itself: the same bind and result processing SQLAlchemy would do, so rows and
values are the same as `(await connection.execute(statement, values)).all()` gives. A statement
whose text depends on the values (expanding IN lists, literal_execute parameters) is written per
call by SQLAlchemy's compiler (`construct_expanded_state`), as its execute does. Other dialects
take that usual execute. What runs here passes no engine event (before_cursor_execute and the
like): a tracer hooked to the engine does not see these statements.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Dialect, Select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler

from invoice_rpc.storage.driver_pool import DriverConnection

Processor = Callable[[Any], Any]


@dataclass(slots=True)
class _Prepared:
    compiled: SQLCompiler
    bind_processors: dict[str, Processor]
    # Its text is written per call (expanding IN lists, literal_execute parameters).
    expands: bool
    # Known after the first execution: they may depend on the column types the driver reports.
    result_processors: tuple[tuple[int, Processor], ...] | None = None


# Keyed by the statement object itself: only statements run many times (a page shape cached by
# its module, a stream's range statement) are worth preparing, and a dropped statement drops its
# entry.
_prepared: weakref.WeakKeyDictionary[Select[Any], _Prepared] = weakref.WeakKeyDictionary()


async def fetch_all(
    connection: AsyncConnection | DriverConnection,
    statement: Select[Any],
    values: Mapping[str, Any],
    *,
    prepare: bool = False,
    binary: bool = False,
) -> Sequence[Any]:
    """Every row of `statement` with `values` bound, as `connection.execute(...).all()` returns
    them (tuples here, Rows on the usual path; both index and unpack alike). `connection` is an
    engine connection or one of the driver pool's (Database.read_driver). `prepare` makes it a
    prepared statement of the connection from the first call (psycopg otherwise prepares a
    statement on its sixth), for a statement that costs much more to plan than to run again.
    `binary` has the rows sent in PostgreSQL's binary format: bytea as its bytes rather than hex
    text (half the bytes, and no hex to write or read); the Python values are the same."""
    prepared = _prepare(statement, connection.dialect)
    if prepared is None:
        assert isinstance(connection, AsyncConnection)  # a driver connection is psycopg's
        usual: Sequence[Any] = (await connection.execute(statement, dict(values))).all()
        return usual
    parameters: MutableMapping[str, Any]
    if prepared.expands:
        # IN lists of any length: SQLAlchemy writes this call's text and parameters, as its own
        # execute does.
        state = prepared.compiled.construct_expanded_state(dict(values))
        sql, parameters = state.statement, dict(state.parameters)
        bind_processors = {**prepared.bind_processors, **state.processors}
    else:
        sql, bind_processors = prepared.compiled.string, prepared.bind_processors
        parameters = prepared.compiled.construct_params(dict(values))
    for name, process in bind_processors.items():
        if name in parameters:
            parameters[name] = process(parameters[name])
    if isinstance(connection, DriverConnection):
        driver_connection = connection.driver
    else:
        pooled = (await connection.get_raw_connection()).driver_connection
        assert isinstance(pooled, psycopg.AsyncConnection)  # checked out of the engine's pool
        driver_connection = pooled
    async with driver_connection.cursor(binary=binary) as cursor:
        try:
            await cursor.execute(sql, parameters, prepare=prepare or None)
            rows: list[Any] = await cursor.fetchall()
        except connection.dialect.loaded_dbapi.Error as error:
            # As SQLAlchemy's execute raises it (DataError, IntegrityError, ...), so that callers
            # handle one kind of database error whichever path ran the statement.
            raise DBAPIError.instance(sql, parameters, error, connection.dialect.loaded_dbapi.Error) from error
        if prepared.result_processors is None:
            prepared.result_processors = _result_processors(statement, connection.dialect, cursor.description)
    if not prepared.result_processors or not rows:
        return rows
    processors = prepared.result_processors
    processed = []
    for row in rows:
        values_out = list(row)
        for index, process in processors:
            values_out[index] = process(values_out[index])
        processed.append(tuple(values_out))
    return processed


def _prepare(statement: Select[Any], dialect: Dialect) -> _Prepared | None:
    if dialect.name != "postgresql" or dialect.driver != "psycopg":
        return None
    try:
        return _prepared[statement]
    except KeyError:
        pass
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    binds = compiled.binds.values()
    expands = any(b.expanding or b.literal_execute for b in binds)
    # By the names the parameters carry (construct_params writes escaped names).
    bind_processors: dict[str, Processor] = {}
    for name, bind in compiled.binds.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            bind_processors[compiled.escaped_bind_names.get(name, name)] = process
    prepared = _prepared[statement] = _Prepared(compiled, bind_processors, expands)
    return prepared


def _result_processors(statement: Select[Any], dialect: Dialect, description: Any) -> tuple[tuple[int, Processor], ...]:
    columns = list(statement.selected_columns)
    if description is None or len(description) != len(columns):
        raise RuntimeError("the driver's row has not the statement's columns")
    processors = []
    for index, (column, described) in enumerate(zip(columns, description, strict=True)):
        process = column.type.dialect_impl(dialect).result_processor(dialect, described.type_code)
        if process is not None:
            processors.append((index, process))
    return tuple(processors)
