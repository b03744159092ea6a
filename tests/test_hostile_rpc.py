"""Hostile requests through the real gRPC server and OTLP receivers (issue 8, part 2).

Every refusal is the documented status code with a message that names the field, and
a refused request changes nothing in Neo4j.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import replace
from typing import Iterator

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from test_ingest_helpers import CLIENT, SERVER, request, resource_spans, span

from rootgraph.config import Settings
from rootgraph.graph.admin import GraphAdmin
from rootgraph.graph.reader import WindowReader
from rootgraph.graph.records import Entity, EntityKind, GraphDelta
from rootgraph.v1 import rootgraph_pb2 as pb
from rootgraph.v1 import rootgraph_pb2_grpc as pb_grpc

pytestmark = pytest.mark.neo4j

SMALL_LIMIT = 64 * 1024


@pytest.fixture()
def stub(app) -> Iterator[pb_grpc.RootCauseStub]:  # noqa: ANN001
    with grpc.insecure_channel(f"127.0.0.1:{app.ports['api']}") as channel:
        yield pb_grpc.RootCauseStub(channel)


@pytest.fixture()
def small_app(neo4j_driver, neo4j_settings: Settings, store: GraphAdmin):  # noqa: ANN001,ANN201
    """Like ``app``, with a 64 KiB request limit so "oversize" is cheap to send."""
    from rootgraph.server.app import App

    settings = replace(neo4j_settings, api_address="127.0.0.1:0", otlp_grpc_address="127.0.0.1:0",
                       otlp_http_address="127.0.0.1:0", max_request_bytes=SMALL_LIMIT)
    server = App(settings, neo4j_driver).start()
    yield server
    server.stop(grace_s=1.0)


def _refused(call, req, code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT) -> str:  # noqa: ANN001
    with pytest.raises(grpc.RpcError) as info:
        call(req, timeout=30)
    assert info.value.code() == code, info.value.details()
    return info.value.details()


def _ts(seconds: int) -> Timestamp:
    return Timestamp(seconds=seconds)


@pytest.mark.parametrize(("req", "field"), [
    (pb.RankCausesRequest(start=_ts(1_700_000_600), end=_ts(1_700_000_000)), "end"),
    (pb.RankCausesRequest(start=_ts(1_700_000_000), end=_ts(1_700_000_000)), "end"),
    (pb.RankCausesRequest(top_k=-1), "top_k"),
    (pb.RankCausesRequest(top_k=1000), "top_k"),
    (pb.RankCausesRequest(symptoms=[f"s{i}" for i in range(10_000)]), "symptoms"),
    (pb.RankCausesRequest(symptoms=["x" * (1 << 20)]), "symptoms"),
    (pb.RankCausesRequest(symptoms=["a\nb"]), "symptoms"),
    (pb.RankCausesRequest(symptoms=[""]), "symptoms"),
    (pb.RankCausesRequest(end=Timestamp(seconds=-5)), "end"),
    (pb.RankCausesRequest(end=Timestamp(seconds=1_700_000_000, nanos=-1)), "end"),
    (pb.RankCausesRequest(start=_ts(1_600_000_000), end=_ts(1_700_000_000)), "end"),
], ids=["end<start", "end=start", "top_k=-1", "top_k=1000", "10k symptoms", "1MB symptom",
        "control char", "empty symptom", "negative time", "negative nanos", "huge window"])
def test_rank_causes_refuses_bad_fields_naming_them(stub, store: GraphAdmin, req, field: str) -> None:  # noqa: ANN001
    details = _refused(stub.RankCauses, req)
    assert details.startswith(f"{field}:"), details
    assert store.counts()["incidents"] == 0


def test_unknown_symptom_is_not_found(stub) -> None:  # noqa: ANN001
    assert _refused(stub.RankCauses, pb.RankCausesRequest(symptoms=["nope"]),
                    grpc.StatusCode.NOT_FOUND).startswith("symptoms")


def test_blast_radius_of_unknown_entity_is_not_found(stub) -> None:  # noqa: ANN001
    details = _refused(stub.BlastRadius, pb.BlastRadiusRequest(entity="x'}) DETACH DELETE n //"),
                       grpc.StatusCode.NOT_FOUND)
    assert "unknown entity" in details
    assert _refused(stub.BlastRadius, pb.BlastRadiusRequest(entity="a", fault_kind="boom")).startswith("fault_kind")
    assert _refused(stub.BlastRadius, pb.BlastRadiusRequest(entity="")).startswith("entity")


def test_get_incident_unknown_is_not_found(stub) -> None:  # noqa: ANN001
    assert "no incident" in _refused(stub.GetIncident, pb.GetIncidentRequest(incident_id="inc-nope"),
                                     grpc.StatusCode.NOT_FOUND)
    assert _refused(stub.GetIncident, pb.GetIncidentRequest(incident_id="")).startswith("incident_id")


def test_submit_feedback_with_unknown_enum_values_is_invalid(stub, store: GraphAdmin) -> None:  # noqa: ANN001
    incident = stub.RankCauses(pb.RankCausesRequest(), timeout=60).incident_id
    base = dict(feedback_id="fb-1", incident_id=incident, none_of_these=True)
    assert _refused(stub.SubmitFeedback, pb.SubmitFeedbackRequest(**base, action=99)).startswith("action")
    assert _refused(stub.SubmitFeedback, pb.SubmitFeedbackRequest(**base, outcome=-3)).startswith("outcome")
    assert _refused(stub.SubmitFeedback, pb.SubmitFeedbackRequest(
        **base, confirmed_cause="a")).startswith("confirmed_cause")  # both given
    assert _refused(stub.SubmitFeedback, pb.SubmitFeedbackRequest(
        feedback_id="fb-2", incident_id="inc-nope", none_of_these=True), grpc.StatusCode.NOT_FOUND)
    with store._driver.session() as s:  # noqa: SLF001
        assert s.run("MATCH (f:Feedback) RETURN count(f)").single()[0] == 0
    ok = stub.SubmitFeedback(pb.SubmitFeedbackRequest(**base, action=1, outcome=1), timeout=30)
    assert ok.created


def test_record_deployment_of_bad_or_unknown_input_stores_nothing(stub, store: GraphAdmin, writer, reader) -> None:  # noqa: ANN001
    assert _refused(stub.RecordDeployment, pb.RecordDeploymentRequest(service="a", version="1"),
                    grpc.StatusCode.NOT_FOUND).startswith("service: unknown service 'a'")
    assert _refused(stub.RecordDeployment, pb.RecordDeploymentRequest(
        id="d1", service="a" * 513, version="1")).startswith("service")
    assert _refused(stub.RecordDeployment, pb.RecordDeploymentRequest(
        id="d1", service="a", version="1", commit="c" * 100_000)).startswith("commit")
    assert _refused(stub.RecordDeployment, pb.RecordDeploymentRequest(
        id="d1", service="a", version="1", at=Timestamp(seconds=-1))).startswith("at")
    assert _refused(stub.RecordDeployment, pb.RecordDeploymentRequest(
        id="d\x01", service="a", version="1")).startswith("id")
    assert store.counts()["deployments"] == store.counts()["entities"] == 0
    # Cypher-looking values are data
    name = "x'}) DETACH DELETE n //"
    delta = GraphDelta(batch_id="cypher-name", entities={name: Entity(name, name, EntityKind.SERVICE)})
    writer.apply_deltas([delta])
    assert stub.RecordDeployment(pb.RecordDeploymentRequest(id=name, service=name, version="$v"), timeout=30).created
    (dep,) = reader.deployments()
    assert (dep.id, dep.service, dep.version) == (name, name, "$v")


def test_oversize_otlp_grpc_request_is_resource_exhausted(small_app, store: GraphAdmin) -> None:  # noqa: ANN001
    big = request(resource_spans("a", span(1, 1, None, SERVER, 0, 10, name="n" * (2 * SMALL_LIMIT))))
    small = request(resource_spans("a", span(1, 1, None, SERVER, 0, 10)))
    with grpc.insecure_channel(f"127.0.0.1:{small_app.ports['otlp_grpc']}") as channel:
        export = trace_service_pb2_grpc.TraceServiceStub(channel).Export
        with pytest.raises(grpc.RpcError) as info:
            export(big, timeout=30)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert store.counts()["entities"] == 0
        assert export(small, timeout=30) == trace_service_pb2.ExportTraceServiceResponse()
    assert store.counts()["entities"] == 2  # user, a


def test_oversize_otlp_http_body_is_413_and_malformed_is_400(small_app, store: GraphAdmin) -> None:  # noqa: ANN001
    url = f"http://127.0.0.1:{small_app.ports['otlp_http']}/v1/traces"
    for body, status in ((b"\x00" * (SMALL_LIMIT + 1), 413), (b"\xff\xff\xff", 400), (b"[1, 2", 400)):
        ctype = "application/json" if body.startswith(b"[") else "application/x-protobuf"
        req = urllib.request.Request(url, data=body, headers={"Content-Type": ctype}, method="POST")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=30)  # noqa: S310 - loopback test server
        assert info.value.code == status
        assert info.value.read()  # a google.rpc.Status body with the message
    assert store.counts()["entities"] == 0


def test_hostile_spans_over_otlp_grpc_are_partial_success_never_internal(app, reader: WindowReader) -> None:  # noqa: ANN001
    big = "\U0001f600" * 3000
    req = request(
        resource_spans("a", span(1, 1, None, SERVER, 0, 10),
                       span(1, 2, 1, CLIENT, 1, 5, attrs={"db.system": big, "db.name": big})),
        resource_spans("b" * 300, span(2, 1)),
        resource_spans(None, span(3, 1)),
    )
    req.resource_spans[0].scope_spans[0].spans.add(trace_id=b"short", span_id=b"12345678",
                                                   start_time_unix_nano=1)
    with grpc.insecure_channel(f"127.0.0.1:{app.ports['otlp_grpc']}") as channel:
        response = trace_service_pb2_grpc.TraceServiceStub(channel).Export(req, timeout=30)
    assert response.partial_success.rejected_spans == 3
    for reason in ("invalid trace_id", "missing service.name", "service.name too long"):
        assert reason in response.partial_success.error_message
    assert {"user", "a"} <= {e.id for e in reader.service_graph()[0]}
