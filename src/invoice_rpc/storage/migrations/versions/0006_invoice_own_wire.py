"""invoices.own_wire: the invoice's own fields as protobuf wire bytes, kept by a trigger

Revision ID: 0006
Revises: 0005

StreamInvoices' basic view sends each invoice as pb.Invoice wire bytes written by PostgreSQL
(invoice_rpc.rpc.invoice_wire). Writing some thirty fields costs a backend ~17 µs per invoice on
every stream; a stream of a million invoices pays it a million times, for bytes that change only
when the invoice does. From this revision on they are written when the invoice is:

- `invoices.own_wire` (bytea): the wire bytes of the fields that come from the invoice's own
  columns (everything but its parents, its links and its line items, which
  invoice_wire.LINKED_FIELDS names and the stream still writes as it reads).
- PostgreSQL: a BEFORE INSERT OR UPDATE row trigger sets it from NEW, so every write path (the
  ORM, COPY, INSERT ... ON CONFLICT, set-based UPDATE) keeps it current without knowing of it.
  Its function keeps each staged value in a variable (~18 µs a row; see own_wire_trigger_body).
  An enum value without a protobuf number now fails the write (pb_unencodable), not a stream.
- `invoice_own_wire_missing(id)` raises: the stream reads `coalesce(own_wire, ...)` through it, so
  a row without stored bytes (its trigger disabled during a load, say) fails the stream loudly.
- The upgrade writes the bytes of every existing invoice (the rollup trigger stays out of it: no
  amount changes).
- SQLite gets the column only; its streams build pb.Invoice in Python.

OWN_WIRE_FUNCTION_BODY is frozen here: it is what invoice_wire.own_wire_trigger_body() gave at
this revision. When pb.Invoice or an enum table changes, a new revision replaces the
function and rewrites every row's bytes; a test compares the newest copy with the generator.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The trigger function's body: invoice_wire.own_wire_trigger_body() at this revision.
OWN_WIRE_FUNCTION_BODY = r"""DECLARE
    v0 BYTEA;
    v1 BYTEA;
    v2 BYTEA;
    v3 BYTEA;
    v4 BYTEA;
    v5 BIGINT;
    v6 BIGINT;
    v7 BIGINT;
    v8 BIGINT;
    v9 BYTEA;
    v10 BYTEA;
    v11 BIGINT;
    v12 BIGINT;
    v13 BIGINT;
    v14 BIGINT;
    v15 BIGINT;
    v16 BIGINT;
    v17 BIGINT;
    v18 BIGINT;
    v19 BIGINT;
    v20 BOOLEAN;
    v21 BYTEA;
    v22 BIGINT;
    v23 BIGINT;
    v24 BIGINT;
    v25 BOOLEAN;
    v26 BYTEA;
    v27 BIGINT;
    v28 BIGINT;
    v29 BIGINT;
    v30 BOOLEAN;
    v31 BYTEA;
    v32 BIGINT;
    v33 BIGINT;
    v34 BOOLEAN;
    v35 BYTEA;
    v36 BIGINT;
    v37 BIGINT;
    v38 BOOLEAN;
    v39 BYTEA;
    v40 BIGINT;
    v41 BIGINT;
    v42 BOOLEAN;
    v43 BYTEA;
    v44 BIGINT;
    v45 BIGINT;
    v46 BOOLEAN;
    v47 BYTEA;
    v48 BOOLEAN;
    v49 BYTEA;
    v50 BOOLEAN;
    v51 BYTEA;
    v52 BYTEA;
    v53 BYTEA;
    v54 BIGINT;
    v55 BIGINT;
    v56 BOOLEAN;
    v57 BYTEA;
    v58 BIGINT;
    v59 BIGINT;
    v60 BOOLEAN;
    v61 BYTEA;
BEGIN
    v0 := convert_to(CAST(NEW.id AS TEXT), 'UTF8');
    v1 := convert_to(NEW.invoice_number, 'UTF8');
    v2 := convert_to(CAST(NEW.data_source_id AS TEXT), 'UTF8');
    v3 := convert_to(NEW.external_id, 'UTF8');
    v4 := convert_to(NEW.document_type_code, 'UTF8');
    v5 := CAST(CASE WHEN (NEW.accounting_event_type IS NULL) THEN NULL WHEN (NEW.accounting_event_type = 'INVOICE') THEN 1 WHEN (NEW.accounting_event_type = 'CREDIT_NOTE') THEN 2 ELSE pb_unencodable('Invoice.accounting_event_type', NEW.accounting_event_type) END AS BIGINT);
    v6 := CAST(CASE WHEN (NEW.billing_type IS NULL) THEN NULL WHEN (NEW.billing_type = 'subscription') THEN 1 WHEN (NEW.billing_type = 'token_pack') THEN 2 WHEN (NEW.billing_type = 'marketplace_usage') THEN 3 WHEN (NEW.billing_type = 'free_trial') THEN 4 WHEN (NEW.billing_type = 'demo') THEN 5 WHEN (NEW.billing_type = 'one-time') THEN 6 WHEN (NEW.billing_type = 'refund') THEN 7 WHEN (NEW.billing_type = 'cancellation') THEN 8 ELSE pb_unencodable('Invoice.billing_type', NEW.billing_type) END AS BIGINT);
    v7 := CAST(CASE WHEN (NEW.status IS NULL) THEN NULL WHEN (NEW.status = 'draft') THEN 1 WHEN (NEW.status = 'sent') THEN 2 WHEN (NEW.status = 'paid') THEN 3 WHEN (NEW.status = 'cancelled') THEN 4 ELSE pb_unencodable('Invoice.status', NEW.status) END AS BIGINT);
    v8 := CAST(NEW.number_in_contract AS BIGINT);
    v9 := convert_to(NEW.subscription_id, 'UTF8');
    v10 := convert_to(NEW.currency, 'UTF8');
    v11 := NEW.sub_total_minor;
    v12 := NEW.total_discount_minor;
    v13 := NEW.total_tax_minor;
    v14 := NEW.credits_minor;
    v15 := NEW.total_minor;
    v16 := NEW.amount_paid_minor;
    v17 := NEW.amount_remaining_minor;
    v18 := CAST(NEW.net_terms_days AS BIGINT);
    v19 := CAST(CASE WHEN (NEW.net_terms_days IS NULL) THEN CASE WHEN (NEW.payment_term IS NULL) THEN NULL WHEN (NEW.payment_term = 'DUE_UPON_RECEIPT') THEN 1 WHEN (NEW.payment_term = 'DUE_UPON_USAGE') THEN 2 ELSE pb_unencodable('Invoice.payment_term', NEW.payment_term) END ELSE NULL END AS BIGINT);
    v20 := NEW.net_terms_days IS NOT NULL OR NEW.payment_term IS NOT NULL;
    v21 := CASE WHEN v20 THEN byteacat(pb_present_varint_field('\x08'::bytea, v18), pb_present_varint_field('\x10'::bytea, v19)) ELSE NULL END;
    v22 := CAST(date_part('year', NEW.issue_date) AS BIGINT);
    v23 := CAST(date_part('month', NEW.issue_date) AS BIGINT);
    v24 := CAST(date_part('day', NEW.issue_date) AS BIGINT);
    v25 := NEW.issue_date IS NOT NULL;
    v26 := CASE WHEN v25 THEN byteacat(pb_varint_field('\x08'::bytea, v22), byteacat(pb_varint_field('\x10'::bytea, v23), pb_varint_field('\x18'::bytea, v24))) ELSE NULL END;
    v27 := CAST(date_part('year', NEW.due_date) AS BIGINT);
    v28 := CAST(date_part('month', NEW.due_date) AS BIGINT);
    v29 := CAST(date_part('day', NEW.due_date) AS BIGINT);
    v30 := NEW.due_date IS NOT NULL;
    v31 := CASE WHEN v30 THEN byteacat(pb_varint_field('\x08'::bytea, v27), byteacat(pb_varint_field('\x10'::bytea, v28), pb_varint_field('\x18'::bytea, v29))) ELSE NULL END;
    v32 := pb_timestamp_seconds(NEW.submitted_at);
    v33 := pb_timestamp_nanos(NEW.submitted_at);
    v34 := NEW.submitted_at IS NOT NULL;
    v35 := CASE WHEN v34 THEN byteacat(pb_varint_field('\x08'::bytea, v32), pb_varint_field('\x10'::bytea, v33)) ELSE NULL END;
    v36 := pb_timestamp_seconds(NEW.paid_at);
    v37 := pb_timestamp_nanos(NEW.paid_at);
    v38 := NEW.paid_at IS NOT NULL;
    v39 := CASE WHEN v38 THEN byteacat(pb_varint_field('\x08'::bytea, v36), pb_varint_field('\x10'::bytea, v37)) ELSE NULL END;
    v40 := pb_timestamp_seconds(NEW.period_start);
    v41 := pb_timestamp_nanos(NEW.period_start);
    v42 := NEW.period_start IS NOT NULL;
    v43 := CASE WHEN v42 THEN byteacat(pb_varint_field('\x08'::bytea, v40), pb_varint_field('\x10'::bytea, v41)) ELSE NULL END;
    v44 := pb_timestamp_seconds(NEW.period_end);
    v45 := pb_timestamp_nanos(NEW.period_end);
    v46 := NEW.period_end IS NOT NULL;
    v47 := CASE WHEN v46 THEN byteacat(pb_varint_field('\x08'::bytea, v44), pb_varint_field('\x10'::bytea, v45)) ELSE NULL END;
    v48 := NEW.period_start IS NOT NULL OR NEW.period_end IS NOT NULL;
    v49 := CASE WHEN v48 THEN byteacat(pb_message_field('\x0a'::bytea, v43), pb_message_field('\x12'::bytea, v47)) ELSE NULL END;
    v50 := NEW.is_partial_period;
    v51 := convert_to(NEW.terms, 'UTF8');
    v52 := convert_to(NEW.description, 'UTF8');
    v53 := convert_to(NEW.quantity, 'UTF8');
    v54 := pb_timestamp_seconds(NEW.created_at);
    v55 := pb_timestamp_nanos(NEW.created_at);
    v56 := NEW.created_at IS NOT NULL;
    v57 := CASE WHEN v56 THEN byteacat(pb_varint_field('\x08'::bytea, v54), pb_varint_field('\x10'::bytea, v55)) ELSE NULL END;
    v58 := pb_timestamp_seconds(NEW.updated_at);
    v59 := pb_timestamp_nanos(NEW.updated_at);
    v60 := NEW.updated_at IS NOT NULL;
    v61 := CASE WHEN v60 THEN byteacat(pb_varint_field('\x08'::bytea, v58), pb_varint_field('\x10'::bytea, v59)) ELSE NULL END;
    NEW.own_wire := byteacat(byteacat(byteacat(byteacat(pb_bytes_field('\x0a'::bytea, v0), byteacat(pb_bytes_field('\x12'::bytea, v1), pb_bytes_field('\x1a'::bytea, v2))), byteacat(byteacat(pb_bytes_field('\x22'::bytea, v3), pb_bytes_field('\x2a'::bytea, v4)), byteacat(pb_varint_field('\x30'::bytea, v5), pb_varint_field('\x38'::bytea, v6)))), byteacat(byteacat(byteacat(pb_varint_field('\x40'::bytea, v7), pb_varint_field('\x58'::bytea, v8)), byteacat(pb_bytes_field('\x7a'::bytea, v9), pb_bytes_field('\x8201'::bytea, v10))), byteacat(byteacat(pb_varint_field('\x8801'::bytea, v11), pb_varint_field('\x9001'::bytea, v12)), byteacat(pb_varint_field('\x9801'::bytea, v13), pb_varint_field('\xa001'::bytea, v14))))), byteacat(byteacat(byteacat(pb_varint_field('\xa801'::bytea, v15), byteacat(pb_varint_field('\xb001'::bytea, v16), pb_varint_field('\xb801'::bytea, v17))), byteacat(byteacat(pb_message_field('\xc201'::bytea, v21), pb_message_field('\xca01'::bytea, v26)), byteacat(pb_message_field('\xd201'::bytea, v31), pb_message_field('\xda01'::bytea, v35)))), byteacat(byteacat(byteacat(pb_message_field('\xe201'::bytea, v39), pb_message_field('\xea01'::bytea, v49)), byteacat(pb_bool_field('\xf001'::bytea, v50), pb_bytes_field('\xfa01'::bytea, v51))), byteacat(byteacat(pb_bytes_field('\x8202'::bytea, v52), pb_bytes_field('\x8a02'::bytea, v53)), byteacat(pb_message_field('\xba02'::bytea, v57), pb_message_field('\xc202'::bytea, v61))))));
    RETURN NEW;
END"""


def upgrade() -> None:
    op.add_column("invoices", sa.Column("own_wire", sa.LargeBinary(), nullable=True))
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE FUNCTION invoice_own_wire_on_write() RETURNS trigger LANGUAGE plpgsql AS "
        f"$body$\n{OWN_WIRE_FUNCTION_BODY}\n$body$"
    )
    op.execute(
        "CREATE TRIGGER invoice_own_wire BEFORE INSERT OR UPDATE ON invoices "
        "FOR EACH ROW EXECUTE FUNCTION invoice_own_wire_on_write()"
    )
    op.execute(
        "CREATE FUNCTION invoice_own_wire_missing(invoice_id uuid) RETURNS bytea "
        "LANGUAGE plpgsql STABLE PARALLEL SAFE AS $body$ BEGIN "
        "RAISE EXCEPTION 'invoice % has no stored wire bytes (own_wire)', invoice_id "
        "USING ERRCODE = 'data_exception'; "
        "END $body$"
    )
    op.execute("ALTER TABLE invoices DISABLE TRIGGER invoice_rollups_on_update")
    op.execute("UPDATE invoices SET own_wire = NULL")  # the trigger writes the bytes
    op.execute("ALTER TABLE invoices ENABLE TRIGGER invoice_rollups_on_update")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS invoice_own_wire ON invoices")
        op.execute("DROP FUNCTION IF EXISTS invoice_own_wire_on_write()")
        op.execute("DROP FUNCTION IF EXISTS invoice_own_wire_missing(uuid)")
    op.drop_column("invoices", "own_wire")
