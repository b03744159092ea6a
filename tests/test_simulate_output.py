"""File output is valid OTLP JSON, labels hold the measured truth, runs are reproducible."""

from __future__ import annotations

import json
import re

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from rootgraph.simulate import Fault, FaultKind, Labels, ScenarioSpec, read_otlp_json_lines, run_to_files

HEX32, HEX16 = re.compile(r"[0-9a-f]{32}"), re.compile(r"[0-9a-f]{16}")


def _spec(faults, decoys=(), topology="tiny", seed=3) -> ScenarioSpec:
    return ScenarioSpec("out", topology, tuple(faults), tuple(decoys), seed=seed, baseline_s=60,
                        incident_s=60, rate_rps=4, decoy_lead_s=30)


@pytest.fixture(scope="module")
def db_fault(tmp_path_factory):
    out = tmp_path_factory.mktemp("db")
    labels = run_to_files(_spec([Fault("db:postgresql/orders", FaultKind.BACKEND_ERROR, 0.5)],
                                decoys=["pricing"]), out)
    return out, labels


def _hex_to_b64(d: dict) -> dict:
    import base64

    for rs in d["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for sp in ss["spans"]:
                for k in ("traceId", "spanId", "parentSpanId"):
                    if k in sp:
                        sp[k] = base64.b64encode(bytes.fromhex(sp[k])).decode()
    return d


def test_json_lines_are_otlp_json_with_hex_ids_and_integer_enums(db_fault):
    out, labels = db_fault
    lines = (out / "traces.jsonl").read_text().splitlines()
    assert len(lines) > 1
    total = 0
    for line in lines:
        d = json.loads(line)
        assert set(d) == {"resourceSpans"}
        for rs in d["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for sp in ss["spans"]:
                    assert HEX32.fullmatch(sp["traceId"]) and HEX16.fullmatch(sp["spanId"])
                    assert "parentSpanId" not in sp or HEX16.fullmatch(sp["parentSpanId"])
                    assert isinstance(sp["kind"], int) and sp["startTimeUnixNano"].isdigit()
        # independent of our own reader: the protobuf JSON parser accepts it
        req = json_format.ParseDict(_hex_to_b64(d), ExportTraceServiceRequest())
        total += sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
    assert total == labels.spans > 500


def test_reader_round_trips_ids_and_times(db_fault):
    out, labels = db_fault
    reqs = list(read_otlp_json_lines(out / "traces.jsonl"))
    spans = [sp for r in reqs for rs in r.resource_spans for ss in rs.scope_spans for sp in ss.spans]
    assert len(spans) == labels.spans
    assert all(len(sp.trace_id) == 16 and len(sp.span_id) == 8 for sp in spans)
    lo, hi = labels.baseline[0] * 1e9, labels.incident[1] * 1e9 + 5e9
    assert all(lo <= sp.start_time_unix_nano <= sp.end_time_unix_nano <= hi for sp in spans)


def test_labels_name_root_onset_decoys_and_deployments(db_fault):
    out, labels = db_fault
    loaded = Labels.load(out / "labels.json")
    assert loaded == labels
    assert labels.root_causes == ("db:postgresql/orders",)
    assert labels.fault_kind == "backend_error"
    assert labels.onset_s == labels.incident[0] == 1_767_225_600 + 60
    assert labels.decoys == ("pricing",)
    [dep] = labels.deployments
    assert dep.decoy and dep.service == "pricing" and dep.at_s == labels.onset_s - 30


def test_blast_radius_truth_has_root_and_failing_callers_but_not_fallback_or_unrelated(db_fault):
    _, labels = db_fault
    # orders-db errors fail orders (no fallback) and gateway's checkout path
    assert {"db:postgresql/orders", "shop/orders", "gateway"} <= set(labels.blast_radius)
    assert not {"pricing", "catalog", "recs", "mailer", "payments"} & set(labels.blast_radius)
    impact = {i.entity: i for i in labels.impacts}
    assert impact["shop/orders"].fault_error_share > 0.3


def test_fallback_hides_callee_errors_from_the_blast_radius(tmp_path):
    labels = run_to_files(_spec([Fault("recs", FaultKind.ERROR, 1.0)]), tmp_path)
    assert labels.blast_radius == ("recs",)


def test_host_fault_blames_the_host_and_slows_the_services_on_it(tmp_path):
    labels = run_to_files(_spec([Fault("host:n2", FaultKind.HOST, 8.0)]), tmp_path)
    assert "host:n2" in labels.blast_radius and "catalog" in labels.blast_radius
    impact = {i.entity: i for i in labels.impacts}
    assert impact["catalog"].fault_latency_ratio > 1.0
    assert "payments" not in impact  # on host n1


def test_same_seed_gives_identical_output(tmp_path):
    spec = _spec([Fault("pricing", FaultKind.LATENCY, 100.0)])
    a = run_to_files(spec, tmp_path / "a")
    b = run_to_files(spec, tmp_path / "b")
    assert (tmp_path / "a" / "traces.jsonl").read_bytes() == (tmp_path / "b" / "traces.jsonl").read_bytes()
    assert a == b
