"""Typed results ⇄ ``rootgraph.v1`` messages, and request validation.

The only module that knows both the stages' dataclasses and the generated protobuf
types; servicers call these functions and nothing else does the mapping.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Callable

from google.protobuf.timestamp_pb2 import Timestamp

from rootgraph.graph.records import Deployment, Window
from rootgraph.graph.remediation import StepRecord
from rootgraph.inference.faults import FaultKind, fault_kind_name, parse_fault_kind
from rootgraph.results import BlastRadius, Cause, Ranking
from rootgraph.server.errors import InvalidRequest
from rootgraph.v1 import rootgraph_pb2 as pb

__all__ = [
    "RankQuery", "rank_query", "ranking_to_proto", "blast_to_proto", "deployment_to_proto",
    "deployment_from_request", "derived_deployment_id", "fault_kind_from_request", "ts", "ts_seconds", "validate_entity_name",
]

MAX_NAME = 512
MAX_TOP_K = 100
MAX_WINDOW_S = 24 * 3600
MAX_SYMPTOMS = 200


def ts(seconds: float) -> Timestamp:
    t = Timestamp()
    t.FromNanoseconds(int(seconds * 1e9))
    return t


def ts_seconds(t: Timestamp, field: str) -> float:
    if t.nanos < 0 or t.nanos >= 1_000_000_000:
        raise InvalidRequest(field, f"nanos out of range: {t.nanos}")
    if not 0 <= t.seconds <= 253402300799:  # 0001..9999 per Timestamp's definition, and >= epoch
        raise InvalidRequest(field, f"timestamp out of range: {t.seconds}")
    return t.seconds + t.nanos / 1e9


def validate_entity_name(value: str, field: str) -> str:
    if not value:
        raise InvalidRequest(field, "must not be empty")
    if len(value) > MAX_NAME:
        raise InvalidRequest(field, f"longer than {MAX_NAME} characters")
    if any(ord(c) < 32 for c in value):
        raise InvalidRequest(field, "contains control characters")
    return value


@dataclass(frozen=True)
class RankQuery:
    """A validated RankCauses request: its two windows (the one :class:`Window` type of
    the graph reader and inference, snapped to buckets), ``top_k`` and the symptoms."""

    incident: Window
    baseline: Window
    top_k: int
    symptoms: tuple[str, ...]


def floor_to_bucket(t: float, b: int) -> int:
    """Start of the ``b``-second bucket ``t`` falls in."""
    return int(t // b * b)


def ceil_to_bucket(t: float, b: int) -> int:
    """``t`` rounded up to a bucket boundary (``t`` itself if it is one)."""
    return int(-(-t // b) * b)


def rank_query(req: pb.RankCausesRequest, bucket_s: int, now: float | None = None) -> RankQuery:
    """Validate a RankCauses request and fill its defaults; windows snap to buckets."""
    now = time.time() if now is None else now
    end = ts_seconds(req.end, "end") if req.HasField("end") else now
    start = ts_seconds(req.start, "start") if req.HasField("start") else end - 15 * 60
    if end <= start:
        raise InvalidRequest("end", "must be after start")
    if end - start > MAX_WINDOW_S:
        raise InvalidRequest("end", f"incident window longer than {MAX_WINDOW_S // 3600} h")
    if req.HasField("baseline_start") != req.HasField("baseline_end"):
        raise InvalidRequest("baseline_end", "baseline_start and baseline_end go together")
    if req.HasField("baseline_start"):
        bstart, bend = ts_seconds(req.baseline_start, "baseline_start"), ts_seconds(req.baseline_end, "baseline_end")
        if bend <= bstart:
            raise InvalidRequest("baseline_end", "must be after baseline_start")
        if bend - bstart > 7 * MAX_WINDOW_S:
            raise InvalidRequest("baseline_end", "baseline window longer than 7 days")
    else:
        bstart, bend = start - 30 * 60, start
    top_k = req.top_k or 5
    if not 1 <= top_k <= MAX_TOP_K:
        raise InvalidRequest("top_k", f"must be in 1..{MAX_TOP_K}, got {req.top_k}")
    if len(req.symptoms) > MAX_SYMPTOMS:
        raise InvalidRequest("symptoms", f"at most {MAX_SYMPTOMS} entries")
    symptoms = tuple(validate_entity_name(s, "symptoms") for s in req.symptoms)
    s0, s1 = floor_to_bucket(start, bucket_s), ceil_to_bucket(end, bucket_s)
    b0, b1 = floor_to_bucket(bstart, bucket_s), floor_to_bucket(bend, bucket_s)
    if b1 <= b0:
        b1 = b0 + bucket_s
    return RankQuery(Window(s0, s1), Window(b0, b1), top_k, symptoms)


def fault_kind_from_request(req: pb.BlastRadiusRequest) -> FaultKind | None:
    """``BlastRadiusRequest.fault_kind`` -> :class:`FaultKind` (empty: unknown); an unknown
    name is INVALID_ARGUMENT naming ``fault_kind`` (``InvalidArgument``, mapped in errors.py)."""
    return parse_fault_kind(req.fault_kind)


def deployment_to_proto(d: Deployment) -> pb.Deployment:
    return pb.Deployment(
        id=d.id, service=d.service, version=d.version, previous_version=d.previous_version,
        at=ts(d.at_ms / 1000), commit=d.commit, source=d.source, attributes=dict(d.attributes),
    )


def derived_deployment_id(service: str, version: str, commit: str, at_ms: int | None) -> str:
    """The idempotency key of a RecordDeployment that came without ``id``.

    ``"deploy:"`` + the first 32 hex digits of sha256 over the JSON list ``[service,
    version, commit, at_ms]`` -- the *resolved* service id (so ``orders`` and
    ``sock-shop/orders`` are one deployment), and ``at`` in ms only when the caller gave
    it (``null`` otherwise). Why these fields: a retried call repeats them exactly, so
    it maps to the same id (``created=false``); without ``at`` the key cannot tell a
    retry from a re-deploy of the same version and commit, and takes it as a retry --
    a pipeline that re-deploys one build sends ``at`` (its run's start) or its own id.
    """
    key = json.dumps([service, version, commit, at_ms], ensure_ascii=False)
    return "deploy:" + hashlib.sha256(key.encode()).hexdigest()[:32]


def deployment_from_request(req: pb.RecordDeploymentRequest, resolve_service: Callable[[str], str],
                            now: float | None = None) -> Deployment:
    """Validate a RecordDeployment, then resolve its service (``WindowSource.resolve_service``:
    the known id it names, or NotFound) and fill the defaults (id, at, source)."""
    if req.id:
        validate_entity_name(req.id, "id")
    validate_entity_name(req.service, "service")
    validate_entity_name(req.version, "version")
    for field in ("commit", "previous_version", "source"):
        if len(getattr(req, field)) > MAX_NAME:
            raise InvalidRequest(field, f"longer than {MAX_NAME} characters")
    if len(req.attributes) > 64:
        raise InvalidRequest("attributes", "at most 64 entries")
    for k, v in req.attributes.items():
        if not k or len(k) > 128 or len(v) > 1024:
            raise InvalidRequest("attributes", f"key {k[:40]!r}: keys 1..128, values up to 1024 characters")
    given_at = ts_seconds(req.at, "at") if req.HasField("at") else None
    at = given_at if given_at is not None else (time.time() if now is None else now)
    service = resolve_service(req.service)  # after validation: bad input never reads
    dep_id = req.id or derived_deployment_id(service, req.version, req.commit,
                                             None if given_at is None else int(given_at * 1000))
    return Deployment(
        id=dep_id, service=service, version=req.version, at_ms=int(at * 1000),
        previous_version=req.previous_version, commit=req.commit, source=req.source or "api",
        attributes=tuple(sorted(req.attributes.items())),
    )


def _cause(c: Cause) -> pb.Cause:
    return pb.Cause(
        entity=c.entity, kind=c.kind, probability=c.probability, rank=c.rank,
        explanation=c.explanation,
        evidence=[pb.Evidence(entity=e.entity, signal=e.signal, observed=e.observed,
                              baseline=e.baseline, score=e.score, text=e.text) for e in c.evidence],
        paths=[pb.Path(entities=list(p)) for p in c.paths],
        deployments=[deployment_to_proto(d) for d in c.deployments],
        suggested_actions=[pb.SuggestedAction(kind=a.kind.value, target=a.target, detail=a.detail,
                                              to_version=a.to_version,
                                              confidence=a.confidence)
                           for a in c.suggested_actions],
        fault_kind=fault_kind_name(c.fault_kind), fault_size=c.fault_size,
    )


def ranking_to_proto(r: Ranking, incident_id: str, query: RankQuery) -> pb.RankCausesResponse:
    return pb.RankCausesResponse(
        incident_id=incident_id, causes=[_cause(c) for c in r.causes], symptoms=list(r.symptoms),
        model_version=r.model_version, no_clear_cause=r.no_clear_cause, notes=list(r.notes),
        start=ts(query.incident.start_s), end=ts(query.incident.end_s),
    )


def blast_to_proto(b: BlastRadius, model_version: str) -> pb.BlastRadiusResponse:
    return pb.BlastRadiusResponse(
        entity=b.entity, model_version=model_version,
        entry_traffic_share_affected=b.entry_traffic_share_affected,
        impacts=[pb.Impact(entity=i.entity, kind=i.kind, probability=i.probability, hops=i.hops,
                           path=pb.Path(entities=list(i.path)), traffic_share=i.traffic_share)
                 for i in b.impacts],
    )


#: Longest RemediationStep.detail stored (the proposal's evidence, an output tail).
MAX_STEP_DETAIL = 16 * 1024
_STEP_KINDS = {v: k.removeprefix("REMEDIATION_STEP_KIND_").lower() for k, v in pb.RemediationStepKind.items()
               if v != pb.REMEDIATION_STEP_KIND_UNSPECIFIED}
_STEP_KIND_IDS = {v: k for k, v in _STEP_KINDS.items()}
ACTIONS = {v: k.removeprefix("REMEDIATION_ACTION_").lower() for k, v in pb.RemediationAction.items()}
OUTCOMES = {v: k.removeprefix("OUTCOME_").lower() for k, v in pb.Outcome.items()}


def step_from_request(req: pb.RecordRemediationStepRequest, now: float) -> StepRecord:
    """A validated step (``at`` = ``now``): ids present and printable, the kind and enums
    known, an OUTCOME step with an outcome, detail bounded. The order of a proposal's
    steps is checked by the store, which sees the other steps."""
    s = req.step
    validate_entity_name(s.step_id, "step.step_id")
    validate_entity_name(s.incident_id, "step.incident_id")
    if s.kind not in _STEP_KINDS:
        raise InvalidRequest("step.kind", "required: one of " + ", ".join(
            k for k in pb.RemediationStepKind.keys() if not k.endswith("UNSPECIFIED")))
    kind = _STEP_KINDS[s.kind]
    proposal = s.proposal_id
    if kind == "proposed":
        if proposal and proposal != s.step_id:
            raise InvalidRequest("step.proposal_id", "a PROPOSED step opens its own proposal: "
                                                     "leave it empty or equal to step_id")
        proposal = s.step_id
    else:
        validate_entity_name(proposal, "step.proposal_id")
    if s.action not in ACTIONS:
        raise InvalidRequest("step.action", f"unknown value {s.action}")
    if s.outcome not in OUTCOMES:
        raise InvalidRequest("step.outcome", f"unknown value {s.outcome}")
    if kind == "outcome" and s.outcome == pb.OUTCOME_UNSPECIFIED:
        raise InvalidRequest("step.outcome", "an OUTCOME step needs an outcome")
    if kind != "outcome" and s.outcome != pb.OUTCOME_UNSPECIFIED:
        raise InvalidRequest("step.outcome", f"only OUTCOME steps carry an outcome (this is {kind})")
    if kind == "proposed" and s.action == pb.REMEDIATION_ACTION_UNSPECIFIED:
        raise InvalidRequest("step.action", "a PROPOSED step names its action")
    if s.target:
        validate_entity_name(s.target, "step.target")
    for field, limit in (("actor", 512), ("policy_version", 512), ("detail", MAX_STEP_DETAIL)):
        if len(getattr(s, field)) > limit:
            raise InvalidRequest(f"step.{field}", f"longer than {limit} characters")
    if s.HasField("at"):
        raise InvalidRequest("step.at", "set by the server (when the step was recorded); leave it unset")
    return StepRecord(
        id=s.step_id, incident_id=s.incident_id, proposal_id=proposal, kind=kind,
        action=ACTIONS[s.action], target=s.target, actor=s.actor, exit_status=s.exit_status,
        dry_run=s.dry_run, outcome=OUTCOMES[s.outcome], detail=s.detail,
        policy_version=s.policy_version, at_ms=int(now * 1000),
    )


def step_to_proto(s: StepRecord) -> pb.RemediationStep:
    action_ids = {v: k for k, v in ACTIONS.items()}
    outcome_ids = {v: k for k, v in OUTCOMES.items()}
    return pb.RemediationStep(
        step_id=s.id, incident_id=s.incident_id, proposal_id=s.proposal_id, kind=_STEP_KIND_IDS[s.kind],
        action=action_ids.get(s.action, 0), target=s.target, actor=s.actor, exit_status=s.exit_status,
        dry_run=s.dry_run, outcome=outcome_ids.get(s.outcome, 0), detail=s.detail,
        policy_version=s.policy_version, at=ts(s.at_ms / 1000),
    )


def step_event_payload(s: StepRecord) -> bytes:
    """The WatchIncidents event of a new step (seq and committed are set when read back)."""
    return pb.IncidentEvent(kind=pb.INCIDENT_EVENT_KIND_REMEDIATION, incident_id=s.incident_id,
                            remediation=step_to_proto(s)).SerializeToString()
