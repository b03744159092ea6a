"""The public surface of rootgraph.inference is listed and guarded (STYLE.md #11)."""

from __future__ import annotations

import dataclasses

import rootgraph.inference as inference
from rootgraph.inference import results


def test_exported_members_are_exactly_the_documented_surface():
    assert sorted(inference.__all__) == sorted([
        "Action", "ActionKind", "BlastRadius", "Cause", "EvidenceConfig", "EvidenceItem", "Impact",
        "InferenceError", "InvalidArgument", "ModelParams", "Ranking", "RootCauseRanker", "UnknownEntity",
        "blast_radius", "whatif_model",
    ])
    for name in inference.__all__:
        assert getattr(inference, name) is not None


def test_result_field_names_match_the_grpc_contract():
    fields = {cls.__name__: [f.name for f in dataclasses.fields(cls)]
              for cls in (results.Cause, results.Impact, results.BlastRadius, results.Ranking)}
    assert fields["Cause"][:5] == ["entity", "kind", "probability", "rank", "explanation"]
    assert {"evidence", "paths", "deployments", "suggested_actions"} <= set(fields["Cause"])
    assert fields["Impact"] == ["entity", "kind", "probability", "hops", "path", "traffic_share"]
    assert fields["BlastRadius"] == ["entity", "impacts", "entry_traffic_share_affected"]
    assert {"causes", "symptoms", "model_version", "no_clear_cause"} <= set(fields["Ranking"])


def test_errors_are_not_retryable_and_keep_builtin_bases():
    assert issubclass(inference.UnknownEntity, LookupError)
    assert issubclass(inference.InvalidArgument, ValueError)
    assert not inference.UnknownEntity("x").retryable
