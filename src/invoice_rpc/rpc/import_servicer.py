"""ImportService: bulk invoice upsert and the ingest rpcs."""

from __future__ import annotations

from invoice_rpc.v1 import import_service_pb2_grpc

from invoice_rpc.storage.database import Database


class ImportServicer(import_service_pb2_grpc.ImportServiceServicer):
    def __init__(self, db: Database) -> None:
        self.db = db
