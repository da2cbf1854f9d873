"""What seed 001 ("Received") shows of an invoice beyond the common read model: the supplier
entity, the contract's running total and the billing details derived from the invoice's
payment means. Loaded for a whole batch of invoices with three tenant-scoped queries (never
one per invoice).

total_in_contract: what the invoice's contract has invoiced up to and including this invoice,
in the invoice's currency (amounts in other currencies are never added): Σ totals of invoices
(380) − Σ totals of credit notes (381) among the contract's invoices that are neither draft nor
cancelled, with a number in the contract up to this invoice's (all of them if this invoice has
none). The same rule as a customer's `invoiced` metric, so the two never disagree.

Billing details come from the invoice's payment means, by the payment means' `type`
(lower-cased, `-` and spaces read as `_`); the first linked payment means of each kind wins:
- bank transfer (`bank_transfer`, `credit_transfer`, `sepa_credit_transfer`, `wire_transfer`,
  `bank_account`, `ach`): `billing_account_id` from `account_details.billing_account_id`, else
  the payment means' own id;
- online payment (`card_details`, `card`, `credit_card`, `debit_card`, `online_payment`):
  `auto_charge`, `payment_gateway_id` and `payment_gateway_card_id` from `card_details`;
- crypto (`crypto`, `crypto_wallet`, `cryptocurrency`): `address` and `tokens` from
  `crypto_wallet`.
Payment means of any other type show in none of the three.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from invoice_rpc.domain.enums import DocumentTypeCode, InvoiceStatus
from invoice_rpc.service.invoice_records import InvoiceRecord
from invoice_rpc.storage import models as m

BANK_TRANSFER_TYPES = frozenset(
    {"bank_transfer", "credit_transfer", "sepa_credit_transfer", "wire_transfer", "bank_account", "ach"}
)
ONLINE_PAYMENT_TYPES = frozenset({"card_details", "card", "credit_card", "debit_card", "online_payment"})
CRYPTO_TYPES = frozenset({"crypto", "crypto_wallet", "cryptocurrency"})
# Invoices that count towards a contract's total (as towards a customer's invoiced metric).
_NOT_COUNTED = (InvoiceStatus.DRAFT.value, InvoiceStatus.CANCELLED.value)


@dataclass(frozen=True, slots=True)
class BankTransferDetails:
    billing_account_id: str


@dataclass(frozen=True, slots=True)
class OnlinePaymentDetails:
    auto_charge: bool
    payment_gateway_id: str
    payment_gateway_card_id: str


@dataclass(frozen=True, slots=True)
class CryptoDetails:
    address: str
    tokens: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SupplierEntity:
    """The issuer company; `ref` is its id in this service (a UUID, like customer_ref)."""

    ref: uuid.UUID
    name: str
    legal_name: str | None


@dataclass(frozen=True, slots=True)
class BillingDetails:
    bank_transfer: BankTransferDetails | None = None
    online_payment: OnlinePaymentDetails | None = None
    crypto: CryptoDetails | None = None


@dataclass(frozen=True, slots=True)
class ReceivedExtras:
    """Seed 001's extra parts of one invoice; None where the invoice has no such part."""

    total_in_contract_minor: int | None = None
    entity: SupplierEntity | None = None
    billing: BillingDetails = field(default_factory=BillingDetails)


def payment_means_kind(payment_means_type: str | None) -> str | None:
    """ "bank_transfer", "online_payment", "crypto" or None for a payment means type."""
    normalized = (payment_means_type or "").strip().lower().replace("-", "_").replace(" ", "_")
    if normalized in BANK_TRANSFER_TYPES:
        return "bank_transfer"
    if normalized in ONLINE_PAYMENT_TYPES:
        return "online_payment"
    if normalized in CRYPTO_TYPES:
        return "crypto"
    return None


def _section(details: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = details.get(name)
    return section if isinstance(section, Mapping) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def billing_details(payment_means: Sequence[tuple[str, str | None, Mapping[str, Any]]]) -> BillingDetails:
    """The billing details of payment means given as (id, type, details) in link order."""
    bank_transfer: BankTransferDetails | None = None
    online_payment: OnlinePaymentDetails | None = None
    crypto: CryptoDetails | None = None
    for external_id, means_type, details in payment_means:
        kind = payment_means_kind(means_type)
        if kind == "bank_transfer" and bank_transfer is None:
            account = _section(details, "account_details")
            bank_transfer = BankTransferDetails(_text(account.get("billing_account_id")) or external_id)
        elif kind == "online_payment" and online_payment is None:
            card = _section(details, "card_details")
            online_payment = OnlinePaymentDetails(
                auto_charge=card.get("auto_charge") is True,
                payment_gateway_id=_text(card.get("payment_gateway_id")),
                payment_gateway_card_id=_text(card.get("payment_gateway_card_id")),
            )
        elif kind == "crypto" and crypto is None:
            wallet = _section(details, "crypto_wallet")
            tokens = wallet.get("tokens")
            crypto = CryptoDetails(
                address=_text(wallet.get("address")),
                tokens=tuple(t for t in tokens if isinstance(t, str)) if isinstance(tokens, list) else (),
            )
    return BillingDetails(bank_transfer=bank_transfer, online_payment=online_payment, crypto=crypto)


async def load_received_extras(
    session: AsyncSession, tenant_id: uuid.UUID, records: Sequence[InvoiceRecord]
) -> dict[uuid.UUID, ReceivedExtras]:
    """Seed 001's extras of the tenant's invoices, by invoice id (every record has an entry)."""
    ids = [record.id for record in records]
    if not ids:
        return {}
    totals = await _contract_totals(session, tenant_id, ids)
    entities = await _supplier_entities(session, tenant_id, ids)
    billing = await _billing_details(session, tenant_id, ids)
    return {
        invoice_id: ReceivedExtras(
            total_in_contract_minor=totals.get(invoice_id),
            entity=entities.get(invoice_id),
            billing=billing.get(invoice_id, BillingDetails()),
        )
        for invoice_id in ids
    }


async def _contract_totals(session: AsyncSession, tenant_id: uuid.UUID, ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    this = aliased(m.Invoice, name="this_invoice")
    counted = aliased(m.Invoice, name="counted_invoice")
    signed_total = case(
        (counted.document_type_code == DocumentTypeCode.CREDIT_NOTE.value, -counted.total_minor),
        else_=counted.total_minor,
    )
    stmt = (
        select(this.id, func.coalesce(func.sum(signed_total), 0))
        .select_from(this)
        .outerjoin(
            counted,
            and_(
                counted.tenant_id == this.tenant_id,
                counted.contract_id == this.contract_id,
                counted.currency == this.currency,
                counted.status.not_in(_NOT_COUNTED),
                or_(this.number_in_contract.is_(None), counted.number_in_contract <= this.number_in_contract),
            ),
        )
        .where(this.tenant_id == tenant_id, this.id.in_(ids), this.contract_id.is_not(None))
        .group_by(this.id)
    )
    return {invoice_id: int(total) for invoice_id, total in await session.execute(stmt)}


async def _supplier_entities(
    session: AsyncSession, tenant_id: uuid.UUID, ids: list[uuid.UUID]
) -> dict[uuid.UUID, SupplierEntity]:
    stmt = (
        select(m.Invoice.id, m.Company.id, m.Company.name, m.Company.legal_name)
        .join(m.Company, m.Company.id == m.Invoice.issuer_company_id)
        .where(m.Invoice.tenant_id == tenant_id, m.Invoice.id.in_(ids), m.Company.tenant_id == tenant_id)
    )
    return {
        invoice_id: SupplierEntity(ref=company_id, name=name, legal_name=legal_name)
        for invoice_id, company_id, name, legal_name in await session.execute(stmt)
    }


async def _billing_details(
    session: AsyncSession, tenant_id: uuid.UUID, ids: list[uuid.UUID]
) -> dict[uuid.UUID, BillingDetails]:
    link = m.InvoicePaymentMeans
    stmt = (
        select(link.invoice_id, m.PaymentMeans.external_id, m.PaymentMeans.type, m.PaymentMeans.details)
        .join(m.PaymentMeans, m.PaymentMeans.id == link.payment_means_id)
        .where(link.invoice_id.in_(ids), m.PaymentMeans.tenant_id == tenant_id)
        .order_by(link.invoice_id, link.position)
    )
    linked: dict[uuid.UUID, list[tuple[str, str | None, Mapping[str, Any]]]] = {}
    for invoice_id, external_id, means_type, details in await session.execute(stmt):
        linked.setdefault(invoice_id, []).append((external_id, means_type, details or {}))
    return {invoice_id: billing_details(means) for invoice_id, means in linked.items()}
