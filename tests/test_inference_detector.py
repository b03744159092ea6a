"""The detector's pure decisions (inference/detector.py) on the in-memory graph fake."""

from __future__ import annotations

from dataclasses import replace

from detection_support import DB, T0, minutes

from rootgraph.graph.records import Window
from rootgraph.graph.window_source import InMemoryWindows
from rootgraph.inference.detector import (
    BurnWindow, DetectorConfig, IncidentTracker, Slo, Symptom, Topology, baseline_symptoms, slo_symptoms,
)

CFG = DetectorConfig(incident_buckets=2, baseline_buckets=30, confirm_buckets=2, resolve_buckets=3)


def _graph(fault: tuple[int, int] | None) -> InMemoryWindows:
    g = InMemoryWindows()
    g.apply_deltas(minutes(0, 60, fault))
    return g


def _judge(g: InMemoryWindows, m: int) -> tuple[list[Symptom], Topology]:
    t = T0 + 60 * m
    data = g.read_window(Window(t - 60, t + 60), Window(t - 60 - 1800, t - 60), 60)
    return baseline_symptoms(data), Topology(data)


def _run(g: InMemoryWindows, first: int = 31, last: int = 60) -> list[tuple[int, str, tuple[str, ...]]]:
    n = iter(range(100))
    tracker = IncidentTracker(CFG, lambda t: f"inc-{next(n)}")
    out = []
    for m in range(first, last):
        syms, topo = _judge(g, m)
        out += [(m, c.kind, tuple(sorted(c.incident.symptoms))) for c in tracker.step(T0 + 60 * m, syms, topo)]
    return out


def test_a_healthy_noisy_hour_opens_nothing() -> None:
    assert _run(_graph(None)) == []


def test_a_failing_database_opens_one_incident_for_it_and_its_callers_within_two_buckets() -> None:
    changes = _run(_graph((40, 46)))
    opened = [c for c in changes if c[1] == "opened"]
    assert len(opened) == 1, changes
    m, _, syms = opened[0]
    assert m <= 41  # onset bucket 40 judged at its end (1), confirmed one bucket later (2)
    assert DB in syms and "shop/orders" in syms
    resolved = [c for c in changes if c[1] == "resolved"]
    assert len(resolved) == 1 and 46 + CFG.resolve_buckets - 1 <= resolved[0][0] <= 46 + CFG.resolve_buckets + 2


def test_unrelated_symptoms_open_separate_incidents_and_related_ones_join() -> None:
    g = _graph(None)
    _, topo = _judge(g, 40)
    assert topo.related("shop/frontend", DB)          # caller and callee, at depth
    assert topo.related("shop/catalogue", "shop/orders")  # one node under both
    tracker = IncidentTracker(CFG, lambda t: f"inc-{t}")
    a = Symptom(DB, "error_rate", confirmed=True)
    c1 = tracker.step(T0, [a], topo)
    c2 = tracker.step(T0 + 60, [a, Symptom("shop/orders", "error_rate", confirmed=True)], topo)
    assert [c.kind for c in c1] == ["opened"] and [(c.kind, c.added) for c in c2] == [("updated", ("shop/orders",))]
    assert len(tracker.open) == 1


def test_slo_burn_needs_both_windows_of_a_pair() -> None:
    g = _graph((40, 46))
    slo = Slo("shop/orders", 0.99, windows=(BurnWindow(1800, 300, 10.0),))
    def at(m: int) -> list[Symptom]:
        end = T0 + 60 * m
        data = g.read_window(Window(end - 1800, end), Window(end - 1860, end - 1800), 60)
        return slo_symptoms(data, [slo], end)
    assert at(40) == []                       # before the fault
    hit = at(46)                               # 6 of 30 minutes at ~50 % errors: both windows burn > 10x
    assert [s.signal for s in hit] == ["slo_availability"] and hit[0].confirmed
    assert at(55) == []                        # the short window is clean again


# -- bucket-level tests: a naturally noisy service is judged against its own wander ------

import math  # noqa: E402
import random  # noqa: E402

from rootgraph.graph.records import HISTOGRAM_BUCKETS, BucketRow  # noqa: E402
from rootgraph.inference.detector import (  # noqa: E402
    errors_beyond_dispersion, latency_beyond_bucket_spread,
)
from rootgraph.inference.evidence import EvidenceConfig, _count_test, rank_test  # noqa: E402

EV = EvidenceConfig()


def _row(rng: random.Random, t: int, n: int, err: float, median_ms: float, sigma: float = 0.3) -> BucketRow:
    hist = [0] * HISTOGRAM_BUCKETS
    for _ in range(n):
        ms = median_ms * rng.lognormvariate(0, sigma)
        hist[min(HISTOGRAM_BUCKETS - 1, max(0, math.ceil(2 * math.log2(ms / 0.1))))] += 1
    k = sum(1 for _ in range(n) if rng.random() < err)
    return BucketRow(t, n, k, 0.0, 0.0, k, tuple(hist))


def _noisy(rng: random.Random, minutes_: range, n: int, err: float, ms: float, wander: float) -> list[BucketRow]:
    """Buckets whose error rate and median wander by mean-one lognormal factors."""
    out = []
    for m in minutes_:
        f_err = math.exp(rng.gauss(-wander ** 2 / 2, wander))
        f_lat = math.exp(rng.gauss(-wander ** 2 / 8, wander / 2))
        out.append(_row(rng, T0 + 60 * m, n, min(1.0, err * f_err), ms * f_lat))
    return out


def test_an_error_burst_within_a_noisy_services_wander_is_not_beyond_its_dispersion() -> None:
    rng = random.Random(5)
    base = _noisy(rng, range(30), 300, 0.05, 5.0, 1.0)  # minutes from 1 to 40 errors in 300
    window = [_row(rng, T0 + 60 * 30, 300, 0.085, 5.0), _row(rng, T0 + 60 * 31, 300, 0.085, 5.0)]
    assert max(r.errors for r in window) < max(r.errors for r in base)
    k, n = sum(r.errors for r in window), sum(r.requests for r in window)
    ok, *_ = _count_test(k, n, sum(r.errors for r in base), sum(r.requests for r in base), EV)
    assert ok  # requests counted as independent: "anomalous"
    assert not errors_beyond_dispersion(base, window, EV)  # but the baseline's minutes vary as much


def test_a_real_error_rise_is_beyond_the_dispersion_of_a_noisy_and_of_a_quiet_service() -> None:
    rng = random.Random(6)
    for wander in (0.0, 1.0):
        base = _noisy(rng, range(30), 300, 0.05, 5.0, wander)
        window = [_row(rng, T0 + 60 * 30, 300, 0.5, 5.0), _row(rng, T0 + 60 * 31, 300, 0.5, 5.0)]
        assert errors_beyond_dispersion(base, window, EV), wander
    # low traffic: one error in three calls is no evidence, three in three is
    base = [_row(rng, T0 + 60 * m, 3, 0.01, 5.0) for m in range(30)]
    assert not errors_beyond_dispersion(base, [BucketRow(T0 + 1800, 3, 1, 0.0, 0.0, 1, base[0].histogram)], EV)
    assert errors_beyond_dispersion(base, [BucketRow(T0 + 1800, 3, 3, 0.0, 0.0, 3, base[0].histogram),
                                           BucketRow(T0 + 1860, 3, 3, 0.0, 0.0, 3, base[0].histogram)], EV)


def test_a_latency_wander_is_not_beyond_the_bucket_spread_but_a_real_slowdown_is() -> None:
    rng = random.Random(7)
    base = _noisy(rng, range(30), 200, 0.01, 5.0, 0.8)
    drift = [_row(rng, T0 + 60 * 30, 200, 0.01, 5.0 * 1.5), _row(rng, T0 + 60 * 31, 200, 0.01, 5.0 * 1.5)]
    h = lambda rows: [float(sum(col)) for col in zip(*(r.histogram for r in rows))]  # noqa: E731
    import numpy as np
    p, _ = rank_test(np.array(h(drift)), np.array(h(base)))
    assert p < EV.alpha  # the request-level rank test calls 1.5x "significant"
    assert not latency_beyond_bucket_spread(base, drift, EV)
    slow = [_row(rng, T0 + 60 * 30, 200, 0.01, 50.0), _row(rng, T0 + 60 * 31, 200, 0.01, 50.0)]
    assert latency_beyond_bucket_spread(base, slow, EV)


def test_the_bucket_level_alpha_spreads_the_days_false_alarms_over_every_question() -> None:
    from rootgraph.inference.detector import bucket_alpha

    data = _graph(None).read_window(Window(T0 + 1800, T0 + 1920), Window(T0, T0 + 1800), 60)
    n = len(data.service_buckets)
    assert n >= 3
    assert bucket_alpha(data, 1.0, 1e-3) == 1.0 / (n * 1440)
    assert bucket_alpha(data, 1e9, 1e-3) == 1e-3  # never looser than RankCauses' level
    # the healthy hour opens nothing at the detector's level either, the fault still opens
    cfg = replace(CFG, false_alarms_per_day=1.0)
    assert _run_cfg(_graph(None), cfg) == []
    assert any(k == "opened" for _, k, _ in _run_cfg(_graph((40, 46)), cfg))


def _run_cfg(g: InMemoryWindows, cfg: DetectorConfig) -> list[tuple[int, str, tuple[str, ...]]]:
    n = iter(range(100))
    tracker = IncidentTracker(cfg, lambda t: f"inc-{next(n)}")
    out = []
    for m in range(31, 60):
        t = T0 + 60 * m
        data = g.read_window(Window(t - 60, t + 60), Window(t - 60 - 1800, t - 60), 60)
        syms = baseline_symptoms(data, false_alarms_per_day=cfg.false_alarms_per_day)
        out += [(m, c.kind, tuple(sorted(c.incident.symptoms))) for c in tracker.step(t, syms, Topology(data))]
    return out
