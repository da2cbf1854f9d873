"""One server process of the bench's fleet: `python -m bench.serve_one --port P`.

The fallback of bench/servers.py for a CLI without `serve --workers`: N of these bind the same
port with SO_REUSEPORT, which is what `--workers N` does; also handy to profile one server alone.
No metrics worker: the bench measures rpcs.
"""

from __future__ import annotations

import argparse

from invoice_rpc import config, event_loop
from invoice_rpc.logs import configure
from invoice_rpc.rpc.server import run_server
from invoice_rpc.storage.database import Database


async def _serve(port: int) -> None:
    db = Database(config.database_url())
    try:
        await run_server(db, f"127.0.0.1:{port}", grace_seconds=2.0, reuse_port=True)
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve_one")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    configure("WARNING")
    event_loop.run(_serve(args.port))


if __name__ == "__main__":
    main()
