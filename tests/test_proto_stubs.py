"""The committed protobuf/gRPC stubs are exactly what `make proto` generates."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("proto_generate", ROOT / "proto" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_generated_stubs_are_fresh(tmp_path: Path) -> None:
    gen = _generator()
    for fresh in gen.generate(tmp_path):
        committed = ROOT / "proto" / "rootgraph" / "v1" / fresh.name
        assert committed.read_bytes() == fresh.read_bytes(), (
            f"{committed.relative_to(ROOT)} is stale: run `make proto` and commit the result"
        )


def test_contract_names_are_kept() -> None:
    from rootgraph.v1 import rootgraph_pb2 as pb

    service = pb.DESCRIPTOR.services_by_name["RootCause"]
    assert pb.DESCRIPTOR.package == "rootgraph.v1"
    assert {m.name for m in service.methods} >= {
        "RankCauses", "BlastRadius", "RecordDeployment", "SubmitFeedback", "GetIncident",
        "GetServiceGraph",
    }
    req = pb.RankCausesRequest.DESCRIPTOR.fields_by_name
    assert {"start", "end", "top_k", "symptoms"} <= set(req)
    cause = pb.Cause.DESCRIPTOR.fields_by_name
    assert {"entity", "kind", "probability", "rank", "explanation", "suggested_actions"} <= set(cause)
    impact = pb.Impact.DESCRIPTOR.fields_by_name
    assert {"entity", "probability", "hops", "path", "traffic_share"} <= set(impact)
    dep = pb.RecordDeploymentRequest.DESCRIPTOR.fields_by_name
    assert {"service", "version", "at", "commit", "id"} <= set(dep)
