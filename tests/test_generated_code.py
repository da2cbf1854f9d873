"""The generated code is what protos/generate.py makes from the protos today, and the protos
pass `buf lint` (STANDARD, with the exceptions buf.yaml explains)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
PROTOS_DIR = REPO_DIR / "protos"
GENERATED_DIR = REPO_DIR / "clients" / "python" / "src" / "invoice_rpc" / "v1"
BIN_DIR = Path(sys.executable).parent


def files_under(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_generated_code_is_up_to_date_with_the_protos(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(PROTOS_DIR / "generate.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
    )

    fresh = files_under(tmp_path / "invoice_rpc" / "v1")
    committed = files_under(GENERATED_DIR)
    assert sorted(fresh) == sorted(committed), "generated files differ: run `python protos/generate.py`"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert stale == [], f"stale generated files {stale}: run `python protos/generate.py`"


def test_protos_pass_buf_lint(tmp_path: Path) -> None:
    # generate.py copies the googleapis protos buf resolves imports from (protos/.third_party,
    # git-ignored), so a fresh clone can lint too.
    subprocess.run(
        [sys.executable, str(PROTOS_DIR / "generate.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
    )

    lint = subprocess.run([str(BIN_DIR / "buf"), "lint"], cwd=PROTOS_DIR, capture_output=True, text=True, timeout=120)

    assert lint.returncode == 0, lint.stdout + lint.stderr
