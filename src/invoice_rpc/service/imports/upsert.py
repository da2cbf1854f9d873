"""The one upsert mechanism behind every import rpc.

A batch is 1..1000 items keyed by external id (and data source, where the entity has one).
Each item is checked on its own; a bad item becomes an `error` result and the others still
land. The normalized columns of an item are hashed into a fingerprint: an existing row with
the same fingerprint is `unchanged` and is not written at all. Existing rows of the whole
batch are loaded with one query of plain rows, and only the rows that change are loaded as
objects; inserts go out as one COPY on PostgreSQL (one executemany on SQLite).

Each row also keeps the digest of the item exactly as it was received (`item_digest`). An item
whose digest equals its row's is `unchanged` before anything else is done with it: the bulk of
a nightly re-send of a whole data set is neither normalized nor fingerprinted, and the lookups
that only normalizing needs (customers, plans) are made for the other items alone.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.domain.enums import ImportStatus
from invoice_rpc.domain.errors import Aborted, InvalidArgument
from invoice_rpc.service.caller import Caller
from invoice_rpc.service.imports.sets import DuplicateKey, bulk_insert, column_in, execute_by_key

MAX_BATCH_ITEMS = 1000
MAX_EXTERNAL_ID_LENGTH = 200


class ImportItem(Protocol):
    """What every import item has: the caller's id for the thing."""

    @property
    def id(self) -> str: ...


ItemT = TypeVar("ItemT", bound=ImportItem)


@dataclass(frozen=True, slots=True)
class ImportResult:
    """Outcome of one item, in input order; `error` is set only for ImportStatus.ERROR."""

    id: str
    status: ImportStatus
    error: str = ""


@dataclass(frozen=True, slots=True)
class Normalized:
    """An item reduced to the columns it sets; `data_source_id` is part of the key when the
    entity is keyed by data source (else None)."""

    data_source_id: uuid.UUID | None
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class WrittenRow:
    """A row the batch inserted (`before` is None) or updated (`before` holds the old values
    of the columns the import sets)."""

    row_id: uuid.UUID
    before: dict[str, Any] | None
    after: dict[str, Any]


def jsonable(value: Any) -> Any:
    """A column value as JSON: ids, dates, timestamps and decimals become strings."""
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def item_digest(item: Any) -> str:
    """blake2b-128 of the item's repr: an import item is a frozen dataclass of strings, numbers,
    None and tuples of such, whose repr is the same in every process and names every field."""
    return hashlib.blake2b(repr(item).encode(), digest_size=16).hexdigest()


def fingerprint(values: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of the normalized columns (sorted keys, no spaces)."""
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=jsonable)
    return hashlib.sha256(canonical.encode()).hexdigest()


class UpsertSpec(ABC, Generic[ItemT]):
    """How one entity is imported. Subclasses set `model`, `label` and `request_field`, and
    implement `normalize`; the hooks have do-nothing defaults.

    A spec instance lives for one batch: it holds the batch's reference lookups (data sources,
    customers, plans), which the entity module loads set-based before calling `upsert_batch`.
    """

    model: ClassVar[type[Any]]
    # Used in messages: "Missing invoice ID", "Duplicate invoice ID inv_1 in this batch".
    label: ClassVar[str]
    # The request's repeated field, named in INVALID_ARGUMENT for an empty or oversized batch.
    request_field: ClassVar[str]
    keyed_by_data_source: ClassVar[bool] = False

    def data_source_of(self, item: ItemT) -> uuid.UUID | None:
        """The data source the item names, resolved (None if it names none that exists); only
        asked of specs keyed by data source, to find an item's row before normalizing it."""
        return None

    async def load_references(self, session: AsyncSession, caller: Caller, items: Sequence[ItemT]) -> None:
        """Load what `normalize` looks up (e.g. customers, plans) for these items only: the
        items recognized as unchanged from their digest need none of it."""

    @abstractmethod
    def normalize(self, item: ItemT, problems: list[str]) -> Normalized:
        """The item's columns (without tenant_id, external_id and fingerprint); every problem
        found is appended to `problems` (then the returned value is ignored)."""

    def update_problem(self, row: Any, item: ItemT) -> str | None:
        """Why an existing row may not take a changed item (e.g. an invoiced order), if so."""
        return None

    async def complete_inserts(self, session: AsyncSession, caller: Caller, inserts: list[dict[str, Any]]) -> None:
        """Add the columns only a new row gets (e.g. an invoice number) to each insert."""

    def apply_update(self, row: Any, values: dict[str, Any]) -> None:
        """Set the imported columns on an existing row; override to derive others from them."""
        for name, value in values.items():
            setattr(row, name, value)

    async def after_write(self, session: AsyncSession, caller: Caller, written: list[WrittenRow]) -> None:
        """Runs once per batch after every insert and update is flushed (audit, queues)."""


def check_batch_size(count: int, request_field: str) -> None:
    """INVALID_ARGUMENT naming the repeated field unless 1 <= count <= 1000."""
    if not 1 <= count <= MAX_BATCH_ITEMS:
        raise InvalidArgument.single(request_field, f"must hold 1 to {MAX_BATCH_ITEMS} items, got {count}")


async def upsert_batch(
    session: AsyncSession, caller: Caller, items: Sequence[ItemT], spec: UpsertSpec[ItemT]
) -> list[ImportResult]:
    """Insert or update every valid item; one result per item, in input order."""
    check_batch_size(len(items), spec.request_field)
    model = spec.model
    results: list[ImportResult | None] = [None] * len(items)
    digests = [item_digest(item) for item in items]
    sources: set[uuid.UUID] = set()
    if spec.keyed_by_data_source:
        sources = {source for item in items if (source := spec.data_source_of(item)) is not None}
    external_ids = {item.id.strip() for item in items} - {""}
    existing = await _load_existing(session, caller.tenant_id, spec, external_ids, sources)
    seen_keys: set[tuple[uuid.UUID | None, str]] = set()
    keys_so_far: set[tuple[uuid.UUID | None, str]] = set()
    to_normalize: list[int] = []
    for index, item in enumerate(items):
        external_id = item.id.strip()
        source_id = spec.data_source_of(item) if spec.keyed_by_data_source else None
        key = (source_id, external_id)
        # Only a key's first item may skip normalizing: a later one with the same key must
        # still be reported as a duplicate of the first, as the normalizing path does.
        first = key not in keys_so_far
        keys_so_far.add(key)
        found = existing.get(key)
        if first and found is not None and found.item_digest == digests[index]:
            seen_keys.add(key)
            results[index] = ImportResult(item.id, ImportStatus.UNCHANGED)
        else:
            to_normalize.append(index)

    if to_normalize:
        await spec.load_references(session, caller, [items[index] for index in to_normalize])
    accepted: list[tuple[int, tuple[uuid.UUID | None, str], Normalized]] = []
    for index in to_normalize:
        item = items[index]
        problems: list[str] = []
        external_id = item.id.strip()
        if not external_id:
            problems.append(f"Missing {spec.label} ID")
        elif len(external_id) > MAX_EXTERNAL_ID_LENGTH:
            problems.append(f"{spec.label.capitalize()} ID must be at most {MAX_EXTERNAL_ID_LENGTH} characters")
        normalized = spec.normalize(item, problems)
        if problems:
            results[index] = ImportResult(item.id, ImportStatus.ERROR, "; ".join(problems))
            continue
        key = (normalized.data_source_id if spec.keyed_by_data_source else None, external_id)
        if key in seen_keys:
            results[index] = ImportResult(
                item.id, ImportStatus.ERROR, f"Duplicate {spec.label} ID {external_id} in this batch"
            )
            continue
        seen_keys.add(key)
        accepted.append((index, key, normalized))

    inserts: list[dict[str, Any]] = []
    written: list[WrittenRow] = []
    changed: list[tuple[int, dict[str, Any], str, uuid.UUID]] = []
    for index, key, normalized in accepted:
        item = items[index]
        values = {"external_id": key[1], **normalized.values}
        if spec.keyed_by_data_source:
            values["data_source_id"] = normalized.data_source_id
        item_fingerprint = fingerprint(values)
        found = existing.get(key)
        if found is None:
            inserts.append(
                {
                    "id": uuid.uuid4(),
                    "tenant_id": caller.tenant_id,
                    **values,
                    "fingerprint": item_fingerprint,
                    "item_digest": digests[index],
                }
            )
            results[index] = ImportResult(item.id, ImportStatus.INSERTED)
        elif found.fingerprint == item_fingerprint:
            # Same columns from a differently written item (e.g. "usd" for "USD"): nothing to
            # write, not even the new digest; the next such re-send normalizes again.
            results[index] = ImportResult(item.id, ImportStatus.UNCHANGED)
        else:
            changed.append((index, values, item_fingerprint, found.row_id))

    # Only rows that really change are loaded as objects (an identical re-send loads none).
    rows = await _load_rows(session, spec.model, [row_id for _, _, _, row_id in changed])
    for index, values, item_fingerprint, row_id in changed:
        item, row = items[index], rows[row_id]
        if (problem := spec.update_problem(row, item)) is not None:
            results[index] = ImportResult(item.id, ImportStatus.ERROR, problem)
            continue
        before = {name: getattr(row, name) for name in values}
        spec.apply_update(row, values)
        row.fingerprint = item_fingerprint
        row.item_digest = digests[index]
        written.append(WrittenRow(row.id, before, values))
        results[index] = ImportResult(item.id, ImportStatus.UPDATED)

    # Updates first: they are already in the session and a unit of work flushes them together.
    await session.flush()
    if inserts:
        await spec.complete_inserts(session, caller, inserts)
        try:
            await bulk_insert(session, model, inserts)
        except DuplicateKey as exc:
            # Another transaction inserted one of these keys after our lookup.
            raise Aborted(f"a concurrent import wrote the same {spec.label} IDs; retry the batch") from exc
        written.extend(WrittenRow(values["id"], None, values) for values in inserts)
    if written:
        await spec.after_write(session, caller, written)
    return [result for result in results if result is not None]


@dataclass(frozen=True, slots=True)
class _ExistingRow:
    row_id: uuid.UUID
    fingerprint: str
    item_digest: str | None


async def _load_existing(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    spec: UpsertSpec[Any],
    external_ids: set[str],
    source_ids: set[uuid.UUID],
) -> dict[tuple[uuid.UUID | None, str], _ExistingRow]:
    """The batch's existing rows by key, in one query of plain rows (without a data source
    in the key for entities not keyed by one).

    Every condition is on the columns of the (tenant, [data source,] external id) unique index,
    read with a plan that does not depend on the tenant's statistics (see `execute_by_key`)."""
    keyed = spec.keyed_by_data_source
    if not external_ids or (keyed and not source_ids):
        return {}
    model = spec.model
    source = model.data_source_id if keyed else literal(None)
    conditions = [model.tenant_id == tenant_id]
    if keyed:
        conditions.append(column_in(session, model.data_source_id, sorted(source_ids)))
    conditions.append(column_in(session, model.external_id, sorted(external_ids)))
    stmt = select(model.id, source, model.external_id, model.fingerprint, model.item_digest).where(*conditions)
    rows = await execute_by_key(session, stmt)
    return {
        (source_id, external_id): _ExistingRow(row_id, row_fingerprint, digest)
        for row_id, source_id, external_id, row_fingerprint, digest in rows
    }


async def _load_rows(session: AsyncSession, model: Any, row_ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """The rows as ORM objects by id, in one query (none when there is nothing to update)."""
    if not row_ids:
        return {}
    rows = (await session.execute(select(model).where(column_in(session, model.id, row_ids)))).scalars()
    return {row.id: row for row in rows}
