"""The `invoice-rpc` command line: migrate, serve, worker, seed --demo, apikey create.

Logs go to stderr as JSON lines; stdout carries only a command's actual output (for
`apikey create`, the new key alone on the last line, so that scripts can take `tail -n 1`).
The database comes from INVOICE_RPC_DATABASE_URL (default: a SQLite file in ./var/).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import socket
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from invoice_rpc import config
from invoice_rpc.domain.errors import DomainError
from invoice_rpc.logs import configure, log
from invoice_rpc.service.tenants import create_api_key
from invoice_rpc.storage.database import Database

logger = logging.getLogger("invoice_rpc.cli")

DEMO_TENANT_NAME = "demo"
DEMO_MARKETPLACE_CUSTOMER_ID = "aws-demo-0001"


class CommandError(Exception):
    """A command could not do its job for a reason the operator can fix; exit code 2."""


def _worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


# --- commands -------------------------------------------------------------------------------


def cmd_migrate(_args: argparse.Namespace) -> int:
    from invoice_rpc.storage.migrate import upgrade

    url = config.database_url()
    upgrade(url)
    log(logger, logging.INFO, "migrate.done", database=_safe_url(url))
    return 0


async def cmd_serve(args: argparse.Namespace) -> int:
    from invoice_rpc.rpc.server import run_server

    db = Database(config.database_url())
    worker_stop = asyncio.Event()
    worker_task: asyncio.Task[None] | None = None
    if not args.no_worker:
        # Imported only when used: the worker is an optional part of this process.
        from invoice_rpc.worker import run_worker

        worker_task = asyncio.create_task(run_worker(db, worker_id=_worker_id(), stop=worker_stop))
    try:
        # run_server owns SIGTERM/SIGINT: it stops taking calls and drains in-flight ones.
        await run_server(db, f"{args.host}:{args.grpc_port}", grace_seconds=args.grace_seconds)
    finally:
        worker_stop.set()
        if worker_task is not None:
            await worker_task
        await db.dispose()
    return 0


async def cmd_worker(_args: argparse.Namespace) -> int:
    from invoice_rpc.worker import run_worker

    db = Database(config.database_url())
    stop = asyncio.Event()
    _stop_on_signals(stop)
    try:
        await run_worker(db, worker_id=_worker_id(), stop=stop)
    finally:
        await db.dispose()
    return 0


async def cmd_seed(args: argparse.Namespace) -> int:
    from invoice_rpc.service.demo import seed_demo

    if not args.demo:
        raise CommandError("nothing to seed: pass --demo")
    db = Database(config.database_url())
    try:
        async with db.write() as session:
            result = await seed_demo(
                session, tenant_name=DEMO_TENANT_NAME, marketplace_customer_id=DEMO_MARKETPLACE_CUSTOMER_ID
            )
        async with db.write() as session:
            issued = await create_api_key(session, DEMO_TENANT_NAME)
    finally:
        await db.dispose()
    log(logger, logging.INFO, "seed.demo", tenant_id=result.tenant_id, seeded=result.seeded, invoices=result.invoices)
    if result.seeded:
        print(f'Seeded tenant "{DEMO_TENANT_NAME}": {result.describe()}.')
    else:
        print(f'Tenant "{DEMO_TENANT_NAME}" already has data ({result.describe()}); nothing seeded.')
    print(f"First call to try (server on localhost:{args.grpc_port}):")
    print(f"  {_client_command()} --target localhost:{args.grpc_port} --key {issued.key} list --page-size 5 --limit 5")
    print(f'New API key for tenant "{DEMO_TENANT_NAME}" (shown once):')
    print(issued.key)
    return 0


async def cmd_apikey_create(args: argparse.Namespace) -> int:
    db = Database(config.database_url())
    try:
        async with db.write() as session:
            issued = await create_api_key(session, args.tenant, marketplace_customer_id=args.marketplace_customer_id)
    finally:
        await db.dispose()
    log(logger, logging.INFO, "apikey.created", tenant_id=issued.tenant_id, api_key_id=issued.api_key_id)
    print(issued.key)
    return 0


def _client_command() -> str:
    """How to call invoice-rpc-client from here: its bare name when it is on PATH, else its path
    beside this interpreter (e.g. .venv/bin/invoice-rpc-client after `make run`)."""
    name = "invoice-rpc-client"
    beside = Path(sys.executable).parent / name
    if shutil.which(name) or not beside.exists():
        return name
    return str(beside.relative_to(Path.cwd())) if beside.is_relative_to(Path.cwd()) else str(beside)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# --- parser ---------------------------------------------------------------------------------

# A command is a plain function (migrate) or a coroutine function run on a fresh event loop.
Handler = Callable[[argparse.Namespace], int | Coroutine[Any, Any, int]]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="invoice-rpc",
        description="Invoices and receipts over gRPC. Database: $INVOICE_RPC_DATABASE_URL "
        "(default: a SQLite file in ./var/).",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="default INFO"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    migrate = commands.add_parser("migrate", help="bring the database schema up to date (Alembic upgrade head)")
    migrate.set_defaults(handler=cmd_migrate)

    serve = commands.add_parser("serve", help="run the gRPC server (and the metrics worker) until SIGTERM")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    serve.add_argument("--grpc-port", type=int, default=config.ServerPorts.grpc, help="default 50051")
    serve.add_argument("--no-worker", action="store_true", help="do not run the metrics worker in this process")
    serve.add_argument(
        "--grace-seconds", type=float, default=10.0, help="how long in-flight calls may take on shutdown (default 10)"
    )
    serve.set_defaults(handler=cmd_serve)

    worker = commands.add_parser("worker", help="run the metrics worker alone until SIGTERM")
    worker.set_defaults(handler=cmd_worker)

    seed = commands.add_parser("seed", help="load data into the database")
    seed.add_argument("--demo", action="store_true", help='the demo tenant "demo" with realistic invoices')
    seed.add_argument(
        "--grpc-port", type=int, default=config.ServerPorts.grpc, help="port shown in the first call to try"
    )
    seed.set_defaults(handler=cmd_seed)

    apikey = commands.add_parser("apikey", help="manage API keys")
    apikey_commands = apikey.add_subparsers(dest="apikey_command", required=True, metavar="COMMAND")
    create = apikey_commands.add_parser(
        "create", help="create a key (and the tenant, if needed); the key is the last line of stdout"
    )
    create.add_argument("--tenant", required=True, help="tenant name")
    create.add_argument("--marketplace-customer-id", help="the tenant's marketplace customer id (replaces any)")
    create.set_defaults(handler=cmd_apikey_create)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure(args.log_level)
    # Alembic announces each of its plugins at INFO; only the migrations it runs are news.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    handler: Handler = args.handler
    try:
        outcome = handler(args)
        return asyncio.run(outcome) if asyncio.iscoroutine(outcome) else int(outcome)
    except (CommandError, DomainError) as exc:
        parser.exit(2, f"invoice-rpc: error: {exc}\n")
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
