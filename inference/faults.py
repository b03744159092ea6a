"""Parsing a fault kind from a request: :class:`FaultKind` itself lives in the light
:mod:`rootgraph.results` (the client returns it without loading this package).

The values are the contract's names (``Cause.fault_kind``, ``BlastRadiusRequest.fault_kind``
in ``proto/rootgraph/v1/rootgraph.proto``, ``rootgraph blast --fault-kind``), so the edges
convert with :func:`parse_fault_kind` / :func:`fault_kind_name` and nothing inside spells a
kind as a string. Unknown is ``None`` inside and ``""`` on the wire.
"""

from __future__ import annotations

from rootgraph.inference.errors import InvalidArgument
from rootgraph.results import FaultKind, fault_kind_name

__all__ = ["FaultKind", "fault_kind_name", "parse_fault_kind"]


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
