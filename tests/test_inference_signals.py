"""Log and metric detectors (inference/signals.py) and their place in the network.

Tiny hand-built windows; expected values computed independently (scipy.stats for the
binomial tail, by hand for the dispersion).
"""

from __future__ import annotations

import math

from scipy.stats import binom

from rootgraph.graph.records import SEVERITIES, LogRow, MetricRow, Window, WindowData
from rootgraph.inference.evidence import EvidenceConfig, score_window
from rootgraph.inference.network import build_model
from rootgraph.inference.rank import RootCauseRanker
from rootgraph.inference.signals import count_test, dispersion, score_logs, score_metrics
from rootgraph.inference.synthetic import LogProfile, Profile, WindowBuilder

CFG = EvidenceConfig()
T0 = 1_700_000_000


def _window(logs=None, metrics=None, texts=None) -> WindowData:
    # baseline [T0, T0+300), incident [T0+300, T0+360), 60 s buckets
    return WindowData(Window(T0 + 300, T0 + 360), Window(T0, T0 + 300), 60, {}, {}, (), {}, (),
                      log_buckets=logs or {}, metric_buckets=metrics or {}, log_templates=texts or {})


def _log(t: int, records: int, errors: int, templates=()) -> LogRow:
    sev = [0] * len(SEVERITIES)
    sev[3], sev[5] = records - errors, errors
    return LogRow(t, records, tuple(sev), 0, tuple(templates), 0)


def test_dispersion_is_one_for_even_counts_and_the_pearson_ratio_for_bursts() -> None:
    assert dispersion([(5, 10), (5, 10)]) == 1.0
    # pooled p = 0.5: ((0-5)^2 + (10-5)^2) / (10 * 0.25) / (2 - 1) = 20
    assert math.isclose(dispersion([(0, 10), (10, 10)]), 20.0)
    assert dispersion([(3, 10)]) == 1.0


def test_count_test_tail_is_the_binomial_tail_without_overdispersion() -> None:
    # k = 8 of 20 vs 1 of 200 in baseline: smoothed p0 = (1 + 20 * 0.005) / 220
    p0 = (1 + 0.1) / 220
    ok, s, got_p0 = count_test(8, 20, 1, 200, 1.0, CFG)
    assert math.isclose(got_p0, p0)
    pval = binom.sf(7, 20, p0)
    assert ok and pval < CFG.alpha
    assert math.isclose(s, min(1.0, -math.log10(pval) / 6.0) * min(1.0, (8 - 20 * p0) / 10.0), rel_tol=1e-6)
    # the same counts in a baseline 20x over-dispersed are 20x fewer effective trials
    assert not count_test(8, 20, 1, 200, 20.0, CFG)[0]


def test_error_logs_fire_and_are_quoted_with_their_counts() -> None:
    base = {"svc": tuple(_log(T0 + 60 * i, 100, 0) for i in range(5)) + (_log(T0 + 300, 100, 48),)}
    v = score_logs(_window(base), CFG)["svc"]
    assert v.fired and v.strength > 0.9
    assert any("48 ERROR logs" in i.text and "vs 0 of 500" in i.text for i in v.items)


def test_error_logs_as_bursty_in_the_baseline_do_not_fire() -> None:
    # baseline buckets with 0 or 50 errors of 100: as bad as the window's 40
    rows = tuple(_log(T0 + 60 * i, 100, 50 if i % 2 else 0) for i in range(5)) + (_log(T0 + 300, 100, 40),)
    v = score_logs(_window({"svc": rows}), CFG)["svc"]
    assert not v.fired and v.strength == 0.0


def test_a_new_template_is_evidence_quoted_with_its_text() -> None:
    rows = tuple(_log(T0 + 60 * i, 100, 0, (("t1", 100),)) for i in range(5)) + \
        (_log(T0 + 300, 100, 0, (("t1", 70), ("t2", 30))),)
    v = score_logs(_window({"svc": rows}, texts={"svc": {"t1": "ok <*>", "t2": "cache miss for key <*>"}}), CFG)["svc"]
    assert v.fired
    item = next(i for i in v.items if i.signal == "log_template")
    assert 'new log message "cache miss for key <*>": 30 records vs 0' in item.text
    assert item.score <= CFG.template_weight


def test_no_log_rows_in_the_incident_window_give_no_verdict() -> None:
    rows = tuple(_log(T0 + 60 * i, 100, 0) for i in range(5))
    assert score_logs(_window({"svc": rows}), CFG) == {}


def _cpu(values_base: list[float], values_inc: list[float], every: int = 60) -> dict:
    rows = [MetricRow(T0 + every * i, v, 1, v, v) for i, v in enumerate(values_base)]
    rows += [MetricRow(T0 + 300 + every * i, v, 1, v, v) for i, v in enumerate(values_inc)]
    return {"pod:p": {"cpu_utilization": tuple(rows)}}


def test_cpu_saturation_fires_against_the_pods_own_baseline() -> None:
    v = score_metrics(_window(metrics=_cpu([0.11, 0.12, 0.13, 0.12, 0.12], [0.97])), CFG)["pod:p"]
    assert v.fired
    # effect log2(0.97 / 0.12) / 2 capped at 1, support 5 baseline rows >= 3: full
    assert math.isclose(v.strength, min(1.0, math.log2(0.97 / 0.12) / 2.0))
    assert v.items[0].text.startswith("CPU 97 % vs 12 % baseline")


def test_a_pod_as_busy_in_its_baseline_is_not_saturated() -> None:
    v = score_metrics(_window(metrics=_cpu([0.12, 0.95, 0.1, 0.99, 0.12], [0.97])), CFG)["pod:p"]
    assert not v.fired


def test_sparse_rows_with_one_baseline_row_are_weak_evidence() -> None:
    # one row a minute with 60 s buckets in a 60 s baseline slice: support 1/3
    data = _window(metrics={"pod:p": {"cpu_utilization": (MetricRow(T0 + 240, 0.1, 1, 0.1, 0.1),
                                                           MetricRow(T0 + 300, 0.4, 1, 0.4, 0.4))}})
    v = score_metrics(data, CFG)["pod:p"]
    assert v.fired and math.isclose(v.strength, 1.0 * (1 / 3))


def test_a_restart_in_the_window_with_none_in_baseline_fires() -> None:
    rows = (MetricRow(T0, 0.0, 1, 0.0, 0.0), MetricRow(T0 + 300, 1.0, 1, 1.0, 1.0))
    v = score_metrics(_window(metrics={"pod:p": {"restarts": rows}}), CFG)["pod:p"]
    assert v.fired and v.strength == 0.5 and "1 container restarts" in v.items[0].text


def _chain(wb: WindowBuilder, slow: dict[str, Profile] | None = None) -> WindowBuilder:
    slow = slow or {}
    base = Profile(rpm=120, latency_ms=30.0, self_ms=10.0)
    for s in ("front", "checkout", "payment"):
        wb.serve(s, base, slow.get(s), onset_minute=2)
    wb.call("user", "front", base)
    wb.call("front", "checkout", base)
    wb.call("checkout", "payment", base)
    return wb


def test_a_code_fault_seen_only_in_logs_ranks_its_service_first() -> None:
    quiet = LogProfile(records_per_min=200, error_share=0.001)
    wb = _chain(WindowBuilder())
    # payment's spans log errors (no status code); checkout logs about the failing call
    wb.logs("payment", quiet, LogProfile(records_per_min=200, error_share=0.001, error_span_rate=0.3), onset_minute=2)
    wb.logs("checkout", quiet, LogProfile(records_per_min=200, error_share=0.001, error_span_rate=0.2), onset_minute=2)
    wb.logs("front", quiet)
    data = wb.build()
    without = RootCauseRanker().rank(WindowData(**{**{f: getattr(data, f) for f in data.__dataclass_fields__},
                                                   "log_buckets": {}}))
    assert without.no_clear_cause  # the traces show nothing
    r = RootCauseRanker().rank(data)
    assert r.causes[0].entity == "payment" and r.causes[0].probability >= 0.5
    assert "logged an ERROR" in r.causes[0].explanation


def test_a_cpu_saturated_pods_service_ranks_first() -> None:
    # both slow in their own code (co-located noise, say); payment slightly more
    wb = _chain(WindowBuilder(), {"checkout": Profile(rpm=120, latency_ms=90.0, self_ms=40.0),
                                  "payment": Profile(rpm=120, latency_ms=90.0, self_ms=44.0)})
    for s in ("front", "checkout", "payment"):
        wb.runs_on(s, f"pod:{s}-1")
    wb.metric("pod:checkout-1", "cpu_utilization", 0.12, 0.97, onset_minute=2)
    wb.metric("pod:payment-1", "cpu_utilization", 0.12)
    wb.metric("pod:front-1", "cpu_utilization", 0.3)
    data = wb.build()
    bare = WindowData(**{**{f: getattr(data, f) for f in data.__dataclass_fields__}, "metric_buckets": {}})
    assert RootCauseRanker().rank(bare).causes[0].entity == "payment"  # self time alone: payment
    r = RootCauseRanker().rank(data)
    assert r.causes[0].entity == "checkout"
    assert any(i.signal == "cpu_utilization" and "CPU" in i.text for i in r.causes[0].evidence)
    model = build_model(score_window(data))
    assert model.nodes["M|pod:checkout-1"].parents == ("F|checkout",) and model.nodes["M|pod:checkout-1"].observed == 1


def test_a_service_with_logs_as_noisy_in_its_baseline_is_not_blamed() -> None:
    noisy = LogProfile(records_per_min=200, error_share=0.0, error_span_rate=0.25)
    wb = _chain(WindowBuilder(bucket_seconds=60))
    wb.logs("payment", noisy, noisy)
    r = RootCauseRanker().rank(wb.build())
    assert r.no_clear_cause or r.causes[0].probability < 0.3


def test_no_logs_or_metrics_leaves_the_network_as_it_was() -> None:
    data = _chain(WindowBuilder(), {"payment": Profile(rpm=120, error_rate=0.3)}).build()
    model = build_model(score_window(data))
    assert not any(n.startswith(("L|", "M|")) for n in model.nodes)


def test_logs_without_baseline_logs_give_no_verdict() -> None:
    # collection began with the incident: every template would look new
    rows = (_log(T0 + 300, 100, 30, (("t9", 100),)),)
    assert score_logs(_window({"svc": rows}, texts={"svc": {"t9": "hello"}}), CFG) == {}
