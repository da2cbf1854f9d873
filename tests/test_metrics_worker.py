"""Durable metric recalculation: the numbers, the queue's leases and generations, restarts,
crashed workers, concurrent workers, and the worker loop."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from invoice_rpc.v1 import import_service_pb2 as ipb
from invoice_rpc.v1 import resources_pb2 as pb
from sqlalchemy import select, update

from invoice_rpc.service.customer_metrics import monthly_amount, recalculate_customer_metrics
from invoice_rpc.service.metric_jobs import claim_jobs, complete_job, enqueue_customers, fail_job
from invoice_rpc.storage import models as m
from invoice_rpc.storage.database import Database
from invoice_rpc.worker import process_available_jobs, run_worker
from tests.conftest import Api
from tests.test_bulk_upsert import SEED_INV_001, SEED_INV_002, bulk, load_stripe_tenant


async def drain(db: Database) -> None:
    """Process every job left by earlier tests, so that a test sees only its own."""
    while await process_available_jobs(db, "drain", limit=1000):
        pass


async def job_of(db: Database, customer_id: uuid.UUID) -> m.MetricJob | None:
    async with db.read() as s:
        job = await s.get(m.MetricJob, customer_id)
        if job is not None:
            s.expunge(job)
        return job


async def customer_id(api: Api, external_id: str = "cus_123") -> uuid.UUID:
    async with api.db.read() as s:
        query = select(m.Customer.id).where(
            m.Customer.tenant_id == api.tenant_id, m.Customer.external_id == external_id
        )
        return (await s.execute(query)).scalar_one()


async def get_customer(api: Api, external_id: str = "cus_123") -> pb.Customer:
    return await api.imports.GetCustomer(
        ipb.GetCustomerRequest(external_key=ipb.ExternalCustomerKey(data_source="stripe", customer_id=external_id)),
        metadata=api.metadata,
    )


def sub(
    invoice_id: str, subscription: str, plan: str, day: str, amount: int, currency: str = "USD"
) -> dict[str, object]:
    return {
        **SEED_INV_001,
        "id": invoice_id,
        "subscription_id": subscription,
        "plan_id": plan,
        "date": day,
        "start_date": day,
        "end_date": day,
        "amount_cents": amount,
        "currency": currency,
    }


def other(
    invoice_id: str, kind: str, day: str, amount: int, currency: str = "USD", **extra: object
) -> dict[str, object]:
    return {
        **SEED_INV_002,
        "customer_id": "cus_123",
        "id": invoice_id,
        "type": kind,
        "date": day,
        "start_date": day,
        "end_date": day,
        "amount_cents": amount,
        "currency": currency,
        **extra,
    }


async def load_documented_history(api: Api) -> None:
    """cus_123's invoices in USD and EUR; the expected numbers are worked out in the test."""
    await load_stripe_tenant(api)
    await api.imports.UpsertPlans(
        ipb.UpsertPlansRequest(
            plans=[
                pb.Plan(
                    id="plan_year", data_source_id="stripe", interval="year", amount_minor=120000, currency_code="USD"
                ),
                pb.Plan(
                    id="plan_week", data_source_id="stripe", interval="week", amount_minor=1000, currency_code="EUR"
                ),
            ]
        ),
        metadata=api.metadata,
    )
    results = await bulk(
        api,
        sub("inv_1", "sub_1", "plan_123", "2024-07-01", 9900),
        sub("inv_2", "sub_1", "plan_123", "2024-08-01", 9900),  # sub_1's latest: 9900 a month
        sub("inv_3", "sub_2", "plan_year", "2024-07-15", 120000),  # yearly: 10000 a month
        other("inv_4", "one-time", "2024-08-10", 15000),
        other("inv_5", "refund", "2024-08-11", 2000),
        sub("inv_6", "sub_3", "plan_123", "2024-06-01", 9900),
        other("inv_7", "cancellation", "2024-06-20", 0, subscription_id="sub_3"),  # sub_3 no longer counts
        other("inv_10", "one-time", "2024-08-20", 777),  # made a draft below: not counted
        sub("inv_8", "sub_4", "plan_week", "2024-08-05", 1000, "EUR"),  # weekly: 1000×52/12 = 4333.33
        other("inv_9", "one-time", "2024-08-06", 500, "EUR"),
    )
    assert all(r.import_status == ipb.IMPORT_STATUS_INSERTED for r in results), results
    async with api.db.write() as s:
        mine = (m.Invoice.tenant_id == api.tenant_id,)
        await s.execute(
            update(m.Invoice)
            .where(*mine, m.Invoice.external_id == "inv_4")
            .values(status="paid", amount_paid_minor=15000, amount_remaining_minor=0)
        )
        await s.execute(
            update(m.Invoice)
            .where(*mine, m.Invoice.external_id == "inv_1")
            .values(amount_paid_minor=4000, amount_remaining_minor=5900)
        )
        await s.execute(update(m.Invoice).where(*mine, m.Invoice.external_id == "inv_10").values(status="draft"))


EXPECTED_USD = {
    # 380s: 9900 + 9900 + 120000 + 15000 + 9900; 381s: refund 2000 + cancellation 0
    "invoiced_minor": 162700,
    "paid_minor": 19000,  # 4000 + 15000
    # remaining of sent documents: 5900 + 9900 + 120000 + 2000 (the refund) + 9900 + 0
    "outstanding_minor": 147700,
    "mrr_minor": 19900,  # sub_1 9900 + sub_2 10000; sub_3 cancelled
    "invoice_count": 7,
}
EXPECTED_EUR = {
    "invoiced_minor": 1500,
    "paid_minor": 0,
    "outstanding_minor": 1500,
    "mrr_minor": 4333,
    "invoice_count": 2,
}


def as_dict(metric: pb.CustomerMetrics) -> dict[str, int]:
    return {key: getattr(metric, key) for key in EXPECTED_USD}


@pytest.mark.parametrize(
    ("amount", "interval", "monthly"),
    [
        (9900, "month", 9900),
        (120000, "year", 10000),
        (1000, "week", 4333),
        (100, "day", 3042),
        (7, None, 7),
        (6, "year", 0),
        (18, "year", 2),
        (30, "year", 2),
    ],
)
def test_monthly_amount_normalizes_by_interval_half_even(amount: int, interval: str | None, monthly: int) -> None:
    # 6/12 = 0.5 -> 0, 18/12 = 1.5 -> 2, 30/12 = 2.5 -> 2 (half to even); 100×365/12 = 3041.67 -> 3042
    assert monthly_amount(amount, interval) == monthly


async def test_job_is_queued_right_after_the_import(api: Api) -> None:
    await load_stripe_tenant(api)
    await bulk(api, SEED_INV_001)
    job = await job_of(api.db, await customer_id(api))
    assert job is not None and (job.generation, job.locked_until, job.attempts) == (1, None, 0)


async def test_worker_computes_documented_metrics_per_currency(api: Api) -> None:
    await load_documented_history(api)
    await drain(api.db)
    customer = await get_customer(api)
    assert [metric.currency_code for metric in customer.metrics] == ["EUR", "USD"]
    eur, usd = customer.metrics
    assert as_dict(usd) == EXPECTED_USD and as_dict(eur) == EXPECTED_EUR
    assert (usd.last_invoice_date.year, usd.last_invoice_date.month, usd.last_invoice_date.day) == (2024, 8, 11)
    assert (eur.last_invoice_date.month, eur.last_invoice_date.day) == (8, 6)
    assert customer.HasField("metrics_time")
    assert await job_of(api.db, await customer_id(api)) is None


async def test_customer_has_no_metrics_before_the_worker_runs(api: Api) -> None:
    await load_stripe_tenant(api)
    await bulk(api, SEED_INV_001)
    customer = await get_customer(api)
    assert list(customer.metrics) == [] and not customer.HasField("metrics_time")


async def test_recalculation_rewrites_metrics_whole(api: Api) -> None:
    await load_stripe_tenant(api)
    await bulk(api, SEED_INV_001)
    await drain(api.db)
    await bulk(api, {**SEED_INV_001, "currency": "EUR"})
    await drain(api.db)
    assert [metric.currency_code for metric in (await get_customer(api)).metrics] == ["EUR"]


async def test_recalculation_leaves_the_customer_updated_at_alone(api: Api) -> None:
    await load_stripe_tenant(api)
    await bulk(api, SEED_INV_001)
    before = (await get_customer(api)).update_time
    await drain(api.db)
    assert (await get_customer(api)).update_time == before


async def test_jobs_survive_a_restart(api: Api, database_url: str) -> None:
    await drain(api.db)
    await load_stripe_tenant(api)
    await bulk(api, SEED_INV_001)
    restarted = Database(database_url)  # a new process's engine: nothing but the table holds the job
    try:
        assert await process_available_jobs(restarted, "after-restart") >= 1
    finally:
        await restarted.dispose()
    assert as_dict((await get_customer(api)).metrics[0])["invoiced_minor"] == 9900


async def test_lease_of_a_crashed_worker_blocks_others_until_it_expires(api: Api) -> None:
    await drain(api.db)
    await load_stripe_tenant(api)
    await bulk(api, SEED_INV_001)
    async with api.db.write() as s:
        [claimed] = await claim_jobs(s, "crashed", 10, timedelta(seconds=0.5))  # and never completes
    assert await process_available_jobs(api.db, "healthy") == 0
    job = await job_of(api.db, claimed.customer_id)
    assert job is not None and job.locked_by == "crashed"
    await asyncio.sleep(0.6)
    assert await process_available_jobs(api.db, "healthy") == 1
    assert await job_of(api.db, claimed.customer_id) is None
    assert len((await get_customer(api)).metrics) == 1


async def test_request_during_computation_keeps_the_job_queued(api: Api) -> None:
    await drain(api.db)
    await load_stripe_tenant(api)
    await bulk(api, SEED_INV_001)
    async with api.db.write() as s:
        [job] = await claim_jobs(s, "slow", 10, timedelta(seconds=60))
    async with api.db.write() as s:
        await recalculate_customer_metrics(s, job.tenant_id, job.customer_id)
    # an import changes the customer's invoices after the computation read them
    await bulk(api, {**SEED_INV_001, "amount_cents": 500})
    async with api.db.write() as s:
        assert await complete_job(s, job) is False
    kept = await job_of(api.db, job.customer_id)
    assert kept is not None and (kept.generation, kept.locked_by, kept.locked_until) == (2, None, None)
    assert await process_available_jobs(api.db, "next") == 1
    assert as_dict((await get_customer(api)).metrics[0])["invoiced_minor"] == 500


async def test_failed_job_is_released_with_backoff_and_error(api: Api) -> None:
    await drain(api.db)
    await load_stripe_tenant(api)
    await bulk(api, SEED_INV_001)
    async with api.db.write() as s:
        [job] = await claim_jobs(s, "w", 10, timedelta(seconds=60))
        await fail_job(s, job, "boom")
    kept = await job_of(api.db, job.customer_id)
    assert kept is not None and kept.locked_by is None and kept.last_error == "boom"
    assert kept.locked_until is not None
    assert await process_available_jobs(api.db, "w2") == 0  # still backing off


async def many_customers(api: Api, count: int) -> list[uuid.UUID]:
    source_id = uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(count)]
    async with api.db.write() as s:
        s.add(m.DataSource(id=source_id, tenant_id=api.tenant_id, name="bulk"))
        await s.flush()
        s.add_all(
            m.Customer(
                id=cid,
                tenant_id=api.tenant_id,
                data_source_id=source_id,
                external_id=f"c{n}",
                name="c",
                fingerprint="-",
            )
            for n, cid in enumerate(ids)
        )
        await s.flush()
        await enqueue_customers(s, api.tenant_id, ids)
    return ids


async def test_concurrent_claims_never_share_a_job(api: Api) -> None:
    if api.db.dialect != "postgresql":
        pytest.skip("SQLite serializes write transactions; SKIP LOCKED is a PostgreSQL concern")
    await drain(api.db)
    ids = await many_customers(api, 30)
    async with api.db.write() as first, api.db.write() as second:
        a = await claim_jobs(first, "a", 10, timedelta(seconds=60))
        b = await claim_jobs(second, "b", 100, timedelta(seconds=60))  # while a's rows are still locked
    assert len(a) == 10 and len(b) == 20
    assert {job.customer_id for job in a} | {job.customer_id for job in b} == set(ids)
    assert all(job.attempts == 1 for job in (*a, *b))


async def test_two_workers_in_parallel_process_every_job_exactly_once(api: Api) -> None:
    await drain(api.db)
    ids = await many_customers(api, 40)
    done = await asyncio.gather(
        process_available_jobs(api.db, "a", limit=15),
        process_available_jobs(api.db, "b", limit=15),
        process_available_jobs(api.db, "c", limit=15),
    )
    assert sum(done) == 40
    async with api.db.read() as s:
        left = (await s.execute(select(m.MetricJob.customer_id).where(m.MetricJob.customer_id.in_(ids)))).all()
        stamped = (
            await s.execute(
                select(m.Customer.id).where(m.Customer.id.in_(ids), m.Customer.metrics_updated_at.is_not(None))
            )
        ).all()
    assert (left, len(stamped)) == ([], 40)


async def test_run_worker_recalculates_until_stopped(api: Api) -> None:
    await load_stripe_tenant(api)
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(api.db, worker_id="loop", poll_interval=0.05, stop=stop))
    try:
        await bulk(api, SEED_INV_001)
        for _ in range(100):
            if (await get_customer(api)).metrics:
                break
            await asyncio.sleep(0.05)
        assert as_dict((await get_customer(api)).metrics[0])["invoiced_minor"] == 9900
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    assert task.done() and task.exception() is None
