"""ImportService: bulk invoice upsert and the ingest rpcs. Each method converts the request,
calls the service layer in one transaction, and converts the results back."""

from __future__ import annotations

from typing import Any

import grpc
from invoice_rpc.v1 import import_service_pb2 as ipb
from invoice_rpc.v1 import import_service_pb2_grpc
from invoice_rpc.v1 import resources_pb2 as pb

from invoice_rpc.domain.errors import InvalidArgument
from invoice_rpc.rpc import import_convert as convert
from invoice_rpc.rpc.interceptor import current_caller
from invoice_rpc.service.imports.companies import upsert_companies
from invoice_rpc.service.imports.contracts import upsert_contracts
from invoice_rpc.service.imports.customers import get_customer, upsert_customers
from invoice_rpc.service.imports.data_sources import create_data_source
from invoice_rpc.service.imports.documents import upsert_documents
from invoice_rpc.service.imports.invoices import bulk_upsert_invoices
from invoice_rpc.service.imports.orders import upsert_orders
from invoice_rpc.service.imports.payment_means import upsert_payment_means
from invoice_rpc.service.imports.people import upsert_people
from invoice_rpc.service.imports.plans import upsert_plans
from invoice_rpc.service.imports.usage_records import upsert_usage_records
from invoice_rpc.storage.database import Database


class ImportServicer(import_service_pb2_grpc.ImportServiceServicer):
    def __init__(self, db: Database) -> None:
        self.db = db

    async def BulkUpsertInvoices(
        self, request: ipb.BulkUpsertInvoicesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ipb.BulkUpsertInvoicesResponse:
        items = convert.received_invoices(request.invoices)
        async with self.db.write() as session:
            results = await bulk_upsert_invoices(session, current_caller(), items)
        response = ipb.BulkUpsertInvoicesResponse()
        convert.add_results(response.results, results)
        return response

    async def CreateDataSource(
        self, request: ipb.CreateDataSourceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.DataSource:
        async with self.db.write() as session:
            view = await create_data_source(session, current_caller().tenant_id, request.data_source.name)
        return convert.data_source_to_pb(view)

    async def UpsertCustomers(
        self, request: ipb.UpsertCustomersRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ipb.UpsertCustomersResponse:
        items = [convert.customer_from_pb(item) for item in request.customers]
        async with self.db.write() as session:
            results = await upsert_customers(session, current_caller(), items)
        return ipb.UpsertCustomersResponse(results=convert.results_to_pb(results))

    async def GetCustomer(
        self, request: ipb.GetCustomerRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Customer:
        key = request.WhichOneof("key")
        if key is None:
            raise InvalidArgument.single("key", "set customer_ref or external_key")
        async with self.db.read() as session:
            if key == "customer_ref":
                view = await get_customer(session, current_caller().tenant_id, customer_ref=request.customer_ref)
            else:
                view = await get_customer(
                    session,
                    current_caller().tenant_id,
                    data_source=request.external_key.data_source,
                    external_id=request.external_key.customer_id,
                )
        return convert.customer_to_pb(view)

    async def UpsertPlans(
        self, request: ipb.UpsertPlansRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ipb.UpsertPlansResponse:
        items = [convert.plan_from_pb(item) for item in request.plans]
        async with self.db.write() as session:
            results = await upsert_plans(session, current_caller(), items)
        return ipb.UpsertPlansResponse(results=convert.results_to_pb(results))

    async def UpsertContracts(
        self, request: ipb.UpsertContractsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ipb.UpsertContractsResponse:
        items = [convert.contract_from_pb(item) for item in request.contracts]
        async with self.db.write() as session:
            results = await upsert_contracts(session, current_caller(), items)
        return ipb.UpsertContractsResponse(results=convert.results_to_pb(results))

    async def UpsertCompanies(
        self, request: ipb.UpsertCompaniesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ipb.UpsertCompaniesResponse:
        items = [convert.company_from_pb(item) for item in request.companies]
        async with self.db.write() as session:
            results = await upsert_companies(session, current_caller(), items)
        return ipb.UpsertCompaniesResponse(results=convert.results_to_pb(results))

    async def UpsertOrders(
        self, request: ipb.UpsertOrdersRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ipb.UpsertOrdersResponse:
        items = [convert.order_from_pb(item) for item in request.orders]
        async with self.db.write() as session:
            results = await upsert_orders(session, current_caller(), items)
        return ipb.UpsertOrdersResponse(results=convert.results_to_pb(results))

    async def UpsertUsageRecords(
        self, request: ipb.UpsertUsageRecordsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ipb.UpsertUsageRecordsResponse:
        items = [convert.usage_record_from_pb(item) for item in request.usage_records]
        async with self.db.write() as session:
            results = await upsert_usage_records(session, current_caller(), items)
        return ipb.UpsertUsageRecordsResponse(results=convert.results_to_pb(results))

    async def UpsertPaymentMeans(
        self, request: ipb.UpsertPaymentMeansRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ipb.UpsertPaymentMeansResponse:
        items = [convert.payment_means_from_pb(item) for item in request.payment_means]
        async with self.db.write() as session:
            results = await upsert_payment_means(session, current_caller(), items)
        return ipb.UpsertPaymentMeansResponse(results=convert.results_to_pb(results))

    async def UpsertPeople(
        self, request: ipb.UpsertPeopleRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ipb.UpsertPeopleResponse:
        items = [convert.person_from_pb(item) for item in request.people]
        async with self.db.write() as session:
            results = await upsert_people(session, current_caller(), items)
        return ipb.UpsertPeopleResponse(results=convert.results_to_pb(results))

    async def UpsertDocuments(
        self, request: ipb.UpsertDocumentsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ipb.UpsertDocumentsResponse:
        items = [convert.document_from_pb(item) for item in request.documents]
        async with self.db.write() as session:
            results = await upsert_documents(session, current_caller(), items)
        return ipb.UpsertDocumentsResponse(results=convert.results_to_pb(results))
