"""Proto <-> service conversions of ImportService. Only the rpc edge imports *_pb2."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from invoice_rpc.v1 import import_service_pb2 as ipb
from invoice_rpc.v1 import resources_pb2 as pb

from invoice_rpc.domain.enums import ImportStatus
from invoice_rpc.rpc.convert import BILLING_TYPE_FROM_PB, date_to_pb, timestamp_from_pb, timestamp_to_pb
from invoice_rpc.service.customer_metrics import CustomerMetricValues
from invoice_rpc.service.imports.companies import CompanyImport
from invoice_rpc.service.imports.contracts import ContractImport
from invoice_rpc.service.imports.customers import CustomerImport, CustomerView
from invoice_rpc.service.imports.data_sources import DataSourceView
from invoice_rpc.service.imports.documents import DocumentImport
from invoice_rpc.service.imports.invoices import InvoiceImport
from invoice_rpc.service.imports.orders import OrderImport
from invoice_rpc.service.imports.payment_means import PaymentMeansImport
from invoice_rpc.service.imports.people import PersonImport
from invoice_rpc.service.imports.plans import PlanImport
from invoice_rpc.service.imports.upsert import ImportResult, ReceivedItems
from invoice_rpc.service.imports.usage_records import UsageRecordImport

IMPORT_STATUS_TO_PB: dict[ImportStatus, ipb.ImportStatus.ValueType] = {
    ImportStatus.INSERTED: ipb.IMPORT_STATUS_INSERTED,
    ImportStatus.UPDATED: ipb.IMPORT_STATUS_UPDATED,
    ImportStatus.UNCHANGED: ipb.IMPORT_STATUS_UNCHANGED,
    ImportStatus.ERROR: ipb.IMPORT_STATUS_ERROR,
}


def results_to_pb(results: Iterable[ImportResult]) -> list[ipb.ImportResult]:
    return [
        ipb.ImportResult(id=result.id, import_status=IMPORT_STATUS_TO_PB[result.status], import_error=result.error)
        for result in results
    ]


def add_results(container: Any, results: Iterable[ImportResult]) -> None:
    """Append the results to a response's `results` (a repeated ImportResult field). Made in
    place and set field by field, a thousand of them cost a third of building the messages
    from keywords and copying them in."""
    add = container.add
    for result in results:
        message = add()
        message.id = result.id
        message.import_status = IMPORT_STATUS_TO_PB[result.status]
        if result.error:
            message.import_error = result.error


def _optional_int(message: Message, name: str) -> int | None:
    return getattr(message, name) if message.HasField(name) else None


def _optional_time(message: Message, name: str) -> datetime | None:
    return timestamp_from_pb(getattr(message, name)) if message.HasField(name) else None


def _details(message: Message, names: Iterable[str]) -> dict[str, Any]:
    """The named fields that are set, as JSON (proto field names), for a `details` column."""
    as_dict = MessageToDict(message, preserving_proto_field_name=True)
    return {name: as_dict[name] for name in names if name in as_dict}


def invoice_from_pb(item: ipb.InvoiceImport) -> InvoiceImport:
    return InvoiceImport(
        id=item.id,
        customer_id=item.customer_id,
        data_source=item.data_source,
        type=item.type,
        date=item.date,
        amount_cents=_optional_int(item, "amount_cents"),
        currency=item.currency,
        plan_id=item.plan_id,
        subscription_id=item.subscription_id,
        start_date=item.start_date,
        end_date=item.end_date,
        quantity=_optional_int(item, "quantity"),
        discount=_optional_int(item, "discount"),
    )


def received_invoices(items: Sequence[ipb.InvoiceImport]) -> ReceivedItems[InvoiceImport]:
    """The batch as received: ids, data sources and each item's wire bytes (deterministic
    encoding: the same fields give the same bytes) read off the messages; an item is converted
    only if the service layer asks for it."""
    messages = list(items)
    return ReceivedItems(
        [item.id for item in messages],
        [item.data_source for item in messages],
        [item.SerializeToString(deterministic=True) for item in messages],
        lambda index: invoice_from_pb(messages[index]),
    )


def customer_from_pb(item: pb.Customer) -> CustomerImport:
    return CustomerImport(
        id=item.id,
        data_source=item.data_source_id,
        name=item.name,
        legal_name=item.legal_name,
        email=item.email,
        company_id=item.company_id,
    )


def plan_from_pb(item: pb.Plan) -> PlanImport:
    return PlanImport(
        id=item.id,
        data_source=item.data_source_id,
        name=item.name,
        interval=item.interval,
        amount_minor=item.amount_minor,
        currency=item.currency_code,
    )


def contract_from_pb(item: pb.Contract) -> ContractImport:
    return ContractImport(
        id=item.id, contract_number=item.contract_number, customer_id=item.customer_id, name=item.name
    )


COMPANY_DETAIL_FIELDS = ("description", "domain", "locale", "tax_id", "registration", "registration_number")


def company_from_pb(item: pb.Company) -> CompanyImport:
    return CompanyImport(
        id=item.id, name=item.name, legal_name=item.legal_name, details=_details(item, COMPANY_DETAIL_FIELDS)
    )


def order_from_pb(item: pb.Order) -> OrderImport:
    return OrderImport(
        id=item.id,
        data_source=item.data_source_id,
        customer_id=item.customer_id,
        billing_type=BILLING_TYPE_FROM_PB.get(item.billing_type),
        ordered_at=_optional_time(item, "order_time"),
        amount_minor=item.amount_minor,
        currency=item.currency_code,
        plan_id=item.plan_id,
        description=item.description,
    )


def usage_record_from_pb(item: pb.UsageRecord) -> UsageRecordImport:
    return UsageRecordImport(
        id=item.id,
        dimension=item.dimension,
        quantity=item.quantity,
        unit_price_minor=item.unit_price_minor,
        currency=item.currency_code,
        used_at=_optional_time(item, "usage_time"),
    )


PAYMENT_MEANS_DETAIL_FIELDS = (
    "account_details",
    "bank_details",
    "card_details",
    "digital_wallet",
    "crypto_wallet",
    "compliance",
    "metadata",
    "nickname",
    "description",
    "tags",
)


def payment_means_from_pb(item: pb.PaymentMeans) -> PaymentMeansImport:
    return PaymentMeansImport(
        id=item.id,
        type=item.type,
        scheme=item.scheme,
        status=item.status,
        details=_details(item, PAYMENT_MEANS_DETAIL_FIELDS),
    )


def person_from_pb(item: pb.Person) -> PersonImport:
    return PersonImport(id=item.id, first_name=item.first_name, last_name=item.last_name, email=item.email)


def document_from_pb(item: pb.Document) -> DocumentImport:
    return DocumentImport(
        id=item.id,
        file_name=item.file_name,
        status=item.status,
        file_type=item.file_type,
        size_bytes=item.size_bytes,
        uploaded_at=_optional_time(item, "upload_time"),
        processed_at=_optional_time(item, "process_time"),
    )


def data_source_to_pb(view: DataSourceView) -> pb.DataSource:
    return pb.DataSource(id=str(view.id), name=view.name, create_time=timestamp_to_pb(view.created_at))


def metrics_to_pb(metric: CustomerMetricValues) -> pb.CustomerMetrics:
    return pb.CustomerMetrics(
        currency_code=metric.currency,
        invoiced_minor=metric.invoiced_minor,
        paid_minor=metric.paid_minor,
        outstanding_minor=metric.outstanding_minor,
        mrr_minor=metric.mrr_minor,
        invoice_count=metric.invoice_count,
        last_invoice_date=date_to_pb(metric.last_invoice_date),
    )


def customer_to_pb(view: CustomerView) -> pb.Customer:
    return pb.Customer(
        customer_ref=str(view.id),
        id=view.external_id,
        data_source_id=str(view.data_source_id),
        name=view.name,
        legal_name=view.legal_name or "",
        email=view.email or "",
        company_id=view.company_external_id or "",
        metrics=[metrics_to_pb(metric) for metric in view.metrics],
        metrics_time=timestamp_to_pb(view.metrics_updated_at),
        create_time=timestamp_to_pb(view.created_at),
        update_time=timestamp_to_pb(view.updated_at),
    )
