"""The answers rootgraph gives: one family of frozen result dataclasses.

The ranker (``inference/``) produces them, ``server/convert.py`` maps them 1:1 onto the
``rootgraph.v1`` messages, and the Python client (:mod:`rootgraph.client`) rebuilds the
very same types from the wire (STYLE.md #4: one result type for every ranking path).
The field names are the contract: keep them in step with the proto.

Why this module lives in the ``rootgraph`` package and not under ``inference/``:
importing ``rootgraph.inference`` loads pgmpy, pandas, scipy and numpy (1.3-4 s and a
pgmpy FutureWarning). A remediation bot that only talks gRPC must get its result types
for the price of grpcio + protobuf, so this module imports nothing but the standard
library and :mod:`rootgraph.graph.records` (for ``Deployment``; stdlib + orjson).
``tests/test_client_light.py`` guards that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, StrEnum

from rootgraph.graph.records import Deployment

__all__ = [
    "PLAUSIBLE_FACTOR", "PLAUSIBLE_FLOOR", "Action", "ActionKind", "BlastRadius", "Cause",
    "EvidenceItem", "FaultKind", "Impact", "Ranking", "fault_kind_name", "is_plausible",
]

#: A candidate with a posterior below this is not worth a person's or a bot's attention:
#: the posteriors are independent marginals P(F_x = 1 | evidence), and with the default
#: priors (base 0.01-0.02, a deployment 0.15) a candidate without evidence of its own
#: lands well under it, so everything above it has something pointing at it.
PLAUSIBLE_FLOOR = 0.05
#: ... and one more than this many times less probable than the top candidate is not a
#: rival explanation either (0.09 next to 0.95): a reader would act on the top one.
PLAUSIBLE_FACTOR = 10.0


def is_plausible(probability: float, top_probability: float) -> bool:
    """Whether a cause with ``probability`` is a plausible explanation of the incident.

    Plausible means ``P >= PLAUSIBLE_FLOOR`` *and* ``P >= top / PLAUSIBLE_FACTOR``:
    the floor removes candidates the evidence does not point at (prior-level
    posteriors, P = 0.00 in a table), the factor removes ones an order of magnitude
    behind the best explanation. One rule, used twice: the ranker suggests remediation
    only for plausible causes (``inference/actions.py``), and the CLI table shows only
    plausible causes and summarises the rest in one line (``rootgraph/render.py``).
    Ranks are not touched: they stay as the ranker gave them.
    """
    return probability >= PLAUSIBLE_FLOOR and probability * PLAUSIBLE_FACTOR >= top_probability


class FaultKind(StrEnum):
    """What kind of fault a cause shows or a what-if assumes: one enum, one spelling.

    ``errors``: a share of requests fails; ``latency``: ms added per request;
    ``saturation``: self time slowed by a factor (of every service on it, for
    infrastructure); ``down``: every request fails (``inference/blast.py``). The values
    are the contract's names (``Cause.fault_kind``, ``BlastRadiusRequest.fault_kind``);
    unknown is ``None`` inside and ``""`` on the wire. The server parses requests with
    ``inference/faults.py: parse_fault_kind``, which names the field in its error.

    A ``StrEnum``, unlike ``EntityKind``: ``Cause.fault_kind`` reaches client code that
    formats it (``f"{c.fault_kind}"``), which must print ``errors``, not ``FaultKind.ERRORS``.
    """

    ERRORS = "errors"
    LATENCY = "latency"
    SATURATION = "saturation"
    DOWN = "down"


def fault_kind_name(kind: FaultKind | None) -> str:
    """The wire spelling of ``kind``, ``""`` for unknown."""
    return "" if kind is None else kind.value


class ActionKind(str, Enum):
    """What a remediation client may do; the service never executes anything itself."""

    ROLLBACK = "rollback"
    RESTART = "restart"
    SCALE = "scale"
    FAILOVER = "failover"
    INVESTIGATE = "investigate"


@dataclass(frozen=True, slots=True)
class EvidenceItem:
    """One figure that moved a posterior, e.g. error rate 41% vs 0.2% baseline.

    ``score`` is the detector's strength in [0, 1] (1 = unambiguous); ``text`` is what
    a human reads ("error rate 41% vs 0.2% baseline, exclusive").
    """

    entity: str
    signal: str
    observed: float
    baseline: float
    score: float
    text: str


@dataclass(frozen=True, slots=True)
class Action:
    """A suggested, never executed, remediation step.

    ``confidence`` is the share of past incidents with a similar cause where this action
    resolved it (smoothed, see ``inference/learning.py``); 0.0 when there is no history.
    """

    kind: ActionKind
    target: str
    detail: str
    to_version: str = ""
    confidence: float = 0.0


@dataclass(frozen=True, slots=True)
class Cause:
    """A ranked candidate root cause with everything needed to explain it.

    ``paths`` are propagation paths cause -> ... -> symptom in the caller direction
    (the way a fault travels), e.g. ``("db:postgresql/orders", "orders", "checkout")``.
    ``fault_kind`` / ``fault_size`` are what the cause's own evidence shows it doing --
    ``errors`` (size: failing share added), ``latency`` (ms added per request) or, for
    infrastructure, ``saturation`` (factor on self time); ``""`` / 0 when unknown -- in
    the terms ``BlastRadius`` takes, so a client can ask for the blast radius of the
    fault as it is happening (:func:`rootgraph.inference.explain.observed_fault`).
    ``suggested_actions`` is empty for a cause that is not plausible
    (:func:`is_plausible`) or whose evidence supports no action.
    """

    entity: str
    kind: str
    probability: float
    rank: int
    explanation: str
    evidence: tuple[EvidenceItem, ...] = ()
    paths: tuple[tuple[str, ...], ...] = ()
    deployments: tuple[Deployment, ...] = ()
    suggested_actions: tuple[Action, ...] = ()
    fault_kind: FaultKind | None = None
    fault_size: float = 0.0


@dataclass(frozen=True, slots=True)
class Ranking:
    """The answer to one ``rank`` query, from the ranker or over gRPC.

    ``no_clear_cause`` is an answer, not an error: set when nothing is anomalous or the
    best posterior is below the configured threshold. ``notes`` carry the why-not of
    the runner-up, ties, and modelling decisions such as dropped cycle edges.

    Only in the ranker's own answer (not on the wire, so empty in a client's):
    ``all_posteriors`` holds ``P(F_x = 1 | evidence)`` for every candidate, not just
    the top k; ``aliases``: candidate -> the ids merged into it because they are the
    same machine (``node:X`` -> ``("host:X",)``).

    Only once the server has recorded it (empty / 0 in the ranker's own answer):
    ``incident_id`` names the recorded ``(:Incident)``; ``start_s`` / ``end_s`` are the
    incident window as ranked, snapped to buckets (epoch seconds).
    """

    causes: tuple[Cause, ...]
    symptoms: tuple[str, ...]
    model_version: str
    no_clear_cause: bool
    notes: tuple[str, ...] = ()
    all_posteriors: dict[str, float] = field(default_factory=dict)
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    incident_id: str = ""
    start_s: float = 0.0
    end_s: float = 0.0

    def plausible_causes(self) -> tuple[Cause, ...]:
        """The causes worth showing a person (:func:`is_plausible` against the top one)."""
        if not self.causes:
            return ()
        top = max(c.probability for c in self.causes)
        return tuple(c for c in self.causes if is_plausible(c.probability, top))


@dataclass(frozen=True, slots=True)
class Impact:
    """Effect of an intervened fault on one entity.

    ``probability`` is ``P(k visibly impacted | do(fault at x))`` over the fault's unknown
    size (``inference/blast.py``); ``hops`` and ``path`` follow the
    caller direction from the faulty entity to ``entity``; ``traffic_share`` is the
    share of entry-point (``user``) traffic entering through ``entity`` times that
    probability, 0 for entities that are not entry points.
    """

    entity: str
    kind: str
    probability: float
    hops: int
    path: tuple[str, ...]
    traffic_share: float


@dataclass(frozen=True, slots=True)
class BlastRadius:
    """What-if answer: impacts sorted by probability, plus the entry-traffic total."""

    entity: str
    impacts: tuple[Impact, ...]
    entry_traffic_share_affected: float
