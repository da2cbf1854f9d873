"""`AsyncInvoiceRpcClient`: the asyncio twin of `InvoiceRpcClient` (grpc.aio), same rules:
bearer auth, typed errors, retries only for calls that are safe to repeat."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import datetime
from types import TracebackType

import grpc
from google.api import httpbody_pb2
from invoice_rpc.v1 import import_service_pb2_grpc, invoice_service_pb2_grpc, resources_pb2
from invoice_rpc.v1 import invoice_service_pb2 as isvc

from invoice_rpc_client import requests
from invoice_rpc_client.auth import aio_bearer_interceptors, secure_channel_credentials
from invoice_rpc_client.channel import CHANNEL_OPTIONS
from invoice_rpc_client.client import DEFAULT_TARGET
from invoice_rpc_client.export_file import AtomicFile, make_progress
from invoice_rpc_client.requests import ExportFormatName
from invoice_rpc_client.retry import NO_RETRY, RetryPolicy, acall_with_retry, astream_with_retry


class AsyncInvoiceRpcClient:
    """See `InvoiceRpcClient`; every helper here is a coroutine or an async iterator."""

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
            self.channel = grpc.aio.secure_channel(
                target, secure_channel_credentials(api_key, root_certificates), options=CHANNEL_OPTIONS
            )
        else:
            interceptors = aio_bearer_interceptors(api_key) if api_key else None
            self.channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS, interceptors=interceptors)
        self.timeout = timeout
        self.stream_timeout = stream_timeout
        self.retry = retry
        self.invoices = invoice_service_pb2_grpc.InvoiceServiceStub(self.channel)
        self.imports = import_service_pb2_grpc.ImportServiceStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> AsyncInvoiceRpcClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def get_invoice(
        self,
        invoice_number: str | None = None,
        *,
        invoice_ref: str | None = None,
        external_key: tuple[str, str] | None = None,
    ) -> resources_pb2.Invoice:
        request = requests.get_invoice_request(invoice_number, invoice_ref, external_key)
        return await acall_with_retry(lambda t: self.invoices.GetInvoice(request, timeout=t), self.retry, self.timeout)

    async def list_invoices(self, request: isvc.ListInvoicesRequest) -> isvc.ListInvoicesResponse:
        return await acall_with_retry(
            lambda t: self.invoices.ListInvoices(request, timeout=t), self.retry, self.timeout
        )

    async def iter_invoices(
        self,
        filter: isvc.InvoiceFilter | None = None,
        *,
        sort_field: isvc.InvoiceSortField.ValueType = isvc.INVOICE_SORT_FIELD_UNSPECIFIED,
        sort_direction: isvc.SortDirection.ValueType = isvc.SORT_DIRECTION_UNSPECIFIED,
        page_size: int = 200,
        view: isvc.InvoiceView.ValueType = isvc.INVOICE_VIEW_UNSPECIFIED,
    ) -> AsyncIterator[resources_pb2.Invoice]:
        request = requests.list_invoices_request(filter, sort_field, sort_direction, page_size, view)
        while True:
            page = await self.list_invoices(request)
            for invoice in page.invoices:
                yield invoice
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    async def summarize_invoices(self, filter: isvc.InvoiceFilter | None = None) -> isvc.SummarizeInvoicesResponse:
        request = isvc.SummarizeInvoicesRequest(filter=filter)
        return await acall_with_retry(
            lambda t: self.invoices.SummarizeInvoices(request, timeout=t), self.retry, self.timeout
        )

    async def stream_invoices(
        self,
        filter: isvc.InvoiceFilter | None = None,
        *,
        sort_field: isvc.InvoiceSortField.ValueType = isvc.INVOICE_SORT_FIELD_UNSPECIFIED,
        sort_direction: isvc.SortDirection.ValueType = isvc.SORT_DIRECTION_UNSPECIFIED,
        view: isvc.InvoiceView.ValueType = isvc.INVOICE_VIEW_UNSPECIFIED,
        batch_size: int = 0,
    ) -> AsyncIterator[resources_pb2.Invoice]:
        request = isvc.StreamInvoicesRequest(
            filter=filter, sort_field=sort_field, sort_direction=sort_direction, view=view, batch_size=batch_size
        )
        batches = astream_with_retry(
            lambda t: self.invoices.StreamInvoices(request, timeout=t), self.retry, self.stream_timeout
        )
        async for batch in batches:
            for invoice in batch.invoices:
                yield invoice

    def export_chunks(self, request: isvc.ExportInvoicesRequest) -> AsyncIterator[httpbody_pb2.HttpBody]:
        return astream_with_retry(
            lambda t: self.invoices.ExportInvoices(request, timeout=t), self.retry, self.stream_timeout
        )

    async def export_to_file(
        self,
        path: str | os.PathLike[str],
        format: ExportFormatName = "csv",
        *,
        filter: isvc.InvoiceFilter | None = None,
        include_line_items: bool = True,
        progress: bool = True,
    ) -> int:
        request = requests.export_invoices_request(format, filter, include_line_items)
        # Chunks are small; writing them from the event loop blocks it only briefly.
        with AtomicFile(path, make_progress(progress, f"export {os.fspath(path)}")) as out:
            async for chunk in self.export_chunks(request):
                out.write(chunk.data)
        return out.bytes_written

    async def iter_audit_events(
        self, invoice_ref: str, *, page_size: int = 200
    ) -> AsyncIterator[resources_pb2.AuditEvent]:
        request = isvc.ListAuditEventsRequest(invoice_ref=invoice_ref, page_size=page_size)
        while True:
            page = await acall_with_retry(
                lambda t: self.invoices.ListAuditEvents(request, timeout=t), self.retry, self.timeout
            )
            for event in page.audit_events:
                yield event
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    async def create_invoice(self, invoice: resources_pb2.Invoice, *, request_id: str = "") -> resources_pb2.Invoice:
        request = isvc.CreateInvoiceRequest(invoice=invoice, request_id=request_id)
        policy = self.retry if request_id else NO_RETRY
        return await acall_with_retry(lambda t: self.invoices.CreateInvoice(request, timeout=t), policy, self.timeout)

    async def reconcile_invoice(
        self,
        paid_time: datetime,
        *,
        invoice_ref: str | None = None,
        invoice_number: str | None = None,
        amount_minor: int | None = None,
        payment_id: str = "",
    ) -> resources_pb2.Invoice:
        request = requests.reconcile_invoice_request(
            paid_time,
            invoice_ref=invoice_ref,
            invoice_number=invoice_number,
            amount_minor=amount_minor,
            payment_id=payment_id,
        )
        return await acall_with_retry(
            lambda t: self.invoices.ReconcileInvoice(request, timeout=t), self.retry, self.timeout
        )

    async def get_customer(
        self, customer_ref: str | None = None, *, customer_id: str | None = None, data_source: str = ""
    ) -> resources_pb2.Customer:
        request = requests.get_customer_request(customer_ref, customer_id, data_source)
        return await acall_with_retry(lambda t: self.imports.GetCustomer(request, timeout=t), self.retry, self.timeout)
