"""InvoiceService: the reads live in invoice_reads.py, the writes in invoice_writes.py."""

from __future__ import annotations

from invoice_rpc.v1 import invoice_service_pb2_grpc

from invoice_rpc.rpc.invoice_reads import InvoiceReadHandlers
from invoice_rpc.rpc.invoice_writes import InvoiceWriteHandlers
from invoice_rpc.storage.database import Database


# StreamInvoices and ListInvoices also answer with responses' wire bytes, which the generated
# base does not know of: server.add_invoice_service registers a serializer that sends them as
# they are.
class InvoiceServicer(  # type: ignore[misc]
    InvoiceReadHandlers, InvoiceWriteHandlers, invoice_service_pb2_grpc.InvoiceServiceServicer
):
    def __init__(self, db: Database) -> None:
        self.db = db
