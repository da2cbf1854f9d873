"""The `invoice-rpc` command line: migrate, serve, gateway, up, worker, seed --demo, apikey create.

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
import urllib.request
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from invoice_rpc import config, event_loop
from invoice_rpc.domain.errors import DomainError
from invoice_rpc.gateway.config import DEFAULT_DIRECTORY, GatewaySettings
from invoice_rpc.gateway.envoy import run_gateway
from invoice_rpc.logs import configure, log
from invoice_rpc.service.tenants import create_api_key
from invoice_rpc.serving import ServeOptions, default_worker_count, serve, wait_until_serving
from invoice_rpc.storage.database import MIN_CONNECTIONS_PER_PROCESS, Database

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


def _serve_options(args: argparse.Namespace) -> ServeOptions:
    if args.workers < 1:
        raise CommandError(f"--workers must be at least 1, got {args.workers}")
    if args.db_connections is None:
        try:
            db_connections = config.db_connections()
        except ValueError as error:
            raise CommandError(str(error)) from None
        source = config.DB_CONNECTIONS_ENV
    else:
        db_connections, source = args.db_connections, "--db-connections"
    if db_connections // args.workers < MIN_CONNECTIONS_PER_PROCESS:
        raise CommandError(
            f"{source}={db_connections} is too few for {args.workers} server processes:"
            f" each needs at least {MIN_CONNECTIONS_PER_PROCESS} database connections"
        )
    return ServeOptions(
        host=args.host,
        grpc_port=args.grpc_port,
        workers=args.workers,
        run_metrics_worker=not args.no_worker,
        grace_seconds=args.grace_seconds,
        log_level=args.log_level,
        reuse_port=args.reuse_port,
        db_connections=db_connections,
    )


async def cmd_serve(args: argparse.Namespace) -> int:
    options = _serve_options(args)
    db = Database(config.database_url(), connections=options.connections_per_process)
    stop = asyncio.Event()
    _stop_on_signals(stop)
    try:
        # On SIGTERM/SIGINT every server process stops taking calls and drains in-flight ones.
        return await serve(db, options, stop)
    finally:
        await db.dispose()


def _gateway_settings(args: argparse.Namespace, grpc_host: str) -> GatewaySettings:
    return GatewaySettings(
        grpc_host=grpc_host,
        grpc_port=args.grpc_port,
        http_port=args.http_port,
        admin_port=args.admin_port,
        listen_host=args.http_host,
    )


async def cmd_gateway(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    _stop_on_signals(stop)
    return await run_gateway(_gateway_settings(args, args.grpc_host), stop, _envoy_directory(args))


async def cmd_up(args: argparse.Namespace) -> int:
    options = _serve_options(args)
    db = Database(config.database_url(), connections=options.connections_per_process)
    stop = asyncio.Event()
    _stop_on_signals(stop)
    servers_stop = asyncio.Event()
    servers = asyncio.create_task(serve(db, options, servers_stop))
    try:
        ready = asyncio.create_task(wait_until_serving(options.host, options.grpc_port))
        await asyncio.wait({servers, ready}, return_when=asyncio.FIRST_COMPLETED)
        if servers.done():  # the server failed to start (a port in use, say)
            ready.cancel()
            return await servers
        await ready
        grpc_host = "127.0.0.1" if options.host in ("0.0.0.0", "") else options.host
        gateway = asyncio.create_task(run_gateway(_gateway_settings(args, grpc_host), stop, _envoy_directory(args)))
        announce = asyncio.create_task(_announce_when_listening(args))
        await asyncio.wait({servers, gateway}, return_when=asyncio.FIRST_COMPLETED)
        announce.cancel()
        # Envoy goes first, so no new request reaches a server that is draining.
        stop.set()
        gateway_code = await gateway
        servers_stop.set()
        servers_code = await servers
        return gateway_code or servers_code
    finally:
        servers_stop.set()
        if not servers.done():
            await servers
        await db.dispose()


async def _announce_when_listening(args: argparse.Namespace) -> None:
    # The REST port answers /healthz once Envoy listens and has seen the server healthy.
    url = f"http://127.0.0.1:{args.http_port}/healthz"
    while True:
        if await asyncio.to_thread(_http_ok, url):
            break
        await asyncio.sleep(0.1)
    print(
        f"invoice-rpc is up: REST http://localhost:{args.http_port} (Envoy admin 127.0.0.1:{args.admin_port}), "
        f"gRPC localhost:{args.grpc_port}. Ctrl-C stops.",
        flush=True,
    )


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _envoy_directory(args: argparse.Namespace) -> Path:
    return Path(args.envoy_dir) if args.envoy_dir else DEFAULT_DIRECTORY


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
    from invoice_rpc.worker import compact_rollup_tables

    if not args.demo:
        raise CommandError("nothing to seed: pass --demo")
    db = Database(config.database_url())
    try:
        async with db.write() as session:
            result = await seed_demo(
                session, tenant_name=DEMO_TENANT_NAME, marketplace_customer_id=DEMO_MARKETPLACE_CUSTOMER_ID
            )
        if result.seeded:
            # The demo's writes appended a rollup row or two each: fold them now (milliseconds)
            # rather than at the worker's first pass.
            await compact_rollup_tables(db)
        async with db.write() as session:
            issued = await create_api_key(session, DEMO_TENANT_NAME)
    finally:
        await db.dispose()
    log(logger, logging.INFO, "seed.demo", tenant_id=result.tenant_id, seeded=result.seeded, invoices=result.invoices)
    if result.seeded:
        print(f'Seeded tenant "{DEMO_TENANT_NAME}": {result.describe()}.')
    else:
        print(f'Tenant "{DEMO_TENANT_NAME}" already has data ({result.describe()}); nothing seeded.')
    print(f"First call to try (gRPC server on localhost:{args.grpc_port}):")
    print(f"  {_client_command()} --target localhost:{args.grpc_port} --key {issued.key} list --page-size 5 --limit 5")
    print(f"Or over REST, through Envoy (`invoice-rpc up`, REST on localhost:{args.http_port}):")
    print(
        f"  curl -s -H 'Authorization: Bearer {issued.key}' "
        f"'http://localhost:{args.http_port}/api/v1/invoice-receipts?per_page=5'"
    )
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


def _add_server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="0.0.0.0", help="address the gRPC server listens on (default 0.0.0.0)")
    parser.add_argument("--grpc-port", type=int, default=config.ServerPorts.grpc, help="default 50051")
    parser.add_argument(
        "--workers",
        type=int,
        default=default_worker_count(),
        help=f"server processes sharing the port (SO_REUSEPORT); default: the CPUs here ({default_worker_count()})",
    )
    parser.add_argument("--no-worker", action="store_true", help="do not run the metrics worker in this process")
    parser.add_argument(
        "--grace-seconds", type=float, default=10.0, help="how long in-flight calls may take on shutdown (default 10)"
    )
    parser.add_argument(
        "--db-connections",
        type=int,
        default=None,
        help=f"PostgreSQL connections all server processes may open together, an equal share each"
        f" (default ${config.DB_CONNECTIONS_ENV} or {config.DEFAULT_DB_CONNECTIONS})",
    )
    # Set by a multi-process server on the children it starts.
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)


def _add_gateway_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--http-host", default="0.0.0.0", help="address Envoy's REST listener binds (default 0.0.0.0)")
    parser.add_argument("--http-port", type=int, default=config.ServerPorts.http, help="REST port (default 8080)")
    parser.add_argument(
        "--admin-port", type=int, default=config.ServerPorts.admin, help="Envoy admin port, on 127.0.0.1 (default 9901)"
    )
    parser.add_argument(
        "--envoy-dir", help="where the generated Envoy config and Envoy's log go (default: envoy/generated)"
    )


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

    serve = commands.add_parser(
        "serve", help="run the gRPC server (N processes on one port) and the metrics worker until SIGTERM"
    )
    _add_server_arguments(serve)
    serve.set_defaults(handler=cmd_serve)

    gateway = commands.add_parser("gateway", help="run Envoy (REST) in front of a running gRPC server until SIGTERM")
    gateway.add_argument("--grpc-host", default="127.0.0.1", help="where the gRPC server is (default 127.0.0.1)")
    gateway.add_argument("--grpc-port", type=int, default=config.ServerPorts.grpc, help="default 50051")
    _add_gateway_arguments(gateway)
    gateway.set_defaults(handler=cmd_gateway)

    up = commands.add_parser("up", help="run the gRPC server, the metrics worker and Envoy together until SIGTERM")
    _add_server_arguments(up)
    _add_gateway_arguments(up)
    up.set_defaults(handler=cmd_up)

    worker = commands.add_parser("worker", help="run the metrics worker alone until SIGTERM")
    worker.set_defaults(handler=cmd_worker)

    seed = commands.add_parser("seed", help="load data into the database")
    seed.add_argument("--demo", action="store_true", help='the demo tenant "demo" with realistic invoices')
    seed.add_argument(
        "--grpc-port", type=int, default=config.ServerPorts.grpc, help="gRPC port shown in the first call to try"
    )
    seed.add_argument(
        "--http-port", type=int, default=config.ServerPorts.http, help="REST port shown in the curl line to try"
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
        return event_loop.run(outcome) if asyncio.iscoroutine(outcome) else int(outcome)
    except (CommandError, DomainError) as exc:
        parser.exit(2, f"invoice-rpc: error: {exc}\n")
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
