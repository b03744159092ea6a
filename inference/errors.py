"""Domain errors of the inference stage; ``server/`` maps them to gRPC status codes.

``retryable`` is on the type (STYLE.md #8): none of these succeed on retry.
"""

from __future__ import annotations

import time


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


class NoTrafficInWindow(InferenceError, LookupError):
    """A known entity has no traffic in the window a query reads, e.g. a what-if ``at``
    before its first request (issue 13: "unknown entity" for an entity the graph lists).

    ``first_traffic_s``: start of the first bucket with its traffic after the window
    (None: none stored), so the message can say which ``at`` would answer.
    """

    def __init__(self, entity: str, window_start_s: int, window_end_s: int,
                 first_traffic_s: int | None, field: str = "at") -> None:
        when = f"in the hour before at ({_iso(window_start_s)} to {_iso(window_end_s)}, complete minutes) nor earlier"
        if first_traffic_s is None:
            hint = "no traffic of it is stored after that either"
        else:
            hint = (f"its first traffic is in the minute from {_iso(first_traffic_s)}: "
                    f"ask with at after {_iso(first_traffic_s)}")
        super().__init__(f"{field}: entity {entity!r} exists but had no traffic {when}; {hint}")
        self.entity = entity
        self.first_traffic_s = first_traffic_s
        self.field = field


def _iso(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
