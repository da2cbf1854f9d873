"""Demo data: one tenant with a year of realistic invoicing, loaded through the same use cases the
rpcs call (imports, CreateInvoice, ReconcileInvoice), so the demo never holds a row the service
itself could not have written.

Deterministic: one seeded random generator, dates relative to `today`. Idempotent: a tenant that
already has data sources or invoices is left alone. What it makes:
- 30 customers (USD, EUR, GBP, JPY by country) with their companies, 2 data sources, plans per
  currency, contracts for the larger subscribers;
- monthly subscription invoices plus token packs, marketplace usage, one-time services, free
  trials, demos, refunds and cancellation credit notes, with taxed line items; some drafts, most
  sent, older ones mostly paid (some partially), a few cancelled; some imported the way seed 004
  sends invoices;
- about 20 orders without invoices (for Backfill) and this month's marketplace usage (for
  GenerateMarketplaceInvoice).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.domain.enums import BillingType, InvoiceStatus
from invoice_rpc.domain.errors import FailedPrecondition
from invoice_rpc.service.audit import record_audit
from invoice_rpc.service.caller import Caller
from invoice_rpc.service.imports.companies import CompanyImport, upsert_companies
from invoice_rpc.service.imports.contracts import ContractImport, upsert_contracts
from invoice_rpc.service.imports.customers import CustomerImport, upsert_customers
from invoice_rpc.service.imports.data_sources import create_data_source
from invoice_rpc.service.imports.invoices import InvoiceImport, bulk_upsert_invoices
from invoice_rpc.service.imports.orders import OrderImport, upsert_orders
from invoice_rpc.service.imports.plans import PlanImport, upsert_plans
from invoice_rpc.service.imports.upsert import ImportResult
from invoice_rpc.service.imports.usage_records import UsageRecordImport, upsert_usage_records
from invoice_rpc.service.invoice_create import NewInvoice, NewLineItem, create_invoice
from invoice_rpc.service.reconcile import Payment, reconcile_invoice
from invoice_rpc.service.tenants import get_or_create_tenant
from invoice_rpc.storage import models as m
from invoice_rpc.storage.types import utcnow

RANDOM_SEED = 20260101
PRIMARY_SOURCE = "stripe"
SECONDARY_SOURCE = "chargebee"

# (name, legal name, country, web domain) of the demo tenant's customers.
CUSTOMERS: tuple[tuple[str, str, str, str], ...] = (
    ("Acme Robotics", "Acme Robotics Inc.", "US", "acmerobotics.example"),
    ("Globex Analytics", "Globex Analytics LLC", "US", "globex.example"),
    ("Initech Software", "Initech Software Corp.", "US", "initech.example"),
    ("Umbrella Health", "Umbrella Health Systems Inc.", "US", "umbrellahealth.example"),
    ("Hooli Cloud", "Hooli Cloud Services Inc.", "US", "hooli.example"),
    ("Stark Logistics", "Stark Logistics LLC", "US", "starklogistics.example"),
    ("Wayne Biotech", "Wayne Biotech Inc.", "US", "waynebio.example"),
    ("Soylent Foods", "Soylent Foods Co.", "US", "soylent.example"),
    ("Vandelay Industries", "Vandelay Industries Inc.", "US", "vandelay.example"),
    ("Pied Piper", "Pied Piper Inc.", "US", "piedpiper.example"),
    ("Pacific Rim Trading", "Pacific Rim Trading Inc.", "US", "pacificrim.example"),
    ("Nordwind Energie", "Nordwind Energie GmbH", "DE", "nordwind.example"),
    ("Bergmann Maschinenbau", "Bergmann Maschinenbau AG", "DE", "bergmann.example"),
    ("Kaiser Logistik", "Kaiser Logistik GmbH & Co. KG", "DE", "kaiser-logistik.example"),
    ("Lumière Studio", "Lumière Studio SAS", "FR", "lumiere.example"),
    ("Boulangerie Martin", "Boulangerie Martin SARL", "FR", "martin.example"),
    ("Van Dijk Data", "Van Dijk Data B.V.", "NL", "vandijk.example"),
    ("Tulipa Retail", "Tulipa Retail B.V.", "NL", "tulipa.example"),
    ("Soluciones Iberia", "Soluciones Iberia S.L.", "ES", "iberia-soluciones.example"),
    ("Milano Design", "Milano Design S.r.l.", "IT", "milanodesign.example"),
    ("Helsinki Games", "Helsinki Games Oy", "FI", "helsinkigames.example"),
    ("Thames Analytics", "Thames Analytics Ltd", "GB", "thames.example"),
    ("Brighton Media", "Brighton Media Ltd", "GB", "brightonmedia.example"),
    ("Cambridge Genomics", "Cambridge Genomics plc", "GB", "camgenomics.example"),
    ("Edinburgh Fintech", "Edinburgh Fintech Ltd", "GB", "edfintech.example"),
    ("Yorkshire Outdoor", "Yorkshire Outdoor Ltd", "GB", "yorkshire-outdoor.example"),
    ("Sakura Robotics", "Sakura Robotics K.K.", "JP", "sakura-robotics.example"),
    ("Fuji Cloudworks", "Fuji Cloudworks K.K.", "JP", "fujicloud.example"),
    ("Osaka Foods", "Osaka Foods Co., Ltd.", "JP", "osakafoods.example"),
    ("Kyoto Learning", "Kyoto Learning K.K.", "JP", "kyotolearning.example"),
)
# Customers billed through the second data source; their invoices arrive as seed-004 imports.
SECONDARY_CUSTOMERS = frozenset({5, 12, 17, 22, 27})

# country -> (currency, tax rate %, tax scheme, tax category (UNCL 5305), our issuing company)
COUNTRIES: dict[str, tuple[str, str, str, str, str]] = {
    "US": ("USD", "0", "SalesTax", "Z", "irpc-us"),
    "DE": ("EUR", "19", "VAT", "S", "irpc-eu"),
    "FR": ("EUR", "20", "VAT", "S", "irpc-eu"),
    "NL": ("EUR", "21", "VAT", "S", "irpc-eu"),
    "ES": ("EUR", "21", "VAT", "S", "irpc-eu"),
    "IT": ("EUR", "22", "VAT", "S", "irpc-eu"),
    "FI": ("EUR", "25.5", "VAT", "S", "irpc-eu"),
    "GB": ("GBP", "20", "VAT", "S", "irpc-uk"),
    "JP": ("JPY", "10", "JCT", "S", "irpc-jp"),
}
ISSUERS: tuple[tuple[str, str, str, dict[str, object]], ...] = (
    ("irpc-us", "Invoice RPC Demo", "Invoice RPC Demo Inc.", {"tax_id": {"value": "12-3456789", "type": "EIN"}}),
    ("irpc-eu", "Invoice RPC Demo", "Invoice RPC Demo GmbH", {"tax_id": {"value": "DE123456789", "type": "VAT"}}),
    ("irpc-uk", "Invoice RPC Demo", "Invoice RPC Demo Ltd", {"tax_id": {"value": "GB123456789", "type": "VAT"}}),
    ("irpc-jp", "Invoice RPC Demo", "Invoice RPC Demo K.K.", {"tax_id": {"value": "T1234567890123", "type": "JCT"}}),
)

# Prices are written once in US cents and converted by exact integer ratios, then rounded to a
# price a person would set (whole units, or 10 yen).
_PER_USD_CENT = {"USD": (1, 1), "EUR": (92, 100), "GBP": (79, 100), "JPY": (150, 100)}
_ROUND_TO = {"USD": 100, "EUR": 100, "GBP": 100, "JPY": 10}

# plan key -> (name, interval, price in US cents)
PLANS: dict[str, tuple[str, str, int]] = {
    "starter": ("Starter", "month", 2_900),
    "pro": ("Pro", "month", 9_900),
    "business": ("Business", "month", 29_900),
    "enterprise": ("Enterprise", "month", 99_900),
    "pro_annual": ("Pro (annual)", "year", 99_000),
}
ONE_TIME_SERVICES = (
    ("SVC-ONBOARD", "Onboarding and setup", 150_000),
    ("SVC-MIGRATE", "Data migration", 320_000),
    ("SVC-TRAIN", "Training workshop (half day)", 90_000),
    ("SVC-INTEG", "Custom integration", 480_000),
)
USAGE_DIMENSIONS = (
    ("api_calls", "API calls (per 1,000)", 20),
    ("storage_gb_hours", "Storage (GB-hours)", 1),
    ("tokens_1k", "AI tokens (per 1,000)", 4),
)
EXTRA_KINDS: tuple[tuple[BillingType, int], ...] = (
    (BillingType.TOKEN_PACK, 26),
    (BillingType.MARKETPLACE_USAGE, 18),
    (BillingType.ONE_TIME, 24),
    (BillingType.FREE_TRIAL, 10),
    (BillingType.DEMO, 6),
    (BillingType.REFUND, 10),
    (BillingType.CANCELLATION, 6),
)


@dataclass(frozen=True, slots=True)
class DemoSeedResult:
    """What the demo tenant holds (after seeding, or as found when it already had data)."""

    seeded: bool
    tenant_id: uuid.UUID
    invoices: int
    customers: int
    orders_without_invoice: int
    usage_records: int
    statuses: dict[str, int]

    def describe(self) -> str:
        statuses = ", ".join(f"{count} {status}" for status, count in sorted(self.statuses.items()))
        return (
            f"{self.invoices} invoices ({statuses}), {self.customers} customers, "
            f"{self.orders_without_invoice} orders to backfill, {self.usage_records} usage records"
        )


@dataclass(frozen=True, slots=True)
class _Customer:
    index: int
    external_id: str
    name: str
    country: str
    source: str
    ref: str = ""

    @property
    def currency(self) -> str:
        return COUNTRIES[self.country][0]


@dataclass(frozen=True, slots=True)
class _PlannedInvoice:
    """One invoice to make, in issue-date order; `imported` ones come in through seed 004."""

    issue_date: date
    customer: _Customer
    billing_type: BillingType
    imported: bool = False
    plan_key: str | None = None
    contract_ref: str | None = None
    period: tuple[date, date] | None = None
    subscription_id: str | None = None


def price(usd_cents: int, currency: str) -> int:
    """A price in `currency` minor units for a price written in US cents: whole units (10 yen)
    from $10 up, as a person would set them; exact minor units for small unit prices."""
    numerator, denominator = _PER_USD_CENT[currency]
    step = _ROUND_TO[currency] if usd_cents >= 1_000 else 1
    return max(step, (usd_cents * numerator // denominator + step // 2) // step * step)


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def _require_ok(results: Sequence[ImportResult], what: str) -> None:
    errors = [f"{r.id}: {r.error}" for r in results if r.error]
    if errors:
        raise RuntimeError(f"demo {what} were rejected: " + "; ".join(errors))


async def seed_demo(
    session: AsyncSession,
    *,
    tenant_name: str = "demo",
    marketplace_customer_id: str | None = "aws-demo-0001",
    today: date | None = None,
) -> DemoSeedResult:
    """Create the demo tenant's data in the caller's write transaction, unless it has data."""
    tenant = await get_or_create_tenant(session, tenant_name, marketplace_customer_id=marketplace_customer_id)
    if await _has_data(session, tenant.id):
        return await _summary(session, tenant.id, seeded=False)
    caller = Caller(tenant_id=tenant.id, api_key_id=None, request_id="seed-demo")
    rng = random.Random(RANDOM_SEED)
    today = today or utcnow().date()

    customers = await _load_parties(session, caller)
    contracts = await _load_contracts(session, caller, customers, rng)
    plan = _plan_invoices(customers, contracts, rng, today)
    for planned in plan:
        if planned.imported:
            await _import_invoice(session, caller, planned, rng)
        else:
            await _create_invoice(session, caller, planned, rng, today)
    await _load_orders(session, caller, customers, rng, today)
    await _load_usage(session, caller, rng, today)
    return await _summary(session, tenant.id, seeded=True)


async def _has_data(session: AsyncSession, tenant_id: uuid.UUID) -> bool:
    for model in (m.DataSource, m.Invoice):
        found = await session.scalar(select(model.id).where(model.tenant_id == tenant_id).limit(1))
        if found is not None:
            return True
    return False


async def _count(session: AsyncSession, model: type[m.Base], *conditions: object) -> int:
    stmt = select(func.count()).select_from(model).where(*conditions)  # type: ignore[arg-type]
    return int(await session.scalar(stmt) or 0)


async def _summary(session: AsyncSession, tenant_id: uuid.UUID, *, seeded: bool) -> DemoSeedResult:
    statuses = (
        await session.execute(
            select(m.Invoice.status, func.count()).where(m.Invoice.tenant_id == tenant_id).group_by(m.Invoice.status)
        )
    ).all()
    return DemoSeedResult(
        seeded=seeded,
        tenant_id=tenant_id,
        invoices=sum(count for _status, count in statuses),
        customers=await _count(session, m.Customer, m.Customer.tenant_id == tenant_id),
        orders_without_invoice=await _count(
            session,
            m.Order,
            m.Order.tenant_id == tenant_id,
            ~select(m.Invoice.id).where(m.Invoice.order_id == m.Order.id).exists(),
        ),
        usage_records=await _count(session, m.UsageRecord, m.UsageRecord.tenant_id == tenant_id),
        statuses={status: count for status, count in statuses},
    )


# --- parties: data sources, companies, customers, plans, contracts ---------------------------


async def _load_parties(session: AsyncSession, caller: Caller) -> list[_Customer]:
    for source in (PRIMARY_SOURCE, SECONDARY_SOURCE):
        await create_data_source(session, caller.tenant_id, source)
    companies = [
        CompanyImport(id=company_id, name=name, legal_name=legal, details={**details, "locale": "en"})
        for company_id, name, legal, details in ISSUERS
    ]
    customers: list[_Customer] = []
    for index, (name, legal, country, domain) in enumerate(CUSTOMERS, start=1):
        companies.append(
            CompanyImport(
                id=f"cmp_{index:03d}",
                name=name,
                legal_name=legal,
                details={"domain": domain, "locale": country.lower(), "registration": country},
            )
        )
        source = SECONDARY_SOURCE if index in SECONDARY_CUSTOMERS else PRIMARY_SOURCE
        customers.append(_Customer(index, f"cus_{index:03d}", name, country, source))
    _require_ok(await upsert_companies(session, caller, companies), "companies")
    _require_ok(
        await upsert_customers(
            session,
            caller,
            [
                CustomerImport(
                    id=c.external_id,
                    data_source=c.source,
                    name=c.name,
                    legal_name=CUSTOMERS[c.index - 1][1],
                    email=f"billing@{CUSTOMERS[c.index - 1][3]}",
                    company_id=f"cmp_{c.index:03d}",
                )
                for c in customers
            ],
        ),
        "customers",
    )
    _require_ok(
        await upsert_plans(
            session,
            caller,
            [
                PlanImport(
                    id=f"plan_{key}_{currency.lower()}",
                    data_source=source,
                    name=name,
                    interval=interval,
                    amount_minor=price(usd_cents, currency),
                    currency=currency,
                )
                for source in (PRIMARY_SOURCE, SECONDARY_SOURCE)
                for key, (name, interval, usd_cents) in PLANS.items()
                for currency in _PER_USD_CENT
            ],
        ),
        "plans",
    )
    refs = dict(
        (
            await session.execute(
                select(m.Customer.external_id, m.Customer.id).where(m.Customer.tenant_id == caller.tenant_id)
            )
        ).all()
    )
    return [_Customer(c.index, c.external_id, c.name, c.country, c.source, str(refs[c.external_id])) for c in customers]


async def _load_contracts(
    session: AsyncSession, caller: Caller, customers: Sequence[_Customer], rng: random.Random
) -> dict[int, str]:
    """Contracts for a dozen customers billed by us; customer index -> contract reference."""
    chosen = sorted(rng.sample([c for c in customers if c.source == PRIMARY_SOURCE], 12), key=lambda c: c.index)
    items = [
        ContractImport(
            id=f"ctr_{c.index:03d}",
            contract_number=1000 + number,
            customer_id=c.external_id,
            name=f"{c.name} master services agreement",
        )
        for number, c in enumerate(chosen, start=1)
    ]
    _require_ok(await upsert_contracts(session, caller, items), "contracts")
    refs = dict(
        (
            await session.execute(
                select(m.Contract.external_id, m.Contract.id).where(m.Contract.tenant_id == caller.tenant_id)
            )
        ).all()
    )
    return {c.index: str(refs[f"ctr_{c.index:03d}"]) for c in chosen}


# --- invoices -------------------------------------------------------------------------------


def _plan_invoices(
    customers: Sequence[_Customer], contracts: dict[int, str], rng: random.Random, today: date
) -> list[_PlannedInvoice]:
    """Every invoice of the past year, sorted by issue date so that numbers follow dates."""
    planned: list[_PlannedInvoice] = []
    first_month = _next_month(today - timedelta(days=365))
    subscribers = rng.sample(list(customers), 20)
    for customer in subscribers:
        plan_key = rng.choice(["starter", "pro", "pro", "business", "business", "enterprise"])
        start = _month_start(first_month + timedelta(days=rng.randrange(0, 240)))
        subscription_id = f"sub_{customer.index:03d}{rng.randrange(1000, 9999)}"
        month = start
        while month <= today:
            period = (month, _next_month(month))
            planned.append(
                _PlannedInvoice(
                    issue_date=month,
                    customer=customer,
                    billing_type=BillingType.SUBSCRIPTION,
                    imported=customer.source == SECONDARY_SOURCE,
                    plan_key=plan_key,
                    contract_ref=contracts.get(customer.index),
                    period=period,
                    subscription_id=subscription_id,
                )
            )
            month = _next_month(month)
    span = (today - first_month).days
    for billing_type, count in EXTRA_KINDS:
        for _ in range(count):
            customer = rng.choice([c for c in customers if c.source == PRIMARY_SOURCE])
            planned.append(
                _PlannedInvoice(
                    issue_date=first_month + timedelta(days=rng.randrange(0, span + 1)),
                    customer=customer,
                    billing_type=billing_type,
                )
            )
    for customer in (c for c in customers if c.source == SECONDARY_SOURCE):
        for _ in range(3):
            planned.append(
                _PlannedInvoice(
                    issue_date=first_month + timedelta(days=rng.randrange(0, span + 1)),
                    customer=customer,
                    billing_type=rng.choice([BillingType.ONE_TIME, BillingType.REFUND]),
                    imported=True,
                )
            )
    planned.sort(key=lambda p: (p.issue_date, p.customer.index, p.billing_type.value))
    return planned


def _lines(planned: _PlannedInvoice, rng: random.Random) -> list[NewLineItem]:
    """The line items of a created invoice, taxed as the customer's country taxes them, with
    the invoice's service period."""
    _currency, rate, scheme, category, _issuer = COUNTRIES[planned.customer.country]
    start, end = (_at(planned.period[0], 0), _at(planned.period[1], 0)) if planned.period else (None, None)
    return [
        replace(
            line, tax_rate_percent=rate, tax_scheme=scheme, tax_category=category, period_start=start, period_end=end
        )
        for line in _untaxed_lines(planned, rng)
    ]


def _untaxed_lines(planned: _PlannedInvoice, rng: random.Random) -> list[NewLineItem]:
    currency = planned.customer.currency
    kind = planned.billing_type
    if kind is BillingType.SUBSCRIPTION:
        assert planned.plan_key is not None
        name, interval, usd_cents = PLANS[planned.plan_key]
        lines = [
            NewLineItem(
                name=f"{name} plan ({interval}ly)",
                sku=f"PLAN-{planned.plan_key.upper()}",
                quantity="1",
                unit=interval,
                unit_price_minor=price(usd_cents, currency),
            )
        ]
        if rng.random() < 0.4:
            lines.append(
                NewLineItem(
                    name="Additional seats",
                    sku="ADDON-SEAT",
                    quantity=str(rng.randrange(2, 25)),
                    unit="seat",
                    unit_price_minor=price(1_200, currency),
                    discount_minor=price(1_000, currency) if rng.random() < 0.3 else 0,
                )
            )
        return lines
    if kind is BillingType.TOKEN_PACK:
        return [
            NewLineItem(
                name="AI token pack (1M tokens)",
                sku="TOKENS-1M",
                quantity=str(rng.choice([1, 1, 2, 5, 10])),
                unit="pack",
                unit_price_minor=price(4_900, currency),
            )
        ]
    if kind is BillingType.MARKETPLACE_USAGE:
        return [
            NewLineItem(
                name=label,
                sku=f"USAGE-{dimension.upper()}",
                quantity=str(rng.randrange(50, 5_000)),
                unit="unit",
                unit_price_minor=price(cents, currency),
            )
            for dimension, label, cents in rng.sample(USAGE_DIMENSIONS, rng.randrange(1, 3))
        ]
    if kind is BillingType.ONE_TIME:
        sku, name, usd_cents = rng.choice(ONE_TIME_SERVICES)
        return [
            NewLineItem(name=name, sku=sku, quantity="1", unit="service", unit_price_minor=price(usd_cents, currency))
        ]
    if kind is BillingType.FREE_TRIAL:
        return [NewLineItem(name="Pro plan, 14-day free trial", sku="PLAN-PRO-TRIAL", quantity="1", unit_price_minor=0)]
    if kind is BillingType.DEMO:
        return [NewLineItem(name="Sandbox environment (demo)", sku="DEMO-SANDBOX", quantity="1", unit_price_minor=0)]
    if kind is BillingType.REFUND:
        name, _interval, usd_cents = PLANS[rng.choice(["starter", "pro", "business"])]
        return [
            NewLineItem(
                name=f"Refund: {name} plan",
                sku="REFUND",
                quantity="1",
                unit_price_minor=price(usd_cents, currency),
            )
        ]
    name, _interval, usd_cents = PLANS[rng.choice(["pro", "business"])]
    return [
        NewLineItem(
            name=f"Cancellation credit: unused {name} plan period",
            sku="CANCEL-CREDIT",
            quantity=str(rng.choice(["0.25", "0.5", "0.75"])),
            unit_price_minor=price(usd_cents, currency),
        )
    ]


async def _create_invoice(
    session: AsyncSession, caller: Caller, planned: _PlannedInvoice, rng: random.Random, today: date
) -> None:
    customer = planned.customer
    currency, _rate, _scheme, _category, issuer = COUNTRIES[customer.country]
    age_days = (today - planned.issue_date).days
    draft = (age_days < 31 and rng.random() < 0.5) or rng.random() < 0.04
    net_terms = 0 if planned.billing_type in (BillingType.TOKEN_PACK, BillingType.ONE_TIME) else 30
    new = NewInvoice(
        billing_type=planned.billing_type,
        currency=currency,
        line_items=_lines(planned, rng),
        status=InvoiceStatus.DRAFT if draft else InvoiceStatus.SENT,
        customer_ref=customer.ref,
        contract_ref=planned.contract_ref,
        issuer_company_id=issuer,
        receiver_company_id=f"cmp_{customer.index:03d}",
        plan_id=None,
        subscription_id=planned.subscription_id,
        net_terms_days=net_terms,
        issue_date=planned.issue_date,
        period_start=_at(planned.period[0], 0) if planned.period else None,
        period_end=_at(planned.period[1], 0) if planned.period else None,
        terms=f"Payment due within {net_terms} days." if net_terms else "Due upon receipt.",
        description=_description(planned),
    )
    record = await create_invoice(session, caller, new)
    if draft or record.total_minor <= 0:
        return
    roll = rng.random()
    if age_days > 45 and roll < 0.06:
        await _cancel(session, caller, record.id)
    elif age_days > 25 and roll < 0.80:
        await _pay(session, caller, record.id, planned.issue_date, rng, amount_minor=None, today=today)
    elif age_days > 10 and roll < 0.92:
        # A partial payment: between a quarter and three quarters of the total.
        partial = record.total_minor * rng.randrange(25, 76) // 100
        await _pay(session, caller, record.id, planned.issue_date, rng, amount_minor=max(partial, 1), today=today)


def _description(planned: _PlannedInvoice) -> str:
    if planned.period is not None and planned.plan_key is not None:
        return f"{PLANS[planned.plan_key][0]} subscription, {planned.period[0]:%B %Y}"
    return {
        BillingType.TOKEN_PACK: "Prepaid AI token pack",
        BillingType.MARKETPLACE_USAGE: "Metered usage via cloud marketplace",
        BillingType.ONE_TIME: "Professional services",
        BillingType.FREE_TRIAL: "Free trial, nothing to pay",
        BillingType.DEMO: "Demo account",
        BillingType.REFUND: "Refund of a subscription charge",
        BillingType.CANCELLATION: "Credit for the unused period of a cancelled subscription",
    }.get(planned.billing_type, "")


async def _pay(
    session: AsyncSession,
    caller: Caller,
    invoice_id: uuid.UUID,
    issue_date: date,
    rng: random.Random,
    *,
    amount_minor: int | None,
    today: date,
) -> None:
    paid_on = min(issue_date + timedelta(days=rng.randrange(1, 40)), today)
    paid_at = min(_at(paid_on, rng.randrange(8, 18)), utcnow())
    await reconcile_invoice(
        session, caller, Payment(paid_at=paid_at, invoice_ref=str(invoice_id), amount_minor=amount_minor)
    )


async def _cancel(session: AsyncSession, caller: Caller, invoice_id: uuid.UUID) -> None:
    """No use case cancels an invoice yet, so the demo sets the status itself, audited the
    same way the use cases record their changes."""
    invoice = await session.get(m.Invoice, invoice_id)
    if invoice is None or invoice.status != InvoiceStatus.SENT:
        raise FailedPrecondition(f"demo invoice {invoice_id} cannot be cancelled")
    invoice.status = InvoiceStatus.CANCELLED.value
    record_audit(session, caller, invoice_id, "invoice.cancelled", {"status": "sent"}, {"status": "cancelled"})


async def _import_invoice(session: AsyncSession, caller: Caller, planned: _PlannedInvoice, rng: random.Random) -> None:
    """One invoice sent the way seed 004's importer sends it (imported invoices are sent)."""
    customer = planned.customer
    currency = customer.currency
    if planned.billing_type is BillingType.SUBSCRIPTION and planned.plan_key is not None and planned.period:
        amount = price(PLANS[planned.plan_key][2], currency)
        start, end = planned.period
    else:
        _sku, _name, usd_cents = rng.choice(ONE_TIME_SERVICES)
        amount = price(usd_cents // (4 if planned.billing_type is BillingType.REFUND else 1), currency)
        start, end = planned.issue_date, planned.issue_date + timedelta(days=1)
    item = InvoiceImport(
        id=f"cb_inv_{uuid.UUID(int=rng.getrandbits(128)).hex[:10]}",
        customer_id=customer.external_id,
        data_source=SECONDARY_SOURCE,
        type=planned.billing_type.value,
        date=planned.issue_date.isoformat(),
        amount_cents=amount,
        currency=currency,
        plan_id=f"plan_{planned.plan_key}_{currency.lower()}" if planned.plan_key else "",
        subscription_id=planned.subscription_id or "",
        start_date=start.isoformat(),
        end_date=end.isoformat(),
        quantity=1,
    )
    _require_ok(await bulk_upsert_invoices(session, caller, [item]), "invoices")


# --- orders and usage, billed later by Backfill and GenerateMarketplaceInvoice ---------------


async def _load_orders(
    session: AsyncSession, caller: Caller, customers: Sequence[_Customer], rng: random.Random, today: date
) -> None:
    kinds = [BillingType.SUBSCRIPTION, BillingType.SUBSCRIPTION, BillingType.ONE_TIME, BillingType.TOKEN_PACK]
    items = []
    for number in range(1, 21):
        customer = rng.choice([c for c in customers if c.source == PRIMARY_SOURCE])
        kind = rng.choice(kinds)
        currency = customer.currency
        plan_key = rng.choice(["starter", "pro", "business"]) if kind is BillingType.SUBSCRIPTION else None
        if plan_key is not None:
            amount, description = price(PLANS[plan_key][2], currency), f"{PLANS[plan_key][0]} plan renewal"
        elif kind is BillingType.TOKEN_PACK:
            amount, description = price(4_900, currency), "AI token pack (1M tokens)"
        else:
            _sku, description, usd_cents = rng.choice(ONE_TIME_SERVICES)
            amount = price(usd_cents, currency)
        ordered_on = today - timedelta(days=rng.randrange(0, 30))
        items.append(
            OrderImport(
                id=f"ord_{number:04d}",
                data_source=PRIMARY_SOURCE,
                customer_id=customer.external_id,
                billing_type=kind,
                ordered_at=min(_at(ordered_on, rng.randrange(0, 24)), utcnow()),
                amount_minor=amount,
                currency=currency,
                plan_id=f"plan_{plan_key}_{currency.lower()}" if plan_key else "",
                description=description,
            )
        )
    _require_ok(await upsert_orders(session, caller, items), "orders")


async def _load_usage(session: AsyncSession, caller: Caller, rng: random.Random, today: date) -> None:
    """This month's marketplace usage, up to now, in the tenant's marketplace currency (USD)."""
    month_start = _at(_month_start(today), 0)
    now = min(utcnow(), _at(today, 23))
    seconds = max(int((now - month_start).total_seconds()), 1)
    items = []
    for number in range(1, 31):
        dimension, _label, cents = USAGE_DIMENSIONS[number % len(USAGE_DIMENSIONS)]
        items.append(
            UsageRecordImport(
                id=f"use_{today:%Y%m}_{number:03d}",
                dimension=dimension,
                quantity=str(Decimal(rng.randrange(100, 20_000))),
                unit_price_minor=cents,
                currency="USD",
                used_at=month_start + timedelta(seconds=rng.randrange(0, seconds)),
            )
        )
    _require_ok(await upsert_usage_records(session, caller, items), "usage records")
