"""Typed SQLAlchemy models. The schema itself comes only from the Alembic migrations; a test
proves the two agree.

Conventions: every tenant-owned row carries tenant_id and every query filters on it; money is
BigInteger minor units beside a 3-letter currency; quantities and rates are decimal text
(SQLite has no exact decimal type); statuses and types are StrEnum values in String columns;
`external_id` is the id a caller gave a thing, unique per tenant (and data source, if any);
`fingerprint` is a hash of an imported item's content, so an identical re-send is detected
without comparing columns and rewrites nothing; `item_digest` is a hash of the item exactly as
it was received, so a byte-identical re-send is recognized before the item is even normalized.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from invoice_rpc.storage.types import UtcDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON()}


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(Uuid, primary_key=True, default=uuid.uuid4)


def _tenant_fk() -> Mapped[uuid.UUID]:
    return mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)


def _created_at() -> Mapped[datetime]:
    return mapped_column(default=utcnow)


def _updated_at() -> Mapped[datetime]:
    return mapped_column(default=utcnow, onupdate=utcnow)


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(200), unique=True)
    marketplace_customer_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = _created_at()


class ApiKey(Base):
    """A bearer key. Only its SHA-256 is stored; the prefix helps people tell keys apart."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = _created_at()
    revoked_at: Mapped[datetime | None]


class DataSource(Base):
    __tablename__ = "data_sources"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = _created_at()


class Company(Base):
    __tablename__ = "companies"
    __table_args__ = (UniqueConstraint("tenant_id", "external_id"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    external_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(500))
    legal_name: Mapped[str | None] = mapped_column(String(500))
    # Descriptive only, never queried: description, domain, locale, tax_id, registration,
    # registration_number, as the import gave them.
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    fingerprint: Mapped[str] = mapped_column(String(64))
    item_digest: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("tenant_id", "data_source_id", "external_id"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    data_source_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("data_sources.id"))
    external_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(500))
    legal_name: Mapped[str | None] = mapped_column(String(500))
    email: Mapped[str | None] = mapped_column(String(320))
    company_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("companies.id"))
    fingerprint: Mapped[str] = mapped_column(String(64))
    item_digest: Mapped[str | None] = mapped_column(String(32))
    metrics_updated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class CustomerMetric(Base):
    """A customer's metrics in one currency, rewritten whole by the metrics worker."""

    __tablename__ = "customer_metrics"

    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    invoiced_minor: Mapped[int] = mapped_column(BigInteger)
    paid_minor: Mapped[int] = mapped_column(BigInteger)
    outstanding_minor: Mapped[int] = mapped_column(BigInteger)
    mrr_minor: Mapped[int] = mapped_column(BigInteger)
    invoice_count: Mapped[int] = mapped_column(BigInteger)
    last_invoice_date: Mapped[date | None] = mapped_column(Date)


class MetricJob(Base):
    """A customer whose metrics need recalculating: one row per customer, coalescing requests.

    Enqueueing bumps `generation`; a worker leases the row (`locked_until`), recomputes, and
    deletes it only if the generation is still the one it saw, so a request that arrives
    mid-computation is never lost. A crashed worker's lease simply expires.
    """

    __tablename__ = "metric_jobs"

    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    generation: Mapped[int] = mapped_column(BigInteger, default=1)
    locked_until: Mapped[datetime | None] = mapped_column(index=True)
    locked_by: Mapped[str | None] = mapped_column(String(100))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created_at()


class Plan(Base):
    __tablename__ = "plans"
    __table_args__ = (UniqueConstraint("tenant_id", "data_source_id", "external_id"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    data_source_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("data_sources.id"))
    external_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(500))
    interval: Mapped[str] = mapped_column(String(16))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    fingerprint: Mapped[str] = mapped_column(String(64))
    item_digest: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class Contract(Base):
    __tablename__ = "contracts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_id"),
        UniqueConstraint("tenant_id", "contract_number"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    external_id: Mapped[str] = mapped_column(String(200))
    contract_number: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    name: Mapped[str | None] = mapped_column(String(500))
    # Serial of the contract's latest invoice; bumped with UPDATE … RETURNING so that
    # number_in_contract is gapless under concurrent writers, like invoice numbers.
    last_number_in_contract: Mapped[int] = mapped_column(Integer, default=0)
    fingerprint: Mapped[str] = mapped_column(String(64))
    item_digest: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class PaymentMeans(Base):
    __tablename__ = "payment_means"
    __table_args__ = (UniqueConstraint("tenant_id", "external_id"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    external_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str | None] = mapped_column(String(50))
    scheme: Mapped[str | None] = mapped_column(String(50))
    status: Mapped[str | None] = mapped_column(String(50))
    # Descriptive only: account, bank, card, wallet and compliance details, metadata, tags.
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    fingerprint: Mapped[str] = mapped_column(String(64))
    item_digest: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class Person(Base):
    __tablename__ = "people"
    __table_args__ = (UniqueConstraint("tenant_id", "external_id"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    external_id: Mapped[str] = mapped_column(String(200))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    fingerprint: Mapped[str] = mapped_column(String(64))
    item_digest: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("tenant_id", "external_id"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    external_id: Mapped[str] = mapped_column(String(200))
    file_name: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str | None] = mapped_column(String(50))
    file_type: Mapped[str | None] = mapped_column(String(200))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    uploaded_at: Mapped[datetime | None]
    processed_at: Mapped[datetime | None]
    fingerprint: Mapped[str] = mapped_column(String(64))
    item_digest: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class InvoiceNumberSequence(Base):
    """Last invoice number issued per tenant and year; incremented inside the invoice's own
    transaction, so a rolled-back invoice gives its number back and the series stays gapless."""

    __tablename__ = "invoice_number_sequences"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_value: Mapped[int] = mapped_column(Integer)


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("tenant_id", "invoice_number"),
        UniqueConstraint("tenant_id", "data_source_id", "external_id"),
        UniqueConstraint("tenant_id", "creation_request_id"),
        Index("ix_invoices_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_invoices_tenant_issue_date", "tenant_id", "issue_date", "id"),
        Index("ix_invoices_tenant_total", "tenant_id", "total_minor", "id"),
        Index("ix_invoices_tenant_billing_type", "tenant_id", "billing_type", "id"),
        Index("ix_invoices_tenant_status", "tenant_id", "status"),
        # Lists filtered by type and status (the usual dashboard query, seed 000's type= and
        # status=) read their page, and count their matches, from this index alone.
        Index("ix_invoices_tenant_type_status_issue", "tenant_id", "billing_type", "status", "issue_date", "id"),
        Index("ix_invoices_tenant_customer", "tenant_id", "customer_id"),
        Index("ix_invoices_tenant_contract", "tenant_id", "contract_id"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    invoice_number: Mapped[str] = mapped_column(String(32))
    data_source_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("data_sources.id"))
    external_id: Mapped[str | None] = mapped_column(String(200))
    document_type_code: Mapped[str] = mapped_column(String(3))
    accounting_event_type: Mapped[str] = mapped_column(String(16))
    billing_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("customers.id"))
    contract_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("contracts.id"))
    number_in_contract: Mapped[int | None] = mapped_column(Integer)
    issuer_company_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("companies.id"))
    receiver_company_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("companies.id"))
    plan_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("plans.id"))
    subscription_id: Mapped[str | None] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    sub_total_minor: Mapped[int] = mapped_column(BigInteger)
    total_discount_minor: Mapped[int] = mapped_column(BigInteger)
    total_tax_minor: Mapped[int] = mapped_column(BigInteger)
    credits_minor: Mapped[int] = mapped_column(BigInteger)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    amount_paid_minor: Mapped[int] = mapped_column(BigInteger)
    amount_remaining_minor: Mapped[int] = mapped_column(BigInteger)
    net_terms_days: Mapped[int | None] = mapped_column(Integer)
    payment_term: Mapped[str | None] = mapped_column(String(32))
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date | None] = mapped_column(Date)
    submitted_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    period_start: Mapped[datetime | None]
    period_end: Mapped[datetime | None]
    is_partial_period: Mapped[bool] = mapped_column(Boolean, default=False)
    terms: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    quantity: Mapped[str | None] = mapped_column(String(40))
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id"), unique=True)
    creation_request_id: Mapped[str | None] = mapped_column(String(200))
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    item_digest: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()
    # PostgreSQL: pb.Invoice wire bytes of the invoice's own fields, written by a trigger on every
    # INSERT and UPDATE (migration 0006) for StreamInvoices; never set by the application, and
    # deferred so that loading an invoice does not fetch them. NULL on SQLite.
    own_wire: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)


class InvoiceDayTotal(Base):
    """Exact sums of the tenant's invoices per (issue date, billing type, status, currency), so
    a summary reads rollup rows instead of every invoice. Written only by the database: triggers
    on `invoices` (migrations 0002, 0005) append every insert, update and delete's grouped
    difference as new rows in the same transaction, so no write path can leave it behind and no
    writer waits for another on it. A group's totals are the SUM of its rows (several until
    compaction folds them into one, see service.rollup_compaction); a group whose invoices are
    all gone sums to zeros, and readers skip groups with no invoices."""

    __tablename__ = "invoice_day_totals"
    __table_args__ = (Index("ix_invoice_day_totals_tenant_issue_date", "tenant_id", "issue_date"),)

    # A bigint identity on PostgreSQL; on SQLite only a column declared exactly INTEGER becomes
    # the rowid, numbered by the database.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), Identity(), primary_key=True)
    # No index of its own: the (tenant_id, issue_date) one serves the tenant cascade.
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    issue_date: Mapped[date] = mapped_column(Date)
    billing_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    invoice_count: Mapped[int] = mapped_column(BigInteger)
    total_minor: Mapped[int] = mapped_column(BigInteger)  # Σ invoices.total_minor
    tax_minor: Mapped[int] = mapped_column(BigInteger)  # Σ invoices.total_tax_minor
    paid_minor: Mapped[int] = mapped_column(BigInteger)  # Σ invoices.amount_paid_minor
    remaining_minor: Mapped[int] = mapped_column(BigInteger)  # Σ invoices.amount_remaining_minor


class InvoiceMonthTotal(Base):
    """`InvoiceDayTotal` added up per calendar month of the issue date (`issue_month` is its
    first day), appended to by the same triggers and folded by the same compaction. A summary
    reads whole months from here and only the days of a partly covered month from the day
    rollup: about thirty times fewer rows."""

    __tablename__ = "invoice_month_totals"
    __table_args__ = (Index("ix_invoice_month_totals_tenant_issue_month", "tenant_id", "issue_month"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), Identity(), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    issue_month: Mapped[date] = mapped_column(Date)
    billing_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    invoice_count: Mapped[int] = mapped_column(BigInteger)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    tax_minor: Mapped[int] = mapped_column(BigInteger)
    paid_minor: Mapped[int] = mapped_column(BigInteger)
    remaining_minor: Mapped[int] = mapped_column(BigInteger)


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"
    __table_args__ = (UniqueConstraint("invoice_id", "position"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str | None] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    quantity: Mapped[str] = mapped_column(String(40))
    unit: Mapped[str | None] = mapped_column(String(20))
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    discount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    tax_rate: Mapped[str | None] = mapped_column(String(20))
    tax_category: Mapped[str | None] = mapped_column(String(50))
    tax_scheme: Mapped[str | None] = mapped_column(String(50))
    period_start: Mapped[datetime | None]
    period_end: Mapped[datetime | None]
    minimum_fee_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    min_quantity: Mapped[str | None] = mapped_column(String(40))
    max_quantity: Mapped[str | None] = mapped_column(String(40))
    sub_total_minor: Mapped[int] = mapped_column(BigInteger)
    tax_minor: Mapped[int] = mapped_column(BigInteger)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class InvoicePaymentMeans(Base):
    __tablename__ = "invoice_payment_means"

    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"), primary_key=True)
    payment_means_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payment_means.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)


class InvoiceDocument(Base):
    __tablename__ = "invoice_documents"

    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"), primary_key=True)
    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)


class InvoicePerson(Base):
    __tablename__ = "invoice_people"

    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"), primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("people.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)


class Payment(Base):
    """A recorded payment. payment_key makes ReconcileInvoice idempotent per invoice."""

    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("invoice_id", "payment_key"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    payment_key: Mapped[str] = mapped_column(String(200))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    paid_at: Mapped[datetime]
    created_at: Mapped[datetime] = _created_at()


class AuditEvent(Base):
    """One change to an invoice: who (API key, request id), what, and the fields before/after."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_invoice_created", "invoice_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = _tenant_fk()
    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(64))
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    request_id: Mapped[str | None] = mapped_column(String(200))
    before: Mapped[dict[str, Any]] = mapped_column(default=dict)
    after: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = _created_at()


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("tenant_id", "data_source_id", "external_id"),
        Index("ix_orders_tenant_ordered", "tenant_id", "ordered_at", "id"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    data_source_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("data_sources.id"))
    external_id: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    billing_type: Mapped[str] = mapped_column(String(32))
    ordered_at: Mapped[datetime]
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    plan_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("plans.id"))
    description: Mapped[str | None] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))
    item_digest: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()


class UsageRecord(Base):
    __tablename__ = "usage_records"
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_id"),
        Index("ix_usage_records_tenant_unbilled", "tenant_id", "invoice_id", "used_at"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    dimension: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[str] = mapped_column(String(40))
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    used_at: Mapped[datetime]
    invoice_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invoices.id"))
    fingerprint: Mapped[str] = mapped_column(String(64))
    item_digest: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = _updated_at()
