"""UpsertContracts: contracts keyed by id; the customer is named by its id across the tenant's
data sources (an id found in several sources is ambiguous); contract numbers are unique."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.service.caller import Caller
from invoice_rpc.service.imports.checks import check_length
from invoice_rpc.service.imports.references import ids_by_external_id
from invoice_rpc.service.imports.upsert import ImportResult, Normalized, UpsertSpec, check_batch_size, upsert_batch
from invoice_rpc.storage import models as m


@dataclass(frozen=True, slots=True)
class ContractImport:
    id: str
    contract_number: int = 0
    customer_id: str = ""
    name: str = ""


class _ContractSpec(UpsertSpec[ContractImport]):
    model = m.Contract
    label = "contract"
    request_field = "contracts"

    def __init__(self, customers: dict[str, list[uuid.UUID]], number_owners: dict[int, str]) -> None:
        self.customers = customers
        # contract number -> id of the contract holding it (stored, or earlier in this batch)
        self.number_owners = number_owners

    def normalize(self, item: ContractImport, problems: list[str]) -> Normalized:
        external_id = item.id.strip()
        if item.contract_number < 1:
            problems.append("contract_number must be at least 1")
        else:
            owner = self.number_owners.get(item.contract_number)
            if owner is not None and owner != external_id:
                problems.append(f"Contract number {item.contract_number} is already used by contract {owner}")
        customer_id = None
        customer_ref = item.customer_id.strip()
        if not customer_ref:
            problems.append("Missing customer ID")
        else:
            found = self.customers.get(customer_ref, [])
            if not found:
                problems.append(f"Customer ID {customer_ref} does not exist")
            elif len(found) > 1:
                problems.append(f"Customer ID {customer_ref} is ambiguous: it exists in several data sources")
            else:
                customer_id = found[0]
        name = check_length(item.name, "name", 500, problems)
        if not problems:
            self.number_owners[item.contract_number] = external_id
        return Normalized(None, {"contract_number": item.contract_number, "customer_id": customer_id, "name": name})


async def upsert_contracts(
    session: AsyncSession, caller: Caller, items: Sequence[ContractImport]
) -> list[ImportResult]:
    """Insert or update contracts; one result per item, in input order."""
    check_batch_size(len(items), _ContractSpec.request_field)
    customers = await ids_by_external_id(session, m.Customer, caller.tenant_id, (i.customer_id.strip() for i in items))
    numbers = sorted({item.contract_number for item in items if item.contract_number >= 1})
    owners = await session.execute(
        select(m.Contract.contract_number, m.Contract.external_id).where(
            m.Contract.tenant_id == caller.tenant_id, m.Contract.contract_number.in_(numbers)
        )
    )
    spec = _ContractSpec(customers, {number: external_id for number, external_id in owners})
    return await upsert_batch(session, caller, items, spec)
