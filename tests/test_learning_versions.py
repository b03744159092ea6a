"""Model versions, promotion, rollback and the audit trail, against the real Neo4j.

Through the real server: incidents are ranked by RankCauses (and recorded), people
confirm causes with SubmitFeedback, ``rootgraph model`` trains / evaluates / promotes /
rolls back, and the server picks up each change at the next call. Every recorded
answer replays exactly from its audit record.
"""

from __future__ import annotations

import json
import time

import pytest

from rootgraph import cli
from rootgraph.client import RootGraphClient
from rootgraph.graph.errors import NotFound
from rootgraph.graph.incidents import IncidentStore
from rootgraph.graph.records import WindowData, decode_window, window_to_delta
from rootgraph.graph.model_versions import ModelConflict, ModelStore
from rootgraph.inference import ModelParams, RootCauseRanker
from rootgraph.inference.learning_scenarios import PATTERN_CAUSE, hand_built, recurring_pattern
from rootgraph.inference.serialize import params_from_json, params_to_json
from rootgraph.modelops import ModelOps

pytestmark = pytest.mark.neo4j

T0 = 1_700_000_000
SLOT = 2 * 3600  # one incident per two hours: windows never share a bucket


@pytest.fixture()
def models(store, neo4j_driver, neo4j_settings) -> ModelStore:  # noqa: ANN001
    return ModelStore(neo4j_driver, neo4j_settings.neo4j_database)


@pytest.fixture()
def ops(models, neo4j_driver, neo4j_settings) -> ModelOps:  # noqa: ANN001
    return ModelOps(models, IncidentStore(neo4j_driver, neo4j_settings.neo4j_database))


def test_promote_and_rollback_move_current_and_never_rewrite_parameters(models: ModelStore) -> None:
    models.ensure_default("prior-v1", params_to_json(ModelParams()))
    models.ensure_default("prior-v1", "ignored: created once")
    assert models.current().version == "prior-v1"
    a = models.create("learned-a", "prior-v1", params_to_json(ModelParams(version="learned-a", base_prior=0.02)))
    assert a.status == "candidate"
    with pytest.raises(ModelConflict):
        models.create("learned-a", "prior-v1", params_to_json(ModelParams(version="learned-a")))
    models.create("learned-b", "learned-a", params_to_json(ModelParams(version="learned-b", base_prior=0.03)))
    with pytest.raises(NotFound):
        models.promote("learned-zzz")

    assert models.promote("learned-a").previous == "prior-v1"
    with pytest.raises(ModelConflict):
        models.promote("learned-a")
    assert models.promote("learned-b").previous == "learned-a"
    status = {r.version: r.status for r in models.list()}
    assert status == {"prior-v1": "retired", "learned-a": "retired", "learned-b": "current"}

    assert models.rollback().version == "learned-a"
    assert models.current_version() == "learned-a"
    assert models.rollback().version == "prior-v1"
    with pytest.raises(ModelConflict):
        models.rollback()  # the built-in version replaced nothing
    assert [r.status for r in models.list()].count("current") == 1
    assert params_from_json(models.get("learned-a").params_json).base_prior == 0.02
    assert params_from_json(models.get("prior-v1").params_json) == ModelParams()
    assert any(h.startswith("rolled back") for h in models.get("learned-b").history)


def _replay(models: ModelStore, inc) -> list[tuple[str, int, float]]:  # noqa: ANN001
    """Run the recorded model version on the recorded evidence."""
    doc = json.loads(inc.evidence_json)
    params = params_from_json(models.get(inc.ranking.model_version).params_json)
    ranking = RootCauseRanker(params).rank(decode_window(doc["window"]), doc["symptoms"], doc["top_k"])
    return [(c.entity, c.rank, c.probability) for c in ranking.causes]


def _recorded(inc) -> list[tuple[str, int, float]]:  # noqa: ANN001
    return [(c.entity, c.rank, c.probability) for c in inc.ranking.causes]


def _same(a: list[tuple[str, int, float]], b: list[tuple[str, int, float]]) -> bool:
    return [x[:2] for x in a] == [x[:2] for x in b] and all(abs(x[2] - y[2]) <= 1e-9 for x, y in zip(a, b))


def test_learning_through_the_server_train_evaluate_promote_rollback_and_replay(app, writer, models, ops) -> None:  # noqa: ANN001,E501
    pattern = [recurring_pattern(s, T0 + i * SLOT) for i, s in enumerate(range(12))]
    rest = hand_built(0, T0 + 12 * SLOT)
    for i, (w, _) in enumerate(pattern + rest):
        writer.apply_deltas([window_to_delta(w, f"batch-{i}")])
    train, held = pattern[:8], pattern[8:]

    with RootGraphClient(f"127.0.0.1:{app.ports['api']}") as rg:
        def rank(w: WindowData):  # noqa: ANN202
            return rg.rank_causes(w.incident.start_s, w.incident.end_s, top_k=5)

        def answers_with(w: WindowData, version: str):  # noqa: ANN202
            # A promote/rollback by another process (ops has its own store) takes effect
            # within Settings.model_check_seconds (0.2 s here): wait on that, with a deadline.
            deadline = time.monotonic() + 10.0
            while (a := rank(w)).model_version != version and time.monotonic() < deadline:
                time.sleep(0.05)
            return a

        def ac1(cases) -> float:  # noqa: ANN001
            answers = [rank(w) for w, _ in cases]
            return sum(a.causes[0].entity == c for a, (_, c) in zip(answers, cases)) / len(cases), answers

        first = [rank(w) for w, _ in train + rest]
        assert {a.model_version for a in first} == {"prior-v1"}
        for n, (a, (_, cause)) in enumerate(zip(first, train + rest)):
            assert rg.submit_feedback(f"fb-{n}", a.incident_id, confirmed_cause=cause, action="failover",
                                      outcome="resolved", confirmed_by="sre@example.com")
        before_held, _ = ac1(held)
        before_rest, _ = ac1(rest)

        cand, metrics = ops.train()
        assert cand.status == "candidate" and cand.parent == "prior-v1"
        assert len(metrics["training"]["used"]) == len(train + rest)
        report = ops.evaluate(cand.version)
        assert report["candidate"]["ac1"] > report["current_model"]["ac1"]
        assert json.loads(models.get(cand.version).metrics_json)["evaluation"]["incidents"] == len(train + rest)

        assert rank(held[0][0]).model_version == "prior-v1"  # a candidate does not answer
        ops.promote(cand.version)
        assert answers_with(held[0][0], cand.version).model_version == cand.version
        after_held, answers = ac1(held)
        after_rest, _ = ac1(rest)
        assert {a.model_version for a in answers} == {cand.version}
        assert before_held <= 0.5 and after_held >= before_held + 0.5
        assert after_rest >= before_rest
        failover = [x for x in answers[0].causes[0].suggested_actions if x.kind.value == "failover"]
        assert answers[0].causes[0].entity == PATTERN_CAUSE and failover[0].confidence > 0.5

        # Audit: each answer replays exactly with the version it names, before and after.
        for a in (first[0], answers[0], answers[-1]):
            inc = rg.get_incident(a.incident_id)
            assert _same(_replay(models, inc), _recorded(inc))
        old = rg.get_incident(first[0].incident_id)
        assert old.ranking.model_version == "prior-v1"  # a promotion rewrites no record

        ops.rollback()
        assert answers_with(held[0][0], "prior-v1").model_version == "prior-v1"
        assert models.get(cand.version).status == "retired"


def test_model_cli_commands_talk_to_neo4j(models, neo4j_settings, monkeypatch, capsys) -> None:  # noqa: ANN001
    monkeypatch.setattr(cli, "_settings", lambda args: neo4j_settings)
    assert cli.main(["model", "train", "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["status"] == "candidate" and trained["training"]["incidents"] == 0
    assert cli.main(["model", "evaluate", trained["version"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["incidents"] == 0
    assert cli.main(["model", "promote", trained["version"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"current": trained["version"], "previous": "prior-v1"}
    assert cli.main(["model", "rollback", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"current": "prior-v1"}
    assert cli.main(["model", "list", "--json"]) == 0
    listed = {v["version"]: v["status"] for v in json.loads(capsys.readouterr().out)["versions"]}
    assert listed == {"prior-v1": "current", trained["version"]: "retired"}
    assert cli.main(["model", "promote"]) == 2  # VERSION is required
