"""InvoiceService writes: Create, Reconcile, Backfill, GenerateMarketplace."""

from __future__ import annotations

from invoice_rpc.storage.database import Database


class InvoiceWriteHandlers:
    db: Database
