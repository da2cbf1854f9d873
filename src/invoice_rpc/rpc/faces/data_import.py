"""Seed 004's face: `GET/POST /data/invoices`, and the extensions of API.md that load what
invoices refer to: data sources, customers (and `GET /data/customers/{id}`), plans, companies,
orders, marketplace usage, contracts, and seed 002's payment means, people and documents. Item
problems are the service's per-item results; only a value this face cannot even convert (a
billing type or time that is not one) fails the request."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import grpc
from google.protobuf import struct_pb2
from invoice_rpc.v1 import data_import_face_pb2 as face
from invoice_rpc.v1 import data_import_face_pb2_grpc
from invoice_rpc.v1 import resources_pb2 as pb

from invoice_rpc.domain.enums import BillingType, SortDirection, SortField
from invoice_rpc.domain.errors import InvalidArgument, ViolationCollector
from invoice_rpc.rpc.faces.rest import created, parse_choice, parse_uuid, renamed, rfc3339, rfc3339_midnight
from invoice_rpc.rpc.import_convert import company_from_pb, payment_means_from_pb, received_invoices
from invoice_rpc.rpc.interceptor import current_caller
from invoice_rpc.service.customer_metrics import CustomerMetricValues
from invoice_rpc.service.imports.checks import parse_import_time
from invoice_rpc.service.imports.companies import upsert_companies
from invoice_rpc.service.imports.contracts import ContractImport, upsert_contracts
from invoice_rpc.service.imports.customers import CustomerImport, CustomerView, get_customer, upsert_customers
from invoice_rpc.service.imports.data_sources import create_data_source
from invoice_rpc.service.imports.documents import DocumentImport, upsert_documents
from invoice_rpc.service.imports.invoices import bulk_upsert_invoices
from invoice_rpc.service.imports.orders import OrderImport, upsert_orders
from invoice_rpc.service.imports.payment_means import PaymentMeansImport, upsert_payment_means
from invoice_rpc.service.imports.people import PersonImport, upsert_people
from invoice_rpc.service.imports.plans import PlanImport, upsert_plans
from invoice_rpc.service.imports.upsert import ImportResult
from invoice_rpc.service.imports.usage_records import UsageRecordImport, upsert_usage_records
from invoice_rpc.service.invoice_queries import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    InvoiceQuery,
    InvoiceSort,
    PageRequest,
    list_invoices,
    resolve_size,
)
from invoice_rpc.service.invoice_records import InvoiceRecord
from invoice_rpc.storage.database import Database

# Seed 004 lists "recent invoices", and its example shows them oldest first: the `limit` latest
# by issue date are chosen, then listed in date order.
_RECENT_FIRST = InvoiceSort(SortField.ISSUE_DATE, SortDirection.DESC)


def import_result_to_pb(result: ImportResult) -> face.DataImportResult:
    message = face.DataImportResult(id=result.id, import_status=result.status.value)
    if result.error:
        message.import_error = result.error
    return message


def data_invoice_to_pb(record: InvoiceRecord) -> face.DataInvoice:
    message = face.DataInvoice(
        source_id=str(record.data_source_id or ""),
        customer_id=record.customer_external_id or "",
        id=record.external_id or "",
        type=record.billing_type,
        # Stored as an issue date: the time of day an import sent is not kept.
        date=rfc3339_midnight(record.issue_date),
        amount_cents=float(record.total_minor),
        currency=record.currency,
        start_date=rfc3339(record.period_start),
        end_date=rfc3339(record.period_end),
        discount=float(record.total_discount_minor),
    )
    if record.plan_id:
        message.plan_id = record.plan_id
    if record.subscription_id:
        message.subscription_id = record.subscription_id
    if record.quantity is not None:
        message.quantity = float(record.quantity)
    return message


def _results(results: list[ImportResult]) -> face.DataImportResponse:
    return face.DataImportResponse(result=[import_result_to_pb(r) for r in results])


def _time(text: str, field: str, violations: ViolationCollector) -> datetime | None:
    """A given time the service's own parser rejects fails the request; an empty one is left
    to the service, which reports it as the item's missing field."""
    problems: list[str] = []
    parsed = parse_import_time(text, field.rsplit(".", 1)[-1], problems, required=False)
    for problem in problems:
        violations.add(field, problem)
    return parsed


def _quantity(value: struct_pb2.Value, field: str, violations: ViolationCollector) -> str:
    """A JSON number or decimal string as the decimal string the service parses."""
    kind = value.WhichOneof("kind")
    if kind is None:
        return ""
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        # repr gives the shortest decimal that reads back as this double: what the caller wrote.
        return str(int(number)) if number.is_integer() else repr(number)
    violations.add(field, "must be a number or a decimal string")
    return ""


def payment_means_from_face(
    item: face.DataPaymentMeansImport, path: str, violations: ViolationCollector
) -> PaymentMeansImport:
    """Seed 002's payment means as ImportService's PaymentMeans, converted by the same code as
    UpsertPaymentMeans: `details` are then stored exactly as a gRPC import stores them (which
    is what seed 001's billing details and seed 002's `included` read), and the same payment
    means sent either way is `unchanged`. Only the fields seed 002 spells differently are
    translated: `account_details.currency` and `compliance.last_compliance_check`."""
    message = pb.PaymentMeans(
        id=item.id,
        type=item.type,
        scheme=item.scheme,
        status=item.status,
        metadata=item.metadata,
        nickname=item.nickname,
        description=item.description,
        tags=item.tags,
    )
    # Only the sections sent are set: an unset section is left out of `details`, as over gRPC.
    if item.HasField("account_details"):
        account = item.account_details
        message.account_details.CopyFrom(
            pb.AccountDetails(
                iban=account.iban,
                bic=account.bic,
                account_number=account.account_number,
                routing_number=account.routing_number,
                currency_code=account.currency,
                billing_account_id=account.billing_account_id,
            )
        )
    for section in ("bank_details", "card_details", "digital_wallet", "crypto_wallet"):
        if item.HasField(section):
            getattr(message, section).CopyFrom(getattr(item, section))
    if item.HasField("compliance"):
        compliance = item.compliance
        message.compliance.CopyFrom(
            pb.Compliance(
                kyc_status=compliance.kyc_status,
                aml_status=compliance.aml_status,
                sanctions_check=compliance.sanctions_check,
            )
        )
        checked = _time(compliance.last_compliance_check, f"{path}.compliance.last_compliance_check", violations)
        if checked is not None:
            message.compliance.last_compliance_check_time.FromDatetime(checked)
    return payment_means_from_pb(message)


def customer_to_pb(view: CustomerView) -> face.DataCustomer:
    message = face.DataCustomer(
        customer_ref=str(view.id),
        id=view.external_id,
        source_id=str(view.data_source_id),
        name=view.name,
        metrics=[_metrics_to_pb(metric) for metric in view.metrics],
        created_at=rfc3339(view.created_at),
        updated_at=rfc3339(view.updated_at),
    )
    if view.legal_name:
        message.legal_name = view.legal_name
    if view.email:
        message.email = view.email
    if view.company_external_id:
        message.company_id = view.company_external_id
    if view.metrics_updated_at is not None:
        message.metrics_updated_at = rfc3339(view.metrics_updated_at)
    return message


def _metrics_to_pb(metric: CustomerMetricValues) -> face.DataCustomerMetrics:
    message = face.DataCustomerMetrics(
        currency=metric.currency,
        invoiced_cents=float(metric.invoiced_minor),
        paid_cents=float(metric.paid_minor),
        outstanding_cents=float(metric.outstanding_minor),
        mrr_cents=float(metric.mrr_minor),
        invoice_count=metric.invoice_count,
    )
    if metric.last_invoice_date is not None:
        message.last_invoice_date = metric.last_invoice_date.isoformat()
    return message


class DataImportFaceServicer(data_import_face_pb2_grpc.DataImportFaceServiceServicer):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def ListDataInvoices(
        self, request: face.ListDataInvoicesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> face.ListDataInvoicesResponse:
        violations = ViolationCollector()
        source_id = parse_uuid(request.source, "source", violations)
        limit = DEFAULT_PAGE_SIZE
        if request.HasField("limit") and request.limit == 0:
            # An explicit 0 is out of range here, not "the default".
            violations.add("limit", f"must be between 1 and {MAX_PAGE_SIZE} (got 0)")
        elif request.HasField("limit"):
            limit = resolve_size(request.limit, "limit", violations, default=limit, maximum=MAX_PAGE_SIZE)
        violations.raise_if_any()
        async with self.db.read_autocommit() as session:
            page = await list_invoices(
                session,
                current_caller().tenant_id,
                InvoiceQuery(data_source_id=source_id),
                _RECENT_FIRST,
                PageRequest(page_size=limit),
            )
        invoices = [data_invoice_to_pb(record) for record in reversed(page.invoices)]
        return face.ListDataInvoicesResponse(result=face.DataInvoiceList(count=len(invoices), list=invoices))

    async def UpsertDataInvoices(
        self, request: face.UpsertDataInvoicesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> face.DataImportResponse:
        items = received_invoices(request.invoices)
        async with self.db.write() as session:
            results = await bulk_upsert_invoices(session, current_caller(), items)
        return _results(results)

    async def AddDataSource(
        self, request: face.AddDataSourceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> face.DataSourceFace:
        try:
            async with self.db.write() as session:
                source = await create_data_source(session, current_caller().tenant_id, request.name)
        except InvalidArgument as error:
            raise renamed(error, {"data_source.name": "name"}) from error
        # No path reads a single data source, so there is no `location` to give.
        await created(context)
        return face.DataSourceFace(id=str(source.id), name=source.name, created_at=rfc3339(source.created_at))

    async def UpsertDataCustomers(
        self, request: face.UpsertDataCustomersRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> face.DataImportResponse:
        items = [
            CustomerImport(
                id=c.id,
                data_source=c.data_source,
                name=c.name,
                legal_name=c.legal_name,
                email=c.email,
                company_id=c.company_id,
            )
            for c in request.customers
        ]
        async with self.db.write() as session:
            return _results(await upsert_customers(session, current_caller(), items))

    async def GetDataCustomer(
        self, request: face.GetDataCustomerRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> face.GetDataCustomerResponse:
        try:
            async with self.db.read_autocommit() as session:
                view = await get_customer(
                    session, current_caller().tenant_id, data_source=request.source, external_id=request.id
                )
        except InvalidArgument as error:
            raise renamed(error, {"external_key.customer_id": "id"}) from error
        return face.GetDataCustomerResponse(result=customer_to_pb(view))

    async def UpsertDataPlans(
        self, request: face.UpsertDataPlansRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> face.DataImportResponse:
        items = [
            PlanImport(
                id=p.id,
                data_source=p.data_source,
                name=p.name,
                interval=p.interval,
                amount_minor=p.amount_cents,
                currency=p.currency,
            )
            for p in request.plans
        ]
        async with self.db.write() as session:
            return _results(await upsert_plans(session, current_caller(), items))

    async def UpsertDataCompanies(
        self, request: face.UpsertDataCompaniesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> face.DataImportResponse:
        items = [company_from_pb(company) for company in request.companies]
        async with self.db.write() as session:
            return _results(await upsert_companies(session, current_caller(), items))

    async def UpsertDataOrders(
        self, request: face.UpsertDataOrdersRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> face.DataImportResponse:
        violations = ViolationCollector()
        items = [
            OrderImport(
                id=o.id,
                data_source=o.data_source,
                customer_id=o.customer_id,
                billing_type=parse_choice(o.billing_type, f"orders[{i}].billing_type", BillingType, violations),
                ordered_at=_time(o.date, f"orders[{i}].date", violations),
                amount_minor=o.amount_cents,
                currency=o.currency,
                plan_id=o.plan_id,
                description=o.description,
            )
            for i, o in enumerate(request.orders)
        ]
        violations.raise_if_any()
        async with self.db.write() as session:
            return _results(await upsert_orders(session, current_caller(), items))

    async def UpsertDataUsage(
        self, request: face.UpsertDataUsageRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> face.DataImportResponse:
        violations = ViolationCollector()
        items = [
            UsageRecordImport(
                id=u.id,
                dimension=u.dimension,
                quantity=_quantity(u.quantity, f"usage_records[{i}].quantity", violations),
                unit_price_minor=u.unit_price_cents,
                currency=u.currency,
                used_at=_time(u.timestamp, f"usage_records[{i}].timestamp", violations),
            )
            for i, u in enumerate(request.usage_records)
        ]
        violations.raise_if_any()
        async with self.db.write() as session:
            return _results(await upsert_usage_records(session, current_caller(), items))

    async def UpsertDataContracts(
        self, request: face.UpsertDataContractsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> face.DataImportResponse:
        items = [
            ContractImport(id=c.id, contract_number=c.contract_number, customer_id=c.customer_id, name=c.name)
            for c in request.contracts
        ]
        async with self.db.write() as session:
            return _results(await upsert_contracts(session, current_caller(), items))

    async def UpsertDataPaymentMeans(
        self, request: face.UpsertDataPaymentMeansRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> face.DataImportResponse:
        violations = ViolationCollector()
        items = [
            payment_means_from_face(p, f"payment_means[{i}]", violations) for i, p in enumerate(request.payment_means)
        ]
        violations.raise_if_any()
        async with self.db.write() as session:
            return _results(await upsert_payment_means(session, current_caller(), items))

    async def UpsertDataPeople(
        self, request: face.UpsertDataPeopleRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> face.DataImportResponse:
        items = [
            PersonImport(id=p.id, first_name=p.first_name, last_name=p.last_name, email=p.email) for p in request.people
        ]
        async with self.db.write() as session:
            return _results(await upsert_people(session, current_caller(), items))

    async def UpsertDataDocuments(
        self, request: face.UpsertDataDocumentsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> face.DataImportResponse:
        violations = ViolationCollector()
        items = [
            DocumentImport(
                id=d.id,
                file_name=d.file_name,
                status=d.status,
                file_type=d.file_type,
                # Left out is "not known", not 0 bytes.
                size_bytes=d.size_bytes if d.HasField("size_bytes") else None,
                uploaded_at=_time(d.uploaded_at, f"documents[{i}].uploaded_at", violations),
                processed_at=_time(d.processed_at, f"documents[{i}].processed_at", violations),
            )
            for i, d in enumerate(request.documents)
        ]
        violations.raise_if_any()
        async with self.db.write() as session:
            return _results(await upsert_documents(session, current_caller(), items))
