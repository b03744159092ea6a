"""Anomaly scoring on hand-built windows."""

from __future__ import annotations

import pytest
from scipy import stats

from rootgraph.graph.records import BucketRow, EntityKind
from rootgraph.inference.errors import UnknownEntity
from rootgraph.inference.evidence import EvidenceConfig, _count_test, pct, score_window
from rootgraph.inference.synthetic import Profile, WindowBuilder

BASE = Profile(rpm=100)


def test_count_test_matches_the_binomial_tail_and_grades_by_support():
    cfg = EvidenceConfig()
    ok, strength, p0, excess = _count_test(30, 100, 10, 10_000, cfg)
    want_p0 = (10 + cfg.prior_weight * cfg.prior_error_rate) / (10_000 + cfg.prior_weight)
    assert p0 == pytest.approx(want_p0)
    assert ok and excess == pytest.approx(30 - 100 * want_p0)
    assert stats.binom.sf(29, 100, want_p0) < cfg.alpha
    weak = _count_test(2, 3, 0, 1000, cfg)
    assert weak[0] and weak[1] < strength


def test_small_rise_below_the_minimum_effect_is_not_anomalous():
    cfg = EvidenceConfig()
    ok, *_ = _count_test(300, 100_000, 100, 100_000, cfg)  # 0.3% vs 0.1%: significant, tiny
    assert not ok


def test_error_burst_latency_self_time_and_exclusive_errors_are_detected():
    wb = WindowBuilder()
    wb.serve("errs", BASE, BASE.with_(error_rate=0.3))
    wb.serve("slow", BASE, BASE.with_(latency_ms=200, self_ms=150))
    wb.serve("fine", BASE)
    ev = score_window(wb.build())
    errs, slow, fine = ev.entities["errs"], ev.entities["slow"], ev.entities["fine"]
    assert errs.anomalous and errs.self_anomalous and not errs.saturation
    assert any(i.text.endswith("exclusive") for i in errs.items)
    assert slow.anomalous and slow.self_anomalous and slow.saturation
    assert {i.signal for i in slow.items} >= {"latency_p95", "self_time"}
    assert not fine.anomalous and not fine.items
    assert set(ev.symptoms) == {"errs", "slow"}


def test_onset_is_the_first_anomalous_incident_bucket():
    wb = WindowBuilder()
    wb.serve("late", BASE, BASE.with_(error_rate=0.5), onset_minute=6)
    ev = score_window(wb.build())
    assert ev.entities["late"].onset_s == wb.incident_start + 6 * 60


def test_virtual_node_evidence_comes_from_its_callers_edges():
    wb = WindowBuilder()
    wb.serve("a", BASE, BASE.with_(error_rate=0.4, exclusive_rate=0.0))
    wb.call("a", "db:mysql/x", BASE, BASE.with_(error_rate=0.4))
    wb.runs_on("a", "host:h")
    ev = score_window(wb.build())
    db = ev.entities["db:mysql/x"]
    assert db.kind == EntityKind.DATABASE and not db.instrumented and db.anomalous
    assert db.items and db.items[0].text.startswith("a\u2192db:mysql/x error rate")
    host = ev.entities["host:h"]
    assert not host.anomalous and not host.items
    edge = ev.edges[("a", "db:mysql/x")]
    assert edge.co_failure == pytest.approx(1.0, abs=0.15) and edge.share == pytest.approx(1.0, abs=0.15)


def test_traffic_drop_counts_only_when_callers_see_the_entity_failing():
    wb = WindowBuilder()
    wb.serve("upstream-victim", BASE, BASE.with_(rpm=5))
    wb.serve("down", BASE, BASE.with_(rpm=5))
    wb.serve("caller", BASE).call("caller", "down", BASE, BASE.with_(error_rate=0.9))
    ev = score_window(wb.build())
    assert not ev.entities["upstream-victim"].anomalous
    assert any(i.signal == "traffic" for i in ev.entities["upstream-victim"].items)
    assert ev.entities["down"].anomalous


def test_deployments_are_filtered_to_the_lookback_window():
    wb = WindowBuilder()
    wb.serve("a", BASE)
    wb.deploy("a", "1.0.1", 10).deploy("a", "1.0.0", 25)
    ev = score_window(wb.build())
    assert [d.version for d in ev.entities["a"].deployments] == ["1.0.1"]


def test_named_symptoms_are_forced_and_unknown_ones_rejected():
    wb = WindowBuilder()
    wb.serve("a", BASE)
    data = wb.build()
    ev = score_window(data, ["a"])
    assert ev.entities["a"].anomalous and ev.entities["a"].forced and ev.symptoms == ("a",)
    with pytest.raises(UnknownEntity):
        score_window(data, ["ghost"])


def test_empty_baseline_does_not_divide_by_zero():
    wb = WindowBuilder()
    wb.entity("new")
    wb.service_buckets["new"] = (BucketRow(wb.incident_start, 10, 1, 100.0, 30.0, 1, tuple([0] * 39 + [10])),)
    ev = score_window(wb.build())
    assert ev.entities["new"].instrumented


@pytest.mark.parametrize("x,text", [(0.41, "41%"), (0.025, "2.5%"), (0.002, "0.2%"), (0.0, "0%")])
def test_percentages_read_like_a_human_wrote_them(x, text):
    assert pct(x) == text


def test_the_cheap_paths_compute_the_same_statistics() -> None:
    """Issue 15's cost work: the pooled baseline histogram is summed without the
    per-bucket array, and the rank test's shift is skipped only when not significant."""
    import numpy as np

    from rootgraph.inference.evidence import _Hists, rank_test

    rng = np.random.default_rng(7)
    rows = [BucketRow(60 * i, int(h.sum()), 0, 0.0, 0.0, 0, tuple(int(x) for x in h))
            for i, h in enumerate(rng.integers(0, 9, size=(30, 40)))]
    rows.append(BucketRow(1800, 0, 0, 0.0, 0.0, 0, (0,) * 40))  # no requests: not a baseline bucket
    hb = _Hists(rows)
    full = np.array([r.histogram for r in rows if r.requests > 0], dtype=float)
    assert hb.count == 30 and np.array_equal(hb.rows, full) and np.array_equal(hb.pooled[0], full.sum(axis=0))
    same, slow = full[0], np.zeros(40)
    slow[36] = 50.0  # every request in one slow bin
    for x in (same, slow):
        p, shift = rank_test(x, hb.pooled[0])
        p2, shift2 = rank_test(x, hb.pooled[0], p_below=1e-3)
        assert p2 == p
        assert shift2 == (shift if p < 1e-3 else 0.0)
    assert rank_test(slow, hb.pooled[0])[0] < 1e-3  # both branches were taken
    assert rank_test(same, hb.pooled[0])[0] >= 1e-3
