"""The `invoice-rpc` command line, run as operators run it: a subprocess of the installed console
script, against a real database, with real calls to the server it starts."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from invoice_rpc.v1 import import_service_pb2 as imp
from invoice_rpc.v1 import import_service_pb2_grpc, invoice_service_pb2_grpc, resources_pb2
from invoice_rpc.v1 import invoice_service_pb2 as isvc
from sqlalchemy import create_engine, func, inspect, select

from invoice_rpc.storage import models as m
from invoice_rpc.storage.database import sync_url

CLI = str(Path(sys.executable).parent / "invoice-rpc")
STARTUP_TIMEOUT_SECONDS = 30.0


def cli_env(database_url: str) -> dict[str, str]:
    return {**os.environ, "INVOICE_RPC_DATABASE_URL": database_url}


def run_cli(database_url: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run one command to completion; fails the test with its stderr if it exits non-zero."""
    done = subprocess.run(
        [CLI, *args], env=cli_env(database_url), capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"invoice-rpc {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    return done


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


@pytest.fixture
def sqlite_file_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'var' / 'invoice-rpc.sqlite3'}"


@pytest.fixture
def migrated_sqlite_url(sqlite_file_url: str) -> str:
    run_cli(sqlite_file_url, "migrate")
    return sqlite_file_url


async def start_cli(database_url: str, log_path: Path, *args: str) -> asyncio.subprocess.Process:
    """A long-running command; its output goes to a file, so that a full pipe never blocks it."""
    with log_path.open("ab") as log_file:
        return await asyncio.create_subprocess_exec(
            CLI, *args, env=cli_env(database_url), stdout=log_file, stderr=log_file
        )


async def exit_code(process: asyncio.subprocess.Process) -> int:
    """The process's exit code; fails if it is still running after 30 seconds."""
    async with asyncio.timeout(30):
        return await process.wait()


def log_text(log_path: Path) -> str:
    return log_path.read_text() if log_path.exists() else ""


@asynccontextmanager
async def serving(
    database_url: str, *extra_args: str, port: int | None = None
) -> AsyncIterator[tuple[asyncio.subprocess.Process, grpc.aio.Channel]]:
    """`invoice-rpc serve` on `port` (default: a free one), and a channel to it once it answers
    SERVING."""
    port = port or free_port()
    log_path = Path(sync_url(database_url).database or "").with_suffix(f".serve-{port}.log")
    process = await start_cli(
        database_url, log_path, "serve", "--host", "127.0.0.1", "--grpc-port", str(port), *extra_args
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await _wait_until_serving(process, channel, log_path)
            yield process, channel
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _wait_until_serving(process: asyncio.subprocess.Process, channel: grpc.aio.Channel, log_path: Path) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.returncode is not None:
            pytest.fail(f"serve exited early with {process.returncode}:\n{log_text(log_path)}")
        try:
            reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(0.1)
    pytest.fail("serve did not answer SERVING in time")


@contextmanager
def sqlite_write_lock(database_url: str) -> Iterator[sqlite3.Connection]:
    """Hold the SQLite file's write lock, as a long transaction of another writer would."""
    connection = sqlite3.connect(sync_url(database_url).database or "", isolation_level=None, timeout=30)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield connection
    finally:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        connection.close()


# --- migrate --------------------------------------------------------------------------------


def test_migrate_creates_the_schema_in_a_fresh_sqlite_file(sqlite_file_url: str) -> None:
    done = run_cli(sqlite_file_url, "migrate")

    engine = create_engine(sync_url(sqlite_file_url))
    try:
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    assert set(m.Base.metadata.tables) <= tables
    assert done.stdout == ""


def test_migrate_twice_changes_nothing_the_second_time(migrated_sqlite_url: str) -> None:
    done = run_cli(migrated_sqlite_url, "migrate")

    assert "Running upgrade" not in done.stderr


def test_logs_are_json_lines_on_stderr(sqlite_file_url: str) -> None:
    done = run_cli(sqlite_file_url, "migrate")

    events = [json.loads(line)["event"] for line in done.stderr.splitlines() if line.strip()]
    assert "migrate.done" in events


# --- apikey create --------------------------------------------------------------------------


def test_apikey_create_prints_the_key_alone_on_the_last_line(migrated_sqlite_url: str) -> None:
    done = run_cli(migrated_sqlite_url, "apikey", "create", "--tenant", "acme")

    last_line = done.stdout.splitlines()[-1]
    assert last_line.startswith("irk_")
    assert last_line == last_line.strip() and " " not in last_line


def test_apikey_create_makes_the_tenant_once_and_sets_its_marketplace_id(migrated_sqlite_url: str) -> None:
    run_cli(migrated_sqlite_url, "apikey", "create", "--tenant", "acme")
    run_cli(migrated_sqlite_url, "apikey", "create", "--tenant", "acme", "--marketplace-customer-id", "aws-42")

    engine = create_engine(sync_url(migrated_sqlite_url))
    try:
        with engine.connect() as connection:
            tenants = connection.execute(select(m.Tenant.name, m.Tenant.marketplace_customer_id)).all()
            key_count = len(connection.execute(select(m.ApiKey.id)).all())
    finally:
        engine.dispose()
    assert [(t.name, t.marketplace_customer_id) for t in tenants] == [("acme", "aws-42")]
    assert key_count == 2


def test_apikey_create_with_an_empty_tenant_name_fails_with_exit_code_2(migrated_sqlite_url: str) -> None:
    done = subprocess.run(
        [CLI, "apikey", "create", "--tenant", " "],
        env=cli_env(migrated_sqlite_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert "tenant" in done.stderr
    assert done.stdout == ""


async def test_key_from_apikey_create_authenticates_a_real_call(database_url: str, channel: grpc.aio.Channel) -> None:
    # Runs on both databases, against the test session's in-process server.
    done = await asyncio.to_thread(run_cli, database_url, "apikey", "create", "--tenant", f"cli-{os.urandom(6).hex()}")
    key = done.stdout.splitlines()[-1]

    reply = await invoice_service_pb2_grpc.InvoiceServiceStub(channel).ListInvoices(
        isvc.ListInvoicesRequest(page_size=5), metadata=bearer(key)
    )

    assert list(reply.invoices) == []


# --- serve ----------------------------------------------------------------------------------


async def test_serve_answers_calls_and_exits_0_on_sigterm(migrated_sqlite_url: str) -> None:
    key = (await asyncio.to_thread(run_cli, migrated_sqlite_url, "apikey", "create", "--tenant", "acme")).stdout
    key = key.splitlines()[-1]
    async with serving(migrated_sqlite_url) as (process, channel):
        reply = await invoice_service_pb2_grpc.InvoiceServiceStub(channel).ListInvoices(
            isvc.ListInvoicesRequest(page_size=5), metadata=bearer(key)
        )
        assert list(reply.invoices) == []

        process.send_signal(signal.SIGTERM)

        assert await exit_code(process) == 0


async def test_serve_finishes_an_in_flight_call_on_sigterm_then_exits_0(migrated_sqlite_url: str) -> None:
    key = (await asyncio.to_thread(run_cli, migrated_sqlite_url, "apikey", "create", "--tenant", "acme")).stdout
    key = key.splitlines()[-1]
    async with serving(migrated_sqlite_url) as (process, channel):
        imports = import_service_pb2_grpc.ImportServiceStub(channel)
        with sqlite_write_lock(migrated_sqlite_url) as lock:
            # The write waits on the lock inside the server: a call that is surely in flight.
            call = asyncio.ensure_future(
                imports.CreateDataSource(
                    imp.CreateDataSourceRequest(data_source=resources_pb2.DataSource(name="stripe")),
                    metadata=bearer(key),
                    timeout=60,
                )
            )
            await asyncio.sleep(1.0)
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(1.0)
            assert process.returncode is None, "serve exited with a call in flight"
            assert not call.done()
            lock.execute("ROLLBACK")

        created = await call
        assert created.name == "stripe"
        assert await exit_code(process) == 0


async def test_serve_runs_the_metrics_worker_that_recalculates_queued_customers(demo_seed: DemoSeed) -> None:
    # Seeding imports invoices for the second data source's customers, which queues them.
    async with serving(demo_seed.url) as (_process, channel):
        imports = import_service_pb2_grpc.ImportServiceStub(channel)
        request = imp.GetCustomerRequest(
            external_key=imp.ExternalCustomerKey(data_source="chargebee", customer_id="cus_005")
        )
        async with asyncio.timeout(30):
            customer = await imports.GetCustomer(request, metadata=bearer(demo_seed.key))
            while not customer.HasField("metrics_time"):
                await asyncio.sleep(0.2)
                customer = await imports.GetCustomer(request, metadata=bearer(demo_seed.key))

    assert [metric.currency_code for metric in customer.metrics] == ["USD"]
    assert customer.metrics[0].invoice_count >= 3


def child_pids(pid: int) -> list[int]:
    """The pids of a process's direct children (Linux /proc)."""
    pids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(child) for child in (task / "children").read_text().split()]
    return pids


def pid_exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and "Z" not in _proc_state(pid)


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "Z"


async def test_serve_with_workers_runs_that_many_processes_on_one_port_and_stops_them_all(
    migrated_sqlite_url: str,
) -> None:
    key = (await asyncio.to_thread(run_cli, migrated_sqlite_url, "apikey", "create", "--tenant", "acme")).stdout
    key = key.splitlines()[-1]
    port = free_port()
    async with serving(migrated_sqlite_url, "--workers", "3", "--db-connections", "30", port=port) as (
        process,
        _channel,
    ):
        for _ in range(300):
            if len(children := child_pids(process.pid)) == 2:
                break
            await asyncio.sleep(0.1)
        assert len(children) == 2
        # Each child may open its share of the connections, as this process does.
        assert all(_option_of(pid, "--db-connections") == "10" for pid in children)
        # Each new channel is a new connection, which the kernel hands to any of the processes.
        for _ in range(6):
            async with grpc.aio.insecure_channel(f"127.0.0.1:{_port_of(process)}") as channel:
                reply = await invoice_service_pb2_grpc.InvoiceServiceStub(channel).ListInvoices(
                    isvc.ListInvoicesRequest(page_size=1), metadata=bearer(key)
                )
                assert list(reply.invoices) == []

        process.send_signal(signal.SIGTERM)

        assert await exit_code(process) == 0
        assert not [pid for pid in children if pid_exists(pid)]
    # Starting the workers (fork and exec, on uvloop) woke no fork handler of gRPC's.
    log_path = Path(sync_url(migrated_sqlite_url).database or "").with_suffix(f".serve-{port}.log")
    assert "fork" not in log_text(log_path)


def _port_of(process: asyncio.subprocess.Process) -> int:
    return int(_option_of(process.pid, "--grpc-port"))


def _option_of(pid: int, option: str) -> str:
    args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    return args[args.index(option) + 1]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--workers", "4", "--db-connections", "8"],
            {},
            "--db-connections=8 is too few for 4 server processes: each needs at least 3 database connections",
        ),
        (
            ["--workers", "2"],
            {"INVOICE_RPC_DB_CONNECTIONS": "5"},
            "INVOICE_RPC_DB_CONNECTIONS=5 is too few for 2 server processes",
        ),
        (
            ["--workers", "2"],
            {"INVOICE_RPC_DB_CONNECTIONS": "lots"},
            "INVOICE_RPC_DB_CONNECTIONS must be a whole number",
        ),
    ],
)
def test_serve_refuses_a_connection_budget_its_processes_cannot_share(
    migrated_sqlite_url: str, args: list[str], env: dict[str, str], message: str
) -> None:
    done = subprocess.run(
        [CLI, "serve", "--grpc-port", str(free_port()), *args],
        env={**cli_env(migrated_sqlite_url), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert message in done.stderr


async def test_serve_without_worker_runs_and_exits_0_on_sigterm(migrated_sqlite_url: str) -> None:
    async with serving(migrated_sqlite_url, "--no-worker") as (process, _channel):
        process.send_signal(signal.SIGTERM)

        assert await exit_code(process) == 0


# --- worker ---------------------------------------------------------------------------------


async def test_worker_runs_until_sigterm_then_exits_0(migrated_sqlite_url: str, tmp_path: Path) -> None:
    log_path = tmp_path / "worker.log"
    process = await start_cli(migrated_sqlite_url, log_path, "worker")
    try:
        await asyncio.sleep(1.5)
        assert process.returncode is None, log_text(log_path)

        process.send_signal(signal.SIGTERM)

        assert await exit_code(process) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


# --- seed --demo ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoSeed:
    url: str
    grpc_port: int
    http_port: int
    key: str
    stdout: str


@pytest.fixture(scope="module")
def demo_seed(tmp_path_factory: pytest.TempPathFactory) -> DemoSeed:
    """A fresh SQLite file, migrated and seeded by `seed --demo`, with what it printed for a
    server on `grpc_port`."""
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'invoice-rpc.sqlite3'}"
    port, http_port = free_port(), free_port()
    run_cli(url, "migrate")
    done = run_cli(url, "seed", "--demo", "--grpc-port", str(port), "--http-port", str(http_port), timeout=300)
    return DemoSeed(url=url, grpc_port=port, http_port=http_port, key=done.stdout.splitlines()[-1], stdout=done.stdout)


def invoice_count(database_url: str) -> int:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(m.Invoice)).scalar_one()
    finally:
        engine.dispose()


async def test_seed_demo_then_a_real_call_lists_demo_invoices(demo_seed: DemoSeed) -> None:
    async with serving(demo_seed.url, "--no-worker") as (_process, channel):
        reply = await invoice_service_pb2_grpc.InvoiceServiceStub(channel).ListInvoices(
            isvc.ListInvoicesRequest(page_size=5, page=1), metadata=bearer(demo_seed.key)
        )

    assert len(reply.invoices) == 5
    assert reply.page_info.total >= 200


def test_seed_demo_prints_the_new_key_alone_on_the_last_line(demo_seed: DemoSeed) -> None:
    assert demo_seed.key.startswith("irk_")
    assert " " not in demo_seed.key


async def test_first_call_printed_by_seed_demo_lists_demo_invoices(demo_seed: DemoSeed) -> None:
    [command] = [line for line in demo_seed.stdout.splitlines() if "invoice-rpc-client" in line]
    assert f"--target localhost:{demo_seed.grpc_port} --key {demo_seed.key}" in command

    async with serving(demo_seed.url, "--no-worker", port=demo_seed.grpc_port):
        client = await asyncio.create_subprocess_exec(
            *shlex.split(command), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        async with asyncio.timeout(60):
            stdout, stderr = await client.communicate()

    assert client.returncode == 0, stderr.decode()
    assert len([line for line in stdout.decode().splitlines() if line.startswith("INV-")]) == 5


def test_seed_demo_a_second_time_adds_nothing_and_says_so(demo_seed: DemoSeed) -> None:
    before = invoice_count(demo_seed.url)

    done = run_cli(demo_seed.url, "seed", "--demo")

    assert invoice_count(demo_seed.url) == before
    assert "already has data" in done.stdout
    assert done.stdout.splitlines()[-1].startswith("irk_")


# --- up and gateway -------------------------------------------------------------------------


async def _wait_for_line(log_path: Path, process: asyncio.subprocess.Process, text: str) -> None:
    async with asyncio.timeout(STARTUP_TIMEOUT_SECONDS):
        while text not in log_text(log_path):
            if process.returncode is not None:
                pytest.fail(f"exited early with {process.returncode}:\n{log_text(log_path)}")
            await asyncio.sleep(0.1)


async def test_up_serves_the_curl_line_printed_by_seed_demo_then_stops_everything(
    demo_seed: DemoSeed, tmp_path: Path
) -> None:
    [curl_line] = [line.strip() for line in demo_seed.stdout.splitlines() if line.strip().startswith("curl ")]
    log_path = tmp_path / "up.log"
    process = await start_cli(
        demo_seed.url,
        log_path,
        "up",
        "--grpc-port",
        str(demo_seed.grpc_port),
        "--http-port",
        str(demo_seed.http_port),
        "--admin-port",
        str(free_port()),
        "--envoy-dir",
        str(tmp_path / "envoy"),
    )
    try:
        await _wait_for_line(log_path, process, "invoice-rpc is up")
        descendants = child_pids(process.pid)

        curl = await asyncio.create_subprocess_exec(
            *shlex.split(curl_line), "--write-out", "\n%{http_code}", stdout=asyncio.subprocess.PIPE
        )
        stdout, _ = await curl.communicate()

        body, status = stdout.decode().rsplit("\n", 1)
        assert status == "200"
        page = json.loads(body)
        assert len(page["data"]) == 5
        assert page["pagination"]["per_page"] == 5

        process.send_signal(signal.SIGTERM)
        assert await exit_code(process) == 0
        assert len(descendants) >= 2  # a second server process and Envoy
        assert not [pid for pid in descendants if pid_exists(pid)]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_gateway_puts_rest_in_front_of_a_running_server(demo_seed: DemoSeed, tmp_path: Path) -> None:
    http_port = free_port()
    async with serving(demo_seed.url, "--no-worker", "--workers", "1") as (server, _channel):
        log_path = tmp_path / "gateway.log"
        gateway = await start_cli(
            demo_seed.url,
            log_path,
            "gateway",
            "--grpc-port",
            str(_port_of(server)),
            "--http-port",
            str(http_port),
            "--admin-port",
            str(free_port()),
            "--envoy-dir",
            str(tmp_path / "envoy"),
        )
        try:
            reply: tuple[int, bytes] = (0, b"")
            async with asyncio.timeout(STARTUP_TIMEOUT_SECONDS):
                while reply[0] != 200:
                    reply = await asyncio.to_thread(_get, f"http://127.0.0.1:{http_port}/healthz")
                    await asyncio.sleep(0.1)
            status, body = await asyncio.to_thread(
                _get, f"http://127.0.0.1:{http_port}/api/v1/invoice-receipts/INV-2026-0001", demo_seed.key
            )
            assert status == 200, body
            assert json.loads(body)["data"]["invoice_number"] == "INV-2026-0001"

            gateway.send_signal(signal.SIGTERM)
            assert await exit_code(gateway) == 0
        finally:
            if gateway.returncode is None:
                gateway.kill()
                await gateway.wait()


def _get(url: str, key: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""
