"""The REST faces: one gRPC service per vendor document, each mapped to that document's paths
by `google.api.http` annotations and served through Envoy's transcoder. A face servicer only
translates between the document's shapes and the service layer; it holds no business rule."""

from __future__ import annotations

import grpc
from invoice_rpc.v1 import (
    data_import_face_pb2,
    data_import_face_pb2_grpc,
    jsonapi_face_pb2,
    jsonapi_face_pb2_grpc,
    receipts_face_pb2,
    receipts_face_pb2_grpc,
    received_face_pb2,
    received_face_pb2_grpc,
)

from invoice_rpc.rpc.faces.data_import import DataImportFaceServicer
from invoice_rpc.rpc.faces.jsonapi import JsonApiFaceServicer
from invoice_rpc.rpc.faces.receipts import InvoiceReceiptsFaceServicer
from invoice_rpc.rpc.faces.received import ReceivedFaceServicer
from invoice_rpc.storage.database import Database

FACE_SERVICE_NAMES: tuple[str, ...] = (
    data_import_face_pb2.DESCRIPTOR.services_by_name["DataImportFaceService"].full_name,
    receipts_face_pb2.DESCRIPTOR.services_by_name["InvoiceReceiptsFaceService"].full_name,
    received_face_pb2.DESCRIPTOR.services_by_name["ReceivedFaceService"].full_name,
    jsonapi_face_pb2.DESCRIPTOR.services_by_name["JsonApiFaceService"].full_name,
)


def add_face_servicers(server: grpc.aio.Server, db: Database) -> None:
    """Register every face's servicer on `server`."""
    data_import_face_pb2_grpc.add_DataImportFaceServiceServicer_to_server(DataImportFaceServicer(db), server)
    receipts_face_pb2_grpc.add_InvoiceReceiptsFaceServiceServicer_to_server(InvoiceReceiptsFaceServicer(db), server)
    received_face_pb2_grpc.add_ReceivedFaceServiceServicer_to_server(ReceivedFaceServicer(db), server)
    jsonapi_face_pb2_grpc.add_JsonApiFaceServiceServicer_to_server(JsonApiFaceServicer(db), server)
