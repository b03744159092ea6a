"""Learning from confirmed incidents, without Neo4j: estimation, confidence, the pattern.

The "done when" of issue 7 in memory: on a recurring pattern (a database that is
repeatedly the real cause behind a noisy service) AC@1 on held-out incidents of the
pattern rises after feedback on earlier ones and does not fall on the rest.
"""

from __future__ import annotations

import dataclasses

import pytest

from rootgraph.graph.records import EntityKind
from rootgraph.inference import ModelParams, RootCauseRanker
from rootgraph.inference.actions import action_context
from rootgraph.inference.evidence import score_window
from rootgraph.inference.learning import LabelledIncident, LearningConfig, evaluate, learn
from rootgraph.inference.learning_scenarios import PATTERN_CAUSE, other_incidents, recurring_pattern
from rootgraph.inference.network import build_model
from rootgraph.inference.serialize import params_from_json, params_to_json
from rootgraph.inference.synthetic import Profile, WindowBuilder


def _ex(pairs, tag: str, action: str = "failover", outcome: str = "resolved") -> list[LabelledIncident]:  # noqa: ANN001
    return [LabelledIncident(f"{tag}{i}", w, (), c, action, outcome) for i, (w, c) in enumerate(pairs)]


@pytest.fixture(scope="module")
def pattern() -> list[LabelledIncident]:
    return _ex([recurring_pattern(s) for s in range(20)], "p")


@pytest.fixture(scope="module")
def rest() -> list[LabelledIncident]:
    return _ex(other_incidents(n_generated=8, per_kind=2), "r")


def test_learning_raises_ac1_on_the_recurring_pattern_and_not_below_on_the_rest(pattern, rest) -> None:  # noqa: ANN001
    train, held = pattern[:10], pattern[10:]
    before_p, before_r = evaluate(ModelParams(), held), evaluate(ModelParams(), rest)
    # Feedback arrives for the earlier pattern incidents and for half of the rest.
    params, report = learn(train + rest[::2], ModelParams(), "learned-test")
    after_p, after_r = evaluate(params, held), evaluate(params, rest)
    assert before_p.ac1 <= 0.5, "the scenario must be one the prior model gets wrong"
    assert after_p.ac1 >= before_p.ac1 + 0.4
    assert after_r.ac1 >= before_r.ac1 and after_r.ac3 >= before_r.ac3
    assert len(report.used) == 10 + len(rest[::2]) and not report.skipped
    priors = dict(params.learned_priors)
    assert priors[PATTERN_CAUSE] > ModelParams().base_prior > priors["shop/orders"]


def test_a_handful_of_incidents_moves_the_model_a_little_many_move_it_a_lot(pattern) -> None:  # noqa: ANN001
    def prior(k: int) -> float:
        return dict(learn(pattern[:k], ModelParams(), "v")[0].learned_priors)[PATTERN_CAUSE]

    base = ModelParams().base_prior
    few, many = prior(1), prior(10)
    assert base < few < many
    assert few / base < 2.5 < many / base


def test_no_feedback_changes_nothing_and_none_of_these_is_not_learned(pattern) -> None:  # noqa: ANN001
    p0, rep = learn([], ModelParams(), "same")
    assert dataclasses.replace(p0, version="prior-v1") == ModelParams()
    none = [dataclasses.replace(pattern[0], confirmed_cause="")]
    p1, rep = learn(none, ModelParams(), "same")
    assert dataclasses.replace(p1, version="prior-v1") == ModelParams()
    assert rep.skipped == (("p0", "none of these"),)


def test_a_learned_prior_keeps_the_deployment_boost_and_defaults_rank_as_before() -> None:
    wb = WindowBuilder()
    wb.serve("a", incident=Profile(error_rate=0.3))
    wb.call("user", "a", incident=Profile(error_rate=0.3))
    wb.deploy("a", "2", 3, previous="1")
    ev = score_window(wb.build())
    assert build_model(ev).priors["a"] == pytest.approx(0.15)
    same = build_model(ev, ModelParams(learned_kind_priors=(("service", 0.01),))).priors["a"]
    assert same == pytest.approx(0.15, abs=1e-12)  # odds(0.01) x odds ratio of a deployment
    lower = build_model(ev, ModelParams(learned_priors=(("a", 0.002),))).priors["a"]
    assert 0.002 < lower < 0.15


def test_action_confidence_is_learned_from_outcomes_and_explained() -> None:
    incidents = []
    for i in range(8):
        wb = WindowBuilder(seed=50 + i)
        wb.serve("shop/payment", incident=Profile(error_rate=0.3))
        wb.call("user", "shop/payment", incident=Profile(error_rate=0.3))
        wb.deploy("shop/payment", f"3.{i}", 4, previous=f"2.{i}")
        incidents.append(LabelledIncident(f"d{i}", wb.build(), (), "shop/payment", "rollback",
                                          "resolved" if i < 7 else "not_resolved"))
    params, report = learn(incidents, ModelParams(), "v-actions", LearningConfig(action_ess=2.0))
    assert report.action_rows == 8
    (row,) = params.action_stats
    assert row[:4] == ("rollback", "service/deploy", 7, 8) and row[4] == pytest.approx((7 + 1) / (8 + 2))
    wb = WindowBuilder(seed=99)
    wb.serve("shop/payment", incident=Profile(error_rate=0.3))
    wb.call("user", "shop/payment", incident=Profile(error_rate=0.3))
    wb.deploy("shop/payment", "4.0", 2, previous="3.9")
    top = RootCauseRanker(params).rank(wb.build()).causes[0]
    rollback = next(a for a in top.suggested_actions if a.kind.value == "rollback")
    assert rollback.confidence == pytest.approx(0.8)
    assert "rollback resolved 7 of 8 past incidents" in rollback.detail
    assert "deployment within 10 minutes" in rollback.detail
    plain = RootCauseRanker().rank(wb.build()).causes[0]
    assert all(a.confidence == 0.0 for a in plain.suggested_actions)


def test_action_context_groups() -> None:
    assert action_context(EntityKind.DATABASE, (), 1000) == "backend/no-deploy"
    assert action_context(EntityKind.HOST, (), 1000) == "infra/no-deploy"


def test_learned_params_round_trip_through_json_exactly(pattern) -> None:  # noqa: ANN001
    params, _ = learn(pattern[:6], ModelParams(), "learned-json")
    assert params_from_json(params_to_json(params)) == params
    assert params.learned_strengths and params.learned_kind_priors
