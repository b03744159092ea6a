"""Domain errors of the graph stage, with "retryable?" on the type.

``server/`` maps them to gRPC/HTTP status codes in one place (STYLE.md #8); nothing
below ``server/`` knows about status codes.
"""

from __future__ import annotations

__all__ = ["GraphError", "StoreUnavailable", "NotFound", "Conflict", "FailedPrecondition"]


class GraphError(Exception):
    """Base of the graph stage's errors."""

    retryable: bool = False


class StoreUnavailable(GraphError):
    """Neo4j cannot be reached or is overloaded; the same call may succeed later.

    Ingest's sink and group committer raise this same type, so "storage unavailable" is
    one concept with one status mapping.
    """

    retryable = True


class NotFound(GraphError, LookupError):
    """A named entity, incident or deployment does not exist."""


class Conflict(GraphError):
    """A write contradicts what is stored (e.g. a reused idempotency key)."""


class FailedPrecondition(GraphError):
    """A valid request the stored state does not allow yet or any more (e.g. executing a
    remediation nobody approved, deciding one twice): retrying unchanged will not help."""
