"""Domain errors → gRPC status codes and HTTP statuses, in one place (STYLE.md #8).

Stages raise their own error types and know nothing of status codes; every servicer
method and the OTLP/HTTP handler go through :func:`classify`. Unknown exceptions
become INTERNAL with a generic message (the details go to the log, never to the
client, so nothing like a connection string can leak).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import grpc

from rootgraph.graph.errors import Conflict, NotFound, StoreUnavailable
from rootgraph.inference.errors import InvalidArgument as InferenceInvalidArgument
from rootgraph.inference.errors import NoTrafficInWindow, UnknownEntity

__all__ = [
    "InvalidRequest", "PayloadTooLarge", "Overloaded", "Unauthenticated", "Classified",
    "classify", "grpc_errors",
]

log = logging.getLogger("rootgraph.server")
F = TypeVar("F", bound=Callable[..., Any])


class InvalidRequest(ValueError):
    """A request field is invalid; the message starts with the field's name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class PayloadTooLarge(Exception):
    """A request exceeds the configured size limit (after decompression)."""


class Overloaded(Exception):
    """Back-pressure: the server is at capacity; retry after a short delay."""

    retryable = True


class Unauthenticated(Exception):
    """A mutating call came without the configured bearer token, or with a wrong one."""


@dataclass(frozen=True)
class Classified:
    code: grpc.StatusCode
    http: int
    message: str
    retryable: bool = False


def _ingest_errors() -> tuple[type[BaseException], type[BaseException]]:
    # Imported lazily: ingest is optional for the API-only paths and tests.
    from rootgraph.ingest.sink import SinkUnavailable
    from rootgraph.ingest.spans import MalformedPayload

    return MalformedPayload, SinkUnavailable


def classify(exc: BaseException) -> Classified:
    """Map an exception to its status code, HTTP status and client-safe message."""
    malformed, sink_unavailable = _ingest_errors()
    if isinstance(exc, (InvalidRequest, InferenceInvalidArgument, malformed)):
        return Classified(grpc.StatusCode.INVALID_ARGUMENT, 400, str(exc))
    if isinstance(exc, (UnknownEntity, NotFound)):
        return Classified(grpc.StatusCode.NOT_FOUND, 404, str(exc))
    if isinstance(exc, NoTrafficInWindow):  # OUT_OF_RANGE: `at` is outside the entity's data; another at answers
        return Classified(grpc.StatusCode.OUT_OF_RANGE, 400, str(exc))
    if isinstance(exc, Conflict):
        return Classified(grpc.StatusCode.ALREADY_EXISTS, 409, str(exc))
    if isinstance(exc, PayloadTooLarge):
        return Classified(grpc.StatusCode.RESOURCE_EXHAUSTED, 413, str(exc))
    if isinstance(exc, (StoreUnavailable, sink_unavailable)):
        return Classified(grpc.StatusCode.UNAVAILABLE, 503, str(exc) or "storage unavailable", True)
    if isinstance(exc, Overloaded):
        return Classified(grpc.StatusCode.UNAVAILABLE, 503, str(exc) or "overloaded", True)
    if isinstance(exc, Unauthenticated):
        return Classified(grpc.StatusCode.UNAUTHENTICATED, 401, str(exc))
    if isinstance(exc, TimeoutError):
        return Classified(grpc.StatusCode.DEADLINE_EXCEEDED, 504, "deadline exceeded", True)
    log.exception("internal error", exc_info=exc)
    return Classified(grpc.StatusCode.INTERNAL, 500, "internal error (see server log)")


def grpc_errors(method: F) -> F:
    """Decorate a servicer method: domain errors abort the RPC with the mapped status."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except Exception as exc:  # noqa: BLE001 - mapped, not swallowed
            if isinstance(exc, grpc.RpcError) or context.code() is not None:
                raise
            c = classify(exc)
            context.abort(c.code, c.message)

    return wrapper  # type: ignore[return-value]
