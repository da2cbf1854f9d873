"""The resources invoices point to (companies, payment means, documents, people, contracts),
loaded for a whole page of invoices at once: one query per kind, whatever the number of invoices.

Related resources are named by their external ids, as InvoiceRecord names them; contracts, which
InvoiceRecord names by reference (UUID), are looked up to give their external ids. Every query is
scoped to the tenant, so another tenant's resource is never loaded (it reads as missing).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.service.invoice_records import InvoiceRecord
from invoice_rpc.storage import models as m

_Id = TypeVar("_Id", str, uuid.UUID)


@dataclass(frozen=True, slots=True)
class CompanyView:
    external_id: str
    name: str
    legal_name: str | None
    # description, domain, locale, tax_id, registration, registration_number, as imported
    details: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PaymentMeansView:
    external_id: str
    type: str | None
    scheme: str | None
    status: str | None
    # account, bank, card, wallet and compliance details, metadata, nickname, description, tags
    details: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DocumentView:
    external_id: str
    file_name: str | None
    status: str | None
    file_type: str | None
    size_bytes: int | None
    uploaded_at: datetime | None
    processed_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PersonView:
    external_id: str
    first_name: str | None
    last_name: str | None
    email: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RelatedIds:
    """External ids of related resources to load, per kind; order is kept, repeats are harmless."""

    company_ids: Sequence[str] = ()
    payment_means_ids: Sequence[str] = ()
    document_ids: Sequence[str] = ()
    person_ids: Sequence[str] = ()
    # Contracts by reference (UUID), as InvoiceRecord.contract_ref names them.
    contract_refs: Sequence[uuid.UUID] = ()


@dataclass(frozen=True, slots=True)
class RelatedResources:
    """Loaded resources by external id. An id asked for but absent from its dict does not exist
    for the tenant."""

    companies: dict[str, CompanyView] = field(default_factory=dict)
    payment_means: dict[str, PaymentMeansView] = field(default_factory=dict)
    documents: dict[str, DocumentView] = field(default_factory=dict)
    people: dict[str, PersonView] = field(default_factory=dict)
    # The external id (the id it was imported with) of each contract, by reference.
    contract_ids: dict[uuid.UUID, str] = field(default_factory=dict)


def related_ids_of(
    records: Iterable[InvoiceRecord],
    *,
    companies: bool = False,
    payment_means: bool = False,
    documents: bool = False,
    people: bool = False,
    contracts: bool = False,
) -> RelatedIds:
    """The ids the records point to, for the kinds asked for, in order of first appearance
    (issuer before receiver)."""
    company_ids: list[str] = []
    payment_means_ids: list[str] = []
    document_ids: list[str] = []
    person_ids: list[str] = []
    contract_refs: list[uuid.UUID] = []
    for record in records:
        if companies:
            company_ids += [c for c in (record.issuer_company_id, record.receiver_company_id) if c]
        if payment_means:
            payment_means_ids += record.payment_means_ids
        if documents:
            document_ids += record.document_ids
        if people:
            person_ids += record.person_ids
        if contracts and record.contract_ref is not None:
            contract_refs.append(record.contract_ref)
    return RelatedIds(
        company_ids=_unique(company_ids),
        payment_means_ids=_unique(payment_means_ids),
        document_ids=_unique(document_ids),
        person_ids=_unique(person_ids),
        contract_refs=_unique(contract_refs),
    )


async def load_related(session: AsyncSession, tenant_id: uuid.UUID, ids: RelatedIds) -> RelatedResources:
    """The tenant's resources named by `ids`: at most one query per kind (none for a kind with
    no ids). Ids that name nothing of the tenant's are simply absent from the result."""
    return RelatedResources(
        companies={
            row.external_id: CompanyView(**row._asdict())
            for row in await _rows(session, tenant_id, m.Company, CompanyView, ids.company_ids)
        },
        payment_means={
            row.external_id: PaymentMeansView(**row._asdict())
            for row in await _rows(session, tenant_id, m.PaymentMeans, PaymentMeansView, ids.payment_means_ids)
        },
        documents={
            row.external_id: DocumentView(**row._asdict())
            for row in await _rows(session, tenant_id, m.Document, DocumentView, ids.document_ids)
        },
        people={
            row.external_id: PersonView(**row._asdict())
            for row in await _rows(session, tenant_id, m.Person, PersonView, ids.person_ids)
        },
        contract_ids=await _contract_ids_by_ref(session, tenant_id, ids.contract_refs),
    )


async def _contract_ids_by_ref(
    session: AsyncSession, tenant_id: uuid.UUID, contract_refs: Collection[uuid.UUID]
) -> dict[uuid.UUID, str]:
    if not contract_refs:
        return {}
    stmt = select(m.Contract.id, m.Contract.external_id).where(
        m.Contract.tenant_id == tenant_id, m.Contract.id.in_(list(set(contract_refs)))
    )
    return {ref: external_id for ref, external_id in await session.execute(stmt)}


async def existing_contract_ids(session: AsyncSession, tenant_id: uuid.UUID, external_ids: Collection[str]) -> set[str]:
    """Those of `external_ids` that name one of the tenant's contracts: one query (none if empty)."""
    if not external_ids:
        return set()
    stmt = select(m.Contract.external_id).where(
        m.Contract.tenant_id == tenant_id, m.Contract.external_id.in_(list(set(external_ids)))
    )
    return set((await session.scalars(stmt)).all())


async def _rows(
    session: AsyncSession, tenant_id: uuid.UUID, model: Any, view: Any, external_ids: Collection[str]
) -> Sequence[Any]:
    if not external_ids:
        return ()
    columns = [getattr(model, f.name) for f in fields(view)]
    stmt = select(*columns).where(model.tenant_id == tenant_id, model.external_id.in_(list(set(external_ids))))
    return (await session.execute(stmt)).all()


def _unique(ids: Iterable[_Id]) -> tuple[_Id, ...]:
    return tuple(dict.fromkeys(ids))
