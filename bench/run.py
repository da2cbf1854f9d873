"""`python -m bench`: seed, start the servers (and Envoy), run the scenarios, print the table.

    .venv/bin/python -m bench [--n 1000000] [--database postgresql|sqlite] [--repetitions 5]
                              [--only list,export,stream,bulk,summary,rest] [--reuse]

Every figure is a median over the repetitions, and every ratio is against a ceiling measured
in the same run. The process prints the table (Markdown) on stdout and, with --json, writes
the figures to a file; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from types import ModuleType

import grpc

from bench.context import BenchContext, Settings
from bench.loadgen import generator_name
from bench.report import Figure, render_table
from bench.seed import prepare_database, seed_tenant
from bench.servers import Gateway, ServerFleet
from invoice_rpc.logs import configure
from invoice_rpc.storage.database import Database

# Bulk writes (into tenants of its own) and so runs last: the reads measure the seeded table.
SCENARIOS = ("list", "export", "stream", "summary", "rest", "bulk")
_MODULES = {
    "list": "bench.scenarios.list_invoices",
    "export": "bench.scenarios.export",
    "stream": "bench.scenarios.stream",
    "bulk": "bench.scenarios.bulk",
    "summary": "bench.scenarios.summary",
    "rest": "bench.scenarios.rest",
}
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/invoice_bench"
SMALL_TENANT_INVOICES = 10_000
FULL_SCALE = 1_000_000
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=None, help="invoices to seed (default 1,000,000; 100,000 on SQLite)")
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--url", help=f"database URL (default {DEFAULT_PG_URL}, or a SQLite file in a temp dir)")
    parser.add_argument(
        "--repetitions", type=int, default=5, help="runs per figure; the median is reported (default 5)"
    )
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each load-generator run (default 3)")
    parser.add_argument(
        "--bulk-invoices", type=int, default=100_000, help="invoices per BulkUpsert pass (default 100,000)"
    )
    parser.add_argument(
        "--bulk-concurrency",
        type=int,
        default=1,
        help="BulkUpsert batches in flight at once (default 1: one batch after the other)",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="server processes (default: CPUs)")
    parser.add_argument("--reuse", action="store_true", help="keep an already seeded bench database of the same N")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument(
        "--stats-wait",
        type=float,
        default=11.0,
        help="seconds to let PostgreSQL publish n_tup_upd around the re-send (default 11: idle backends "
        "flush their statistics within 10 s; 0 skips that check, the xmin check stays)",
    )
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}")
    return args


def settings_from(args: argparse.Namespace, work_dir: Path) -> Settings:
    invoices = args.n if args.n is not None else (FULL_SCALE if args.database == "postgresql" else 100_000)
    url = args.url or (DEFAULT_PG_URL if args.database == "postgresql" else f"sqlite:///{work_dir / 'bench.sqlite3'}")
    return Settings(
        database=args.database,
        url=url,
        invoices=invoices,
        small_invoices=min(SMALL_TENANT_INVOICES, max(1, invoices // 10)),
        repetitions=args.repetitions,
        load_seconds=args.seconds,
        bulk_invoices=args.bulk_invoices,
        bulk_batch=1000,
        bulk_concurrency=args.bulk_concurrency,
        workers=args.workers,
        only=frozenset(args.only.split(",")),
        reuse=args.reuse,
        stats_wait=args.stats_wait,
    )


async def run_bench(settings: Settings, work_dir: Path) -> tuple[list[Figure], list[str]]:
    """Seed, serve, run the chosen scenarios; the figures and the run's notes."""
    notes: list[str] = []
    progress(f"preparing {settings.database} database ({settings.url})")
    await asyncio.to_thread(prepare_database, settings.url, recreate=not settings.reuse)
    db = Database(settings.url, application_name="invoice-rpc-bench")
    try:
        progress(f"seeding {settings.invoices:,} invoices (+{settings.small_invoices:,} in a small tenant)")
        big = await seed_tenant(db, settings.url, "bench", settings.invoices, reuse=settings.reuse)
        small = await seed_tenant(db, settings.url, "bench-small", settings.small_invoices, reuse=settings.reuse)
        notes.append(f"seeded {big.invoices:,} invoices ({big.line_rows:,} export rows) in {big.seconds:.1f} s")
        fleet = ServerFleet(settings.url, settings.workers, work_dir / "servers.log")
        await fleet.start()
        gateway: Gateway | None = None
        try:
            notes.append(f"servers: {fleet.how}; load generator: {generator_name()}")
            if settings.only & {"export", "rest"}:
                gateway = Gateway(fleet.port)
                await gateway.start()
            options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]
            async with grpc.aio.insecure_channel(f"127.0.0.1:{fleet.port}", options=options) as channel:
                ctx = BenchContext(settings, db, big, small, fleet, gateway, channel)
                for name in SCENARIOS:
                    if name not in settings.only:
                        continue
                    progress(f"scenario {name}")
                    module: ModuleType = importlib.import_module(_MODULES[name])
                    started = time.perf_counter()
                    ctx.figures.extend(await module.run(ctx))
                    progress(f"scenario {name} done in {time.perf_counter() - started:.0f} s")
                return _targets_for(settings, ctx.figures), notes + ctx.notes
        finally:
            if gateway is not None:
                await gateway.stop()
            await fleet.stop()
    finally:
        await db.dispose()


def _targets_for(settings: Settings, figures: list[Figure]) -> list[Figure]:
    """The issue sets targets for PostgreSQL; on SQLite the only one is memory that does not
    grow with N (no row held in memory at once), so the others are reported without one."""
    if settings.database == "postgresql":
        return figures
    return [f if "RSS growth" in f.name else replace(f, target="", passed=None) for f in figures]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure("WARNING")
    with tempfile.TemporaryDirectory(prefix="invoice-bench-") as directory:
        work_dir = Path(directory)
        if args.database == "sqlite" and args.reuse and not args.url:
            work_dir = Path("var")
            work_dir.mkdir(exist_ok=True)
        settings = settings_from(args, work_dir)
        figures, notes = asyncio.run(run_bench(settings, work_dir))
    print(f"## invoice-rpc bench: {settings.database}, N = {settings.invoices:,}, median of {settings.repetitions}")
    print()
    print(f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}; {'; '.join(notes)}.")
    print()
    print(render_table(figures))
    failed = [f for f in figures if f.passed is False]
    print()
    print(f"{sum(f.passed is True for f in figures)} target(s) met, {len(failed)} missed.")
    if args.json:
        args.json.write_text(json.dumps([asdict(f) | {"ratio": f.ratio} for f in figures], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
