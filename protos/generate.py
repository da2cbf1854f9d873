"""Generate the Python code for protos/invoice_rpc/v1 (the one command; never edit its output).

    python protos/generate.py            # write into clients/python/src
    python protos/generate.py --out DIR  # write elsewhere (the staleness test compares)

Also copies google/api, google/rpc and google/type protos from googleapis-common-protos into
protos/.third_party (git-ignored) so that `buf lint` resolves imports offline.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

PROTOS_DIR = Path(__file__).resolve().parent
REPO_DIR = PROTOS_DIR.parent
DEFAULT_OUT = REPO_DIR / "clients" / "python" / "src"
THIRD_PARTY = PROTOS_DIR / ".third_party"


def proto_files() -> list[Path]:
    return sorted((PROTOS_DIR / "invoice_rpc" / "v1").glob("*.proto"))


def include_dirs() -> list[str]:
    grpc_tools_protos = str(resources.files("grpc_tools") / "_proto")
    googleapis_root = str(Path(__import__("google.api", fromlist=["x"]).__path__[0]).parent.parent)
    return [str(PROTOS_DIR), googleapis_root, grpc_tools_protos]


def copy_third_party() -> None:
    googleapis_root = Path(include_dirs()[1])
    for folder in ("google/api", "google/rpc", "google/type"):
        target = THIRD_PARTY / folder
        target.mkdir(parents=True, exist_ok=True)
        for proto in (googleapis_root / folder).glob("*.proto"):
            shutil.copyfile(proto, target / proto.name)


def plugin_args() -> list[str]:
    # mypy-protobuf installs its plugins beside the interpreter; PATH may not include them.
    bin_dir = Path(sys.executable).parent
    return [f"--plugin=protoc-gen-{name}={bin_dir / f'protoc-gen-{name}'}" for name in ("mypy", "mypy_grpc")]


def run_protoc(args: list[str]) -> None:
    code = protoc.main(["protoc", *(f"-I{d}" for d in include_dirs()), *plugin_args(), *args])
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")


def generate(out_dir: Path) -> None:
    target = out_dir / "invoice_rpc" / "v1"
    if target.exists():
        shutil.rmtree(target)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [str(p.relative_to(PROTOS_DIR)) for p in proto_files()]
    run_protoc(
        [
            f"--python_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            f"--mypy_out={out_dir}",
            f"--mypy_grpc_out={out_dir}",
            *files,
        ]
    )
    # A marker so type checkers see the generated package as typed.
    (target / "py.typed").write_text("")


def write_descriptor_set(path: Path) -> None:
    """The descriptor set Envoy's transcoder reads (with imports and source info)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    files = [str(p.relative_to(PROTOS_DIR)) for p in proto_files()]
    run_protoc(["--include_imports", "--include_source_info", f"--descriptor_set_out={path}", *files])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    copy_third_party()
    generate(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
