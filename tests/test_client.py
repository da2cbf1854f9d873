"""The Python client package (`invoice_rpc_client`) against the real server: bearer auth,
typed errors, retries of idempotent calls only, pagers, atomic exports and the console script.

The sync client blocks its thread, and the server runs on the test's event loop, so sync calls
run in a worker thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import resources_pb2 as pb
from invoice_rpc_client import (
    AsyncInvoiceRpcClient,
    FieldViolation,
    InvalidArgument,
    InvoiceRpcClient,
    InvoiceRpcError,
    NotFound,
    RetryPolicy,
    Unauthenticated,
    Unavailable,
)
from invoice_rpc_client.cli import main as cli_main
from invoice_rpc_client.export_file import AtomicFile
from sqlalchemy import select

from invoice_rpc.rpc.server import BuiltServer, build_server
from invoice_rpc.storage import models as m
from invoice_rpc.storage.database import Database
from tests.conftest import Api
from tests.factories import line, make_invoice, make_invoices_bulk

# Quick retries, so that tests spend milliseconds, not seconds, backing off.
FAST_RETRY = RetryPolicy(max_attempts=30, initial_backoff=0.02, max_backoff=0.2, deadline=10.0)


def _client(server: BuiltServer, api: Api, **options: object) -> InvoiceRpcClient:
    return InvoiceRpcClient(f"127.0.0.1:{server.port}", api.key, timeout=10.0, **options)  # type: ignore[arg-type]


@pytest.fixture
def reserved_port() -> Iterator[int]:
    """A port nobody listens on (connections are refused) that a server may bind later: the
    socket holds it with SO_REUSEPORT but never listens, so no other test can take it."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(("127.0.0.1", 0))
    yield holder.getsockname()[1]
    holder.close()


async def _numbered_invoices(api: Api, count: int) -> list[str]:
    async with api.db.write() as s:
        ids = await make_invoices_bulk(s, api.tenant_id, count)
    async with api.db.read() as s:
        rows = await s.execute(select(m.Invoice.id, m.Invoice.invoice_number).where(m.Invoice.id.in_(ids)))
        by_id: dict[object, str] = {row[0]: row[1] for row in rows}
    return [by_id[i] for i in ids]


# -- auth ------------------------------------------------------------------------------------


async def test_helpers_send_the_api_key_as_bearer_token(server: BuiltServer, api: Api) -> None:
    async with api.db.write() as s:
        invoice = await make_invoice(s, api.tenant_id, lines=[line("Pro plan", "2", 4950)])
    with _client(server, api) as client:
        got = await asyncio.to_thread(client.get_invoice, invoice.invoice_number)
    assert got.invoice_ref == str(invoice.id)
    assert [li.name for li in got.line_items] == ["Pro plan"]


async def test_missing_key_raises_typed_unauthenticated(server: BuiltServer) -> None:
    with InvoiceRpcClient(f"127.0.0.1:{server.port}", "") as client:
        with pytest.raises(Unauthenticated) as caught:
            await asyncio.to_thread(client.get_invoice, "INV-2026-0001")
    assert "authorization" in caught.value.message


async def test_unknown_key_raises_typed_unauthenticated(server: BuiltServer) -> None:
    with InvoiceRpcClient(f"127.0.0.1:{server.port}", "irk_not-a-key") as client:
        with pytest.raises(Unauthenticated):
            await asyncio.to_thread(client.summarize_invoices)


async def test_raw_stubs_carry_the_key(server: BuiltServer, api: Api) -> None:
    with _client(server, api) as client:
        reply = await asyncio.to_thread(client.invoices.SummarizeInvoices, isvc.SummarizeInvoicesRequest())
    assert reply.invoice_count == 0


# -- typed errors ----------------------------------------------------------------------------


async def test_invalid_argument_exposes_every_field_violation(server: BuiltServer, api: Api) -> None:
    bad_filter = isvc.InvoiceFilter(customer_refs=["not-a-uuid"], statuses=[pb.INVOICE_STATUS_UNSPECIFIED])
    with _client(server, api) as client:
        with pytest.raises(InvalidArgument) as caught:
            await asyncio.to_thread(lambda: list(client.iter_invoices(bad_filter)))
    fields = {v.field for v in caught.value.field_violations}
    assert fields == {"filter.customer_refs[0]", "filter.statuses[0]"}
    assert all(isinstance(v, FieldViolation) and v.description for v in caught.value.field_violations)
    assert caught.value.request_id  # the server's request id, from ErrorInfo


async def test_unknown_invoice_raises_typed_not_found(server: BuiltServer, api: Api) -> None:
    with _client(server, api) as client:
        with pytest.raises(NotFound) as caught:
            await asyncio.to_thread(client.get_invoice, "INV-1999-0001")
    assert isinstance(caught.value, InvoiceRpcError)
    assert caught.value.field_violations == ()


# -- pagination ------------------------------------------------------------------------------


async def test_pager_yields_every_invoice_exactly_once_across_pages(server: BuiltServer, api: Api) -> None:
    numbers = await _numbered_invoices(api, 7)
    with _client(server, api) as client:
        listed = await asyncio.to_thread(lambda: [i.invoice_number for i in client.iter_invoices(page_size=3)])
    # Newest first by default; 7 invoices in pages of 3, 3 and 1.
    assert listed == list(reversed(numbers))


async def test_stream_invoices_yields_every_invoice_across_batches(server: BuiltServer, api: Api) -> None:
    numbers = await _numbered_invoices(api, 5)
    with _client(server, api) as client:
        streamed = await asyncio.to_thread(lambda: [i.invoice_number for i in client.stream_invoices(batch_size=2)])
    assert streamed == list(reversed(numbers))


async def test_pager_keeps_filter_and_sort_on_every_page(server: BuiltServer, api: Api) -> None:
    numbers = await _numbered_invoices(api, 5)
    async with api.db.write() as s:
        await make_invoice(s, api.tenant_id, status="draft")
    only_sent = isvc.InvoiceFilter(statuses=[pb.INVOICE_STATUS_SENT])
    with _client(server, api) as client:
        listed = await asyncio.to_thread(
            lambda: [
                i.invoice_number
                for i in client.iter_invoices(
                    only_sent,
                    sort_field=isvc.INVOICE_SORT_FIELD_INVOICE_NUMBER,
                    sort_direction=isvc.SORT_DIRECTION_ASC,
                    page_size=2,
                )
            ]
        )
    assert listed == numbers


async def test_async_client_pages_and_streams_every_invoice(server: BuiltServer, api: Api) -> None:
    numbers = await _numbered_invoices(api, 5)
    async with AsyncInvoiceRpcClient(f"127.0.0.1:{server.port}", api.key) as client:
        listed = [i.invoice_number async for i in client.iter_invoices(page_size=2)]
        streamed = [i.invoice_number async for i in client.stream_invoices(batch_size=2)]
        with pytest.raises(NotFound):
            await client.get_invoice(invoice_ref="00000000-0000-4000-8000-000000000000")
    assert listed == streamed == list(reversed(numbers))


async def test_audit_event_pager_reads_the_whole_trail(server: BuiltServer, api: Api) -> None:
    async with api.db.write() as s:
        invoice = await make_invoice(s, api.tenant_id)
    with _client(server, api) as client:

        def pay(amount_minor: int, day: int) -> pb.Invoice:
            paid_time = datetime(2026, 1, day, tzinfo=UTC)
            return client.reconcile_invoice(paid_time, invoice_ref=str(invoice.id), amount_minor=amount_minor)

        # Two partial payments and a repeat of the second (idempotent: no new event).
        for amount_minor, day in ((1000, 1), (2000, 2), (2000, 2)):
            await asyncio.to_thread(pay, amount_minor, day)
        events = await asyncio.to_thread(lambda: list(client.iter_audit_events(str(invoice.id), page_size=1)))
    assert len(events) == 2
    assert len({e.id for e in events}) == 2
    assert all(e.invoice_ref == str(invoice.id) for e in events)


# -- retries ---------------------------------------------------------------------------------


async def test_idempotent_call_is_retried_until_the_server_is_reachable(
    db: Database, api: Api, reserved_port: int
) -> None:
    async with api.db.write() as s:
        invoice = await make_invoice(s, api.tenant_id)
    first_failure = threading.Event()
    retried: list[InvoiceRpcError] = []

    def on_error(error: InvoiceRpcError) -> None:
        retried.append(error)
        first_failure.set()

    policy = RetryPolicy(max_attempts=50, initial_backoff=0.05, max_backoff=0.2, deadline=15.0, on_error=on_error)
    client = InvoiceRpcClient(f"127.0.0.1:{reserved_port}", api.key, timeout=5.0, retry=policy)
    late_server = build_server(db, f"127.0.0.1:{reserved_port}", reuse_port=True)
    try:
        call = asyncio.ensure_future(asyncio.to_thread(client.get_invoice, invoice.invoice_number))
        await asyncio.to_thread(first_failure.wait, 10.0)
        await asyncio.sleep(0.5)
        await late_server.start()
        got = await call
    finally:
        client.close()
        await late_server.stop(0)
    assert got.invoice_number == invoice.invoice_number
    assert retried and all(isinstance(e, Unavailable) for e in retried)


async def test_create_without_request_id_is_not_retried(api: Api, reserved_port: int) -> None:
    retried: list[InvoiceRpcError] = []
    policy = RetryPolicy(max_attempts=5, initial_backoff=0.01, deadline=5.0, on_error=retried.append)
    invoice = pb.Invoice(billing_type=pb.BILLING_TYPE_ONE_TIME, currency_code="USD")
    with InvoiceRpcClient(f"127.0.0.1:{reserved_port}", api.key, retry=policy) as client:
        with pytest.raises(Unavailable):
            await asyncio.to_thread(client.create_invoice, invoice)
    assert retried == []


async def test_backfill_is_not_retried(api: Api, reserved_port: int) -> None:
    retried: list[InvoiceRpcError] = []
    policy = RetryPolicy(max_attempts=5, initial_backoff=0.01, deadline=5.0, on_error=retried.append)
    with InvoiceRpcClient(f"127.0.0.1:{reserved_port}", api.key, retry=policy) as client:
        with pytest.raises(Unavailable):
            await asyncio.to_thread(client.backfill_invoices, 10)
    assert retried == []


async def test_create_with_request_id_is_retried_within_max_attempts(api: Api, reserved_port: int) -> None:
    retried: list[InvoiceRpcError] = []
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.01, deadline=5.0, on_error=retried.append)
    invoice = pb.Invoice(billing_type=pb.BILLING_TYPE_ONE_TIME, currency_code="USD")
    with InvoiceRpcClient(f"127.0.0.1:{reserved_port}", api.key, retry=policy) as client:
        with pytest.raises(Unavailable):
            await asyncio.to_thread(lambda: client.create_invoice(invoice, request_id="req-1"))
    # Three attempts: the first two failures were retried, the third was raised.
    assert len(retried) == 2


async def test_invalid_argument_is_never_retried(server: BuiltServer, api: Api) -> None:
    retried: list[InvoiceRpcError] = []
    policy = RetryPolicy(max_attempts=5, initial_backoff=0.01, on_error=retried.append)
    with _client(server, api, retry=policy) as client:
        with pytest.raises(InvalidArgument):
            await asyncio.to_thread(client.get_invoice, invoice_ref="nope")
    assert retried == []


# -- exports ---------------------------------------------------------------------------------


def _listing(directory: Path) -> list[str]:
    """Names of the files in `directory` (temporary ones included)."""
    return sorted(p.name for p in directory.iterdir())


async def _raw_export(api: Api, export_format: isvc.ExportFormat.ValueType) -> bytes:
    stream = api.invoices.ExportInvoices(isvc.ExportInvoicesRequest(format=export_format), metadata=api.metadata)
    return b"".join([chunk.data async for chunk in stream])


@pytest.mark.parametrize(
    ("name", "export_format"), [("csv", isvc.EXPORT_FORMAT_CSV), ("json", isvc.EXPORT_FORMAT_JSON)]
)
async def test_export_to_file_writes_the_whole_stream(
    server: BuiltServer, api: Api, tmp_path: Path, name: str, export_format: isvc.ExportFormat.ValueType
) -> None:
    async with api.db.write() as s:
        for i in range(3):
            await make_invoice(s, api.tenant_id, lines=[line(f"Line {i}", "1", 100 * (i + 1)), line("Extra")])
    target = tmp_path / f"invoices.{name}"
    with _client(server, api) as client:
        written = await asyncio.to_thread(
            lambda: client.export_to_file(target, name, progress=False)  # type: ignore[arg-type]
        )
    expected = await _raw_export(api, export_format)
    assert target.read_bytes() == expected
    assert written == len(expected) > 0
    assert _listing(tmp_path) == [target.name]


async def test_async_client_export_to_file_writes_the_whole_stream(
    server: BuiltServer, api: Api, tmp_path: Path
) -> None:
    await _numbered_invoices(api, 4)
    target = tmp_path / "invoices.json"
    async with AsyncInvoiceRpcClient(f"127.0.0.1:{server.port}", api.key) as client:
        written = await client.export_to_file(target, "json", progress=False)
    expected = await _raw_export(api, isvc.EXPORT_FORMAT_JSON)
    assert target.read_bytes() == expected
    assert written == len(expected)


async def test_failed_export_leaves_no_file(server: BuiltServer, api: Api, tmp_path: Path) -> None:
    target = tmp_path / "invoices.csv"
    bad_filter = isvc.InvoiceFilter(customer_refs=["not-a-uuid"])
    with _client(server, api) as client:
        with pytest.raises(InvalidArgument):
            await asyncio.to_thread(lambda: client.export_to_file(target, "csv", filter=bad_filter, progress=False))
    assert _listing(tmp_path) == []


async def test_failed_export_keeps_the_previous_file(server: BuiltServer, api: Api, tmp_path: Path) -> None:
    target = tmp_path / "invoices.csv"
    target.write_bytes(b"yesterday's export\n")
    with InvoiceRpcClient(f"127.0.0.1:{server.port}", "irk_not-a-key") as client:
        with pytest.raises(Unauthenticated):
            await asyncio.to_thread(lambda: client.export_to_file(target, "csv", progress=False))
    assert target.read_bytes() == b"yesterday's export\n"
    assert _listing(tmp_path) == [target.name]


def test_interrupted_write_leaves_no_file_and_keeps_the_previous_one(tmp_path: Path) -> None:
    # export_to_file writes through AtomicFile; Ctrl-C arrives as KeyboardInterrupt mid-stream.
    target = tmp_path / "invoices.csv"
    target.write_bytes(b"yesterday's export\n")
    with pytest.raises(KeyboardInterrupt), AtomicFile(target) as out:
        out.write(b"number,status\nINV-2026-0001,")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"yesterday's export\n"
    assert _listing(tmp_path) == [target.name]


async def test_export_progress_counts_bytes_on_stderr_without_tqdm(
    server: BuiltServer, api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    await _numbered_invoices(api, 2)
    monkeypatch.setitem(sys.modules, "tqdm", None)  # as if the `progress` extra were absent
    target = tmp_path / "invoices.json"
    with _client(server, api) as client:
        written = await asyncio.to_thread(lambda: client.export_to_file(target, "json"))
    assert f"{written:,} bytes" in capsys.readouterr().err


# -- console script --------------------------------------------------------------------------


async def test_cli_list_prints_every_invoice_across_pages(
    server: BuiltServer, api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    numbers = await _numbered_invoices(api, 5)
    argv = ["--target", f"127.0.0.1:{server.port}", "--key", api.key, "list", "--page-size", "2", "--status", "sent"]
    status = await asyncio.to_thread(cli_main, argv)
    out = capsys.readouterr().out.splitlines()
    assert status == 0
    assert out[0].split()[:2] == ["NUMBER", "STATUS"]
    assert [row.split()[0] for row in out[1:]] == list(reversed(numbers))
    assert all("99.00 USD" in row for row in out[1:])


async def test_cli_reads_the_key_from_the_environment(
    server: BuiltServer, api: Api, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    await _numbered_invoices(api, 2)
    monkeypatch.setenv("INVOICE_RPC_API_KEY", api.key)
    status = await asyncio.to_thread(cli_main, ["--target", f"127.0.0.1:{server.port}", "summary"])
    out = capsys.readouterr().out
    assert status == 0
    assert out.startswith("2 invoices")
    assert "USD" in out


async def test_cli_reports_errors_with_their_code(
    server: BuiltServer, api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--target", f"127.0.0.1:{server.port}", "--key", api.key, "get", "INV-1999-0001"]
    status = await asyncio.to_thread(cli_main, argv)
    assert status == 1
    assert "NOT_FOUND" in capsys.readouterr().err


async def test_cli_without_key_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("INVOICE_RPC_API_KEY", raising=False)
    assert cli_main(["list"]) == 2
    assert "INVOICE_RPC_API_KEY" in capsys.readouterr().err
