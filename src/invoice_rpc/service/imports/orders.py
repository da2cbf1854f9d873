"""UpsertOrders: billing events keyed by (data source, id), later turned into invoices by
Backfill. An order that already has its invoice cannot change any more."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.domain.enums import BillingType
from invoice_rpc.service.caller import Caller
from invoice_rpc.service.imports.checks import check_currency, check_non_negative
from invoice_rpc.service.imports.references import DataSources, ids_by_source_key
from invoice_rpc.service.imports.upsert import ImportResult, Normalized, UpsertSpec, check_batch_size, upsert_batch
from invoice_rpc.storage import models as m


@dataclass(frozen=True, slots=True)
class OrderImport:
    id: str
    data_source: str = ""
    customer_id: str = ""
    billing_type: BillingType | None = None
    ordered_at: datetime | None = None
    amount_minor: int = 0
    currency: str = ""
    plan_id: str = ""
    description: str = ""


class _OrderSpec(UpsertSpec[OrderImport]):
    model = m.Order
    label = "order"
    request_field = "orders"
    keyed_by_data_source = True

    def __init__(
        self,
        sources: DataSources,
        customers: dict[tuple[uuid.UUID, str], uuid.UUID],
        plans: dict[tuple[uuid.UUID, str], uuid.UUID],
        invoice_numbers: dict[uuid.UUID, str],
    ) -> None:
        self.sources = sources
        self.customers = customers
        self.plans = plans
        self.invoice_numbers = invoice_numbers  # order row id -> number of its invoice

    def data_source_ref(self, item: OrderImport) -> str:
        return item.data_source

    def resolve_data_source(self, ref: str) -> uuid.UUID | None:
        return self.sources.resolve(ref, [])

    def normalize(self, item: OrderImport, problems: list[str]) -> Normalized:
        source_id = self.sources.resolve(item.data_source, problems)
        customer_id = plan_id = None
        if not item.customer_id.strip():
            problems.append("Missing customer ID")
        elif source_id is not None:
            customer_id = self.customers.get((source_id, item.customer_id.strip()))
            if customer_id is None:
                problems.append(f"Customer ID {item.customer_id.strip()} does not exist")
        if item.billing_type is None:
            problems.append("Missing billing type")
        if item.ordered_at is None:
            problems.append("Missing order time")
        amount = check_non_negative(item.amount_minor, "amount", problems)
        currency = check_currency(item.currency, problems)
        if item.plan_id.strip() and source_id is not None:
            plan_id = self.plans.get((source_id, item.plan_id.strip()))
            if plan_id is None:
                problems.append(f"Plan ID {item.plan_id.strip()} does not exist")
        return Normalized(
            source_id,
            {
                "customer_id": customer_id,
                "billing_type": item.billing_type.value if item.billing_type else None,
                "ordered_at": item.ordered_at,
                "amount_minor": amount,
                "currency": currency,
                "plan_id": plan_id,
                "description": item.description.strip() or None,
            },
        )

    def update_problem(self, row: Any, item: OrderImport) -> str | None:
        number = self.invoice_numbers.get(row.id)
        if number is None:
            return None
        return f"Order {row.external_id} is already invoiced as {number} and cannot change"


async def upsert_orders(session: AsyncSession, caller: Caller, items: Sequence[OrderImport]) -> list[ImportResult]:
    """Insert or update orders; one result per item, in input order."""
    check_batch_size(len(items), _OrderSpec.request_field)
    tenant_id = caller.tenant_id
    sources = await DataSources.load(session, tenant_id, (item.data_source for item in items))
    keys = [(sources.resolve(item.data_source, []), item) for item in items]
    customers = await ids_by_source_key(session, m.Customer, tenant_id, ((s, i.customer_id.strip()) for s, i in keys))
    plans = await ids_by_source_key(session, m.Plan, tenant_id, ((s, i.plan_id.strip()) for s, i in keys))
    invoiced = await session.execute(
        select(m.Order.id, m.Invoice.invoice_number)
        .join(m.Invoice, m.Invoice.order_id == m.Order.id)
        .where(m.Order.tenant_id == tenant_id, m.Order.external_id.in_(sorted({i.id.strip() for i in items})))
    )
    spec = _OrderSpec(sources, customers, plans, {order_id: number for order_id, number in invoiced})
    return await upsert_batch(session, caller, items, spec)
