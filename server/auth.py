"""Optional bearer-token auth for mutating calls, and TLS/mTLS credentials.

Both are off by default because the server binds to loopback; turn them on before
binding anything else. With ``ROOTGRAPH_TOKEN`` (or ``ROOTGRAPH_TOKEN_FILE``) set,
every mutating RPC — ``RecordDeployment``, ``SubmitFeedback``, ``RecordRemediationStep``
and the OTLP ``Export`` —
needs ``authorization: Bearer <token>`` metadata; without it, or with a wrong token,
the call is refused with UNAUTHENTICATED before any handler runs (so it changes
nothing). Read-only RPCs, health and reflection stay open.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any, Callable

import grpc

__all__ = ["MUTATING_METHODS", "TokenAuthInterceptor", "server_credentials", "token_ok"]

MUTATING_METHODS = frozenset({
    "/rootgraph.v1.RootCause/RecordDeployment",
    "/rootgraph.v1.RootCause/SubmitFeedback",
    # an approval recorded here makes a remediation client run a command
    "/rootgraph.v1.RootCause/RecordRemediationStep",
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
})


def token_ok(header: str | None, token: str) -> bool:
    """Constant-time check of an ``authorization`` header value against the token."""
    if not header or not header.lower().startswith("bearer "):
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())


class TokenAuthInterceptor(grpc.ServerInterceptor):
    """Refuse mutating calls without the right bearer token."""

    def __init__(self, token: str) -> None:
        self._token = token

        def deny(request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(grpc.StatusCode.UNAUTHENTICATED,
                          "missing or invalid bearer token for a mutating call")

        self._deny = grpc.unary_unary_rpc_method_handler(deny)

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        if details.method in MUTATING_METHODS:
            header = dict(details.invocation_metadata or ()).get("authorization")
            if not token_ok(header, self._token):
                return self._deny
        return continuation(details)


def server_credentials(cert: Path, key: Path, client_ca: Path | None = None) -> grpc.ServerCredentials:
    """TLS credentials; with ``client_ca`` the server requires client certificates (mTLS)."""
    pair = [(key.read_bytes(), cert.read_bytes())]
    if client_ca is None:
        return grpc.ssl_server_credentials(pair)
    return grpc.ssl_server_credentials(pair, root_certificates=client_ca.read_bytes(),
                                       require_client_auth=True)
