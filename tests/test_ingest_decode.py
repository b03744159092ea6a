"""Decoding OTLP protobuf and OTLP/JSON into spans, with counted rejections."""

from __future__ import annotations

import base64
import json

import pytest
from google.protobuf import json_format
from test_ingest_helpers import CLIENT, CONSUMER, SERVER, T0, payload, request, resource_spans, sid, span, tid

from rootgraph.ingest.spans import MalformedPayload, decode


def _otlp_json(req: object) -> bytes:
    """OTLP/JSON per the spec: camelCase, hex ids, integer enums."""
    doc = json_format.MessageToDict(req, use_integers_for_enums=True)  # type: ignore[arg-type]
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for sp in ss["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in sp:
                        sp[key] = base64.b64decode(sp[key]).hex()
                for link in sp.get("links", []):
                    link["traceId"] = base64.b64decode(link["traceId"]).hex()
                    link["spanId"] = base64.b64decode(link["spanId"]).hex()
    return json.dumps(doc).encode()


def _sample() -> object:
    return request(
        resource_spans(
            "checkout", span(1, 1, None, SERVER, 0, 100),
            span(1, 2, 1, CLIENT, 5, 50, True, attrs={"server.address": "pay", "server.port": 8443}),
            span(2, 3, None, CONSUMER, 0, 5, links=((1, 2),), attrs={"messaging.system": "kafka"}),
            service__namespace="shop", service__version="1.2.3", host__name="h1",
            k8s__pod__name="p-1", k8s__node__name="n1",
        )
    )


def test_json_and_protobuf_give_identical_spans() -> None:
    req = _sample()
    from_pb = decode(req.SerializeToString()).spans  # type: ignore[attr-defined]
    from_json = decode(_otlp_json(req), "application/json").spans
    assert from_pb == from_json
    assert len(from_pb) == 3


def test_decoded_fields_follow_identity_rules() -> None:
    spans = decode(_sample().SerializeToString()).spans  # type: ignore[attr-defined]
    client = spans[1]
    assert (client.service, client.service_name, client.namespace, client.version) == (
        "shop/checkout", "checkout", "shop", "1.2.3"
    )
    assert client.trace_id == tid(1) and client.span_id == sid(2) and client.parent_span_id == sid(1)
    assert client.error and client.kind == CLIENT
    assert client.attrs == {"server.address": "pay", "server.port": "8443"}
    assert client.infra == ("host:h1", "node:n1", "pod:p-1")
    assert client.end_ns - client.start_ns == 50_000_000 and client.start_ns == T0 + 5_000_000
    assert spans[2].links == ((tid(1), sid(2)),)


def test_json_accepts_enum_names_string_int64_and_unknown_fields() -> None:
    doc = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "a"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708",
            "kind": "SPAN_KIND_SERVER", "name": "x", "startTimeUnixNano": str(T0),
            "endTimeUnixNano": T0 + 1000, "status": {"code": "STATUS_CODE_ERROR"},
            "someFutureField": {"x": 1},
        }]}],
    }]}
    (s,) = decode(json.dumps(doc).encode(), "application/json; charset=utf-8").spans
    assert s.trace_id == bytes(range(1, 17)) and s.kind == SERVER and s.error
    assert s.end_ns - s.start_ns == 1000


def test_rejections_are_counted_with_reasons() -> None:
    bad_trace = span(1, 1)
    bad_trace.trace_id = bytes(16)
    short_span = span(1, 2)
    short_span.span_id = b"\x01\x02"
    result = decode(payload(
        resource_spans(None, span(1, 3), span(1, 4)),
        resource_spans("x" * 257, span(1, 5)),
        resource_spans("ok", bad_trace, short_span, span(1, 6)),
    ))
    assert [s.span_id for s in result.spans] == [sid(6)]
    assert result.rejected == 5
    assert result.reasons == {
        "missing service.name": 2, "service.name too long": 1,
        "invalid trace_id": 1, "invalid span_id": 1,
    }


def test_bad_hex_id_in_json_rejects_only_that_span() -> None:
    doc = json.loads(_otlp_json(_sample()))
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = "zz-not-hex"
    result = decode(json.dumps(doc).encode(), "application/json")
    assert len(result.spans) == 2 and result.reasons == {"invalid trace_id": 1}


def test_end_before_start_is_clamped_and_counted() -> None:
    sp = span(1, 1)
    sp.end_time_unix_nano = sp.start_time_unix_nano - 5
    result = decode(payload(resource_spans("a", sp)))
    assert result.clamped == 1 and result.spans[0].end_ns == result.spans[0].start_ns


def test_unspecified_kind_is_internal_and_values_are_truncated() -> None:
    sp = span(1, 1, 9, kind=0, attrs={"peer.service": "p" * 5000})
    sp.kind = 0
    (s,) = decode(payload(resource_spans("a", sp))).spans
    assert s.kind == 1
    sp = span(1, 2, 9, kind=CLIENT, attrs={"peer.service": "p" * 5000})
    (s,) = decode(payload(resource_spans("a", sp))).spans
    assert s.attrs["peer.service"] == "p" * 1024


def test_all_zero_parent_means_root() -> None:
    sp = span(1, 1)
    sp.parent_span_id = bytes(8)
    assert decode(payload(resource_spans("a", sp))).spans[0].parent_span_id == b""


@pytest.mark.parametrize(
    ("data", "content_type"),
    [(b"\xff\xff\xff", "application/x-protobuf"), (b"{not json", "application/json"),
     (b"[1, 2]", "application/json"), (b"x", "text/plain")],
)
def test_undecodable_payload_raises_malformed(data: bytes, content_type: str) -> None:
    with pytest.raises(MalformedPayload):
        decode(data, content_type)
