"""Python client for ``rootgraph.v1.RootCause`` with typed results.

Results are the frozen dataclasses of :mod:`rootgraph.results` -- the very types the
ranker produces (``Ranking``, ``Cause``, ``BlastRadius`` …) -- so a tool written against
the client reads the same names as the proto and the server. Importing this module costs
grpcio + protobuf only: no pgmpy, pandas, numpy (``tests/test_client_light.py``).

    with RootGraphClient("127.0.0.1:50051") as rg:
        answer = rg.rank_causes(top_k=3)
        print(answer.causes[0].entity, answer.causes[0].probability)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from rootgraph.graph.records import Deployment
from rootgraph.results import Action, ActionKind, BlastRadius, Cause, EvidenceItem, FaultKind, Impact, Ranking
from rootgraph.v1 import rootgraph_pb2 as pb
from rootgraph.v1 import rootgraph_pb2_grpc as pb_grpc

__all__ = [
    "Action", "ActionKind", "BlastRadius", "Cause", "Deployment", "EvidenceItem", "FaultKind", "Impact", "Ranking",
    "IncidentEvent", "IncidentSummary", "RemediationStep", "RootGraphClient", "ServiceGraph", "ranking_from_proto",
]

_STATE_NAMES = {pb.INCIDENT_STATE_OPEN: "open", pb.INCIDENT_STATE_RESOLVED: "resolved",
                pb.INCIDENT_STATE_ANSWERED: "answered"}
_KIND_NAMES = {pb.INCIDENT_EVENT_KIND_OPENED: "opened", pb.INCIDENT_EVENT_KIND_UPDATED: "updated",
               pb.INCIDENT_EVENT_KIND_RESOLVED: "resolved", pb.INCIDENT_EVENT_KIND_REMEDIATION: "remediation"}


def _enum_name(prefix: str, value: int, enum) -> str:  # noqa: ANN001 - a protobuf enum wrapper
    return enum.Name(value).removeprefix(prefix).lower()


@dataclass(frozen=True)
class RemediationStep:
    """One step of acting on an incident (``RecordRemediationStep``; the proto says which
    kinds may follow which). Names are the proto's enum names in lower case: kind is
    proposed | approved | denied | expired | executed | outcome, action rollback | restart
    | scale | failover | other | none | unspecified, outcome resolved | not_resolved |
    made_worse | unspecified. ``at_s`` is set by the server (0 on a step being sent)."""

    step_id: str
    incident_id: str
    kind: str
    proposal_id: str = ""
    action: str = "unspecified"
    target: str = ""
    actor: str = ""
    exit_status: int = 0
    dry_run: bool = False
    outcome: str = "unspecified"
    detail: str = ""
    policy_version: str = ""
    at_s: float = 0.0

    def to_proto(self) -> pb.RemediationStep:
        return pb.RemediationStep(
            step_id=self.step_id, incident_id=self.incident_id, proposal_id=self.proposal_id,
            kind=pb.RemediationStepKind.Value(f"REMEDIATION_STEP_KIND_{self.kind.upper()}"),
            action=pb.RemediationAction.Value(f"REMEDIATION_ACTION_{self.action.upper()}"),
            target=self.target, actor=self.actor, exit_status=self.exit_status, dry_run=self.dry_run,
            outcome=pb.Outcome.Value(f"OUTCOME_{self.outcome.upper()}"), detail=self.detail,
            policy_version=self.policy_version)

    @classmethod
    def from_proto(cls, s: pb.RemediationStep) -> "RemediationStep":
        return cls(s.step_id, s.incident_id, _enum_name("REMEDIATION_STEP_KIND_", s.kind, pb.RemediationStepKind),
                   s.proposal_id, _enum_name("REMEDIATION_ACTION_", s.action, pb.RemediationAction), s.target,
                   s.actor, s.exit_status, s.dry_run, _enum_name("OUTCOME_", s.outcome, pb.Outcome), s.detail,
                   s.policy_version, _sec(s.at) if s.HasField("at") else 0.0)


@dataclass(frozen=True)
class IncidentEvent:
    """One ``WatchIncidents`` event; resume a watch with ``after_seq=event.seq``."""

    seq: int
    kind: str                       # opened | updated | resolved | remediation
    incident_id: str
    state: str                      # open | resolved
    ranking: Ranking
    symptoms: tuple[tuple[str, str, str], ...]  # (entity, signal, detail)
    new_symptoms: tuple[str, ...]
    bucket_s: float
    opened_s: float
    resolved_s: float | None
    top_cause_changed: bool
    committed_s: float
    #: kind "remediation": the step recorded (the event carries no ranking then)
    remediation: RemediationStep | None = None


@dataclass(frozen=True)
class IncidentSummary:
    """One ``ListIncidents`` row."""

    incident_id: str
    state: str                      # open | resolved | answered
    opened_s: float
    resolved_s: float | None
    top_cause: str
    top_probability: float
    symptoms: tuple[str, ...]


@dataclass(frozen=True)
class ServiceGraph:
    """``GetServiceGraph``: entities, call edges and which infrastructure runs what."""

    entities: tuple[tuple[str, str], ...]          # (id, kind)
    edges: tuple[tuple[str, str, int, int, bool], ...]  # caller, callee, calls, errors, async
    runs_on: tuple[tuple[str, str], ...]


def _ts(seconds: float) -> Timestamp:
    t = Timestamp()
    t.FromNanoseconds(int(seconds * 1e9))
    return t


def _sec(t: Timestamp) -> float:
    return t.seconds + t.nanos / 1e9


def _deployment(d: pb.Deployment) -> Deployment:
    return Deployment(id=d.id, service=d.service, version=d.version, at_ms=int(_sec(d.at) * 1000),
                      previous_version=d.previous_version, commit=d.commit, source=d.source,
                      attributes=tuple(sorted(d.attributes.items())))


def _fault_kind(name: str) -> FaultKind | None:
    """The wire name -> :class:`FaultKind`; empty, or a kind newer than this client, is unknown."""
    try:
        return FaultKind(name) if name else None
    except ValueError:
        return None


def _cause(c: pb.Cause) -> Cause:
    return Cause(
        entity=c.entity, kind=c.kind, probability=c.probability, rank=c.rank, explanation=c.explanation,
        evidence=tuple(EvidenceItem(e.entity, e.signal, e.observed, e.baseline, e.score, e.text)
                       for e in c.evidence),
        paths=tuple(tuple(p.entities) for p in c.paths),
        deployments=tuple(_deployment(d) for d in c.deployments),
        suggested_actions=tuple(Action(ActionKind(a.kind), a.target, a.detail, a.to_version, a.confidence)
                                for a in c.suggested_actions),
        fault_kind=_fault_kind(c.fault_kind), fault_size=c.fault_size,
    )


def ranking_from_proto(r: pb.RankCausesResponse) -> Ranking:
    """A ``RankCausesResponse`` (also ``GetIncidentResponse.ranking``) as the ranker's type.

    ``all_posteriors`` and ``aliases`` are not on the wire and stay empty.
    """
    return Ranking(tuple(_cause(c) for c in r.causes), tuple(r.symptoms), r.model_version,
                   r.no_clear_cause, tuple(r.notes), incident_id=r.incident_id,
                   start_s=_sec(r.start), end_s=_sec(r.end))


class RootGraphClient:
    """A thin, typed wrapper over the generated stub. Use as a context manager."""

    def __init__(self, target: str = "127.0.0.1:50051", *, token: str | None = None,
                 credentials: grpc.ChannelCredentials | None = None, timeout_s: float = 30.0) -> None:
        self._channel = (grpc.secure_channel(target, credentials) if credentials
                         else grpc.insecure_channel(target))
        self._stub = pb_grpc.RootCauseStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout = timeout_s

    def __enter__(self) -> "RootGraphClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def rank_causes(self, start: float | None = None, end: float | None = None, *, top_k: int = 5,
                    symptoms: Sequence[str] = (), baseline: tuple[float, float] | None = None) -> Ranking:
        req = pb.RankCausesRequest(top_k=top_k, symptoms=list(symptoms))
        if start is not None:
            req.start.CopyFrom(_ts(start))
        if end is not None:
            req.end.CopyFrom(_ts(end))
        if baseline is not None:
            req.baseline_start.CopyFrom(_ts(baseline[0]))
            req.baseline_end.CopyFrom(_ts(baseline[1]))
        return ranking_from_proto(self._stub.RankCauses(req, timeout=self._timeout, metadata=self._metadata))

    def blast_radius(self, entity: str, *, fault_kind: FaultKind | str | None = None, fault_size: float = 0.0,
                     at: float | None = None) -> BlastRadius:
        # Sent as given (a FaultKind is its name): the server validates, and answers
        # INVALID_ARGUMENT naming fault_kind for a name it does not know.
        req = pb.BlastRadiusRequest(entity=entity, fault_kind=fault_kind or "", fault_size=fault_size)
        if at is not None:
            req.at.CopyFrom(_ts(at))
        r = self._stub.BlastRadius(req, timeout=self._timeout, metadata=self._metadata)
        return BlastRadius(r.entity, tuple(
            Impact(i.entity, i.kind, i.probability, i.hops, tuple(i.path.entities), i.traffic_share)
            for i in r.impacts), r.entry_traffic_share_affected)

    def record_deployment(self, service: str, version: str, *, id: str | None = None,  # noqa: A002
                          at: float | None = None, commit: str = "", previous_version: str = "",
                          source: str = "api", attributes: Mapping[str, str] | None = None) -> bool:
        # No id or at given: the server derives the key (server/convert.py
        # derived_deployment_id), so a retried call is recognised as the same deployment.
        req = pb.RecordDeploymentRequest(
            id=id or "", service=service, version=version,
            at=None if at is None else _ts(at), commit=commit, previous_version=previous_version, source=source,
            attributes=dict(attributes or {}))
        return self._stub.RecordDeployment(req, timeout=self._timeout, metadata=self._metadata).created

    def submit_feedback(self, feedback_id: str, incident_id: str, *, confirmed_cause: str = "",
                        none_of_these: bool = False, action: str = "unspecified",
                        outcome: str = "unspecified", confirmed_by: str = "", note: str = "") -> bool:
        req = pb.SubmitFeedbackRequest(
            feedback_id=feedback_id, incident_id=incident_id, confirmed_cause=confirmed_cause,
            none_of_these=none_of_these,
            action=pb.RemediationAction.Value(f"REMEDIATION_ACTION_{action.upper()}"),
            outcome=pb.Outcome.Value(f"OUTCOME_{outcome.upper()}"),
            confirmed_by=confirmed_by, note=note)
        return self._stub.SubmitFeedback(req, timeout=self._timeout, metadata=self._metadata).created

    def get_incident(self, incident_id: str) -> pb.GetIncidentResponse:
        return self._stub.GetIncident(pb.GetIncidentRequest(incident_id=incident_id),
                                      timeout=self._timeout, metadata=self._metadata)

    def record_remediation_step(self, step: RemediationStep) -> bool:
        """Record one remediation step; False when its step_id was recorded before.
        Out of order (e.g. executing an unapproved proposal) raises grpc.RpcError with
        FAILED_PRECONDITION; an unknown incident or proposal NOT_FOUND."""
        req = pb.RecordRemediationStepRequest(step=step.to_proto())
        return self._stub.RecordRemediationStep(req, timeout=self._timeout, metadata=self._metadata).created

    def remediation_steps(self, incident_id: str) -> list[RemediationStep]:
        """The incident's recorded steps, in the order recorded (from GetIncident)."""
        return [RemediationStep.from_proto(s) for s in self.get_incident(incident_id).remediation]

    def service_graph(self) -> ServiceGraph:
        r = self._stub.GetServiceGraph(pb.GetServiceGraphRequest(), timeout=self._timeout,
                                       metadata=self._metadata)
        return ServiceGraph(tuple((e.id, e.kind) for e in r.entities),
                            tuple((e.caller, e.callee, e.calls, e.errors, getattr(e, "async"))
                                  for e in r.edges),
                            tuple((x.entity, x.infra) for x in r.runs_on))

    def list_incidents(self, *, state: str = "", since: float | None = None, until: float | None = None,
                       limit: int = 100) -> list[IncidentSummary]:
        """Incidents newest first; ``state`` is open, resolved, answered or '' (all)."""
        ids = {v: k for k, v in _STATE_NAMES.items()}
        if state and state not in ids:
            raise ValueError(f"state: one of {sorted(ids)} or empty, got {state!r}")
        req = pb.ListIncidentsRequest(state=ids.get(state, 0), limit=limit)
        if since is not None:
            req.since.CopyFrom(_ts(since))
        if until is not None:
            req.until.CopyFrom(_ts(until))
        r = self._stub.ListIncidents(req, timeout=self._timeout, metadata=self._metadata)
        return [IncidentSummary(i.incident_id, _STATE_NAMES.get(i.state, ""), _sec(i.opened),
                                _sec(i.resolved) if i.HasField("resolved") else None, i.top_cause,
                                i.top_probability, tuple(i.symptoms)) for i in r.incidents]

    def watch_incidents(self, *, after_seq: int = 0, only_new: bool = False) -> Iterator[IncidentEvent]:
        """Events as they happen (blocks; no deadline). Reconnect with the last ``seq`` seen."""
        stream = self._stub.WatchIncidents(pb.WatchIncidentsRequest(after_seq=after_seq, only_new=only_new),
                                           metadata=self._metadata)
        try:
            for r in stream:
                e = r.event
                yield IncidentEvent(
                    e.seq, _KIND_NAMES.get(e.kind, ""), e.incident_id, _STATE_NAMES.get(e.state, ""),
                    ranking_from_proto(e.ranking), tuple((s.entity, s.signal, s.detail) for s in e.symptoms),
                    tuple(e.new_symptoms), _sec(e.bucket), _sec(e.opened),
                    _sec(e.resolved) if e.HasField("resolved") else None, e.top_cause_changed, _sec(e.committed),
                    RemediationStep.from_proto(e.remediation) if e.HasField("remediation") else None)
        finally:
            stream.cancel()
