"""`InvoiceRpcClient`: the sync client — bearer auth, typed errors, retries, pagers, exports.

The raw generated stubs stay available (`client.invoices`, `client.imports`; they carry the
key but neither retry nor translate errors). The helpers below retry only calls that are safe
to repeat: reads, ReconcileInvoice (idempotent by design) and CreateInvoice with a request_id.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from types import TracebackType
from typing import TypeVar

import grpc
from google.api import httpbody_pb2
from invoice_rpc.v1 import import_service_pb2_grpc, invoice_service_pb2_grpc, resources_pb2
from invoice_rpc.v1 import invoice_service_pb2 as isvc

from invoice_rpc_client import requests
from invoice_rpc_client.auth import BearerAuthInterceptor, secure_channel_credentials
from invoice_rpc_client.channel import CHANNEL_OPTIONS
from invoice_rpc_client.export_file import AtomicFile, make_progress
from invoice_rpc_client.requests import ExportFormatName
from invoice_rpc_client.retry import NO_RETRY, RetryPolicy, call_with_retry, stream_with_retry

T = TypeVar("T")

DEFAULT_TARGET = "localhost:50051"


class InvoiceRpcClient:
    """A connection to an invoice-rpc server as one tenant (the API key's).

    `timeout` is each unary attempt's deadline in seconds; streams (StreamInvoices,
    ExportInvoices) have none unless `stream_timeout` is given, since an export may take long.
    Use as a context manager, or call `close()`.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        api_key: str = "",
        *,
        secure: bool = False,
        root_certificates: bytes | None = None,
        timeout: float | None = 30.0,
        stream_timeout: float | None = None,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen, so sharing the default is safe
    ) -> None:
        if secure:
            self.channel = grpc.secure_channel(
                target, secure_channel_credentials(api_key, root_certificates), options=CHANNEL_OPTIONS
            )
        else:
            channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
            self.channel = grpc.intercept_channel(channel, BearerAuthInterceptor(api_key)) if api_key else channel
        self.timeout = timeout
        self.stream_timeout = stream_timeout
        self.retry = retry
        self.invoices = invoice_service_pb2_grpc.InvoiceServiceStub(self.channel)
        self.imports = import_service_pb2_grpc.ImportServiceStub(self.channel)

    # -- life cycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> InvoiceRpcClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- invoices: reads (retried) ------------------------------------------------------------

    def get_invoice(
        self,
        invoice_number: str | None = None,
        *,
        invoice_ref: str | None = None,
        external_key: tuple[str, str] | None = None,
    ) -> resources_pb2.Invoice:
        """One invoice with its lines, by number, reference or (data source, external id)."""
        request = requests.get_invoice_request(invoice_number, invoice_ref, external_key)
        return call_with_retry(lambda t: self.invoices.GetInvoice(request, timeout=t), self.retry, self.timeout)

    def list_invoices(self, request: isvc.ListInvoicesRequest) -> isvc.ListInvoicesResponse:
        """One page, exactly as the request asks (numbered or keyset)."""
        return call_with_retry(lambda t: self.invoices.ListInvoices(request, timeout=t), self.retry, self.timeout)

    def iter_invoices(
        self,
        filter: isvc.InvoiceFilter | None = None,
        *,
        sort_field: isvc.InvoiceSortField.ValueType = isvc.INVOICE_SORT_FIELD_UNSPECIFIED,
        sort_direction: isvc.SortDirection.ValueType = isvc.SORT_DIRECTION_UNSPECIFIED,
        page_size: int = 200,
        view: isvc.InvoiceView.ValueType = isvc.INVOICE_VIEW_UNSPECIFIED,
    ) -> Iterator[resources_pb2.Invoice]:
        """Every matching invoice, in order, fetching keyset pages of `page_size` as needed.

        Keyset tokens stay correct when invoices are added meanwhile: none is skipped or
        repeated. Each page is retried on its own; a failure raises mid-iteration."""
        request = requests.list_invoices_request(filter, sort_field, sort_direction, page_size, view)
        while True:
            page = self.list_invoices(request)
            yield from page.invoices
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    def summarize_invoices(self, filter: isvc.InvoiceFilter | None = None) -> isvc.SummarizeInvoicesResponse:
        """Counts and totals per currency, billing type and status."""
        request = isvc.SummarizeInvoicesRequest(filter=filter)
        return call_with_retry(lambda t: self.invoices.SummarizeInvoices(request, timeout=t), self.retry, self.timeout)

    def stream_invoices(
        self,
        filter: isvc.InvoiceFilter | None = None,
        *,
        sort_field: isvc.InvoiceSortField.ValueType = isvc.INVOICE_SORT_FIELD_UNSPECIFIED,
        sort_direction: isvc.SortDirection.ValueType = isvc.SORT_DIRECTION_UNSPECIFIED,
        view: isvc.InvoiceView.ValueType = isvc.INVOICE_VIEW_UNSPECIFIED,
        batch_size: int = 0,
    ) -> Iterator[resources_pb2.Invoice]:
        """Every matching invoice through one StreamInvoices call (retried until the first batch)."""
        request = isvc.StreamInvoicesRequest(
            filter=filter, sort_field=sort_field, sort_direction=sort_direction, view=view, batch_size=batch_size
        )
        for batch in stream_with_retry(
            lambda t: self.invoices.StreamInvoices(request, timeout=t), self.retry, self.stream_timeout
        ):
            yield from batch.invoices

    def export_chunks(self, request: isvc.ExportInvoicesRequest) -> Iterator[httpbody_pb2.HttpBody]:
        """The raw ExportInvoices messages (retried until the first one arrives)."""
        return stream_with_retry(
            lambda t: self.invoices.ExportInvoices(request, timeout=t), self.retry, self.stream_timeout
        )

    def export_to_file(
        self,
        path: str | os.PathLike[str],
        format: ExportFormatName = "csv",
        *,
        filter: isvc.InvoiceFilter | None = None,
        include_line_items: bool = True,
        sort_field: isvc.InvoiceSortField.ValueType = isvc.INVOICE_SORT_FIELD_UNSPECIFIED,
        sort_direction: isvc.SortDirection.ValueType = isvc.SORT_DIRECTION_UNSPECIFIED,
        progress: bool = True,
    ) -> int:
        """Exports matching invoices to `path` and returns the bytes written.

        `path` is replaced only by a complete export: on any error (or interruption) it is left
        as it was and no temporary file remains. Progress goes to stderr."""
        request = requests.export_invoices_request(format, filter, include_line_items, sort_field, sort_direction)
        with AtomicFile(path, make_progress(progress, f"export {os.fspath(path)}")) as out:
            for chunk in self.export_chunks(request):
                out.write(chunk.data)
        return out.bytes_written

    def iter_audit_events(self, invoice_ref: str, *, page_size: int = 200) -> Iterator[resources_pb2.AuditEvent]:
        """The invoice's whole audit trail, oldest first, across pages."""
        request = isvc.ListAuditEventsRequest(invoice_ref=invoice_ref, page_size=page_size)
        while True:
            page = call_with_retry(
                lambda t: self.invoices.ListAuditEvents(request, timeout=t), self.retry, self.timeout
            )
            yield from page.audit_events
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    # -- invoices: writes ---------------------------------------------------------------------

    def create_invoice(self, invoice: resources_pb2.Invoice, *, request_id: str = "") -> resources_pb2.Invoice:
        """Creates the invoice. Retried only with a `request_id`: the server then answers a
        repeat with the invoice the first attempt created, so a retry never makes two."""
        request = isvc.CreateInvoiceRequest(invoice=invoice, request_id=request_id)
        policy = self.retry if request_id else NO_RETRY
        return call_with_retry(lambda t: self.invoices.CreateInvoice(request, timeout=t), policy, self.timeout)

    def reconcile_invoice(
        self,
        paid_time: datetime,
        *,
        invoice_ref: str | None = None,
        invoice_number: str | None = None,
        amount_minor: int | None = None,
        payment_id: str = "",
    ) -> resources_pb2.Invoice:
        """Records a payment (all that remains when `amount_minor` is None). Retried: the server
        recognises a repeated payment (same payment_id, or same time and amount) and ignores it."""
        request = requests.reconcile_invoice_request(
            paid_time,
            invoice_ref=invoice_ref,
            invoice_number=invoice_number,
            amount_minor=amount_minor,
            payment_id=payment_id,
        )
        return call_with_retry(lambda t: self.invoices.ReconcileInvoice(request, timeout=t), self.retry, self.timeout)

    def backfill_invoices(self, limit: int = 0) -> isvc.BackfillInvoicesResponse:
        """Invoices orders that have none (never retried: a repeat would invoice more orders)."""
        request = isvc.BackfillInvoicesRequest(limit=limit)
        return call_with_retry(lambda t: self.invoices.BackfillInvoices(request, timeout=t), NO_RETRY, self.timeout)

    # -- imports ------------------------------------------------------------------------------

    def get_customer(
        self, customer_ref: str | None = None, *, customer_id: str | None = None, data_source: str = ""
    ) -> resources_pb2.Customer:
        """A customer with its recalculated metrics, by reference or by (data source, id)."""
        request = requests.get_customer_request(customer_ref, customer_id, data_source)
        return call_with_retry(lambda t: self.imports.GetCustomer(request, timeout=t), self.retry, self.timeout)
