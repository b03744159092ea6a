"""Fuzzing in CI: the properties of ``bench/fuzz.py`` with few examples each (issue 8).

The decoder properties run over ``Ingestor`` + ``InMemorySink`` (pure logic); the RPC
property runs through a real server over the real Neo4j. ``bench/fuzz.py`` runs the
same strategies and properties with >= 100,000 inputs.
"""

from __future__ import annotations

import importlib.util
import sys
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rootgraph.v1 import rootgraph_pb2 as pb
from rootgraph.v1 import rootgraph_pb2_grpc as pb_grpc

_spec = importlib.util.spec_from_file_location(
    "rootgraph_bench_fuzz", Path(__file__).resolve().parents[1] / "bench" / "fuzz.py")
fuzz = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules[_spec.name] = fuzz  # type: ignore[union-attr]
_spec.loader.exec_module(fuzz)  # type: ignore[union-attr]

DECODERS = settings(max_examples=200, deadline=timedelta(seconds=2), database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
RPCS = settings(max_examples=50, deadline=timedelta(seconds=20), database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


@DECODERS
@given(st.binary(max_size=2048))
def test_random_bytes_are_refused_or_counted_exactly(data: bytes) -> None:
    fuzz.check_proto_bytes(data)


@DECODERS
@given(fuzz.mutated_proto_bytes())
def test_corrupted_protobuf_is_refused_or_counted_exactly(data: bytes) -> None:
    fuzz.check_proto_bytes(data)


@DECODERS
@given(fuzz.trace_requests(), st.booleans())
def test_hostile_fields_are_counted_with_reasons_and_decode_alike_in_json(req, invalid_utf8: bool) -> None:  # noqa: ANN001
    fuzz.check_request(req, invalid_utf8)


@DECODERS
@given(fuzz.json_documents())
def test_random_json_documents_are_refused_or_counted(data: bytes) -> None:
    fuzz.check_json_bytes(data)


@DECODERS
@given(fuzz.mutated_json())
def test_mutated_otlp_json_is_refused_or_counted(data: bytes) -> None:
    fuzz.check_json_bytes(data)


@DECODERS
@given(st.binary(max_size=512))
def test_random_bytes_as_json_are_refused_or_counted(data: bytes) -> None:
    fuzz.check_json_bytes(data)


def test_the_properties_catch_what_they_claim_to() -> None:
    """The oracle is not vacuous: a known-bad outcome fails it."""
    from rootgraph.ingest.pipeline import IngestResult

    with pytest.raises(AssertionError):
        fuzz._check_result(IngestResult(1, 1, {"x": 1}), expected_spans=3)
    with pytest.raises(AssertionError):
        fuzz._check_result(IngestResult(0, 1, {}), expected_spans=1)


@pytest.fixture()
def known_incident(app) -> str:  # noqa: ANN001
    with grpc.insecure_channel(f"127.0.0.1:{app.ports['api']}") as ch:
        return pb_grpc.RootCauseStub(ch).RankCauses(pb.RankCausesRequest(), timeout=60).incident_id


@pytest.mark.neo4j
def test_every_rpc_answers_ok_invalid_argument_or_not_found(app, known_incident: str) -> None:  # noqa: ANN001
    seen: set[grpc.StatusCode] = set()
    with grpc.insecure_channel(f"127.0.0.1:{app.ports['api']}") as channel:
        stub = pb_grpc.RootCauseStub(channel)

        @RPCS
        @given(fuzz.rpc_calls(known_incident))
        def run(call) -> None:  # noqa: ANN001
            seen.add(fuzz.check_rpc(stub, call))

        run()
    assert seen <= fuzz.ALLOWED_RPC_CODES
    assert grpc.StatusCode.INVALID_ARGUMENT in seen  # the strategies do reach validation
