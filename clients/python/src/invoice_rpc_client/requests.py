"""Request builders shared by the sync and asyncio clients: plain Python values in, protos out."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Literal

from google.type import date_pb2
from invoice_rpc.v1 import import_service_pb2 as imp
from invoice_rpc.v1 import invoice_service_pb2 as isvc

ExportFormatName = Literal["csv", "json"]

EXPORT_FORMATS: dict[str, isvc.ExportFormat.ValueType] = {
    "csv": isvc.EXPORT_FORMAT_CSV,
    "json": isvc.EXPORT_FORMAT_JSON,
}


def get_invoice_request(
    invoice_number: str | None = None,
    invoice_ref: str | None = None,
    external_key: tuple[str, str] | None = None,
) -> isvc.GetInvoiceRequest:
    """Exactly one key: an invoice number, a reference, or (data source, external id)."""
    given = [k for k in (invoice_number, invoice_ref, external_key) if k is not None]
    if len(given) != 1:
        raise ValueError("give exactly one of invoice_number, invoice_ref, external_key")
    if invoice_number is not None:
        return isvc.GetInvoiceRequest(invoice_number=invoice_number)
    if invoice_ref is not None:
        return isvc.GetInvoiceRequest(invoice_ref=invoice_ref)
    assert external_key is not None
    data_source, external_id = external_key
    return isvc.GetInvoiceRequest(
        external_key=isvc.ExternalInvoiceKey(data_source=data_source, external_id=external_id)
    )


def list_invoices_request(
    filter: isvc.InvoiceFilter | None = None,
    sort_field: isvc.InvoiceSortField.ValueType = isvc.INVOICE_SORT_FIELD_UNSPECIFIED,
    sort_direction: isvc.SortDirection.ValueType = isvc.SORT_DIRECTION_UNSPECIFIED,
    page_size: int = 200,
    view: isvc.InvoiceView.ValueType = isvc.INVOICE_VIEW_UNSPECIFIED,
    page_token: str = "",
) -> isvc.ListInvoicesRequest:
    return isvc.ListInvoicesRequest(
        filter=filter,
        sort_field=sort_field,
        sort_direction=sort_direction,
        page_size=page_size,
        view=view,
        page_token=page_token,
    )


def export_invoices_request(
    format: ExportFormatName,
    filter: isvc.InvoiceFilter | None = None,
    include_line_items: bool = True,
    sort_field: isvc.InvoiceSortField.ValueType = isvc.INVOICE_SORT_FIELD_UNSPECIFIED,
    sort_direction: isvc.SortDirection.ValueType = isvc.SORT_DIRECTION_UNSPECIFIED,
) -> isvc.ExportInvoicesRequest:
    if format not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {sorted(EXPORT_FORMATS)}, not {format!r}")
    return isvc.ExportInvoicesRequest(
        filter=filter,
        sort_field=sort_field,
        sort_direction=sort_direction,
        format=EXPORT_FORMATS[format],
        include_line_items=include_line_items,
    )


def reconcile_invoice_request(
    paid_time: datetime,
    *,
    invoice_ref: str | None = None,
    invoice_number: str | None = None,
    amount_minor: int | None = None,
    payment_id: str = "",
) -> isvc.ReconcileInvoiceRequest:
    """A payment of `amount_minor` (all that remains when None) made at `paid_time`."""
    if (invoice_ref is None) == (invoice_number is None):
        raise ValueError("give exactly one of invoice_ref, invoice_number")
    request = isvc.ReconcileInvoiceRequest(payment_id=payment_id)
    if invoice_ref is not None:
        request.invoice_ref = invoice_ref
    else:
        request.invoice_number = invoice_number or ""
    # A naive datetime is taken as UTC rather than as the machine's local time.
    request.paid_time.FromDatetime(paid_time if paid_time.tzinfo else paid_time.replace(tzinfo=UTC))
    if amount_minor is not None:
        request.amount_minor = amount_minor
    return request


def get_customer_request(
    customer_ref: str | None = None, customer_id: str | None = None, data_source: str = ""
) -> imp.GetCustomerRequest:
    """By reference, or by the id the customer has in a data source (id or name)."""
    if (customer_ref is None) == (customer_id is None):
        raise ValueError("give exactly one of customer_ref, customer_id")
    if customer_ref is not None:
        return imp.GetCustomerRequest(customer_ref=customer_ref)
    return imp.GetCustomerRequest(
        external_key=imp.ExternalCustomerKey(data_source=data_source, customer_id=customer_id or "")
    )


def to_date_pb(value: date) -> date_pb2.Date:
    return date_pb2.Date(year=value.year, month=value.month, day=value.day)
