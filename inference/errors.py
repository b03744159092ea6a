"""Domain errors of the inference stage; ``server/`` maps them to gRPC status codes.

``retryable`` is on the type (STYLE.md #8): none of these succeed on retry.
"""

from __future__ import annotations


class InferenceError(Exception):
    """Base class of every error raised by ``rootgraph.inference``."""

    retryable = False


class UnknownEntity(InferenceError, LookupError):
    """An entity named by the caller (symptom, what-if target) is not in the window."""

    def __init__(self, entity: str, field: str = "entity") -> None:
        super().__init__(f"{field}: unknown entity {entity!r}")
        self.entity = entity
        self.field = field


class InvalidArgument(InferenceError, ValueError):
    """A query argument is out of range; the message names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
