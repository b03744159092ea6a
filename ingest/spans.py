"""Decode OTLP trace payloads into flat :class:`Span` records.

Why flat records: every later step (pairing, self time, aggregation) touches a span's
ids, kind, times and a handful of attributes many times; reading them once from the
protobuf and keeping them in a slotted dataclass is far cheaper than going back to the
message. Only the attribute keys listed in :data:`SPAN_KEYS` / :data:`RESOURCE_KEYS` are
copied; every other attribute is skipped without building a dict.

Accepted inputs (OTLP spec, "OTLP/HTTP" and "JSON Protobuf Encoding"):

* ``ExportTraceServiceRequest`` protobuf bytes, or an already parsed message;
* OTLP/JSON bytes: lowerCamelCase field names (the snake_case proto names are accepted
  too, as protobuf's JSON parser does), trace/span ids as *hex* strings (not the
  base64 of the generic protobuf JSON mapping), enums as integers or names, 64-bit
  integers as strings or numbers, unknown fields ignored.

Validation is per span, with a reason for every rejection (``DecodeResult.reasons``):

======================================  ==============================================
reason                                  rule
======================================  ==============================================
``missing service.name``                resource has no non-empty string service.name
                                        (all its spans are rejected)
``service.name too long``               service.name or service.namespace longer than
                                        ``max_name_len`` (256) characters
``invalid trace_id``                    not 16 bytes, or all zero
``invalid span_id``                     not 8 bytes, or all zero
``invalid parent_span_id``              neither empty nor 8 bytes (an all-zero parent
                                        is read as "no parent", as some SDKs send it)
``missing start time``                  start_time_unix_nano is 0: the span cannot be
                                        put in a time bucket
======================================  ==============================================

``end < start`` is *clamped* (end := start, counted in ``DecodeResult.clamped``), not
rejected: it is almost always clock trouble inside one SDK, and the span still proves a
call happened, which the graph should not lose. Attribute values are truncated to
``max_value_len`` (1 KiB) characters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

M = TypeVar("M")

__all__ = [
    "DecodeResult",
    "hex_field",
    "infra_id",
    "items",
    "parse_request",
    "parse_traces",
    "request_digest",
    "resource_identity",
    "value_text",
    "MalformedPayload",
    "Span",
    "decode",
    "SPAN_KEYS",
    "CICD_KEYS",
    "KIND_INTERNAL",
    "KIND_SERVER",
    "KIND_CLIENT",
    "KIND_PRODUCER",
    "KIND_CONSUMER",
    "is_entry",
]

KIND_INTERNAL = 1
KIND_SERVER = 2
KIND_CLIENT = 3
KIND_PRODUCER = 4
KIND_CONSUMER = 5

_STATUS_ERROR = 2
_ZERO16 = bytes(16)
_ZERO8 = bytes(8)

#: Span attributes that name an uninstrumented peer (virtual nodes, pairing.py).
PEER_KEYS = frozenset({
    "peer.service", "server.address", "server.port", "net.peer.name", "net.peer.port",
    "db.system", "db.system.name", "db.namespace", "db.name", "messaging.system",
    "messaging.destination.name", "http.url", "url.full", "rpc.service",
})
#: Span attributes of OpenTelemetry CI/CD pipeline spans (deployments.py). The
#: ``service.*``/``deployment.*``/``vcs.*`` keys name what a deploy task deployed.
CICD_KEYS = frozenset({
    "cicd.pipeline.name", "cicd.pipeline.run.id", "cicd.pipeline.task.name",
    "cicd.pipeline.task.type", "cicd.pipeline.task.run.id", "cicd.pipeline.task.run.result",
    "cicd.pipeline.result", "cicd.pipeline.task.run.url.full", "cicd.pipeline.run.url.full",
    "service.name", "service.namespace", "service.version", "deployment.name",
    "deployment.id", "deployment.environment.name", "deployment.status",
    "vcs.ref.head.revision", "vcs.ref.head.name",
})
SPAN_KEYS = PEER_KEYS | CICD_KEYS
#: Any of these marks a span as CI/CD pipeline telemetry, never service traffic.
_CICD_NEEDLE = b"cicd.pipeline."
_CICD_MARKERS = frozenset({"cicd.pipeline.task.type", "cicd.pipeline.name", "cicd.pipeline.run.id"})
RESOURCE_KEYS = frozenset({
    "service.name", "service.namespace", "service.version", "host.name", "k8s.node.name",
    "k8s.pod.name",
})
_INFRA_PREFIX = (("host.name", "host:"), ("k8s.node.name", "node:"), ("k8s.pod.name", "pod:"))
_INFRA_IDS = dict(_INFRA_PREFIX)

JSON_TYPES = ("application/json",)
PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf", "application/octet-stream")


class MalformedPayload(Exception):
    """The payload is not a decodable OTLP trace request (HTTP 400 / INVALID_ARGUMENT)."""

    retryable = False


@dataclass(slots=True)
class Span:
    """One accepted span, flattened. Ids are raw bytes; times are epoch nanoseconds."""

    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    #: graph identity: ``namespace/name`` or ``name``
    service: str
    service_name: str
    namespace: str
    version: str
    #: OTLP SpanKind; UNSPECIFIED (0) is read as INTERNAL (1), as the spec says
    kind: int
    name: str
    start_ns: int
    end_ns: int
    error: bool
    #: the keys of :data:`SPAN_KEYS` the span carries, values as strings. Filled for
    #: CLIENT/PRODUCER/CONSUMER spans (peers) and for CI/CD spans; SERVER and INTERNAL
    #: spans of a payload without any ``cicd.pipeline.`` text get {} (nothing reads them)
    attrs: dict[str, str]
    #: infra entity ids of the resource, e.g. ``("host:h1", "pod:p-1")``; shared tuple
    infra: tuple[str, ...]
    #: (trace_id, span_id) of span links; read for CONSUMER spans only (pairing)
    links: tuple[tuple[bytes, bytes], ...] = ()
    #: True for CI/CD pipeline spans (see :data:`CICD_KEYS`): not service traffic
    cicd: bool = False
    #: filled by ``selftime``: union (ns) of outbound children, and whether one failed
    child_ns: int = 0
    child_error: bool = False


def is_entry(span: Span) -> bool:
    """Whether the span is a request *to* its service: a SERVER or CONSUMER span, or a
    root span of any kind. The one entry rule: request statistics (``aggregate``), self
    time (``selftime``) and the entry points of the graph all use it."""
    kind = span.kind
    return kind == KIND_SERVER or kind == KIND_CONSUMER or not span.parent_span_id


@dataclass(slots=True)
class DecodeResult:
    """Accepted spans and what was rejected, by reason (never silent)."""

    spans: list[Span]
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    #: spans whose end preceded their start, accepted with end := start
    clamped: int = 0


def decode(
    payload: bytes | ExportTraceServiceRequest,
    content_type: str = "application/x-protobuf",
    *,
    max_name_len: int = 256,
    max_value_len: int = 1024,
) -> DecodeResult:
    """Decode one OTLP trace request into spans; raises :class:`MalformedPayload`."""
    if isinstance(payload, ExportTraceServiceRequest):
        return _walk(payload, max_name_len, max_value_len, True)
    # Attribute keys are stored verbatim in both encodings, so one C-speed substring
    # search tells whether any span can be a CI/CD span; if none can, SERVER and
    # INTERNAL spans need no attributes at all (the costliest part of decoding).
    maybe_cicd = _CICD_NEEDLE in payload
    return _walk(parse_traces(payload, content_type), max_name_len, max_value_len, maybe_cicd)


def parse_traces(payload: bytes, content_type: str = "application/x-protobuf") -> ExportTraceServiceRequest:
    """The ``ExportTraceServiceRequest`` of an OTLP protobuf or JSON body; raises
    :class:`MalformedPayload` (also the sharded front's check, server/workers.py)."""
    return parse_request(payload, content_type, ExportTraceServiceRequest(), _hex_ids_to_base64, "resourceSpans")


def parse_request(payload: bytes, content_type: str, request: M, fix_ids: Callable[[dict[str, Any]], None],
                  top: str) -> M:
    """Parse one OTLP request of any signal (``request`` is an empty message to fill).

    One implementation of the OTLP/HTTP encodings for traces, logs and metrics: protobuf,
    or OTLP/JSON whose hex trace/span ids ``fix_ids`` turns into the base64 protobuf's
    JSON mapping wants (``top`` names the payload's list, for the error message).
    """
    media = content_type.split(";", 1)[0].strip().lower()
    name = type(request).__name__
    if media in JSON_TYPES or media.endswith("+json"):
        try:
            doc = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedPayload(f"invalid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise MalformedPayload(f"OTLP/JSON payload must be an object with {top}")
        fix_ids(doc)
        try:
            json_format.ParseDict(doc, request, ignore_unknown_fields=True)
        except (json_format.ParseError, TypeError, ValueError) as exc:
            raise MalformedPayload(f"not an OTLP/JSON {name}: {exc}") from None
        return request
    if media and media not in PROTOBUF_TYPES:
        raise MalformedPayload(f"unsupported content type {content_type!r}")
    try:
        request.ParseFromString(payload)
    except (DecodeError, TypeError, ValueError) as exc:
        raise MalformedPayload(f"not an OTLP protobuf {name}: {exc}") from None
    return request


def items(obj: Any, *names: str) -> list[Any]:
    """The list under the first present name (camelCase or snake_case), else []."""
    if isinstance(obj, dict):
        for name in names:
            value = obj.get(name)
            if isinstance(value, list):
                return value
    return []


def hex_field(obj: dict[str, Any], names: tuple[str, ...], size: int) -> None:
    for name in names:
        value = obj.get(name)
        if isinstance(value, str):
            obj[name] = _hex_to_b64(value, size)


def _hex_to_b64(value: str, size: int) -> str:
    """OTLP/JSON ids are hex; protobuf's JSON mapping wants base64 for bytes.

    A value that is not hex but is base64 of exactly ``size`` bytes is accepted too
    (some producers follow the generic protobuf mapping). Anything else becomes an
    empty id so that *that span* is rejected with a reason instead of the whole request.
    """
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != size:
            raw = b""
    return base64.b64encode(raw).decode("ascii")


def _hex_ids_to_base64(doc: dict[str, Any]) -> None:
    for rs in items(doc, "resourceSpans", "resource_spans"):
        for ss in items(rs, "scopeSpans", "scope_spans"):
            for sp in items(ss, "spans"):
                if not isinstance(sp, dict):
                    continue
                hex_field(sp, ("traceId", "trace_id"), 16)
                hex_field(sp, ("spanId", "span_id"), 8)
                hex_field(sp, ("parentSpanId", "parent_span_id"), 8)
                for link in items(sp, "links"):
                    if isinstance(link, dict):
                        hex_field(link, ("traceId", "trace_id"), 16)
                        hex_field(link, ("spanId", "span_id"), 8)


def _value(any_value: Any, max_len: int) -> str | None:
    """String form of an AnyValue scalar; None for arrays, maps, bytes and empty."""
    case = any_value.WhichOneof("value")
    if case == "string_value":
        text = any_value.string_value
        return text[:max_len] if len(text) > max_len else text
    if case == "int_value":
        return str(any_value.int_value)
    if case == "bool_value":
        return "true" if any_value.bool_value else "false"
    if case == "double_value":
        return repr(any_value.double_value)
    return None


def request_digest(payload: object, request: Any) -> str:
    """A logs or metrics request's batch id: sha256 of its bytes as received (a client's
    retry re-sends the same bytes), or of the message's deterministic encoding when it
    arrives parsed (gRPC). Unlike spans, records have no ids of their own to sort."""
    raw = payload if isinstance(payload, (bytes, bytearray, memoryview)) else \
        request.SerializeToString(deterministic=True)
    return hashlib.sha256(raw).hexdigest()


def infra_id(key: str, name: str, max_value_len: int = 1024) -> str:
    """The graph id of an infrastructure entity from its resource key and name, e.g.
    ``infra_id("k8s.pod.name", "cart-1") == "pod:cart-1"`` (the one naming rule, also
    used for Prometheus labels by ``ingest/metrics.py``)."""
    return _INFRA_IDS[key] + name[:max_value_len]


def resource_identity(resource: Any, max_name_len: int = 256, max_value_len: int = 1024, *,
                      require_service: bool = True) -> tuple[str, str, str, str, tuple[str, ...]] | str:
    """(service, name, namespace, version, infra ids) of a resource, or a rejection reason.

    The one resource → entity mapping of ingest: spans, log records and metric points of
    a resource are attributed to the same ids. ``require_service=False`` (logs, metrics:
    a Collector's kubeletstats or filelog resources name a pod, not a service) returns an
    empty service with the infra ids instead of rejecting a resource that has some.
    """
    found: dict[str, str] = {}
    for kv in resource.attributes:
        key = kv.key
        if key in RESOURCE_KEYS:
            value = _value(kv.value, 1 << 30)
            if value is not None:
                found[key] = value
    name = found.get("service.name", "")
    infra = tuple(infra_id(key, found[key], max_value_len) for key, _ in _INFRA_PREFIX if found.get(key))
    if not name:
        return ("", "", "", "", infra) if infra and not require_service else "missing service.name"
    namespace = found.get("service.namespace", "")
    if len(name) > max_name_len or len(namespace) > max_name_len:
        return "service.name too long"
    version = found.get("service.version", "")[:max_value_len]
    service = f"{namespace}/{name}" if namespace else name
    return (service, name, namespace, version, infra)


value_text = _value


def _walk(
    request: ExportTraceServiceRequest, max_name_len: int, max_value_len: int, maybe_cicd: bool
) -> DecodeResult:
    spans: list[Span] = []
    append = spans.append
    reasons: Counter[str] = Counter()
    clamped = 0
    wanted = SPAN_KEYS
    markers = _CICD_MARKERS
    for rs in request.resource_spans:
        res = resource_identity(rs.resource, max_name_len, max_value_len)
        if isinstance(res, str):
            lost = sum(len(ss.spans) for ss in rs.scope_spans)
            if lost:  # a resource without spans rejects nothing: no empty reason
                reasons[res] += lost
            continue
        service, name, namespace, version, infra = res
        for ss in rs.scope_spans:
            for sp in ss.spans:
                trace_id = sp.trace_id
                if len(trace_id) != 16 or trace_id == _ZERO16:
                    reasons["invalid trace_id"] += 1
                    continue
                span_id = sp.span_id
                if len(span_id) != 8 or span_id == _ZERO8:
                    reasons["invalid span_id"] += 1
                    continue
                parent = sp.parent_span_id
                if parent:
                    if len(parent) != 8:
                        reasons["invalid parent_span_id"] += 1
                        continue
                    if parent == _ZERO8:
                        parent = b""
                start = sp.start_time_unix_nano
                if not start:
                    reasons["missing start time"] += 1
                    continue
                end = sp.end_time_unix_nano
                if end < start:
                    end = start
                    clamped += 1
                kind = sp.kind
                if not 0 < kind <= KIND_CONSUMER:  # UNSPECIFIED or unknown future kinds
                    kind = KIND_INTERNAL
                attrs: dict[str, str] = {}
                cicd = False
                for kv in sp.attributes if maybe_cicd or kind > KIND_SERVER else ():
                    key = kv.key
                    if key in wanted:
                        any_value = kv.value
                        value = any_value.string_value  # the common case, without WhichOneof
                        if not value:
                            value = _value(any_value, max_value_len)
                            if value is None:
                                continue
                        elif len(value) > max_value_len:
                            value = value[:max_value_len]
                        attrs[key] = value
                        if key in markers:
                            cicd = True
                links: tuple[tuple[bytes, bytes], ...] = ()
                if kind == KIND_CONSUMER and sp.links:
                    links = tuple(
                        (ln.trace_id, ln.span_id) for ln in sp.links
                        if len(ln.trace_id) == 16 and len(ln.span_id) == 8
                    )
                span_name = sp.name
                if len(span_name) > max_value_len:
                    span_name = span_name[:max_value_len]
                append(Span(
                    trace_id, span_id, parent, service, name, namespace, version, kind,
                    span_name, start, end, sp.status.code == _STATUS_ERROR, attrs, infra,
                    links, cicd,
                ))
    return DecodeResult(spans, sum(reasons.values()), reasons, clamped)
