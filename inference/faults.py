"""What kind of fault a cause shows or a what-if assumes: one enum, one spelling.

The values are the contract's names (``Cause.fault_kind``, ``BlastRadiusRequest.fault_kind``
in ``proto/rootgraph/v1/rootgraph.proto``, ``rootgraph blast --fault-kind``), so the edges
convert with :func:`parse_fault_kind` / :func:`fault_kind_name` and nothing inside spells a
kind as a string. Unknown is ``None`` inside and ``""`` on the wire. Standard library only:
the client and the CLI import it.
"""

from __future__ import annotations

from enum import StrEnum

from rootgraph.inference.errors import InvalidArgument

__all__ = ["FaultKind", "fault_kind_name", "parse_fault_kind"]


class FaultKind(StrEnum):
    """``errors``: a share of requests fails; ``latency``: ms added per request;
    ``saturation``: self time slowed by a factor (of every service on it, for
    infrastructure); ``down``: every request fails (``inference/blast.py``).

    A ``StrEnum``, unlike ``EntityKind``: ``Cause.fault_kind`` reaches client code that
    formats it (``f"{c.fault_kind}"``), which must print ``errors``, not ``FaultKind.ERRORS``.
    """

    ERRORS = "errors"
    LATENCY = "latency"
    SATURATION = "saturation"
    DOWN = "down"


def parse_fault_kind(value: str | None) -> FaultKind | None:
    """The contract's spelling -> :class:`FaultKind`; ``""``/``None`` -> ``None`` (unknown).

    Raises :class:`InvalidArgument` naming ``fault_kind`` for anything else (the message
    quotes at most 40 characters of it: it may come from a hostile request).
    """
    if not value:
        return None
    try:
        return FaultKind(value)
    except ValueError:
        raise InvalidArgument("fault_kind", f"must be one of {', '.join(k.value for k in FaultKind)} "
                                            f"or empty, got {str(value)[:40]!r}") from None


def fault_kind_name(kind: FaultKind | None) -> str:
    """Inverse of :func:`parse_fault_kind`: the wire spelling, ``""`` for unknown."""
    return "" if kind is None else kind.value
