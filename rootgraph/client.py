"""Python client for ``rootgraph.v1.RootCause`` with typed results.

Results reuse the inference stage's frozen dataclasses (``Cause``, ``Impact`` …), so a
tool written against the client reads the same names as the proto and the server.

    with RootGraphClient("127.0.0.1:50051") as rg:
        answer = rg.rank_causes(top_k=3)
        print(answer.causes[0].entity, answer.causes[0].probability)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from rootgraph.graph.model import Deployment
from rootgraph.inference.results import Action, ActionKind, BlastRadius, Cause, EvidenceItem, Impact
from rootgraph.v1 import rootgraph_pb2 as pb
from rootgraph.v1 import rootgraph_pb2_grpc as pb_grpc

__all__ = ["RootGraphClient", "RankAnswer", "ServiceGraph"]


@dataclass(frozen=True)
class RankAnswer:
    incident_id: str
    causes: tuple[Cause, ...]
    symptoms: tuple[str, ...]
    model_version: str
    no_clear_cause: bool
    notes: tuple[str, ...]
    start_s: float
    end_s: float


@dataclass(frozen=True)
class ServiceGraph:
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


def _cause(c: pb.Cause) -> Cause:
    return Cause(
        entity=c.entity, kind=c.kind, probability=c.probability, rank=c.rank, explanation=c.explanation,
        evidence=tuple(EvidenceItem(e.entity, e.signal, e.observed, e.baseline, e.score, e.text)
                       for e in c.evidence),
        paths=tuple(tuple(p.entities) for p in c.paths),
        deployments=tuple(_deployment(d) for d in c.deployments),
        suggested_actions=tuple(Action(ActionKind(a.kind), a.target, a.detail, a.to_version, a.confidence)
                                for a in c.suggested_actions),
        fault_kind=c.fault_kind, fault_size=c.fault_size,
    )


def rank_answer(r: pb.RankCausesResponse) -> RankAnswer:
    return RankAnswer(r.incident_id, tuple(_cause(c) for c in r.causes), tuple(r.symptoms),
                      r.model_version, r.no_clear_cause, tuple(r.notes), _sec(r.start), _sec(r.end))


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
                    symptoms: Sequence[str] = (), baseline: tuple[float, float] | None = None) -> RankAnswer:
        req = pb.RankCausesRequest(top_k=top_k, symptoms=list(symptoms))
        if start is not None:
            req.start.CopyFrom(_ts(start))
        if end is not None:
            req.end.CopyFrom(_ts(end))
        if baseline is not None:
            req.baseline_start.CopyFrom(_ts(baseline[0]))
            req.baseline_end.CopyFrom(_ts(baseline[1]))
        return rank_answer(self._stub.RankCauses(req, timeout=self._timeout, metadata=self._metadata))

    def blast_radius(self, entity: str, *, fault_kind: str = "", fault_size: float = 0.0,
                     at: float | None = None) -> BlastRadius:
        req = pb.BlastRadiusRequest(entity=entity, fault_kind=fault_kind, fault_size=fault_size)
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

    def service_graph(self) -> ServiceGraph:
        r = self._stub.GetServiceGraph(pb.GetServiceGraphRequest(), timeout=self._timeout,
                                       metadata=self._metadata)
        return ServiceGraph(tuple((e.id, e.kind) for e in r.entities),
                            tuple((e.caller, e.callee, e.calls, e.errors, getattr(e, "async"))
                                  for e in r.edges),
                            tuple((x.entity, x.infra) for x in r.runs_on))
