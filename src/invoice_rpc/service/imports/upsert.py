"""The one upsert mechanism behind every import rpc.

A batch is 1..1000 items keyed by external id (and data source, where the entity has one).
Each item is checked on its own; a bad item becomes an `error` result and the others still
land. The normalized columns of an item are hashed into a fingerprint: an existing row with
the same fingerprint is `unchanged` and is not written at all. Existing rows of the whole
batch are loaded with one query of plain rows, and only the rows that change are loaded as
objects; inserts go out as one COPY on PostgreSQL (one executemany on SQLite).

Each row also keeps the digest of the item exactly as it was received (`item_digest`): a hash of
the item's encoding, which the rpc edge hands over without converting the item (its protobuf
wire bytes; see `ReceivedItems`). An item whose digest equals its row's is `unchanged` before
anything else is done with it: the bulk of a nightly re-send of a whole data set is neither
converted, normalized nor fingerprinted, and the lookups that only normalizing needs
(customers, plans) are made for the other items alone. Items built in-process are encoded by
their repr. A row written from one encoding and re-sent in the other (or written before its
encoding was the wire bytes) does not match its digest: it takes the normalizing path, whose
fingerprint finds it unchanged, and nothing is written.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Generic, NamedTuple, Protocol, TypeVar

from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from invoice_rpc.domain.enums import ImportStatus
from invoice_rpc.domain.errors import Aborted, InvalidArgument
from invoice_rpc.service.caller import Caller
from invoice_rpc.service.imports.sets import (
    DuplicateKey,
    bulk_insert,
    column_in,
    execute_by_key,
    fetch_by_key,
    is_postgresql,
    text_array,
)

MAX_BATCH_ITEMS = 1000
MAX_EXTERNAL_ID_LENGTH = 200


class ImportItem(Protocol):
    """What every import item has: the caller's id for the thing."""

    @property
    def id(self) -> str: ...


ItemT = TypeVar("ItemT", bound=ImportItem)


# A named tuple rather than a frozen dataclass: a batch makes a thousand, at a third of the cost.
class ImportResult(NamedTuple):
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


def item_digest(encoding: bytes) -> str:
    """blake2b-128 (hex) of an item's encoding as received (see `ReceivedItems`)."""
    return hashlib.blake2b(encoding, digest_size=16).hexdigest()


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

    def data_source_ref(self, item: ItemT) -> str:
        """The data source reference the item gives, as given (only asked of specs keyed by
        data source, for items built in-process: the edge reads it from the message)."""
        return ""

    def resolve_data_source(self, ref: str) -> uuid.UUID | None:
        """The data source a reference names (None if it names none that exists); only asked
        of specs keyed by data source, to find an item's row before converting it."""
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


@dataclass(frozen=True, slots=True)
class ReceivedItems(Generic[ItemT]):
    """A batch as the rpc edge received it, in input order, readable without converting items.

    `ids` and `data_sources` are those fields as sent ("" for entities not keyed by a data
    source). `encodings` are the items' bytes as received in one canonical form (the edge's
    deterministic protobuf encoding), of which each written row keeps the digest: two items
    with equal encodings are the same item. `convert(index)` makes one item, which is asked
    only for items that their digest does not show unchanged."""

    ids: Sequence[str]
    data_sources: Sequence[str]
    encodings: Sequence[bytes]
    convert: Callable[[int], ItemT]

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def built(cls, items: Sequence[ItemT], spec: UpsertSpec[ItemT]) -> ReceivedItems[ItemT]:
        """Items built in-process, each encoded by its repr: an import item is a frozen
        dataclass of strings, numbers, None and tuples of such, whose repr is the same in every
        process and names every field."""
        return cls(
            [item.id for item in items],
            [spec.data_source_ref(item) for item in items] if spec.keyed_by_data_source else [""] * len(items),
            [repr(item).encode() for item in items],
            items.__getitem__,
        )


async def upsert_batch(
    session: AsyncSession, caller: Caller, items: Sequence[ItemT] | ReceivedItems[ItemT], spec: UpsertSpec[ItemT]
) -> list[ImportResult]:
    """Insert or update every valid item; one result per item, in input order."""
    check_batch_size(len(items), spec.request_field)
    batch = items if isinstance(items, ReceivedItems) else ReceivedItems.built(items, spec)
    count = len(batch)
    results: list[ImportResult | None] = [None] * count
    digests = [item_digest(encoding) for encoding in batch.encodings]
    external_ids = [item_id.strip() for item_id in batch.ids]
    source_keys: Sequence[str] = [""] * count
    sources: set[uuid.UUID] = set()
    if spec.keyed_by_data_source:
        resolved = {ref: spec.resolve_data_source(ref) for ref in set(batch.data_sources)}
        sources = {source for source in resolved.values() if source is not None}
        key_of_ref = {ref: _source_key(source) for ref, source in resolved.items()}
        source_keys = [key_of_ref[ref] for ref in batch.data_sources]
    existing = await _load_existing(session, caller.tenant_id, spec, set(external_ids) - {""}, sources)
    seen_keys: set[_Key] = set()
    keys_so_far: set[_Key] = set()
    to_convert: list[int] = []
    unchanged = ImportStatus.UNCHANGED
    for index, key in enumerate(zip(source_keys, external_ids, strict=True)):
        # Only a key's first item may skip normalizing: a later one with the same key must
        # still be reported as a duplicate of the first, as the normalizing path does.
        first = key not in keys_so_far
        keys_so_far.add(key)
        found = existing.get(key)
        if first and found is not None and found.item_digest == digests[index]:
            seen_keys.add(key)
            results[index] = ImportResult(batch.ids[index], unchanged)
        else:
            to_convert.append(index)

    items_at = {index: batch.convert(index) for index in to_convert}
    if items_at:
        await spec.load_references(session, caller, list(items_at.values()))
    accepted: list[tuple[int, _Key, Normalized]] = []
    for index, item in items_at.items():
        problems: list[str] = []
        external_id = external_ids[index]
        if not external_id:
            problems.append(f"Missing {spec.label} ID")
        elif len(external_id) > MAX_EXTERNAL_ID_LENGTH:
            problems.append(f"{spec.label.capitalize()} ID must be at most {MAX_EXTERNAL_ID_LENGTH} characters")
        normalized = spec.normalize(item, problems)
        if problems:
            results[index] = ImportResult(item.id, ImportStatus.ERROR, "; ".join(problems))
            continue
        key = (_source_key(normalized.data_source_id if spec.keyed_by_data_source else None), external_id)
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
        item, external_id = items_at[index], key[1]
        values = {"external_id": external_id, **normalized.values}
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
            changed.append((index, values, item_fingerprint, uuid.UUID(found.row_id)))

    # Only rows that really change are loaded as objects (an identical re-send loads none).
    rows = await _load_rows(session, spec.model, [row_id for _, _, _, row_id in changed])
    for index, values, item_fingerprint, row_id in changed:
        item, row = items_at[index], rows[row_id]
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
            await bulk_insert(session, spec.model, inserts)
        except DuplicateKey as exc:
            # Another transaction inserted one of these keys after our lookup.
            raise Aborted(f"a concurrent import wrote the same {spec.label} IDs; retry the batch") from exc
        written.extend(WrittenRow(values["id"], None, values) for values in inserts)
    if written:
        await spec.after_write(session, caller, written)
    return [result for result in results if result is not None]


# A row's key: its data source id as text ("" for entities not keyed by one) and external id.
# Text rather than UUIDs: a thousand keys are hashed several times over, and PostgreSQL hands
# back text at a third of the cost of UUID objects.
_Key = tuple[str, str]


def _source_key(source_id: uuid.UUID | None) -> str:
    return "" if source_id is None else str(source_id)


class _ExistingRow(NamedTuple):
    """An existing row's key and what the batch compares with it, as the lookup selects them
    (in this order: PostgreSQL's rows become these without a Python call per row)."""

    source_key: str
    external_id: str
    item_digest: str | None
    row_id: str  # the UUID's text
    fingerprint: str


async def _load_existing(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    spec: UpsertSpec[Any],
    external_ids: set[str],
    source_ids: set[uuid.UUID],
) -> dict[_Key, _ExistingRow]:
    """The batch's existing rows by key, in one query of plain rows.

    Every condition is on the columns of the (tenant, [data source,] external id) unique index,
    read with a plan that does not depend on the tenant's statistics (see `execute_by_key`)."""
    keyed = spec.keyed_by_data_source
    if not external_ids or (keyed and not source_ids):
        return {}
    model = spec.model
    if is_postgresql(session):
        # The driver's own rows: a thousand of them, without the cost of result objects.
        conditions: list[str] = ["tenant_id = %s"]
        params: list[Any] = [tenant_id]
        if keyed:
            conditions.append("data_source_id = ANY(%b::uuid[])")
            params.append(list(source_ids))
        conditions.append("external_id = ANY(%s::text[])")
        params.append(text_array(external_ids))
        source = "data_source_id::text" if keyed else "''"
        sql = (
            f"SELECT {source}, external_id, item_digest, id::text, fingerprint"
            f' FROM "{model.__tablename__}" WHERE {" AND ".join(conditions)}'
        )
        as_existing = tuple.__new__
        return {(row[0], row[1]): as_existing(_ExistingRow, row) for row in await fetch_by_key(session, sql, params)}
    source_column = model.data_source_id if keyed else literal(None)
    where = [model.tenant_id == tenant_id]
    if keyed:
        where.append(column_in(session, model.data_source_id, sorted(source_ids)))
    where.append(column_in(session, model.external_id, sorted(external_ids)))
    stmt = select(source_column, model.external_id, model.item_digest, model.id, model.fingerprint).where(*where)
    existing = {}
    for source_id, external_id, digest, row_id, row_fingerprint in await execute_by_key(session, stmt):
        key = (_source_key(source_id), external_id)
        existing[key] = _ExistingRow(*key, digest, str(row_id), row_fingerprint)
    return existing


async def _load_rows(session: AsyncSession, model: Any, row_ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """The rows as ORM objects by id, in one query (none when there is nothing to update)."""
    if not row_ids:
        return {}
    rows = (await session.execute(select(model).where(column_in(session, model.id, row_ids)))).scalars()
    return {row.id: row for row in rows}
