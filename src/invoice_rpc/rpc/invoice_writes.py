"""InvoiceService writes: Create, Reconcile, Backfill, GenerateMarketplace.

Each handler checks the request's shape, converts it to plain values, calls the service layer
inside one write transaction and converts the result back. Domain errors are turned into
statuses by the edge interceptor.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import grpc
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from invoice_rpc.v1 import resources_pb2 as pb

from invoice_rpc.domain.enums import BillingType, InvoiceStatus, PaymentTerm
from invoice_rpc.domain.errors import ViolationCollector
from invoice_rpc.rpc.convert import (
    BILLING_TYPE_FROM_PB,
    PAYMENT_TERM_FROM_PB,
    STATUS_FROM_PB,
    invoice_to_pb,
    optional_date_from_pb,
    timestamp_from_pb,
)
from invoice_rpc.rpc.interceptor import current_caller, current_tenant_key
from invoice_rpc.service.backfill import backfill_invoices
from invoice_rpc.service.invoice_create import NewInvoice, NewLineItem, create_invoice
from invoice_rpc.service.marketplace import generate_marketplace_invoices
from invoice_rpc.service.reconcile import Payment, reconcile_invoice
from invoice_rpc.storage.database import Database


def _text(value: str) -> str | None:
    """proto3 strings cannot be unset: empty means "not given"."""
    return value or None


def _period(message: pb.Period) -> tuple[datetime | None, datetime | None]:
    start = timestamp_from_pb(message.start_time) if message.HasField("start_time") else None
    end = timestamp_from_pb(message.end_time) if message.HasField("end_time") else None
    return start, end


def _billing_type(value: int, violations: ViolationCollector) -> BillingType | None:
    if value == pb.BILLING_TYPE_UNSPECIFIED:
        return None  # the service reports it as required
    if value not in BILLING_TYPE_FROM_PB:
        violations.add("invoice.billing_type", f"unknown billing type {value}")
        return None
    return BILLING_TYPE_FROM_PB[value]  # type: ignore[index]


def _status(value: int, violations: ViolationCollector) -> InvoiceStatus | None:
    if value == pb.INVOICE_STATUS_UNSPECIFIED:
        return None
    if value not in STATUS_FROM_PB:
        violations.add("invoice.status", f"unknown status {value}")
        return None
    return STATUS_FROM_PB[value]  # type: ignore[index]


def _net_terms(invoice: pb.Invoice, violations: ViolationCollector) -> tuple[int | None, PaymentTerm | None]:
    if not invoice.HasField("net_terms"):
        return None, None
    which = invoice.net_terms.WhichOneof("terms")
    if which == "days":
        return invoice.net_terms.days, None
    if which == "payment_term":
        term = PAYMENT_TERM_FROM_PB.get(invoice.net_terms.payment_term)
        if term is None:
            violations.add("invoice.net_terms.payment_term", "must be DUE_UPON_RECEIPT or DUE_UPON_USAGE")
        return None, term
    return None, None


def _line_item(line: pb.LineItem) -> NewLineItem:
    period_start, period_end = _period(line.period) if line.HasField("period") else (None, None)
    has_tax = line.HasField("tax")
    return NewLineItem(
        name=line.name,
        quantity=line.quantity,
        unit_price_minor=line.unit_price_minor,
        discount_minor=line.discount_minor,
        tax_rate_percent=_text(line.tax.rate_percent) if has_tax else None,
        tax_category=_text(line.tax.category) if has_tax else None,
        tax_scheme=_text(line.tax.scheme) if has_tax else None,
        sku=_text(line.sku),
        description=_text(line.description),
        unit=_text(line.unit),
        period_start=period_start,
        period_end=period_end,
        minimum_fee_minor=line.minimum_fee_minor,
        min_quantity=_text(line.min_quantity),
        max_quantity=_text(line.max_quantity),
    )


def new_invoice_from_pb(invoice: pb.Invoice, violations: ViolationCollector) -> NewInvoice:
    """The plain NewInvoice for a CreateInvoice request; output-only fields are ignored."""
    net_terms_days, payment_term = _net_terms(invoice, violations)
    period_start, period_end = _period(invoice.service_period) if invoice.HasField("service_period") else (None, None)
    return NewInvoice(
        billing_type=_billing_type(invoice.billing_type, violations),
        currency=invoice.currency_code,
        line_items=[_line_item(line) for line in invoice.line_items],
        status=_status(invoice.status, violations),
        customer_ref=_text(invoice.customer.customer_ref) if invoice.HasField("customer") else None,
        contract_ref=_text(invoice.contract.contract_ref) if invoice.HasField("contract") else None,
        issuer_company_id=_text(invoice.issuer_company_id),
        receiver_company_id=_text(invoice.receiver_company_id),
        plan_id=_text(invoice.plan_id),
        subscription_id=_text(invoice.subscription_id),
        external_id=_text(invoice.external_id),
        credits_minor=invoice.credits_minor,
        net_terms_days=net_terms_days,
        payment_term=payment_term,
        issue_date=optional_date_from_pb(invoice, "issue_date", "invoice.issue_date", violations),
        due_date=optional_date_from_pb(invoice, "due_date", "invoice.due_date", violations),
        period_start=period_start,
        period_end=period_end,
        is_partial_period=invoice.is_partial_period,
        terms=_text(invoice.terms),
        description=_text(invoice.description),
        quantity=_text(invoice.quantity),
        payment_means_ids=list(invoice.payment_means_ids),
        document_ids=list(invoice.document_ids),
        person_ids=list(invoice.person_ids),
    )


class InvoiceWriteHandlers:
    db: Database

    async def CreateInvoice(
        self, request: isvc.CreateInvoiceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Invoice:
        violations = ViolationCollector()
        if not request.HasField("invoice"):
            violations.add("invoice", "is required")
            violations.raise_if_any()
        new = new_invoice_from_pb(request.invoice, violations)
        async with self.db.write() as session:
            record = await create_invoice(
                session, current_caller(), new, request_id=_text(request.request_id), violations=violations
            )
        return invoice_to_pb(record)

    async def ReconcileInvoice(
        self, request: isvc.ReconcileInvoiceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Invoice:
        key = request.WhichOneof("key")
        payment = Payment(
            paid_at=timestamp_from_pb(request.paid_time) if request.HasField("paid_time") else None,
            invoice_ref=request.invoice_ref if key == "invoice_ref" else None,
            invoice_number=request.invoice_number if key == "invoice_number" else None,
            amount_minor=request.amount_minor if request.HasField("amount_minor") else None,
            payment_id=_text(request.payment_id),
        )
        async with self.db.write() as session:
            record = await reconcile_invoice(session, current_caller(), payment)
        return invoice_to_pb(record)

    async def BackfillInvoices(
        self, request: isvc.BackfillInvoicesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> isvc.BackfillInvoicesResponse:
        # proto3 cannot tell 0 from unset: 0 means the default.
        limit = request.limit if request.limit != 0 else None
        async with self.db.write() as session:
            result = await backfill_invoices(session, current_caller(), limit)
        return isvc.BackfillInvoicesResponse(count=result.count, invoice_numbers=result.invoice_numbers)

    async def GenerateMarketplaceInvoice(
        self, request: isvc.GenerateMarketplaceInvoiceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> isvc.GenerateMarketplaceInvoiceResponse:
        violations = ViolationCollector()
        period_start = optional_date_from_pb(request, "period_start", "period_start", violations)
        period_end = optional_date_from_pb(request, "period_end", "period_end", violations)
        async with self.db.write() as session:
            records = await generate_marketplace_invoices(
                session,
                current_caller(),
                current_tenant_key().marketplace_customer_id,
                period_start,
                period_end,
                violations=violations,
            )
        return isvc.GenerateMarketplaceInvoiceResponse(invoices=[invoice_to_pb(r) for r in records])
