"""InvoiceService reads: Get, List, Summarize, Stream, Export, ListAuditEvents."""

from __future__ import annotations

from invoice_rpc.storage.database import Database


class InvoiceReadHandlers:
    db: Database
