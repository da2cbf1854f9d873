"""BulkUpsertInvoices (seed 004): invoices keyed by (data source, id).

An imported invoice is issued and open: status `sent`, nothing paid, remaining = total; it is
numbered from the tenant's gapless INV-YYYY-NNNN series of its issue year. Re-importing it
changes only what the import describes: number, status and payments stay, and the amount
remaining follows the new total. Every insert and update is audited and queues the customers
involved (old and new) for metric recalculation in the same transaction.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.domain.enums import (
    IMPORTABLE_BILLING_TYPES,
    AccountingEventType,
    BillingType,
    DocumentTypeCode,
    InvoiceStatus,
)
from invoice_rpc.service.caller import Caller
from invoice_rpc.service.imports.checks import check_currency, check_non_negative, parse_import_time
from invoice_rpc.service.imports.references import DataSources, ids_by_source_key
from invoice_rpc.service.imports.sets import bulk_insert
from invoice_rpc.service.imports.upsert import (
    ImportResult,
    Normalized,
    ReceivedItems,
    UpsertSpec,
    WrittenRow,
    check_batch_size,
    jsonable,
    upsert_batch,
)
from invoice_rpc.service.metric_jobs import enqueue_customers
from invoice_rpc.service.numbering import reserve_invoice_numbers
from invoice_rpc.storage import models as m

_TYPE_NAMES = tuple(t.value for t in IMPORTABLE_BILLING_TYPES)
# Bookkeeping columns of an inserted row that its audit event leaves out.
_NOT_AUDITED = frozenset({"tenant_id", "id", "fingerprint", "item_digest"})


@dataclass(frozen=True, slots=True)
class InvoiceImport:
    """One invoice as seed 004 sends it; strings as given, None for an absent number."""

    id: str
    customer_id: str = ""
    data_source: str = ""
    type: str = ""
    date: str = ""
    amount_cents: int | None = None
    currency: str = ""
    plan_id: str = ""
    subscription_id: str = ""
    start_date: str = ""
    end_date: str = ""
    quantity: int | None = None
    discount: int | None = None


class _InvoiceSpec(UpsertSpec[InvoiceImport]):
    model = m.Invoice
    label = "invoice"
    request_field = "invoices"
    keyed_by_data_source = True

    def __init__(self, sources: DataSources) -> None:
        self.sources = sources
        self.customers: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
        self.plans: dict[tuple[uuid.UUID, str], uuid.UUID] = {}

    def data_source_ref(self, item: InvoiceImport) -> str:
        return item.data_source

    def resolve_data_source(self, ref: str) -> uuid.UUID | None:
        return self.sources.resolve(ref, [])

    async def load_references(self, session: AsyncSession, caller: Caller, items: Sequence[InvoiceImport]) -> None:
        keys = [(self.sources.resolve(item.data_source, []), item) for item in items]
        self.customers = await ids_by_source_key(
            session, m.Customer, caller.tenant_id, ((source, item.customer_id.strip()) for source, item in keys)
        )
        self.plans = await ids_by_source_key(
            session, m.Plan, caller.tenant_id, ((source, item.plan_id.strip()) for source, item in keys)
        )

    def normalize(self, item: InvoiceImport, problems: list[str]) -> Normalized:
        source_id = self.sources.resolve(item.data_source, problems)
        customer_id = None
        if not item.customer_id.strip():
            problems.append("Missing customer ID")
        elif source_id is not None:
            customer_id = self.customers.get((source_id, item.customer_id.strip()))
            if customer_id is None:
                problems.append(f"Customer ID {item.customer_id.strip()} does not exist")
        billing_type = None
        if not item.type.strip():
            problems.append("Missing type")
        elif item.type.strip() not in _TYPE_NAMES:
            problems.append(f"Invalid type '{item.type}': must be one of {', '.join(_TYPE_NAMES)}")
        else:
            billing_type = BillingType(item.type.strip())
        issued_at = parse_import_time(item.date, "date", problems)
        amount = check_non_negative(item.amount_cents, "amount_cents", problems, required=True)
        currency = check_currency(item.currency, problems)
        plan_id = None
        if item.plan_id.strip() and source_id is not None:
            plan_id = self.plans.get((source_id, item.plan_id.strip()))
            if plan_id is None:
                problems.append(f"Plan ID {item.plan_id.strip()} does not exist")
        start = parse_import_time(item.start_date, "start_date", problems)
        end = parse_import_time(item.end_date, "end_date", problems)
        if start is not None and end is not None and end < start:
            problems.append("end_date is before start_date")
        quantity = check_non_negative(item.quantity, "quantity", problems)
        discount = check_non_negative(item.discount, "discount", problems) or 0
        if problems or billing_type is None or issued_at is None or amount is None:
            return Normalized(source_id, {})
        credit_note = billing_type.is_credit_note
        return Normalized(
            source_id,
            {
                "customer_id": customer_id,
                "billing_type": billing_type.value,
                "document_type_code": (
                    DocumentTypeCode.CREDIT_NOTE if credit_note else DocumentTypeCode.COMMERCIAL_INVOICE
                ).value,
                "accounting_event_type": (
                    AccountingEventType.CREDIT_NOTE if credit_note else AccountingEventType.INVOICE
                ).value,
                "issue_date": issued_at.date(),
                "currency": currency,
                "total_minor": amount,
                "total_discount_minor": discount,
                "sub_total_minor": amount + discount,
                "plan_id": plan_id,
                "subscription_id": item.subscription_id.strip() or None,
                "period_start": start,
                "period_end": end,
                "quantity": str(quantity) if quantity is not None else None,
            },
        )

    async def complete_inserts(self, session: AsyncSession, caller: Caller, inserts: list[dict[str, Any]]) -> None:
        by_year: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for values in inserts:
            by_year[values["issue_date"].year].append(values)
        # One reservation per issue year; years in order so concurrent batches lock alike.
        for year in sorted(by_year):
            numbers = await reserve_invoice_numbers(session, caller.tenant_id, year, len(by_year[year]))
            for values, number in zip(by_year[year], numbers, strict=True):
                values.update(
                    invoice_number=number,
                    status=InvoiceStatus.SENT.value,
                    total_tax_minor=0,
                    credits_minor=0,
                    amount_paid_minor=0,
                    amount_remaining_minor=values["total_minor"],
                    is_partial_period=False,
                )

    def apply_update(self, row: Any, values: dict[str, Any]) -> None:
        super().apply_update(row, values)
        row.amount_remaining_minor = max(0, row.total_minor - row.credits_minor - row.amount_paid_minor)

    async def after_write(self, session: AsyncSession, caller: Caller, written: list[WrittenRow]) -> None:
        audit_rows = []
        customers: set[uuid.UUID] = set()
        for change in written:
            if change.before is None:
                # Dates and ids are turned into JSON text when the row is written (json_dumps).
                action, before = "invoice.imported", {}
                after = {k: v for k, v in change.after.items() if k not in _NOT_AUDITED}
            else:
                after = jsonable(change.after)
                before_all = jsonable(change.before)
                action = "invoice.import_updated"
                before = {k: v for k, v in before_all.items() if after.get(k) != v}
                after = {k: after[k] for k in before}
                customers.add(change.before["customer_id"])
            customers.add(change.after["customer_id"])
            audit_rows.append(
                {
                    "id": uuid.uuid4(),
                    "tenant_id": caller.tenant_id,
                    "invoice_id": change.row_id,
                    "action": action,
                    "api_key_id": caller.api_key_id,
                    "request_id": caller.request_id,
                    "before": before,
                    "after": after,
                }
            )
        await bulk_insert(session, m.AuditEvent, audit_rows)
        await enqueue_customers(session, caller.tenant_id, (c for c in customers if c is not None))


async def bulk_upsert_invoices(
    session: AsyncSession, caller: Caller, items: Sequence[InvoiceImport] | ReceivedItems[InvoiceImport]
) -> list[ImportResult]:
    """Insert or update the invoices; one result per item, in input order (see module doc).
    Items as the rpc edge received them (`ReceivedItems`) are converted only where needed."""
    check_batch_size(len(items), _InvoiceSpec.request_field)
    refs = items.data_sources if isinstance(items, ReceivedItems) else [item.data_source for item in items]
    sources = await DataSources.load(session, caller.tenant_id, refs)
    return await upsert_batch(session, caller, items, _InvoiceSpec(sources))
