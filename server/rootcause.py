"""The ``rootgraph.v1.RootCause`` servicer: validation, deadlines, audit, mapping.

Wiring only: it reads the window from the graph stage, asks the inference stage, and
records the answer as an ``(:Incident)``. Every dependency comes in through the
constructor as the protocols below — exactly what it calls (STYLE.md #2) — so tests can
hand it the real reader, writer and incident store, or fakes (``graph/window_source.py``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Callable, Protocol, Sequence

import grpc
from google.protobuf import json_format
from opentelemetry import trace

from rootgraph.graph.errors import NotFound
from rootgraph.graph.incident_events import IncidentEvent
from rootgraph.graph.incidents import FeedbackRecord, IncidentRecord, pack_inputs, unpack_inputs
from rootgraph.graph.records import Deployment, Window, WindowData, window_json
from rootgraph.graph.remediation import StepRecord
from rootgraph.graph.window_source import WindowSource
from rootgraph.inference.blast import check_fault_size
from rootgraph.inference.errors import NoTrafficInWindow
from rootgraph.results import BlastRadius, FaultKind, Ranking
from rootgraph.server.convert import (
    ACTIONS, OUTCOMES, blast_to_proto, ceil_to_bucket, deployment_from_request, fault_kind_from_request,
    floor_to_bucket, rank_query, ranking_to_proto, step_event_payload, step_from_request, step_to_proto, ts,
    ts_seconds, validate_entity_name,
)
from rootgraph.server.errors import InvalidRequest, Overloaded, classify, grpc_errors
from rootgraph.v1 import rootgraph_pb2 as pb
from rootgraph.v1 import rootgraph_pb2_grpc as pb_grpc

__all__ = ["DeploymentRecorder", "IncidentEvents", "IncidentLog", "Ranker", "RootCauseServicer"]

log = logging.getLogger("rootgraph.server")
tracer = trace.get_tracer("rootgraph.server")

#: How often a WatchIncidents stream looks for new events (seconds): the bound on the
#: delay between an event's commit and its delivery, besides the network.
WATCH_POLL_S = 0.1
#: Most incidents one ListIncidents answers.
MAX_LIST = 1000
_STATES = {pb.INCIDENT_STATE_UNSPECIFIED: "", pb.INCIDENT_STATE_OPEN: "open",
           pb.INCIDENT_STATE_RESOLVED: "resolved", pb.INCIDENT_STATE_ANSWERED: "answered"}
_STATE_IDS = {v: k for k, v in _STATES.items() if v}

#: Traffic shares for what-if queries come from this much history before ``at``.
BLAST_HISTORY_S = 3600



class Ranker(Protocol):
    """What the servicer needs of inference (``inference.rank.RootCauseRanker``)."""

    @property
    def model_version(self) -> str: ...

    def rank(self, window: WindowData, symptoms: Sequence[str] = (), top_k: int = 5) -> Ranking: ...


class IncidentLog(Protocol):
    """What the servicer needs of the incident audit (``graph.incidents.IncidentStore``)."""

    def save_incident(self, rec: IncidentRecord) -> None: ...

    def get_incident(self, incident_id: str) -> IncidentRecord: ...

    def submit_feedback(self, fb: FeedbackRecord) -> bool: ...


class IncidentEvents(Protocol):
    """The detected incidents' event log (``graph.incident_events.IncidentEventLog``)."""

    def events_after(self, seq: int, limit: int = 500) -> list[IncidentEvent]: ...

    def last_seq(self) -> int: ...

    def list_incidents(self, state: str = "", since_ms: int = 0, until_ms: int | None = None,
                       limit: int = 100) -> list[tuple[str, str, int, int | None, str, float, tuple[str, ...], str]]: ...


class RemediationSteps(Protocol):
    """Where RecordRemediationStep writes (``graph.remediation.RemediationLog``)."""

    def record_step(self, step: StepRecord, event_payload: Callable[[StepRecord], bytes]) -> tuple[bool, int | None]: ...

    def steps(self, incident_id: str) -> list[StepRecord]: ...


class DeploymentRecorder(Protocol):
    """Where RecordDeployment writes (``graph.writer.GraphWriter``); False: id seen before."""

    def record_deployment(self, deployment: Deployment) -> bool: ...


def _remaining(context: grpc.ServicerContext, floor_s: float = 0.05) -> float | None:
    """Seconds left before the caller's deadline (None: no deadline); fail fast if spent."""
    left = context.time_remaining()
    if left is None or left > 1e8:
        return None
    if left < floor_s:
        raise TimeoutError("deadline exceeded")
    return left


class RootCauseServicer(pb_grpc.RootCauseServicer):
    def __init__(self, graph: WindowSource, incidents: IncidentLog, ranker: Ranker,
                 blast: Callable[[WindowData, str, FaultKind | None, float], BlastRadius], *,
                 deployments: DeploymentRecorder, events: "IncidentEvents | None" = None,
                 remediation: RemediationSteps | None = None,
                 bucket_seconds: int = 60, clock: Callable[[], float] = time.time,
                 watch_poll_s: float = WATCH_POLL_S, max_watch_streams: int = 8) -> None:
        self._graph = graph
        self._events = events
        self._remediation = remediation
        self._watch_poll_s = watch_poll_s
        self._max_watch = max_watch_streams
        self._watch_slots = threading.BoundedSemaphore(max_watch_streams)
        self._deployments = deployments
        self._incidents = incidents
        self._ranker = ranker
        self._blast = blast
        self._bucket = bucket_seconds
        self._clock = clock

    @grpc_errors
    def RankCauses(self, request: pb.RankCausesRequest, context: grpc.ServicerContext) -> pb.RankCausesResponse:  # noqa: N802,E501
        win = rank_query(request, self._bucket, self._clock())
        with tracer.start_as_current_span("RankCauses.read_window"):
            data = self._graph.read_window(win.incident, win.baseline, self._bucket,
                                           timeout_s=_remaining(context))
        _remaining(context)
        with tracer.start_as_current_span("RankCauses.rank") as span:
            ranking = self._ranker.rank(data, win.symptoms, win.top_k)
            span.set_attribute("rootgraph.candidates", len(ranking.all_posteriors))
        incident_id = f"inc-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(self._clock()))}-{uuid.uuid4().hex[:8]}"
        response = ranking_to_proto(ranking, incident_id, win)
        with tracer.start_as_current_span("RankCauses.record"):
            self._incidents.save_incident(IncidentRecord(
                id=incident_id, created_ms=int(self._clock() * 1000),
                start_s=win.incident.start_s, end_s=win.incident.end_s,
                baseline_start_s=win.baseline.start_s, baseline_end_s=win.baseline.end_s,
                model_version=ranking.model_version, symptoms=ranking.symptoms,
                no_clear_cause=ranking.no_clear_cause,
                suspects=tuple((c.entity, c.rank, c.probability) for c in ranking.causes),
                affects=tuple((s, 1.0) for s in ranking.symptoms if s in data.entities),
                response_json=json_format.MessageToJson(response),
                inputs_gz=pack_inputs(window_json(
                    {"window": data, "symptoms": list(win.symptoms), "top_k": win.top_k})),
            ))
        return response

    @grpc_errors
    def BlastRadius(self, request: pb.BlastRadiusRequest, context: grpc.ServicerContext) -> pb.BlastRadiusResponse:  # noqa: N802,E501
        entity = validate_entity_name(request.entity, "entity")
        fault_kind = fault_kind_from_request(request)
        fault_size = request.fault_size
        check_fault_size(fault_kind, fault_size)  # before any read
        at = ts_seconds(request.at, "at") if request.HasField("at") else self._clock()
        # Complete minutes only: the minute being written changes with every ingest batch,
        # and with it the window's version, which would rebuild the what-if model on
        # every call under live traffic (server/whatif.py) for a few seconds more data.
        end = floor_to_bucket(at, self._bucket)
        start = end - BLAST_HISTORY_S
        data = self._graph.read_window(Window(start, end), Window(start - self._bucket, start),
                                       self._bucket, timeout_s=_remaining(context))
        if entity not in data.entities:
            if self._graph.entity(entity) is None:
                raise NotFound(f"entity: unknown entity {entity!r}")
            # Known entity, but no traffic in the last complete hour (gone quiet, or new
            # this minute): use every bucket still stored up to ``at``, the minute it falls
            # in included (retention bounds it). The baseline is unused by what-if queries.
            upto = ceil_to_bucket(at, self._bucket)
            data = self._graph.read_window(Window(self._bucket, upto), Window(0, self._bucket),
                                           self._bucket, timeout_s=_remaining(context))
            if entity not in data.entities:  # its traffic starts after `at`: say so, and when
                raise NoTrafficInWindow(entity, start, end, self._graph.first_traffic(entity, upto))
        _remaining(context)
        result = self._blast(data, entity, fault_kind, fault_size)
        return blast_to_proto(result, self._ranker.model_version)

    @grpc_errors
    def RecordDeployment(self, request: pb.RecordDeploymentRequest, context: grpc.ServicerContext) -> pb.RecordDeploymentResponse:  # noqa: N802,E501
        dep = deployment_from_request(request, self._graph.resolve_service, self._clock())
        created = self._deployments.record_deployment(dep)
        return pb.RecordDeploymentResponse(id=dep.id, created=created, service=dep.service)

    @grpc_errors
    def SubmitFeedback(self, request: pb.SubmitFeedbackRequest, context: grpc.ServicerContext) -> pb.SubmitFeedbackResponse:  # noqa: N802,E501
        validate_entity_name(request.feedback_id, "feedback_id")
        validate_entity_name(request.incident_id, "incident_id")
        if request.none_of_these == bool(request.confirmed_cause):
            raise InvalidRequest("confirmed_cause", "give a confirmed cause or set none_of_these, not both")
        if request.confirmed_cause:
            validate_entity_name(request.confirmed_cause, "confirmed_cause")
        if request.action not in ACTIONS:
            raise InvalidRequest("action", f"unknown value {request.action}")
        if request.outcome not in OUTCOMES:
            raise InvalidRequest("outcome", f"unknown value {request.outcome}")
        for field in ("confirmed_by", "note"):
            if len(getattr(request, field)) > 4096:
                raise InvalidRequest(field, "longer than 4096 characters")
        created = self._incidents.submit_feedback(FeedbackRecord(
            id=request.feedback_id, incident_id=request.incident_id,
            confirmed_cause=request.confirmed_cause, none_of_these=request.none_of_these,
            action=ACTIONS[request.action], outcome=OUTCOMES[request.outcome],
            confirmed_by=request.confirmed_by, note=request.note, at_ms=int(self._clock() * 1000),
        ))
        return pb.SubmitFeedbackResponse(feedback_id=request.feedback_id, created=created)

    @grpc_errors
    def GetIncident(self, request: pb.GetIncidentRequest, context: grpc.ServicerContext) -> pb.GetIncidentResponse:  # noqa: N802,E501
        validate_entity_name(request.incident_id, "incident_id")
        rec = self._incidents.get_incident(request.incident_id)
        ranking = json_format.Parse(rec.response_json, pb.RankCausesResponse())
        # Stored as compact JSON already: handed out as is, not parsed and re-encoded.
        evidence = unpack_inputs(rec.inputs_gz).decode() if rec.inputs_gz else "{}"
        action_ids = {v: k for k, v in ACTIONS.items()}
        outcome_ids = {v: k for k, v in OUTCOMES.items()}
        return pb.GetIncidentResponse(
            ranking=ranking, created=ts(rec.created_ms / 1000),
            baseline_start=ts(rec.baseline_start_s), baseline_end=ts(rec.baseline_end_s),
            evidence_json=evidence,
            feedback=[pb.Feedback(
                feedback_id=f.id, confirmed_cause=f.confirmed_cause, none_of_these=f.none_of_these,
                action=action_ids.get(f.action, 0), outcome=outcome_ids.get(f.outcome, 0),
                confirmed_by=f.confirmed_by, note=f.note, at=ts(f.at_ms / 1000),
            ) for f in rec.feedback],
            remediation=[step_to_proto(s) for s in self._remediation.steps(rec.id)] if self._remediation else [],
        )

    @grpc_errors
    def RecordRemediationStep(self, request: pb.RecordRemediationStepRequest, context: grpc.ServicerContext) -> pb.RecordRemediationStepResponse:  # noqa: N802,E501
        if self._remediation is None:
            raise InvalidRequest("RecordRemediationStep", "this server keeps no remediation steps")
        step = step_from_request(request, self._clock())
        created, _ = self._remediation.record_step(step, step_event_payload)
        if created:
            log.info("remediation step %s: %s of proposal %s on %s by %s", step.id, step.kind,
                     step.proposal_id, step.incident_id, step.actor or "-")
        return pb.RecordRemediationStepResponse(step_id=step.id, created=created)

    @grpc_errors
    def GetServiceGraph(self, request: pb.GetServiceGraphRequest, context: grpc.ServicerContext) -> pb.GetServiceGraphResponse:  # noqa: N802,E501
        entities, calls, runs = self._graph.service_graph()
        return pb.GetServiceGraphResponse(
            entities=[pb.Entity(id=e.id, name=e.name, namespace=e.namespace, kind=e.kind.value)
                      for e in entities],
            edges=[pb.Edge(caller=a, callee=b, calls=c, errors=e, **{"async": x})
                   for a, b, c, e, x in calls],
            runs_on=[pb.RunsOn(entity=a, infra=b) for a, b in runs],
        )

    def WatchIncidents(self, request: pb.WatchIncidentsRequest, context: grpc.ServicerContext):  # noqa: N802,ANN201
        """Stream the stored events after the cursor, then each new one as it commits.

        Events are read back from Neo4j in ``seq`` order (``graph/incident_events.py``:
        a seq seen means every earlier one is committed), so a client resuming with the
        last seq it received gets every later event exactly once, whichever replica
        wrote them. One stream holds one server worker thread while open, so at most
        ``max_watch_streams`` are served at once (UNAVAILABLE beyond, retryable): watchers
        can never take every thread from the unary calls.
        """
        held = False
        try:
            if self._events is None:
                raise InvalidRequest("WatchIncidents", "this server keeps no incident events")
            held = self._watch_slots.acquire(blocking=False)
            if not held:
                raise Overloaded(f"WatchIncidents: {self._max_watch} streams are open, the most this server "
                                 "serves at once (each holds a server thread); retry later or use ListIncidents")
            cursor = self._events.last_seq() if request.only_new else int(request.after_seq)
            wake = threading.Event()
            context.add_callback(wake.set)  # a cancelled or closed stream ends the wait at once
            while context.is_active():
                batch = self._events.events_after(cursor)
                for e in batch:
                    ev = pb.IncidentEvent.FromString(e.payload)
                    ev.seq = e.seq
                    ev.committed.CopyFrom(ts(e.at_ms / 1000))
                    yield pb.WatchIncidentsResponse(event=ev)
                    cursor = e.seq
                if not batch:
                    wake.wait(self._watch_poll_s)
        except Exception as exc:  # noqa: BLE001 - mapped, not swallowed (grpc_errors for a stream)
            if isinstance(exc, grpc.RpcError) or context.code() is not None:
                raise
            c = classify(exc)
            context.abort(c.code, c.message)
        finally:
            if held:
                self._watch_slots.release()

    @grpc_errors
    def ListIncidents(self, request: pb.ListIncidentsRequest, context: grpc.ServicerContext) -> pb.ListIncidentsResponse:  # noqa: N802,E501
        if self._events is None:
            raise InvalidRequest("ListIncidents", "this server keeps no incidents")
        if request.state not in _STATES:
            raise InvalidRequest("state", f"unknown value {request.state}")
        if request.limit > MAX_LIST:
            raise InvalidRequest("limit", f"at most {MAX_LIST}, got {request.limit}")
        since = ts_seconds(request.since, "since") if request.HasField("since") else 0.0
        until = ts_seconds(request.until, "until") if request.HasField("until") else None
        if until is not None and until <= since:
            raise InvalidRequest("until", "must be after since")
        rows = self._events.list_incidents(_STATES[request.state], int(since * 1000),
                                           None if until is None else int(until * 1000), request.limit or 100)
        out = pb.ListIncidentsResponse()
        for iid, state, opened, resolved, top, p, syms, _ in rows:
            item = out.incidents.add(incident_id=iid, state=_STATE_IDS.get(state, 0), top_cause=top,
                                     top_probability=p, symptoms=list(syms))
            item.opened.CopyFrom(ts(opened))
            if resolved is not None:
                item.resolved.CopyFrom(ts(resolved))
        return out
