"""The domain's closed vocabularies, stored as their string values."""

from __future__ import annotations

from enum import StrEnum


class BillingType(StrEnum):
    SUBSCRIPTION = "subscription"
    TOKEN_PACK = "token_pack"
    MARKETPLACE_USAGE = "marketplace_usage"
    FREE_TRIAL = "free_trial"
    DEMO = "demo"
    ONE_TIME = "one-time"
    REFUND = "refund"
    CANCELLATION = "cancellation"

    @property
    def is_credit_note(self) -> bool:
        return self in (BillingType.REFUND, BillingType.CANCELLATION)


# Seed 004 accepts only these four types on import.
IMPORTABLE_BILLING_TYPES: tuple[BillingType, ...] = (
    BillingType.SUBSCRIPTION,
    BillingType.ONE_TIME,
    BillingType.REFUND,
    BillingType.CANCELLATION,
)


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    SENT = "sent"
    PAID = "paid"
    CANCELLED = "cancelled"


class AccountingEventType(StrEnum):
    INVOICE = "INVOICE"
    CREDIT_NOTE = "CREDIT_NOTE"


class PaymentTerm(StrEnum):
    DUE_UPON_RECEIPT = "DUE_UPON_RECEIPT"
    DUE_UPON_USAGE = "DUE_UPON_USAGE"


class DocumentTypeCode(StrEnum):
    """UN/CEFACT 1001 document name codes."""

    COMMERCIAL_INVOICE = "380"
    CREDIT_NOTE = "381"


class ImportStatus(StrEnum):
    INSERTED = "inserted"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    ERROR = "error"


class SortField(StrEnum):
    CREATED_AT = "created_at"
    ISSUE_DATE = "issue_date"
    BILLING_TYPE = "billing_type"
    TOTAL_AMOUNT = "total_amount"
    INVOICE_NUMBER = "invoice_number"


class SortDirection(StrEnum):
    ASC = "asc"
    DESC = "desc"


class DateField(StrEnum):
    ISSUE_DATE = "issue_date"
    CREATED_AT = "created_at"
