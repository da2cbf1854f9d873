"""The metrics worker: drains the durable `metric_jobs` queue, and compacts the summary's
rollups every ROLLUP_COMPACTION_SECONDS.

Claims happen in one short transaction (the lease starts at commit); each customer is then
recomputed and its job completed in one transaction of its own, so a crash loses nothing: the
recalculation either committed together with the job's removal, or the lease expires and
another worker takes the job. Compaction is safe to run from several workers at once and next
to any writer (see service.rollup_compaction).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from invoice_rpc.logs import log
from invoice_rpc.service.customer_metrics import recalculate_customer_metrics
from invoice_rpc.service.metric_jobs import claim_jobs, complete_job, fail_job
from invoice_rpc.service.rollup_compaction import RollupCompaction, compact_rollups
from invoice_rpc.storage.database import Database

logger = logging.getLogger("invoice_rpc.worker")

# Between compactions every write transaction leaves a row or two per rollup group it touched
# (a bulk statement on PostgreSQL one per group, SQLite one per invoice), which summaries add up
# until folded. A compaction scans both rollups once (tens of milliseconds for the ~60,000 rows
# a million invoices make) and rewrites only the groups that gained rows. Once a minute keeps
# that well under a thousandth of a core, while a summary never adds more than a minute of
# writes' rows on top of one row per group.
ROLLUP_COMPACTION_SECONDS = 60.0


async def process_available_jobs(db: Database, worker_id: str, *, limit: int = 100, lease_seconds: float = 60.0) -> int:
    """Claim up to `limit` free jobs and recompute each; the number of customers recomputed."""
    async with db.write() as session:
        jobs = await claim_jobs(session, worker_id, limit, timedelta(seconds=lease_seconds))
    recomputed = 0
    for job in jobs:
        try:
            async with db.write() as session:
                await recalculate_customer_metrics(session, job.tenant_id, job.customer_id)
                finished = await complete_job(session, job)
        except Exception as error:
            log(
                logger,
                logging.ERROR,
                "metrics.job_failed",
                worker_id=worker_id,
                tenant_id=job.tenant_id,
                customer_id=job.customer_id,
                attempts=job.attempts,
            )
            async with db.write() as session:
                await fail_job(session, job, f"{type(error).__name__}: {error}")
            continue
        recomputed += 1
        log(
            logger,
            logging.DEBUG,
            "metrics.recomputed",
            worker_id=worker_id,
            tenant_id=job.tenant_id,
            customer_id=job.customer_id,
            requeued=not finished,
        )
    return recomputed


async def compact_rollup_tables(db: Database) -> list[RollupCompaction]:
    """Compact the summary's rollups in a write transaction of their own; what each table's
    compaction did (also logged when it folded anything)."""
    async with db.write() as session:
        compactions = await compact_rollups(session)
    for compaction in compactions:
        if compaction.folded_rows:
            log(
                logger,
                logging.DEBUG,
                "rollup.compacted",
                table=compaction.table,
                folded_rows=compaction.folded_rows,
                written_rows=compaction.written_rows,
            )
    return compactions


async def run_worker(
    db: Database,
    *,
    worker_id: str,
    poll_interval: float = 0.5,
    compact_every: float = ROLLUP_COMPACTION_SECONDS,
    stop: asyncio.Event,
) -> None:
    """Process jobs until `stop` is set; sleeps `poll_interval` seconds whenever the queue is idle.
    Compacts the rollups on start and then every `compact_every` seconds, busy or idle. A failing
    database is logged and retried after the same pause, never fatal."""
    log(logger, logging.INFO, "worker.started", worker_id=worker_id)
    next_compaction = time.monotonic()
    while not stop.is_set():
        if time.monotonic() >= next_compaction:
            try:
                await compact_rollup_tables(db)
            except Exception:
                log(logger, logging.ERROR, "worker.compaction_failed", worker_id=worker_id)
            next_compaction = time.monotonic() + compact_every
        try:
            recomputed = await process_available_jobs(db, worker_id)
        except Exception:
            log(logger, logging.ERROR, "worker.poll_failed", worker_id=worker_id)
            recomputed = 0
        if recomputed:
            continue
        try:
            await asyncio.wait_for(stop.wait(), timeout=poll_interval)
        except TimeoutError:
            pass
    log(logger, logging.INFO, "worker.stopped", worker_id=worker_id)
