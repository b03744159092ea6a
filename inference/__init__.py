"""Root-cause inference: evidence scoring, the Bayesian network, ranking, what-if.

Public surface (wired by ``server/``): :class:`RootCauseRanker` (one query, ``rank``),
:func:`blast_radius`, :class:`ModelParams`, :class:`EvidenceConfig`, the result types
and the error types. Everything else is an implementation detail.
"""

from rootgraph.inference.blast import blast_radius, whatif_model
from rootgraph.inference.errors import InferenceError, InvalidArgument, UnknownEntity
from rootgraph.inference.evidence import EvidenceConfig
from rootgraph.inference.network import ModelParams
from rootgraph.inference.rank import RootCauseRanker
from rootgraph.inference.results import (
    Action,
    ActionKind,
    BlastRadius,
    Cause,
    EvidenceItem,
    Impact,
    Ranking,
)

__all__ = [
    "Action",
    "ActionKind",
    "BlastRadius",
    "Cause",
    "EvidenceConfig",
    "EvidenceItem",
    "Impact",
    "InferenceError",
    "InvalidArgument",
    "ModelParams",
    "Ranking",
    "RootCauseRanker",
    "UnknownEntity",
    "blast_radius",
    "whatif_model",
]
