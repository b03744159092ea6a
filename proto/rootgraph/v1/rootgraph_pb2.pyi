import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RemediationAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REMEDIATION_ACTION_UNSPECIFIED: _ClassVar[RemediationAction]
    REMEDIATION_ACTION_ROLLBACK: _ClassVar[RemediationAction]
    REMEDIATION_ACTION_RESTART: _ClassVar[RemediationAction]
    REMEDIATION_ACTION_SCALE: _ClassVar[RemediationAction]
    REMEDIATION_ACTION_FAILOVER: _ClassVar[RemediationAction]
    REMEDIATION_ACTION_OTHER: _ClassVar[RemediationAction]
    REMEDIATION_ACTION_NONE: _ClassVar[RemediationAction]

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_RESOLVED: _ClassVar[Outcome]
    OUTCOME_NOT_RESOLVED: _ClassVar[Outcome]
    OUTCOME_MADE_WORSE: _ClassVar[Outcome]

class IncidentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INCIDENT_STATE_UNSPECIFIED: _ClassVar[IncidentState]
    INCIDENT_STATE_OPEN: _ClassVar[IncidentState]
    INCIDENT_STATE_RESOLVED: _ClassVar[IncidentState]
    INCIDENT_STATE_ANSWERED: _ClassVar[IncidentState]

class IncidentEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INCIDENT_EVENT_KIND_UNSPECIFIED: _ClassVar[IncidentEventKind]
    INCIDENT_EVENT_KIND_OPENED: _ClassVar[IncidentEventKind]
    INCIDENT_EVENT_KIND_UPDATED: _ClassVar[IncidentEventKind]
    INCIDENT_EVENT_KIND_RESOLVED: _ClassVar[IncidentEventKind]
    INCIDENT_EVENT_KIND_REMEDIATION: _ClassVar[IncidentEventKind]

class RemediationStepKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REMEDIATION_STEP_KIND_UNSPECIFIED: _ClassVar[RemediationStepKind]
    REMEDIATION_STEP_KIND_PROPOSED: _ClassVar[RemediationStepKind]
    REMEDIATION_STEP_KIND_APPROVED: _ClassVar[RemediationStepKind]
    REMEDIATION_STEP_KIND_DENIED: _ClassVar[RemediationStepKind]
    REMEDIATION_STEP_KIND_EXPIRED: _ClassVar[RemediationStepKind]
    REMEDIATION_STEP_KIND_EXECUTED: _ClassVar[RemediationStepKind]
    REMEDIATION_STEP_KIND_OUTCOME: _ClassVar[RemediationStepKind]
REMEDIATION_ACTION_UNSPECIFIED: RemediationAction
REMEDIATION_ACTION_ROLLBACK: RemediationAction
REMEDIATION_ACTION_RESTART: RemediationAction
REMEDIATION_ACTION_SCALE: RemediationAction
REMEDIATION_ACTION_FAILOVER: RemediationAction
REMEDIATION_ACTION_OTHER: RemediationAction
REMEDIATION_ACTION_NONE: RemediationAction
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_RESOLVED: Outcome
OUTCOME_NOT_RESOLVED: Outcome
OUTCOME_MADE_WORSE: Outcome
INCIDENT_STATE_UNSPECIFIED: IncidentState
INCIDENT_STATE_OPEN: IncidentState
INCIDENT_STATE_RESOLVED: IncidentState
INCIDENT_STATE_ANSWERED: IncidentState
INCIDENT_EVENT_KIND_UNSPECIFIED: IncidentEventKind
INCIDENT_EVENT_KIND_OPENED: IncidentEventKind
INCIDENT_EVENT_KIND_UPDATED: IncidentEventKind
INCIDENT_EVENT_KIND_RESOLVED: IncidentEventKind
INCIDENT_EVENT_KIND_REMEDIATION: IncidentEventKind
REMEDIATION_STEP_KIND_UNSPECIFIED: RemediationStepKind
REMEDIATION_STEP_KIND_PROPOSED: RemediationStepKind
REMEDIATION_STEP_KIND_APPROVED: RemediationStepKind
REMEDIATION_STEP_KIND_DENIED: RemediationStepKind
REMEDIATION_STEP_KIND_EXPIRED: RemediationStepKind
REMEDIATION_STEP_KIND_EXECUTED: RemediationStepKind
REMEDIATION_STEP_KIND_OUTCOME: RemediationStepKind

class RankCausesRequest(_message.Message):
    __slots__ = ("start", "end", "top_k", "symptoms", "baseline_start", "baseline_end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    SYMPTOMS_FIELD_NUMBER: _ClassVar[int]
    BASELINE_START_FIELD_NUMBER: _ClassVar[int]
    BASELINE_END_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    top_k: int
    symptoms: _containers.RepeatedScalarFieldContainer[str]
    baseline_start: _timestamp_pb2.Timestamp
    baseline_end: _timestamp_pb2.Timestamp
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., top_k: _Optional[int] = ..., symptoms: _Optional[_Iterable[str]] = ..., baseline_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., baseline_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Evidence(_message.Message):
    __slots__ = ("entity", "signal", "observed", "baseline", "score", "text")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    entity: str
    signal: str
    observed: float
    baseline: float
    score: float
    text: str
    def __init__(self, entity: _Optional[str] = ..., signal: _Optional[str] = ..., observed: _Optional[float] = ..., baseline: _Optional[float] = ..., score: _Optional[float] = ..., text: _Optional[str] = ...) -> None: ...

class Path(_message.Message):
    __slots__ = ("entities",)
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    entities: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, entities: _Optional[_Iterable[str]] = ...) -> None: ...

class Deployment(_message.Message):
    __slots__ = ("id", "service", "version", "previous_version", "at", "commit", "source", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    id: str
    service: str
    version: str
    previous_version: str
    at: _timestamp_pb2.Timestamp
    commit: str
    source: str
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., service: _Optional[str] = ..., version: _Optional[str] = ..., previous_version: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., commit: _Optional[str] = ..., source: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SuggestedAction(_message.Message):
    __slots__ = ("kind", "target", "detail", "to_version", "confidence")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    TO_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    target: str
    detail: str
    to_version: str
    confidence: float
    def __init__(self, kind: _Optional[str] = ..., target: _Optional[str] = ..., detail: _Optional[str] = ..., to_version: _Optional[str] = ..., confidence: _Optional[float] = ...) -> None: ...

class Cause(_message.Message):
    __slots__ = ("entity", "kind", "probability", "rank", "explanation", "evidence", "paths", "deployments", "suggested_actions", "fault_kind", "fault_size")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    SUGGESTED_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    FAULT_KIND_FIELD_NUMBER: _ClassVar[int]
    FAULT_SIZE_FIELD_NUMBER: _ClassVar[int]
    entity: str
    kind: str
    probability: float
    rank: int
    explanation: str
    evidence: _containers.RepeatedCompositeFieldContainer[Evidence]
    paths: _containers.RepeatedCompositeFieldContainer[Path]
    deployments: _containers.RepeatedCompositeFieldContainer[Deployment]
    suggested_actions: _containers.RepeatedCompositeFieldContainer[SuggestedAction]
    fault_kind: str
    fault_size: float
    def __init__(self, entity: _Optional[str] = ..., kind: _Optional[str] = ..., probability: _Optional[float] = ..., rank: _Optional[int] = ..., explanation: _Optional[str] = ..., evidence: _Optional[_Iterable[_Union[Evidence, _Mapping]]] = ..., paths: _Optional[_Iterable[_Union[Path, _Mapping]]] = ..., deployments: _Optional[_Iterable[_Union[Deployment, _Mapping]]] = ..., suggested_actions: _Optional[_Iterable[_Union[SuggestedAction, _Mapping]]] = ..., fault_kind: _Optional[str] = ..., fault_size: _Optional[float] = ...) -> None: ...

class RankCausesResponse(_message.Message):
    __slots__ = ("incident_id", "causes", "symptoms", "model_version", "no_clear_cause", "notes", "start", "end")
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    CAUSES_FIELD_NUMBER: _ClassVar[int]
    SYMPTOMS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    NO_CLEAR_CAUSE_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    incident_id: str
    causes: _containers.RepeatedCompositeFieldContainer[Cause]
    symptoms: _containers.RepeatedScalarFieldContainer[str]
    model_version: str
    no_clear_cause: bool
    notes: _containers.RepeatedScalarFieldContainer[str]
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    def __init__(self, incident_id: _Optional[str] = ..., causes: _Optional[_Iterable[_Union[Cause, _Mapping]]] = ..., symptoms: _Optional[_Iterable[str]] = ..., model_version: _Optional[str] = ..., no_clear_cause: _Optional[bool] = ..., notes: _Optional[_Iterable[str]] = ..., start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class BlastRadiusRequest(_message.Message):
    __slots__ = ("entity", "fault_kind", "at", "fault_size")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    FAULT_KIND_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    FAULT_SIZE_FIELD_NUMBER: _ClassVar[int]
    entity: str
    fault_kind: str
    at: _timestamp_pb2.Timestamp
    fault_size: float
    def __init__(self, entity: _Optional[str] = ..., fault_kind: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., fault_size: _Optional[float] = ...) -> None: ...

class Impact(_message.Message):
    __slots__ = ("entity", "kind", "probability", "hops", "path", "traffic_share")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    HOPS_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_SHARE_FIELD_NUMBER: _ClassVar[int]
    entity: str
    kind: str
    probability: float
    hops: int
    path: Path
    traffic_share: float
    def __init__(self, entity: _Optional[str] = ..., kind: _Optional[str] = ..., probability: _Optional[float] = ..., hops: _Optional[int] = ..., path: _Optional[_Union[Path, _Mapping]] = ..., traffic_share: _Optional[float] = ...) -> None: ...

class BlastRadiusResponse(_message.Message):
    __slots__ = ("entity", "impacts", "entry_traffic_share_affected", "model_version")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    IMPACTS_FIELD_NUMBER: _ClassVar[int]
    ENTRY_TRAFFIC_SHARE_AFFECTED_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    entity: str
    impacts: _containers.RepeatedCompositeFieldContainer[Impact]
    entry_traffic_share_affected: float
    model_version: str
    def __init__(self, entity: _Optional[str] = ..., impacts: _Optional[_Iterable[_Union[Impact, _Mapping]]] = ..., entry_traffic_share_affected: _Optional[float] = ..., model_version: _Optional[str] = ...) -> None: ...

class RecordDeploymentRequest(_message.Message):
    __slots__ = ("id", "service", "version", "at", "commit", "previous_version", "source", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    id: str
    service: str
    version: str
    at: _timestamp_pb2.Timestamp
    commit: str
    previous_version: str
    source: str
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., service: _Optional[str] = ..., version: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., commit: _Optional[str] = ..., previous_version: _Optional[str] = ..., source: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class RecordDeploymentResponse(_message.Message):
    __slots__ = ("id", "created", "service")
    ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    id: str
    created: bool
    service: str
    def __init__(self, id: _Optional[str] = ..., created: _Optional[bool] = ..., service: _Optional[str] = ...) -> None: ...

class SubmitFeedbackRequest(_message.Message):
    __slots__ = ("feedback_id", "incident_id", "confirmed_cause", "none_of_these", "action", "outcome", "confirmed_by", "note")
    FEEDBACK_ID_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIRMED_CAUSE_FIELD_NUMBER: _ClassVar[int]
    NONE_OF_THESE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    CONFIRMED_BY_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    feedback_id: str
    incident_id: str
    confirmed_cause: str
    none_of_these: bool
    action: RemediationAction
    outcome: Outcome
    confirmed_by: str
    note: str
    def __init__(self, feedback_id: _Optional[str] = ..., incident_id: _Optional[str] = ..., confirmed_cause: _Optional[str] = ..., none_of_these: _Optional[bool] = ..., action: _Optional[_Union[RemediationAction, str]] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., confirmed_by: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class SubmitFeedbackResponse(_message.Message):
    __slots__ = ("feedback_id", "created")
    FEEDBACK_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    feedback_id: str
    created: bool
    def __init__(self, feedback_id: _Optional[str] = ..., created: _Optional[bool] = ...) -> None: ...

class GetIncidentRequest(_message.Message):
    __slots__ = ("incident_id",)
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    incident_id: str
    def __init__(self, incident_id: _Optional[str] = ...) -> None: ...

class Feedback(_message.Message):
    __slots__ = ("feedback_id", "confirmed_cause", "none_of_these", "action", "outcome", "confirmed_by", "note", "at")
    FEEDBACK_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIRMED_CAUSE_FIELD_NUMBER: _ClassVar[int]
    NONE_OF_THESE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    CONFIRMED_BY_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    feedback_id: str
    confirmed_cause: str
    none_of_these: bool
    action: RemediationAction
    outcome: Outcome
    confirmed_by: str
    note: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, feedback_id: _Optional[str] = ..., confirmed_cause: _Optional[str] = ..., none_of_these: _Optional[bool] = ..., action: _Optional[_Union[RemediationAction, str]] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., confirmed_by: _Optional[str] = ..., note: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetIncidentResponse(_message.Message):
    __slots__ = ("ranking", "created", "feedback", "evidence_json", "baseline_start", "baseline_end", "remediation")
    RANKING_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_JSON_FIELD_NUMBER: _ClassVar[int]
    BASELINE_START_FIELD_NUMBER: _ClassVar[int]
    BASELINE_END_FIELD_NUMBER: _ClassVar[int]
    REMEDIATION_FIELD_NUMBER: _ClassVar[int]
    ranking: RankCausesResponse
    created: _timestamp_pb2.Timestamp
    feedback: _containers.RepeatedCompositeFieldContainer[Feedback]
    evidence_json: str
    baseline_start: _timestamp_pb2.Timestamp
    baseline_end: _timestamp_pb2.Timestamp
    remediation: _containers.RepeatedCompositeFieldContainer[RemediationStep]
    def __init__(self, ranking: _Optional[_Union[RankCausesResponse, _Mapping]] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., feedback: _Optional[_Iterable[_Union[Feedback, _Mapping]]] = ..., evidence_json: _Optional[str] = ..., baseline_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., baseline_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., remediation: _Optional[_Iterable[_Union[RemediationStep, _Mapping]]] = ...) -> None: ...

class GetServiceGraphRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Entity(_message.Message):
    __slots__ = ("id", "name", "namespace", "kind")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    namespace: str
    kind: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., namespace: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...

class Edge(_message.Message):
    __slots__ = ("caller", "callee", "calls", "errors")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    CALLEE_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    ASYNC_FIELD_NUMBER: _ClassVar[int]
    caller: str
    callee: str
    calls: int
    errors: int
    def __init__(self, caller: _Optional[str] = ..., callee: _Optional[str] = ..., calls: _Optional[int] = ..., errors: _Optional[int] = ..., **kwargs) -> None: ...

class RunsOn(_message.Message):
    __slots__ = ("entity", "infra")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    INFRA_FIELD_NUMBER: _ClassVar[int]
    entity: str
    infra: str
    def __init__(self, entity: _Optional[str] = ..., infra: _Optional[str] = ...) -> None: ...

class GetServiceGraphResponse(_message.Message):
    __slots__ = ("entities", "edges", "runs_on")
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    RUNS_ON_FIELD_NUMBER: _ClassVar[int]
    entities: _containers.RepeatedCompositeFieldContainer[Entity]
    edges: _containers.RepeatedCompositeFieldContainer[Edge]
    runs_on: _containers.RepeatedCompositeFieldContainer[RunsOn]
    def __init__(self, entities: _Optional[_Iterable[_Union[Entity, _Mapping]]] = ..., edges: _Optional[_Iterable[_Union[Edge, _Mapping]]] = ..., runs_on: _Optional[_Iterable[_Union[RunsOn, _Mapping]]] = ...) -> None: ...

class WatchIncidentsRequest(_message.Message):
    __slots__ = ("after_seq", "only_new")
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    ONLY_NEW_FIELD_NUMBER: _ClassVar[int]
    after_seq: int
    only_new: bool
    def __init__(self, after_seq: _Optional[int] = ..., only_new: _Optional[bool] = ...) -> None: ...

class Symptom(_message.Message):
    __slots__ = ("entity", "signal", "detail")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    entity: str
    signal: str
    detail: str
    def __init__(self, entity: _Optional[str] = ..., signal: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class IncidentEvent(_message.Message):
    __slots__ = ("seq", "kind", "incident_id", "state", "ranking", "symptoms", "new_symptoms", "bucket", "opened", "resolved", "top_cause_changed", "committed", "remediation")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RANKING_FIELD_NUMBER: _ClassVar[int]
    SYMPTOMS_FIELD_NUMBER: _ClassVar[int]
    NEW_SYMPTOMS_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    OPENED_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_FIELD_NUMBER: _ClassVar[int]
    TOP_CAUSE_CHANGED_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_FIELD_NUMBER: _ClassVar[int]
    REMEDIATION_FIELD_NUMBER: _ClassVar[int]
    seq: int
    kind: IncidentEventKind
    incident_id: str
    state: IncidentState
    ranking: RankCausesResponse
    symptoms: _containers.RepeatedCompositeFieldContainer[Symptom]
    new_symptoms: _containers.RepeatedScalarFieldContainer[str]
    bucket: _timestamp_pb2.Timestamp
    opened: _timestamp_pb2.Timestamp
    resolved: _timestamp_pb2.Timestamp
    top_cause_changed: bool
    committed: _timestamp_pb2.Timestamp
    remediation: RemediationStep
    def __init__(self, seq: _Optional[int] = ..., kind: _Optional[_Union[IncidentEventKind, str]] = ..., incident_id: _Optional[str] = ..., state: _Optional[_Union[IncidentState, str]] = ..., ranking: _Optional[_Union[RankCausesResponse, _Mapping]] = ..., symptoms: _Optional[_Iterable[_Union[Symptom, _Mapping]]] = ..., new_symptoms: _Optional[_Iterable[str]] = ..., bucket: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., opened: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolved: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., top_cause_changed: _Optional[bool] = ..., committed: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., remediation: _Optional[_Union[RemediationStep, _Mapping]] = ...) -> None: ...

class WatchIncidentsResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: IncidentEvent
    def __init__(self, event: _Optional[_Union[IncidentEvent, _Mapping]] = ...) -> None: ...

class ListIncidentsRequest(_message.Message):
    __slots__ = ("state", "since", "until", "limit")
    STATE_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    state: IncidentState
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    limit: int
    def __init__(self, state: _Optional[_Union[IncidentState, str]] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., limit: _Optional[int] = ...) -> None: ...

class IncidentSummary(_message.Message):
    __slots__ = ("incident_id", "state", "opened", "resolved", "top_cause", "top_probability", "symptoms")
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OPENED_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_FIELD_NUMBER: _ClassVar[int]
    TOP_CAUSE_FIELD_NUMBER: _ClassVar[int]
    TOP_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    SYMPTOMS_FIELD_NUMBER: _ClassVar[int]
    incident_id: str
    state: IncidentState
    opened: _timestamp_pb2.Timestamp
    resolved: _timestamp_pb2.Timestamp
    top_cause: str
    top_probability: float
    symptoms: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, incident_id: _Optional[str] = ..., state: _Optional[_Union[IncidentState, str]] = ..., opened: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolved: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., top_cause: _Optional[str] = ..., top_probability: _Optional[float] = ..., symptoms: _Optional[_Iterable[str]] = ...) -> None: ...

class ListIncidentsResponse(_message.Message):
    __slots__ = ("incidents",)
    INCIDENTS_FIELD_NUMBER: _ClassVar[int]
    incidents: _containers.RepeatedCompositeFieldContainer[IncidentSummary]
    def __init__(self, incidents: _Optional[_Iterable[_Union[IncidentSummary, _Mapping]]] = ...) -> None: ...

class RemediationStep(_message.Message):
    __slots__ = ("step_id", "incident_id", "proposal_id", "kind", "action", "target", "actor", "exit_status", "dry_run", "outcome", "detail", "policy_version", "at")
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    PROPOSAL_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    EXIT_STATUS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    step_id: str
    incident_id: str
    proposal_id: str
    kind: RemediationStepKind
    action: RemediationAction
    target: str
    actor: str
    exit_status: int
    dry_run: bool
    outcome: Outcome
    detail: str
    policy_version: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, step_id: _Optional[str] = ..., incident_id: _Optional[str] = ..., proposal_id: _Optional[str] = ..., kind: _Optional[_Union[RemediationStepKind, str]] = ..., action: _Optional[_Union[RemediationAction, str]] = ..., target: _Optional[str] = ..., actor: _Optional[str] = ..., exit_status: _Optional[int] = ..., dry_run: _Optional[bool] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., detail: _Optional[str] = ..., policy_version: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecordRemediationStepRequest(_message.Message):
    __slots__ = ("step",)
    STEP_FIELD_NUMBER: _ClassVar[int]
    step: RemediationStep
    def __init__(self, step: _Optional[_Union[RemediationStep, _Mapping]] = ...) -> None: ...

class RecordRemediationStepResponse(_message.Message):
    __slots__ = ("step_id", "created")
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    step_id: str
    created: bool
    def __init__(self, step_id: _Optional[str] = ..., created: _Optional[bool] = ...) -> None: ...
