"""Fuzzing: the OTLP protobuf and JSON decoders and every RPC, with hypothesis (issue 8).

The strategies and the properties live here; ``tests/test_hostile_fuzz.py`` runs the
same properties with few examples in CI, this script runs them with many. Properties:

* decoders (``Ingestor.ingest_request`` over ``InMemorySink``): no exception other than
  ``MalformedPayload``, no hang (per-example deadline), ``accepted + rejected`` equals the
  number of spans in the request (counted independently of the decoder), every rejected
  span has a reason, and a request decodes the same from protobuf and from OTLP/JSON;
* RPCs through a real server over the real Neo4j: only OK, INVALID_ARGUMENT, NOT_FOUND
  or OUT_OF_RANGE (BlastRadius at a time before a known entity's traffic), never
  INTERNAL/UNKNOWN, and a non-OK status always carries a message.

    .venv/bin/python bench/fuzz.py                      # >= 100,000 inputs
    .venv/bin/python bench/fuzz.py --examples 20000     # fewer
    .venv/bin/python bench/fuzz.py --quick              # smoke run
    .venv/bin/python bench/fuzz.py --no-rpc             # decoders only (no Neo4j)
    .venv/bin/python bench/fuzz.py --rpc-only --examples 5000

The RPC targets run against the local *test* Neo4j instance (ports 17687/17474, started
if needed, as the test suite does), so a developer's demo data is never touched.
Exits non-zero when any property fails; prints inputs tried, failures and time.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

import grpc
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from rootgraph.ingest.pipeline import Ingestor
from rootgraph.ingest.sink import InMemorySink
from rootgraph.ingest.spans import CICD_KEYS, PEER_KEYS, MalformedPayload, decode
from rootgraph.v1 import rootgraph_pb2 as pb
from rootgraph.v1 import rootgraph_pb2_grpc as pb_grpc

__all__ = [
    "DECODER_TARGETS", "RPC_TARGETS", "Counter", "check_json_bytes", "check_proto_bytes",
    "check_request", "check_rpc", "json_documents", "mutated_json", "mutated_proto_bytes",
    "rpc_calls", "trace_requests",
]

T0 = 1_700_000_040 * 10**9
ALLOWED_RPC_CODES = frozenset({grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT,
                               grpc.StatusCode.NOT_FOUND, grpc.StatusCode.OUT_OF_RANGE})
#: a byte sequence that survives serialisation untouched and is then replaced, byte for
#: byte (same length, so the framing stays valid), by invalid UTF-8
_MARK = "\u00a7\u00a7"  # 4 bytes in UTF-8
_BAD_UTF8 = b"\xff\xfe\xc3\x28"

# -- strategies: OTLP --------------------------------------------------------------

_chars = st.characters(blacklist_categories=("Cs",))  # protobuf strings cannot hold surrogates
_control = st.characters(min_codepoint=0, max_codepoint=31)
_text = st.one_of(
    st.text(_chars, max_size=24),
    st.text(_control, min_size=1, max_size=8),
    st.sampled_from(["", "a", "checkout", "x'}) DETACH DELETE n //", "`a`:Label", "$param",
                     "\u202eevil", "\x00", "caf\u00e9", "\U0001f600" * 3, _MARK]),
    # huge strings: over the 256-character name limit and the 1 KiB value cap
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "\u00e9", "\U0001f600", "\x07"]),
              st.sampled_from([255, 256, 257, 1023, 1025, 2100, 70_000])),
)
_ids = {
    16: st.one_of(st.binary(min_size=16, max_size=16), st.just(bytes(16)), st.binary(max_size=20)),
    8: st.one_of(st.binary(min_size=8, max_size=8), st.just(bytes(8)), st.binary(max_size=12)),
}
_times = st.one_of(
    st.just(0), st.integers(T0, T0 + 10**12), st.integers(0, 2**64 - 1),
    st.sampled_from([1, 2**63 - 1, 2**63, 2**64 - 1, 4_102_444_800 * 10**9]),  # 2100-01-01
)
_kinds = st.one_of(st.integers(0, 6), st.sampled_from([99, -1, 2**31 - 1, -(2**31)]))
_keys = st.one_of(st.sampled_from(sorted(PEER_KEYS | CICD_KEYS | {"cicd.pipeline.task.type"})), _text)
_scalar_values = st.one_of(
    st.builds(lambda s: AnyValue(string_value=s), _text),
    st.builds(lambda b: AnyValue(bool_value=b), st.booleans()),
    st.builds(lambda i: AnyValue(int_value=i), st.integers(-(2**63), 2**63 - 1)),
    st.builds(lambda f: AnyValue(double_value=f), st.floats()),
    st.builds(lambda b: AnyValue(bytes_value=b), st.binary(max_size=16)),  # invalid UTF-8 welcome
    st.just(AnyValue()),
    st.sampled_from([AnyValue(string_value="deploy"), AnyValue(string_value="postgresql")]),
)
_values = st.recursive(
    _scalar_values,
    lambda inner: st.one_of(
        st.builds(lambda vs: AnyValue(array_value=ArrayValue(values=vs)), st.lists(inner, max_size=3)),
        st.builds(lambda kvs: AnyValue(kvlist_value=KeyValueList(values=kvs)),
                  st.lists(st.builds(lambda k, v: KeyValue(key=k, value=v), _text, inner), max_size=3)),
    ),
    max_leaves=3,
)
_attributes = st.lists(st.builds(lambda k, v: KeyValue(key=k, value=v), _keys, _values), max_size=3)


@st.composite
def _spans(draw: Callable[..., Any]) -> Span:
    sp = Span(
        trace_id=draw(_ids[16]), span_id=draw(_ids[8]),
        parent_span_id=draw(st.one_of(st.just(b""), _ids[8])),
        name=draw(_text), kind=draw(_kinds),
        start_time_unix_nano=draw(_times), end_time_unix_nano=draw(_times),
        attributes=draw(_attributes),
        status=Status(code=draw(st.sampled_from([0, 1, 2, 3, 99]))),
    )
    if draw(st.integers(0, 3)) == 0:
        sp.links.add(trace_id=draw(_ids[16]), span_id=draw(_ids[8]))
    return sp


_service_value = st.one_of(
    _text, st.sampled_from(["frontend", "checkout", "db"]),
)


@st.composite
def _resource(draw: Callable[..., Any]) -> Resource:
    attrs = []
    choice = draw(st.integers(0, 5))
    if choice:  # 0: no service.name at all
        value = (AnyValue(int_value=7) if choice == 1 else AnyValue(string_value=draw(_service_value)))
        attrs.append(KeyValue(key="service.name", value=value))
    for key in draw(st.lists(st.sampled_from(["service.namespace", "service.version", "host.name",
                                              "k8s.pod.name", "k8s.node.name"]), max_size=2)):
        attrs.append(KeyValue(key=key, value=AnyValue(string_value=draw(_text))))
    return Resource(attributes=attrs + draw(st.lists(st.builds(lambda k, v: KeyValue(key=k, value=v),
                                                               _text, _values), max_size=1)))


@st.composite
def trace_requests(draw: Callable[..., Any], max_spans: int = 4) -> ExportTraceServiceRequest:
    """Structurally valid requests with hostile field values."""
    rss = []
    for _ in range(draw(st.integers(0, 2))):
        scopes = [ScopeSpans(spans=draw(st.lists(_spans(), max_size=max_spans)))
                  for _ in range(draw(st.integers(0, 2)))]
        rss.append(ResourceSpans(resource=draw(_resource()), scope_spans=scopes))
    return ExportTraceServiceRequest(resource_spans=rss)


def _span_count(req: ExportTraceServiceRequest) -> int:
    return sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)


@st.composite
def mutated_proto_bytes(draw: Callable[..., Any]) -> bytes:
    """A valid serialised request with random byte flips, insertions, deletions, cuts."""
    data = bytearray(draw(trace_requests(max_spans=3)).SerializeToString())
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.integers(0, 3))
        pos = draw(st.integers(0, len(data)))
        if op == 0 and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif op == 1:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == 2:
            del data[pos:pos + draw(st.integers(1, 8))]
        else:
            del data[pos:]
    return bytes(data)


# -- strategies: OTLP/JSON ---------------------------------------------------------

_json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _text)
_json_keys = st.one_of(st.sampled_from([
    "resourceSpans", "resource_spans", "scopeSpans", "scope_spans", "spans", "resource",
    "attributes", "key", "value", "stringValue", "intValue", "boolValue", "doubleValue",
    "arrayValue", "kvlistValue", "bytesValue", "values", "traceId", "spanId", "parentSpanId",
    "trace_id", "span_id", "kind", "startTimeUnixNano", "endTimeUnixNano", "name", "status",
    "code", "links",
]), _text)
_json_any = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_json_keys, inner, max_size=4),
    max_leaves=10,
)


def _to_otlp_json(req: ExportTraceServiceRequest) -> dict[str, Any]:
    """OTLP/JSON as the spec writes it: camelCase, ids as hex, 64-bit ints as strings."""
    doc = json_format.MessageToDict(req)
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for sp in ss.get("spans", []):
                for holder in (sp, *sp.get("links", [])):
                    for name in ("traceId", "spanId", "parentSpanId"):
                        if name in holder:
                            holder[name] = base64.b64decode(holder[name]).hex()
    return doc


@st.composite
def json_documents(draw: Callable[..., Any]) -> bytes:
    """Random JSON, JSON built from OTLP vocabulary, or a valid request's OTLP/JSON."""
    choice = draw(st.integers(0, 2))
    if choice == 0:
        return json.dumps(draw(_json_any)).encode()
    if choice == 1:
        return json.dumps({draw(st.sampled_from(["resourceSpans", "resource_spans"])):
                           draw(st.lists(_json_any, max_size=3))}).encode()
    return json.dumps(_to_otlp_json(draw(trace_requests(max_spans=3)))).encode()


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _leaves(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _leaves(v, path + (i,))
    return out


@st.composite
def mutated_json(draw: Callable[..., Any]) -> bytes:
    """A valid OTLP/JSON document with some nodes replaced, deleted or retyped."""
    doc = _to_otlp_json(draw(trace_requests(max_spans=3)))
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _leaves(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()):
            parent[path[-1]] = draw(_json_any)
        elif isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    text = json.dumps(doc)
    if draw(st.booleans()) and len(text) > 2:  # and sometimes truncate or corrupt the text
        cut = draw(st.integers(0, len(text) - 1))
        text = text[:cut] + draw(st.sampled_from(["", "}", "\x00", "\ud800", "]]"]))
    return text.encode("utf-8", "surrogatepass")


# -- properties: decoders ----------------------------------------------------------


def _summary(result: Any) -> tuple[int, int, dict[str, int]]:
    return result.accepted_spans, result.rejected_spans, dict(result.reasons)


def _check_result(result: Any, expected_spans: int | None) -> None:
    assert result.accepted_spans >= 0 and result.rejected_spans >= 0
    assert sum(result.reasons.values()) == result.rejected_spans, result
    assert all(isinstance(r, str) and r and n > 0 for r, n in result.reasons.items()), result.reasons
    if expected_spans is not None:
        assert result.accepted_spans + result.rejected_spans == expected_spans, (result, expected_spans)


def _ingest(payload: Any, content_type: str = "application/x-protobuf") -> tuple[Any, InMemorySink]:
    sink = InMemorySink()
    result = Ingestor(sink).ingest_request(payload, content_type)
    if result.accepted_spans and not result.duplicate:
        assert sink.spans == result.accepted_spans, (sink.spans, result)
    return result, sink


def check_proto_bytes(data: bytes) -> None:
    """Any bytes: MalformedPayload, or a result whose counts match an independent parse."""
    try:
        expected = _span_count(ExportTraceServiceRequest.FromString(data))
    except Exception:  # noqa: BLE001 - the oracle: protobuf itself refuses the bytes
        expected = None
    try:
        result, _ = _ingest(data)
    except MalformedPayload as exc:
        assert str(exc), "MalformedPayload without a message"
        assert expected is None, f"decoder refused bytes that protobuf parses: {exc}"
        return
    assert expected is not None, "decoder accepted bytes that protobuf refuses"
    _check_result(result, expected)


def check_request(req: ExportTraceServiceRequest, invalid_utf8: bool = False) -> None:
    """A structurally valid request, as a message, as bytes and as OTLP/JSON."""
    total = _span_count(req)
    as_message, _ = _ingest(req)
    _check_result(as_message, total)
    data = req.SerializeToString()
    as_bytes, _ = _ingest(data)
    _check_result(as_bytes, total)
    assert _summary(as_bytes) == _summary(as_message)
    as_json, _ = _ingest(json.dumps(_to_otlp_json(req)).encode(), "application/json")
    assert _summary(as_json) == _summary(as_message), ("JSON differs from protobuf", as_json, as_message)
    if invalid_utf8 and _MARK.encode() in data:
        # protobuf refuses a string field with invalid UTF-8, so the whole request is
        # malformed; a bytes field (AnyValue.bytes_value) may carry anything.
        try:
            result, _ = _ingest(data.replace(_MARK.encode(), _BAD_UTF8))
        except MalformedPayload as exc:
            assert "UTF-8" in str(exc) or "parsing" in str(exc), exc
        else:
            _check_result(result, total)


def check_json_bytes(data: bytes) -> None:
    """Any JSON-ish bytes: MalformedPayload, or consistent counts."""
    try:
        result, _ = _ingest(data, "application/json")
    except MalformedPayload as exc:
        assert str(exc)
        return
    _check_result(result, _json_span_count(data))


def _json_span_count(data: bytes) -> int | None:
    """Spans in an accepted OTLP/JSON document, counted on the raw JSON (None: unclear)."""
    doc = json.loads(data)

    def one(obj: Any, *names: str) -> list[Any] | None:
        if not isinstance(obj, dict):  # protobuf's JSON parser reads [] and "" as empty
            return None
        present = [n for n in names if obj.get(n) is not None]
        if len(present) > 1:
            return None
        value = obj.get(present[0]) if present else []
        return value if isinstance(value, list) else None

    total = 0
    if not isinstance(doc, dict):
        return None
    rss = one(doc, "resourceSpans", "resource_spans")
    if rss is None:
        return None
    for rs in rss:
        sss = one(rs, "scopeSpans", "scope_spans")
        if sss is None:
            return None
        for ss in sss:
            spans = one(ss, "spans")
            if spans is None:
                return None
            total += len(spans)
    return total


@dataclass
class Counter:
    """Inputs tried per target (the property functions are wrapped to count)."""

    tried: dict[str, int] = field(default_factory=dict)

    def wrap(self, name: str, fn: Callable[..., None]) -> Callable[..., None]:
        def counted(*args: Any) -> None:
            self.tried[name] = self.tried.get(name, 0) + 1
            fn(*args)
        return counted


#: (name, strategy, property, share of the budget)
DECODER_TARGETS: tuple[tuple[str, Any, Callable[..., None], float], ...] = (
    ("proto: random bytes", st.binary(max_size=2048), check_proto_bytes, 0.3),
    ("proto: mutated requests", mutated_proto_bytes(), check_proto_bytes, 0.15),
    ("proto: structured requests", st.tuples(trace_requests(), st.booleans()),
     lambda args: check_request(*args), 0.15),
    ("json: random documents", json_documents(), check_json_bytes, 0.15),
    ("json: mutated documents", mutated_json(), check_json_bytes, 0.1),
    ("json: random bytes", st.binary(max_size=512), check_json_bytes, 0.15),
)

# -- strategies and property: RPCs -------------------------------------------------

_rpc_text = st.one_of(
    _text, st.sampled_from(["checkout", "frontend", "db:postgresql/orders", "inc-unknown"]),
)
_stamps = st.one_of(
    st.none(),
    st.builds(lambda s, n: Timestamp(seconds=s, nanos=n),
              st.one_of(st.integers(1_699_990_000, 1_700_010_000), st.integers(-(2**40), 2**40),
                        st.sampled_from([0, -1, 253402300799, 253402300800, 2**62])),
              st.one_of(st.just(0), st.integers(-(2**31), 2**31 - 1))),
)


def _with_stamps(msg: Any, **stamps: Timestamp | None) -> Any:
    for name, value in stamps.items():
        if value is not None:
            getattr(msg, name).CopyFrom(value)
    return msg


def rpc_calls(known_incident: str = "") -> Any:
    """(method name, request) for every RootCause RPC, with hostile field values."""
    ids = st.one_of(_rpc_text, st.just(known_incident)) if known_incident else _rpc_text
    rank = st.builds(
        lambda k, sy, a, b, c, d: _with_stamps(pb.RankCausesRequest(top_k=k, symptoms=sy),
                                               start=a, end=b, baseline_start=c, baseline_end=d),
        st.one_of(st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, 1, 5, 100, 101, -1, 1000])),
        st.one_of(st.lists(_rpc_text, max_size=3), st.builds(lambda n: ["s"] * n, st.sampled_from([201, 10_000]))),
        _stamps, _stamps, _stamps, _stamps,
    )
    blast = st.builds(lambda e, f, at: _with_stamps(pb.BlastRadiusRequest(entity=e, fault_kind=f), at=at),
                      _rpc_text, st.one_of(st.sampled_from(["", "errors", "latency"]), _text), _stamps)
    deploy = st.builds(
        lambda i, s, v, c, p, src, attrs, at: _with_stamps(pb.RecordDeploymentRequest(
            id=i, service=s, version=v, commit=c, previous_version=p, source=src, attributes=attrs), at=at),
        _rpc_text, _rpc_text, _rpc_text, _rpc_text, _rpc_text, _rpc_text,
        st.dictionaries(_rpc_text, _rpc_text, max_size=3), _stamps,
    )
    enum = st.one_of(st.integers(0, 7), st.sampled_from([99, -1, 2**31 - 1, -(2**31)]))
    feedback = st.builds(
        lambda f, i, c, none, a, o, by, note: pb.SubmitFeedbackRequest(
            feedback_id=f, incident_id=i, confirmed_cause=c, none_of_these=none, action=a, outcome=o,
            confirmed_by=by, note=note),
        _rpc_text, ids, st.one_of(st.just(""), _rpc_text), st.booleans(), enum, enum, _rpc_text, _rpc_text,
    )
    incident = st.builds(lambda i: pb.GetIncidentRequest(incident_id=i), ids)
    graph = st.just(pb.GetServiceGraphRequest())
    return st.one_of(
        st.tuples(st.just("RankCauses"), rank), st.tuples(st.just("BlastRadius"), blast),
        st.tuples(st.just("RecordDeployment"), deploy), st.tuples(st.just("SubmitFeedback"), feedback),
        st.tuples(st.just("GetIncident"), incident), st.tuples(st.just("GetServiceGraph"), graph),
    )


def check_rpc(stub: pb_grpc.RootCauseStub, call: tuple[str, Any], timeout_s: float = 30.0) -> grpc.StatusCode:
    """One RPC: only OK / INVALID_ARGUMENT / NOT_FOUND / OUT_OF_RANGE, and a message when not OK."""
    method, request = call
    try:
        getattr(stub, method)(request, timeout=timeout_s)
    except grpc.RpcError as err:
        code = err.code()
        assert code in ALLOWED_RPC_CODES, f"{method}: {code} {err.details()!r}"
        assert err.details(), f"{method}: {code} without a message"
        return code
    return grpc.StatusCode.OK


RPC_TARGETS = ("rpc: every RootCause method",)

# -- the runner --------------------------------------------------------------------


def _run(name: str, strategy: Any, prop: Callable[..., None], examples: int, counter: Counter,
         deadline_ms: int) -> str | None:
    counted = counter.wrap(name, prop)

    @settings(max_examples=examples, deadline=timedelta(milliseconds=deadline_ms), database=None,
              suppress_health_check=list(HealthCheck), derandomize=False, print_blob=True)
    @given(strategy)
    def run(value: Any) -> None:
        counted(value)

    try:
        run()
    except Exception:  # noqa: BLE001 - report, keep going with the other targets
        return traceback.format_exc(limit=6)
    return None


def _rpc_server() -> tuple[Any, Any, str]:
    """A real server over the local test Neo4j; returns (app, driver, known incident id)."""
    import logging
    from dataclasses import replace

    from rootgraph.config import load_settings
    from rootgraph.graph.connect import open_driver
    from rootgraph.server.app import App

    logging.getLogger("rootgraph").setLevel(logging.ERROR)
    settings_ = load_settings(local_instance="test", local_bolt_port=17687, local_http_port=17474,
                              local_heap="768m", local_pagecache="256m")
    settings_ = replace(settings_, api_address="127.0.0.1:0", otlp_grpc_address="127.0.0.1:0",
                        otlp_http_address="127.0.0.1:0")
    driver = open_driver(settings_, log=lambda msg: None)
    app = App(settings_, driver).start()
    with grpc.insecure_channel(f"127.0.0.1:{app.ports['api']}") as ch:
        known = pb_grpc.RootCauseStub(ch).RankCauses(pb.RankCausesRequest(), timeout=60).incident_id
    return app, driver, known


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=100_000, help="total inputs over all targets")
    ap.add_argument("--rpc-share", type=float, default=0.05, help="share of --examples spent on RPCs")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2,000 inputs")
    ap.add_argument("--no-rpc", action="store_true", help="decoders only (no Neo4j needed)")
    ap.add_argument("--rpc-only", action="store_true", help="RPCs only: all --examples go to the server")
    ap.add_argument("--deadline-ms", type=int, default=5000, help="per-example deadline (no hang)")
    args = ap.parse_args(argv)
    total = 2_000 if args.quick else args.examples
    rpc_examples = 0 if args.no_rpc else total if args.rpc_only else max(1, int(total * args.rpc_share))
    decoder_budget = total - rpc_examples

    counter = Counter()
    failures: list[tuple[str, str]] = []
    t_start = time.perf_counter()
    for name, strategy, prop, share in DECODER_TARGETS if decoder_budget else ():
        n = max(1, math.ceil(decoder_budget * share / sum(t[3] for t in DECODER_TARGETS)))
        t0 = time.perf_counter()
        error = _run(name, strategy, prop, n, counter, args.deadline_ms)
        print(f"{name:32s} {counter.tried.get(name, 0):>8,d} inputs  {time.perf_counter() - t0:7.1f} s"
              f"  {'FAIL' if error else 'ok'}", flush=True)
        if error:
            failures.append((name, error))
    if rpc_examples:
        app, driver, known = _rpc_server()
        try:
            with grpc.insecure_channel(f"127.0.0.1:{app.ports['api']}") as channel:
                stub = pb_grpc.RootCauseStub(channel)
                name = RPC_TARGETS[0]
                t0 = time.perf_counter()
                error = _run(name, rpc_calls(known), lambda call: check_rpc(stub, call), rpc_examples,
                             counter, max(args.deadline_ms, 30_000))
                print(f"{name:32s} {counter.tried.get(name, 0):>8,d} inputs  "
                      f"{time.perf_counter() - t0:7.1f} s  {'FAIL' if error else 'ok'}", flush=True)
                if error:
                    failures.append((name, error))
        finally:
            app.stop(grace_s=1.0)
            driver.close()
    elapsed = time.perf_counter() - t_start
    tried = sum(counter.tried.values())
    for name, error in failures:
        print(f"\n--- failure in {name} ---\n{error}", file=sys.stderr)
    print(f"\ninputs tried: {tried:,d}   failures: {len(failures)}   elapsed: {elapsed:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
