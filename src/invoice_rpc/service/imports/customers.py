"""UpsertCustomers and GetCustomer. A customer is keyed by (data source, id); its company, if
any, is named by the company's id."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from invoice_rpc.service.caller import Caller
from invoice_rpc.service.customer_metrics import CustomerMetricValues, load_customer_metrics
from invoice_rpc.service.imports.checks import check_length
from invoice_rpc.service.imports.references import DataSources, ids_by_external_id
from invoice_rpc.service.imports.upsert import ImportResult, Normalized, UpsertSpec, check_batch_size, upsert_batch
from invoice_rpc.storage import models as m


@dataclass(frozen=True, slots=True)
class CustomerImport:
    id: str
    data_source: str = ""
    name: str = ""
    legal_name: str = ""
    email: str = ""
    company_id: str = ""


@dataclass(frozen=True, slots=True)
class CustomerView:
    """A customer with its metrics as last recalculated (metrics_updated_at None: never)."""

    id: uuid.UUID
    external_id: str
    data_source_id: uuid.UUID
    name: str
    legal_name: str | None
    email: str | None
    company_external_id: str | None
    metrics: list[CustomerMetricValues]
    metrics_updated_at: datetime | None
    created_at: datetime
    updated_at: datetime


class _CustomerSpec(UpsertSpec[CustomerImport]):
    model = m.Customer
    label = "customer"
    request_field = "customers"
    keyed_by_data_source = True

    def __init__(self, sources: DataSources, companies: dict[str, list[uuid.UUID]]) -> None:
        self.sources = sources
        self.companies = companies

    def data_source_ref(self, item: CustomerImport) -> str:
        return item.data_source

    def resolve_data_source(self, ref: str) -> uuid.UUID | None:
        return self.sources.resolve(ref, [])

    def normalize(self, item: CustomerImport, problems: list[str]) -> Normalized:
        source_id = self.sources.resolve(item.data_source, problems)
        company_id = None
        if item.company_id.strip():
            found = self.companies.get(item.company_id.strip())
            if not found:
                problems.append(f"Company ID {item.company_id.strip()} does not exist")
            else:
                company_id = found[0]
        return Normalized(
            source_id,
            {
                "name": check_length(item.name, "name", 500, problems) or "",
                "legal_name": check_length(item.legal_name, "legal_name", 500, problems),
                "email": check_length(item.email, "email", 320, problems),
                "company_id": company_id,
            },
        )


async def upsert_customers(
    session: AsyncSession, caller: Caller, items: Sequence[CustomerImport]
) -> list[ImportResult]:
    """Insert or update customers; one result per item, in input order."""
    check_batch_size(len(items), _CustomerSpec.request_field)
    sources = await DataSources.load(session, caller.tenant_id, (item.data_source for item in items))
    companies = await ids_by_external_id(session, m.Company, caller.tenant_id, (i.company_id.strip() for i in items))
    return await upsert_batch(session, caller, items, _CustomerSpec(sources, companies))


async def get_customer(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    customer_ref: str | None = None,
    data_source: str = "",
    external_id: str = "",
) -> CustomerView:
    """The customer by its reference, or by its id in a data source (id or name). Without a data
    source the id must be unique in the tenant: FailedPrecondition if several sources have it."""
    query = (
        select(m.Customer, m.Company.external_id)
        .outerjoin(m.Company, m.Company.id == m.Customer.company_id)
        .where(m.Customer.tenant_id == tenant_id)
    )
    if customer_ref is not None:
        try:
            ref = uuid.UUID(customer_ref)
        except ValueError:
            raise InvalidArgument.single("customer_ref", "must be a UUID") from None
        query = query.where(m.Customer.id == ref)
        described = f"Customer {customer_ref}"
    else:
        if not external_id.strip():
            raise InvalidArgument.single("external_key.customer_id", "must not be empty")
        query = query.where(m.Customer.external_id == external_id.strip())
        described = f"Customer ID {external_id.strip()}"
        if data_source.strip():
            problems: list[str] = []
            source_id = (await DataSources.load(session, tenant_id, [data_source])).resolve(data_source, problems)
            if source_id is None:
                raise NotFound(problems[0])
            query = query.where(m.Customer.data_source_id == source_id)
    rows = (await session.execute(query.limit(2))).all()
    if not rows:
        raise NotFound(f"{described} does not exist")
    if len(rows) > 1:
        raise FailedPrecondition(f"{described} exists in several data sources; name the data source")
    customer, company_external_id = rows[0]
    return CustomerView(
        id=customer.id,
        external_id=customer.external_id,
        data_source_id=customer.data_source_id,
        name=customer.name,
        legal_name=customer.legal_name,
        email=customer.email,
        company_external_id=company_external_id,
        metrics=await load_customer_metrics(session, customer.id),
        metrics_updated_at=customer.metrics_updated_at,
        created_at=customer.created_at,
        updated_at=customer.updated_at,
    )
