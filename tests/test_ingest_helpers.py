"""Tiny builders of OTLP trace requests for the ingest tests (plus a check of them).

Times are given in milliseconds after ``T0``, which is aligned to a minute so that the
expected bucket of every span is obvious: ``BUCKET0`` unless a test says otherwise.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

BUCKET0 = 1_700_000_040  # epoch seconds, a multiple of 60
T0 = BUCKET0 * 1_000_000_000

INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER = 1, 2, 3, 4, 5


def tid(n: int) -> bytes:
    return n.to_bytes(16, "big")


def sid(n: int) -> bytes:
    return n.to_bytes(8, "big")


def kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def span(
    trace: int,
    span_id: int,
    parent: int | None = None,
    kind: int = SERVER,
    start_ms: float = 0,
    dur_ms: float = 10,
    error: bool = False,
    name: str = "op",
    attrs: dict[str, Any] | None = None,
    links: tuple[tuple[int, int], ...] = (),
) -> PbSpan:
    sp = PbSpan(
        trace_id=tid(trace), span_id=sid(span_id), kind=kind, name=name,
        start_time_unix_nano=T0 + int(start_ms * 1_000_000),
        end_time_unix_nano=T0 + int((start_ms + dur_ms) * 1_000_000),
    )
    if parent is not None:
        sp.parent_span_id = sid(parent)
    if error:
        sp.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR))
    for key, value in (attrs or {}).items():
        sp.attributes.append(kv(key, value))
    for lt, ls in links:
        sp.links.add(trace_id=tid(lt), span_id=sid(ls))
    return sp


def resource_spans(service: str | None, *spans: PbSpan, **resource: Any) -> ResourceSpans:
    attrs = dict(resource)
    if service is not None:
        attrs["service.name"] = service
    res = Resource(attributes=[kv(k.replace("__", "."), v) for k, v in attrs.items()])
    return ResourceSpans(resource=res, scope_spans=[ScopeSpans(spans=list(spans))])


def request(*rss: ResourceSpans) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(resource_spans=list(rss))


def payload(*rss: ResourceSpans) -> bytes:
    return request(*rss).SerializeToString()


def test_helpers_build_what_they_say() -> None:
    rs = resource_spans("a", span(1, 2, 3, CLIENT, 5, 20, True), service__version="1")
    sp = rs.scope_spans[0].spans[0]
    assert sp.end_time_unix_nano - sp.start_time_unix_nano == 20_000_000
    assert sp.status.code == 2 and sp.parent_span_id == sid(3)
    assert {a.key for a in rs.resource.attributes} == {"service.name", "service.version"}
