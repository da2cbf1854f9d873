"""The protos' descriptor set, and the services in it that have REST mappings.

The descriptor set is the one source of truth for the gateway: Envoy's transcoder routes by
the `google.api.http` annotations inside it, and the list of services handed to the
transcoder is read from it here, so no route list is kept by hand.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

REPO_DIR = Path(__file__).resolve().parents[3]
GENERATE_SCRIPT = REPO_DIR / "protos" / "generate.py"
OUR_PACKAGE = "invoice_rpc.v1"


def _generate_module() -> ModuleType:
    # protos/generate.py is a script, not a package: load it by path so that the gateway and
    # the `generate` command build the set with the same protoc flags and include paths.
    spec = importlib.util.spec_from_file_location("invoice_rpc_protos_generate", GENERATE_SCRIPT)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"cannot load {GENERATE_SCRIPT}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_descriptor_set(path: Path) -> Path:
    """Write the descriptor set of every proto in protos/invoice_rpc/v1 (with imports and source
    info, as the transcoder needs) to `path`, and return `path`."""
    _generate_module().write_descriptor_set(path)
    return path


def rest_services(descriptor_set: bytes) -> list[str]:
    """Full names of our services that have at least one `google.api.http` mapping, sorted."""
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set)
    names: list[str] = []
    for file in files.file:
        if file.package != OUR_PACKAGE:
            continue
        for service in file.service:
            if any(method.options.HasExtension(annotations_pb2.http) for method in service.method):
                names.append(f"{file.package}.{service.name}")
    return sorted(names)
