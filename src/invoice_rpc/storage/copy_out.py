"""Reading `COPY … TO STDOUT` from psycopg many rows at a time.

psycopg's `AsyncCopy.read()` hands out one row per await: a trip through the connection's wait
machinery for every CopyData message, although the server sends them by the thousand and libpq
has usually received many already. `read_copy_rows` takes every row already received in one
step, and waits for the socket only when none is left, until it has the bytes asked for.

Starting the COPY, cancelling it when the reader stops early and ending it stay psycopg's own
(`AsyncCursor.copy()` and its `AsyncCopy` context): this module only replaces the reading.
"""

from __future__ import annotations

from psycopg import AsyncCopy, pq
from psycopg.abc import Buffer, PQGen
from psycopg.errors import ProgrammingError, error_from_result
from psycopg.generators import fetch_many
from psycopg.waiting import Wait

_ACTIVE = pq.TransactionStatus.ACTIVE
_COMMAND_OK = pq.ExecStatus.COMMAND_OK


async def read_copy_rows(copy: AsyncCopy, min_bytes: int) -> list[Buffer]:
    """The next rows of a `COPY … TO STDOUT` (each one CopyData message, ending in its line
    end) totalling at least `min_bytes`, fewer only when the COPY has ended; [] once it has.

    An error of the COPY's query (raised by the server at any row) is raised here as psycopg
    raises it; the `copy` context then leaves the connection usable, as after `copy.read()`.
    Do not mix with `copy.read()` on the same COPY."""
    connection = copy.connection
    pgconn = connection.pgconn
    # The server has sent its final result (and we have read it): the COPY is over.
    if pgconn.transaction_status != _ACTIVE:
        return []
    return await connection.wait(_read_rows(pgconn, min_bytes, connection.info.encoding))


def _read_rows(pgconn: pq.abc.PGconn, min_bytes: int, encoding: str) -> PQGen[list[Buffer]]:
    """psycopg's `generators.copy_from`, extended to many rows per call."""
    rows: list[Buffer] = []
    size = 0
    get_copy_data = pgconn.get_copy_data
    # Whether to read the socket once more before waiting on it (see below).
    read_ahead = True
    while size < min_bytes:
        nbytes, data = get_copy_data(1)
        if nbytes > 0:
            rows.append(data)
            size += nbytes
            read_ahead = True
        elif nbytes == 0:
            # Every row received is taken. The server has usually sent more meanwhile: a read
            # that finds nothing costs a failed recv(), a wait costs a round through the event
            # loop (registering the socket, a future, a timer), many times more.
            if read_ahead:
                read_ahead = False
            else:
                while not (yield Wait.R):
                    continue
            pgconn.consume_input()
        else:
            # CopyDone: what follows is the statement's own result, an error if the query failed.
            results = yield from fetch_many(pgconn)
            if len(results) > 1:
                raise ProgrammingError("you cannot mix COPY with other operations")
            if results[0].status != _COMMAND_OK:
                raise error_from_result(results[0], encoding=encoding)
            break
    return rows
