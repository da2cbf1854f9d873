"""The benchmark suite runs end to end at a small size: `python -m bench` seeds, serves, runs
every scenario and prints its table. Each scenario checks its own counts (every invoice
exported, streamed and summarized; every bulk item inserted, then unchanged, then 10% updated;
no row rewritten by the identical re-send) and fails the run otherwise. Timings are never
checked here: they belong to the full run on a quiet machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import IN_CI, PG_ADMIN_URL

pytestmark = pytest.mark.slow

REPOSITORY = Path(__file__).resolve().parent.parent
SCENARIOS = {"list", "export", "stream", "bulk", "summary", "rest"}


def _run_bench(tmp_path: Path, *args: str) -> tuple[list[dict[str, object]], str]:
    out = tmp_path / "figures.json"
    command = [sys.executable, "-m", "bench", "--repetitions", "1", "--seconds", "0.5", "--stats-wait", "0"]
    command += ["--json", str(out), *args]
    result = subprocess.run(
        command, cwd=REPOSITORY, capture_output=True, text=True, timeout=240, env={**os.environ}, check=False
    )
    assert result.returncode == 0, f"bench failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return json.loads(out.read_text()), result.stdout


@pytest.fixture
def bench_postgresql_url() -> object:
    """A database of the bench's own naming (it recreates it), dropped afterwards."""
    admin = make_url(PG_ADMIN_URL).set(drivername="postgresql")
    name = f"invoice_bench_smoke_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True, connect_timeout=5):
            pass
    except psycopg.OperationalError as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required under CI=true: {exc}")
        pytest.skip(f"PostgreSQL not available: {exc}")
    yield admin.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_bench_runs_every_scenario_on_postgresql(tmp_path: Path, bench_postgresql_url: str) -> None:
    figures, table = _run_bench(
        tmp_path, "--database", "postgresql", "--url", bench_postgresql_url, "--n", "20000", "--bulk-invoices", "2000"
    )

    assert {f["scenario"] for f in figures} == SCENARIOS
    assert all(f["value"] == f["value"] for f in figures), "a figure is NaN: a scenario measured nothing"
    rewritten = next(f for f in figures if f["scenario"] == "bulk" and "rewritten" in str(f["name"]))
    assert rewritten["passed"] is True  # the identical re-send changed no row (xmin)
    assert "| figure | value | ceiling | ratio | target | result | note |" in table


def test_bench_runs_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bench.sqlite3'}"
    figures, _ = _run_bench(
        tmp_path,
        "--database",
        "sqlite",
        "--url",
        url,
        "--n",
        "3000",
        "--bulk-invoices",
        "1000",
        "--only",
        "list,export,stream,bulk,summary",
    )

    assert {f["scenario"] for f in figures} == SCENARIOS - {"rest"}
