"""read_copy_rows: a COPY … TO STDOUT read many rows at a time, on a real PostgreSQL
connection: every row once and in order, chunks of at least the size asked, errors of the
query raised as psycopg raises them, and the connection usable afterwards."""

from __future__ import annotations

import psycopg
import pytest

from invoice_rpc.storage.copy_out import read_copy_rows


async def _connect(url: str) -> psycopg.AsyncConnection[tuple[object, ...]]:
    return await psycopg.AsyncConnection.connect(url)


async def test_every_row_once_in_order_in_chunks_of_at_least_min_bytes(postgresql_url: str) -> None:
    connection = await _connect(postgresql_url)
    try:
        chunks: list[bytes] = []
        async with (
            connection.cursor() as cursor,
            cursor.copy("COPY (SELECT g, repeat('x', g % 7) FROM generate_series(1, 20000) g) TO STDOUT") as copy,
        ):
            while rows := await read_copy_rows(copy, 4096):
                chunks.append(b"".join(bytes(row) for row in rows))
            assert await read_copy_rows(copy, 4096) == []
        expected = b"".join(f"{g}\t{'x' * (g % 7)}\n".encode() for g in range(1, 20001))
        assert b"".join(chunks) == expected
        assert len(chunks) > 1
        assert all(len(chunk) >= 4096 for chunk in chunks[:-1])
        assert (await (await connection.execute("SELECT 1")).fetchone()) == (1,)
    finally:
        await connection.close()


async def test_an_error_of_the_query_midway_is_raised_and_the_connection_stays_usable(postgresql_url: str) -> None:
    connection = await _connect(postgresql_url)
    try:
        received: list[bytes] = []
        with pytest.raises(psycopg.errors.DivisionByZero):
            async with (
                connection.cursor() as cursor,
                cursor.copy("COPY (SELECT 1 / (50000 - g) FROM generate_series(1, 60000) g) TO STDOUT") as copy,
            ):
                while rows := await read_copy_rows(copy, 1024):
                    received.extend(bytes(row) for row in rows)
        assert received[:3] == [b"0\n", b"0\n", b"0\n"]
        await connection.rollback()
        assert (await (await connection.execute("SELECT 2")).fetchone()) == (2,)
    finally:
        await connection.close()


async def test_an_empty_copy_gives_no_rows(postgresql_url: str) -> None:
    connection = await _connect(postgresql_url)
    try:
        async with connection.cursor() as cursor, cursor.copy("COPY (SELECT 1 WHERE false) TO STDOUT") as copy:
            assert await read_copy_rows(copy, 1) == []
    finally:
        await connection.close()
