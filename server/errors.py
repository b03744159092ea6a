"""Domain errors → gRPC status codes and HTTP statuses, in one place (STYLE.md #8).

Stages raise their own error types and know nothing of status codes; every servicer
method, the gRPC request decoder (server/services.py) and the OTLP/HTTP handler go
through :func:`classify`, which looks the type up in one table and reads "retryable?"
from the exception itself (a new error type is one table row, not another branch).
Unknown exceptions become INTERNAL with a generic message (the details go to the log,
never to the client, so nothing like a connection string can leak).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import grpc

from rootgraph.graph.errors import Conflict, FailedPrecondition, NotFound, StoreUnavailable
from rootgraph.inference.errors import InvalidArgument as InferenceInvalidArgument
from rootgraph.inference.errors import NoTrafficInWindow, UnknownEntity

__all__ = [
    "InvalidRequest", "PayloadTooLarge", "Overloaded", "Unauthenticated", "UnsupportedMediaType", "Classified",
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


class UnsupportedMediaType(InvalidRequest):
    """A request names a content coding (or media type) this server cannot decode."""


@dataclass(frozen=True)
class Classified:
    code: grpc.StatusCode
    http: int
    message: str
    retryable: bool = False


@dataclass(frozen=True)
class _Status:
    """How one error type is answered: codes, plus the message when ``str(exc)`` won't do."""

    code: grpc.StatusCode
    http: int
    #: Message when the exception has none.
    fallback: str = ""
    #: Message used instead of ``str(exc)`` (a built-in's text may be internal detail).
    fixed: str | None = None
    #: For types that cannot carry ``retryable`` themselves (built-ins).
    retryable: bool = False


@functools.cache
@functools.cache
def _statuses() -> dict[type[BaseException], _Status]:
    """Status by error type. Looked up along the exception's MRO, so a subclass is answered
    like its nearest listed base unless listed itself; whether a retry may help is read from
    the exception's own ``retryable`` (STYLE.md #8), not from this table."""
    # Imported lazily: ingest is optional for the API-only paths and tests.
    from rootgraph.ingest.spans import MalformedPayload

    invalid = _Status(grpc.StatusCode.INVALID_ARGUMENT, 400)
    not_found = _Status(grpc.StatusCode.NOT_FOUND, 404)
    return {
        InvalidRequest: invalid,
        InferenceInvalidArgument: invalid,
        MalformedPayload: invalid,
        # gRPC answers an unsupported grpc-encoding with UNIMPLEMENTED (doc/compression.md)
        UnsupportedMediaType: _Status(grpc.StatusCode.UNIMPLEMENTED, 415),
        UnknownEntity: not_found,
        NotFound: not_found,
        # `at` lies outside the entity's data and another `at` answers: gRPC prefers
        # OUT_OF_RANGE to FAILED_PRECONDITION for exactly that (status codes doc).
        NoTrafficInWindow: _Status(grpc.StatusCode.OUT_OF_RANGE, 400),
        Conflict: _Status(grpc.StatusCode.ALREADY_EXISTS, 409),
        FailedPrecondition: _Status(grpc.StatusCode.FAILED_PRECONDITION, 409),
        PayloadTooLarge: _Status(grpc.StatusCode.RESOURCE_EXHAUSTED, 413),
        # ingest's sink failures are this type too (ingest/sink.py)
        StoreUnavailable: _Status(grpc.StatusCode.UNAVAILABLE, 503, fallback="storage unavailable"),
        Overloaded: _Status(grpc.StatusCode.UNAVAILABLE, 503, fallback="overloaded"),
        Unauthenticated: _Status(grpc.StatusCode.UNAUTHENTICATED, 401),
        TimeoutError: _Status(grpc.StatusCode.DEADLINE_EXCEEDED, 504, fixed="deadline exceeded", retryable=True),
    }


def classify(exc: BaseException) -> Classified:
    """Map an exception to its status code, HTTP status and client-safe message."""
    statuses = _statuses()
    for klass in type(exc).__mro__:
        status = statuses.get(klass)
        if status is not None:
            message = status.fixed if status.fixed is not None else (str(exc) or status.fallback)
            return Classified(status.code, status.http, message,
                              bool(getattr(exc, "retryable", status.retryable)))
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
