"""Envoy's configuration for the REST faces, generated from the descriptor set.

One listener (HTTP/1.1 and h2c) runs, in order: the health check filter (`/healthz`, answered
from the gRPC cluster's health), the buffer filter (the request body limit), the Lua REST shim
(envoy/rest_shim.lua), the gRPC-JSON transcoder (services read from the descriptor set) and the
router. One cluster reaches the gRPC server over HTTP/2 and health-checks it with the gRPC health
protocol. Envoy's own replies (its 400s, 404s, 413s, 431s, 503s) are rendered as a JSON
google.rpc.Status, the shape the transcoder gives the server's errors, so a REST caller sees one
error format.

Limits a REST caller meets before the server (both below what the gRPC server accepts, so that
an oversized request is refused here, as what it is, and never reaches the server as a
RESOURCE_EXHAUSTED on its gRPC message or metadata limits):
  * the request body: at most MAX_REQUEST_BODY_BYTES (8 MiB), else 413;
  * the request line and headers: at most MAX_REQUEST_HEADERS_KIB (6 KiB) together and at most
    MAX_REQUEST_HEADERS_COUNT (32) headers, else 431.

The file written is JSON, which is also YAML: Envoy reads it either way, and no YAML library
is needed to produce it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from invoice_rpc.gateway.descriptors import REPO_DIR, build_descriptor_set, rest_services

LUA_SHIM = REPO_DIR / "envoy" / "rest_shim.lua"
DEFAULT_DIRECTORY = REPO_DIR / "envoy" / "generated"
GRPC_CLUSTER = "invoice_rpc_grpc"
HEALTH_PATH = "/healthz"

# A REST body is one JSON document of at most 1000 items (the import batch limit); 8 MiB leaves
# room for that and stays well below the gRPC server's 32 MiB message limit (rpc/server.py).
MAX_REQUEST_BODY_BYTES = 8 * 1024 * 1024
# The request line and headers, in size and in number. What reaches the server is about as big:
# the transcoder moves the query into the gRPC message but copies the original path into a
# header, Envoy adds a few headers of its own, and gRPC counts 32 bytes more for each header.
# 6 KiB and 32 headers keep that under gRPC's 8 KiB metadata limit, beyond which the server
# would refuse the call as RESOURCE_EXHAUSTED (a 429 that would misname the problem).
MAX_REQUEST_HEADERS_KIB = 6
MAX_REQUEST_HEADERS_COUNT = 32

# Envoy's local replies, by HTTP status, as the google.rpc.Code the JSON body names: the
# inverse of the transcoder's gRPC -> HTTP mapping, so that an Envoy 400 reads like a server's.
LOCAL_REPLY_CODES: dict[int, tuple[int, str]] = {
    400: (3, "INVALID_ARGUMENT"),
    401: (16, "UNAUTHENTICATED"),
    403: (7, "PERMISSION_DENIED"),
    404: (5, "NOT_FOUND"),
    409: (10, "ABORTED"),
    413: (3, "INVALID_ARGUMENT"),
    429: (8, "RESOURCE_EXHAUSTED"),
    431: (3, "INVALID_ARGUMENT"),
    500: (13, "INTERNAL"),
    501: (12, "UNIMPLEMENTED"),
    502: (14, "UNAVAILABLE"),
    503: (14, "UNAVAILABLE"),
    504: (4, "DEADLINE_EXCEEDED"),
}
UNKNOWN_CODE = (2, "UNKNOWN")
# Envoy's own words for these ("Payload Too Large") do not say what the limit is.
LOCAL_REPLY_MESSAGES: dict[int, str] = {
    413: f"request body is larger than {MAX_REQUEST_BODY_BYTES} bytes",
    431: (
        f"request line and headers are larger than {MAX_REQUEST_HEADERS_KIB} KiB together"
        f" or more than {MAX_REQUEST_HEADERS_COUNT} headers"
    ),
}


@dataclass(frozen=True)
class GatewaySettings:
    """Where Envoy listens and where the gRPC server is. Port 0 lets the system choose
    (EnvoyProcess reports the ports actually bound)."""

    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    http_port: int = 8080
    admin_port: int = 9901
    listen_host: str = "0.0.0.0"
    admin_host: str = "127.0.0.1"
    # How often Envoy asks the server's gRPC health service; also while no traffic flows.
    health_check_interval_seconds: float = 1.0


def _duration(seconds: float) -> str:
    return f"{seconds:.3f}s"


def _socket_address(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def _status_body(code: int, name: str, message: str) -> dict[str, Any]:
    return {
        "json_format": {"code": code, "status": name, "message": message, "details": []},
        "content_type": "application/json",
    }


def local_reply_config() -> dict[str, Any]:
    """Envoy's own replies as JSON: `{"code": 3, "status": "INVALID_ARGUMENT", "message": ...}`;
    the health check's as `{"status": "SERVING"}` (200) or `{"status": "NOT_SERVING"}` (503)."""
    health_path = {"header_filter": {"header": {"name": ":path", "string_match": {"exact": HEALTH_PATH}}}}
    health_mappers = [
        {
            "filter": {"and_filter": {"filters": [health_path, _status_filter(200)]}},
            "body_format_override": {"json_format": {"status": "SERVING"}, "content_type": "application/json"},
        },
        {
            "filter": health_path,
            "body_format_override": {"json_format": {"status": "NOT_SERVING"}, "content_type": "application/json"},
        },
    ]
    status_mappers = [
        {
            "filter": _status_filter(http_status),
            "body_format_override": _status_body(
                code, name, LOCAL_REPLY_MESSAGES.get(http_status, "%LOCAL_REPLY_BODY%")
            ),
        }
        for http_status, (code, name) in LOCAL_REPLY_CODES.items()
    ]
    return {
        "mappers": health_mappers + status_mappers,
        "body_format": _status_body(*UNKNOWN_CODE, "%LOCAL_REPLY_BODY%"),
    }


def _status_filter(http_status: int) -> dict[str, Any]:
    # runtime_key is required by the API; no runtime layer sets it, so the default applies.
    comparison = {"op": "EQ", "value": {"default_value": http_status, "runtime_key": "invoice_rpc.unused"}}
    return {"status_code_filter": {"comparison": comparison}}


def _transcoder(descriptor_path: Path, services: list[str]) -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.grpc_json_transcoder",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
            "proto_descriptor": str(descriptor_path),
            "services": services,
            # Only the documented paths: every mapping comes from a google.api.http annotation.
            "auto_mapping": False,
            "convert_grpc_status": True,
            "case_insensitive_enum_parsing": True,
            "print_options": {
                "add_whitespace": False,
                "always_print_primitive_fields": True,
                "always_print_enums_as_ints": False,
                "preserve_proto_field_names": True,
            },
            "request_validation_options": {
                # An unmapped path is a 404 here, not a raw pass-through to the gRPC server.
                "reject_unknown_method": True,
                # An unknown query parameter is a 400, not a 503 from the server.
                "reject_unknown_query_parameters": True,
                "reject_binding_body_field_collisions": True,
            },
        },
    }


def _lua_shim() -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.lua",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            # Inlined so that the generated config stands alone.
            "default_source_code": {"inline_string": LUA_SHIM.read_text()},
        },
    }


def _body_limit() -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.buffer",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
            # The whole body is read before the shim and the transcoder see it: a unary request
            # is transcoded whole anyway, and a body over the limit is refused before any work.
            "max_request_bytes": MAX_REQUEST_BODY_BYTES,
        },
    }


def _health_check() -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.health_check",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck",
            "pass_through_mode": False,
            "headers": [{"name": ":path", "string_match": {"exact": HEALTH_PATH}}],
            # 200 only while the gRPC server answers SERVING; 503 otherwise.
            "cluster_min_healthy_percentages": {GRPC_CLUSTER: {"value": 100.0}},
        },
    }


def _route_config() -> dict[str, Any]:
    transcoder_off = {
        "envoy.filters.http.grpc_json_transcoder": {
            "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
            "disabled": True,
        }
    }
    return {
        "name": "rest",
        "virtual_hosts": [
            {
                "name": "invoice_rpc",
                "domains": ["*"],
                "routes": [
                    {
                        # Answered by the health check filter before routing; the route keeps the
                        # transcoder off for the path should that filter ever pass it through.
                        "match": {"path": HEALTH_PATH},
                        "direct_response": {"status": 503, "body": {"inline_string": "health filter bypassed"}},
                        "typed_per_filter_config": transcoder_off,
                    },
                    {
                        "match": {"prefix": "/"},
                        # Exports stream for as long as they need; the stream idle timeout still
                        # ends a stalled one.
                        "route": {"cluster": GRPC_CLUSTER, "timeout": "0s"},
                    },
                ],
            }
        ],
    }


def _listener(settings: GatewaySettings, descriptor_path: Path, services: list[str]) -> dict[str, Any]:
    connection_manager = {
        "@type": (
            "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
        ),
        "stat_prefix": "rest",
        "codec_type": "AUTO",
        # The server logs and reports x-request-id as the request id; callers see it too.
        "generate_request_id": True,
        "always_set_request_id_in_response": True,
        "route_config": _route_config(),
        "max_request_headers_kb": MAX_REQUEST_HEADERS_KIB,
        "common_http_protocol_options": {"max_headers_count": MAX_REQUEST_HEADERS_COUNT},
        "http_filters": [
            _health_check(),
            _body_limit(),
            _lua_shim(),
            _transcoder(descriptor_path, services),
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
            },
        ],
        "local_reply_config": local_reply_config(),
    }
    return {
        "name": "rest",
        "address": _socket_address(settings.listen_host, settings.http_port),
        "filter_chains": [
            {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": connection_manager}]}
        ],
    }


def _grpc_cluster(settings: GatewaySettings) -> dict[str, Any]:
    interval = _duration(settings.health_check_interval_seconds)
    return {
        "name": GRPC_CLUSTER,
        "type": "STRICT_DNS",
        "dns_lookup_family": "V4_PREFERRED",
        "connect_timeout": "2s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "load_assignment": {
            "cluster_name": GRPC_CLUSTER,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": _socket_address(settings.grpc_host, settings.grpc_port)}}]}
            ],
        },
        "health_checks": [
            {
                "timeout": "1s",
                "interval": interval,
                # Default 60 s: a server that went NOT_SERVING while idle would look healthy.
                "no_traffic_interval": interval,
                "unhealthy_threshold": 1,
                "healthy_threshold": 1,
                "grpc_health_check": {},
            }
        ],
        # Without this a single unhealthy host still receives traffic (panic routing).
        "common_lb_config": {"healthy_panic_threshold": {"value": 0.0}},
    }


def build_envoy_config(settings: GatewaySettings, descriptor_path: Path) -> dict[str, Any]:
    """Envoy's bootstrap configuration for `settings`, transcoding every REST-mapped service of
    the descriptor set at `descriptor_path`."""
    services = rest_services(descriptor_path.read_bytes())
    if not services:
        raise ValueError(f"{descriptor_path}: no service has a google.api.http mapping")
    return {
        "admin": {"address": _socket_address(settings.admin_host, settings.admin_port)},
        "static_resources": {
            "listeners": [_listener(settings, descriptor_path, services)],
            "clusters": [_grpc_cluster(settings)],
        },
    }


def write_envoy_config(settings: GatewaySettings, directory: Path = DEFAULT_DIRECTORY) -> Path:
    """Build the descriptor set and the Envoy config into `directory` (created if needed);
    return the config file's path (envoy.yaml, JSON syntax)."""
    directory.mkdir(parents=True, exist_ok=True)
    descriptor_path = build_descriptor_set(directory / "invoice_rpc.pb")
    config_path = directory / "envoy.yaml"
    config_path.write_text(json.dumps(build_envoy_config(settings, descriptor_path), indent=2) + "\n")
    return config_path
