"""Issue 14 part 4: the rank test, baseline spread, call gaps (link faults) and the
time order of deployments, on tiny hand-built fixtures with expected values computed
independently (STYLE.md #10)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from rootgraph.graph.records import BucketRow, EdgeInfo, StatsBucket, decode_window, window_json
from rootgraph.inference import RootCauseRanker
from rootgraph.inference.evidence import EvidenceConfig, beyond_spread, rank_test, score_window
from rootgraph.inference.synthetic import Profile, WindowBuilder
from rootgraph.ingest.aggregate import aggregate
from rootgraph.ingest.pairing import Call
from rootgraph.graph.records import Entity, EntityKind

BASE = Profile(rpm=100)


def _hist(**bins: int) -> np.ndarray:
    h = np.zeros(40)
    for k, v in bins.items():
        h[int(k[1:])] = v
    return h


def test_rank_test_by_hand_two_against_two():
    # x: two requests in bin 5, y: two in bin 3. Every pair has x > y: U = 4, mean 2.
    # Ties: two groups of 2 -> sum(t^3 - t) = 12; var = 4/12 * (5 - 12/12) = 4/3.
    # z = (|4 - 2| - 0.5) / sqrt(4/3); p = erfc(z / sqrt 2). Shift: all differences 2.
    p, shift = rank_test(_hist(b5=2), _hist(b3=2))
    z = 1.5 / math.sqrt(4.0 / 3.0)
    assert p == pytest.approx(math.erfc(z / math.sqrt(2.0)))
    assert shift == pytest.approx(2.0)


def test_rank_test_matches_scipy_on_the_expanded_samples_and_is_two_sided():
    x, y = _hist(b10=2, b12=3, b13=1), _hist(b9=4, b10=2, b11=3)
    xs = np.repeat(np.arange(40), x.astype(int))
    ys = np.repeat(np.arange(40), y.astype(int))
    p, shift = rank_test(x, y)
    assert p == pytest.approx(mannwhitneyu(xs, ys, method="asymptotic").pvalue)
    assert shift == pytest.approx(float(np.median(np.subtract.outer(xs, ys))))
    p_rev, shift_rev = rank_test(y, x)  # faster is as significant as slower
    assert p_rev == pytest.approx(p) and shift_rev == pytest.approx(-shift)


def test_beyond_spread_needs_the_window_past_every_baseline_bucket():
    cfg = EvidenceConfig()
    assert beyond_spread(5.0, [1.0, 2.0, 4.0], True, cfg)
    assert not beyond_spread(3.0, [1.0, 2.0, 4.0], True, cfg)
    assert beyond_spread(0.5, [1.0, 2.0, 4.0], False, cfg)
    assert beyond_spread(3.0, [1.0, 4.0], True, cfg)  # two buckets: no spread to test against


def test_low_traffic_slowdown_fires_the_rank_test_without_a_p95():
    wb = WindowBuilder()
    slow = Profile(rpm=2, latency_ms=100)
    wb.serve("rare", Profile(rpm=2, latency_ms=20), slow)  # 30 requests in 15 min: no p95 test
    ev = score_window(wb.build())
    rare = ev.entities["rare"]
    assert rare.anomalous
    assert [i.signal for i in rare.items if i.signal.startswith("latency")] == ["latency_shift"]


def test_much_faster_answers_are_anomalous():
    wb = WindowBuilder()
    wb.serve("quick", BASE, BASE.with_(latency_ms=0.5, self_ms=0.2))
    ev = score_window(wb.build())
    item = next(i for i in ev.entities["quick"].items if i.signal == "latency_shift")
    assert "faster" in item.text and item.observed < item.baseline


def test_noisy_baseline_is_not_blamed_for_the_same_noise():
    # Baseline buckets alternate 20 ms and 60 ms; the window is all 60 ms: as slow as
    # half the baseline buckets, so the spread guard must hold it back.
    wb = WindowBuilder()
    wb.serve("noisy", BASE)
    rows = []
    for r in wb.service_buckets["noisy"]:
        lat = 60.0 if (r.start_s >= wb.incident_start or (r.start_s // 60) % 2) else 20.0
        h = [0] * 40
        h[int(math.ceil(2 * math.log2(lat / 0.1)))] = r.requests
        rows.append(dataclasses.replace(r, histogram=tuple(h), duration_ms_sum=lat * r.requests,
                                        self_ms_sum=0.3 * lat * r.requests))
    wb.service_buckets["noisy"] = tuple(rows)
    ev = score_window(wb.build())
    assert not any(i.signal.startswith("latency") for i in ev.entities["noisy"].items)


def _with_gap(wb: WindowBuilder, caller: str, callee: str, base_ms: float, inc_ms: float) -> None:
    """Give edge caller->callee paired calls with a per-call gap (client - server)."""
    out = []
    for e in wb.edges:
        if (e.caller, e.callee) == (caller, callee):
            rows = tuple(dataclasses.replace(
                r, paired=r.requests,
                gap_ms_sum=r.requests * (inc_ms if r.start_s >= wb.incident_start else base_ms),
                duration_ms_sum=r.duration_ms_sum + r.requests * ((inc_ms if r.start_s >= wb.incident_start
                                                                    else base_ms)))
                for r in e.buckets)
            e = EdgeInfo(e.caller, e.callee, e.is_async, rows)
        out.append(e)
    wb.edges = out


def _shop(gap_to_cart: float, gap_to_ads: float = 1.2) -> WindowBuilder:
    wb = WindowBuilder()
    caller_view = BASE.with_(latency_ms=20 + gap_to_cart)
    wb.serve("frontend", BASE, caller_view, ).call("user", "frontend", BASE, caller_view)
    for svc in ("cart", "ads"):
        wb.serve(svc, BASE).call("frontend", svc, BASE)
        _with_gap(wb, "frontend", svc, 1.2, {"cart": gap_to_cart, "ads": gap_to_ads}[svc])
    return wb


def test_call_gap_to_an_instrumented_callee_names_the_callee():
    r = RootCauseRanker().rank(_shop(240.0).build())
    top = r.causes[0]
    assert top.entity == "cart"
    gap = next(i for i in top.evidence if i.signal == "link_gap")
    assert gap.observed == pytest.approx(240.0) and gap.baseline == pytest.approx(1.2)
    assert gap.text.startswith("edge frontend\u2192cart: 240 ms per call outside the callee's own time, "
                               "vs 1.2 ms baseline")


def test_gaps_on_every_call_of_one_caller_are_the_callers_not_the_callees():
    ev = score_window(_shop(240.0, gap_to_ads=240.0).build())
    assert all(ev.edges[("frontend", c)].series.gap_anomalous for c in ("cart", "ads"))
    assert not ev.entities["cart"].self_anomalous and not ev.entities["ads"].self_anomalous


def test_no_gap_change_no_link_evidence():
    ev = score_window(_shop(1.2).build())
    assert not any(e.series.gap_anomalous for e in ev.edges.values())


def test_deployment_after_onset_is_not_evidence_for_the_decoy():
    PROP = BASE.with_(error_rate=0.4, exclusive_rate=0.0)
    ORIGIN = BASE.with_(error_rate=0.4)

    def window(decoy_minutes_before: float):
        wb = WindowBuilder()
        wb.serve("frontend", BASE, PROP, onset_minute=1).call("user", "frontend", BASE)
        wb.serve("payments", BASE, ORIGIN, onset_minute=1)
        wb.call("frontend", "payments", BASE, ORIGIN, onset_minute=1)
        wb.serve("search", BASE).call("frontend", "search", BASE)
        wb.deploy("search", "3.1.0", decoy_minutes_before)
        return wb.build()

    ranker = RootCauseRanker()
    before = ranker.rank(window(2.0)).all_posteriors["search"]  # 3 minutes before onset
    after = ranker.rank(window(-12.0))  # 12 minutes into the window: 11 after onset
    assert after.all_posteriors["search"] < before
    assert after.causes[0].entity == "payments"
    ev = score_window(window(-12.0))
    assert ev.entities["search"].deployments == ()
    assert len(score_window(window(2.0)).entities["search"].deployments) == 1


def test_paired_calls_carry_the_gap_into_the_edge_bucket_and_it_round_trips():
    a, b = Entity("a", "a", EntityKind.SERVICE), Entity("b", "b", EntityKind.SERVICE)
    calls = [Call(a, b, 0, 50_000_000, False, False, b"x", 20_000_000),  # 50 ms client, 20 server
             Call(a, b, 1, 10_000_000, False, False, b"y")]  # unpaired: no server half
    d = aggregate("t", [], calls, bucket_seconds=60)
    bucket = d.edge_buckets[("a", "b", 0)]
    assert (bucket.requests, bucket.paired, bucket.gap_ms_sum) == (2, 1, pytest.approx(30.0))
    merged = StatsBucket()
    merged.add(bucket)
    assert (merged.paired, merged.gap_ms_sum) == (1, pytest.approx(30.0))
    wb = _shop(240.0)
    w = wb.build()
    import orjson
    back = decode_window(orjson.loads(window_json({"w": w}))["w"])
    assert back.edges == w.edges
    old = orjson.loads(window_json({"w": w}))["w"]
    for e in old["edges"]:
        e[3] = [r[:7] for r in e[3]]  # a record written before the gap fields existed
    assert all(r.paired == 0 for e in decode_window(old).edges for r in e.buckets)


def test_bucket_exceedance_is_a_binomial_tail_of_one_in_b_plus_one():
    from rootgraph.inference.evidence import _buckets_exceed
    cfg = EvidenceConfig()
    base = [1.0, 2.0, 3.0, 2.0, 1.5, 2.5, 1.0, 2.0, 3.0]  # B = 9: chance 1/10 per bucket
    # 4 of 6 above 3.0: P(X >= 4), X ~ Bin(6, 0.1) = 15e-4*0.81 + 6e-5*0.9 + 1e-6 = 1.27e-3
    assert not _buckets_exceed([4, 4, 4, 4, 1, 1], base, cfg)
    # 5 of 6: 6e-5*0.9 + 1e-6 = 5.5e-5 < 1e-3
    assert _buckets_exceed([4, 4, 4, 4, 4, 1], base, cfg)
    assert not _buckets_exceed([100, 1, 1, 1, 1, 1], base, cfg)  # one outlier is one bucket


def test_one_slow_call_in_a_quiet_window_is_not_a_link_fault():
    wb = _shop(1.2)
    out = []
    for e in wb.edges:
        if (e.caller, e.callee) == ("frontend", "cart"):
            rows = list(e.buckets)
            i = next(k for k, r in enumerate(rows) if r.start_s >= wb.incident_start)
            rows[i] = dataclasses.replace(rows[i], gap_ms_sum=rows[i].gap_ms_sum + 50_000.0)
            e = EdgeInfo(e.caller, e.callee, e.is_async, tuple(rows))
        out.append(e)
    wb.edges = out
    assert not score_window(wb.build()).edges[("frontend", "cart")].series.gap_anomalous


def _hl_shift_by_correlate(x: np.ndarray, y: np.ndarray) -> float:
    """The one-pair Hodges-Lehmann shift, as ``rank_test`` computes it (scalar steps)."""
    from rootgraph.inference.evidence import _hl_shift

    return _hl_shift(x, y)


def test_hl_shifts_of_many_pairs_are_bit_identical_to_one_pair_at_a_time():
    from rootgraph.inference.evidence import hl_shifts

    rng = np.random.default_rng(3)
    xs = rng.integers(0, 6, size=(60, 40)) * (rng.random((60, 40)) < 0.3)
    ys = rng.integers(0, 400, size=(60, 40)) * (rng.random((60, 40)) < 0.5)
    xs[0], ys[0] = _hist(b7=5), _hist(b7=90)  # every request in one bin: shift 0, variance 0
    xs[1], ys[1] = _hist(b39=1), _hist(b0=10**6)  # the extremes, large counts
    xs[2:, 20] += 1  # requests on both sides in every row
    ys[2:, 3] += 1
    xs, ys = xs.astype(float), ys.astype(float)
    got = hl_shifts(xs, ys)
    want = [_hl_shift_by_correlate(x, y) for x, y in zip(xs, ys)]
    assert got.tolist() == want  # exact, not approximate
    assert [float(hl_shifts(x[None, :], y[None, :])[0]) for x, y in zip(xs, ys)] == want  # one pair
    assert got[0] == 0.0 and rank_test(xs[0], ys[0]) == (1.0, 0.0)
    assert len(set(want)) > 30  # the pairs are not all alike
    assert hl_shifts(np.zeros((0, 40)), np.zeros((0, 40))).shape == (0,)  # no bucket left to test


def _active_fleet(n_services: int, seed: int) -> "WindowData":
    """A generated fleet where every service and edge is active every minute with random
    errors and a random latency bin (``bench/graph_growth.py``'s worst case, built in
    memory): every series is tested, and the random noise makes ~15 % of them anomalous."""
    import random

    from rootgraph.graph.records import HISTOGRAM_BUCKETS, Window, WindowData
    from rootgraph.simulate.topologies import generate

    rng = random.Random(seed)
    topo = generate(n_services, seed=seed)
    entities = {"user": Entity("user", "user", EntityKind.USER)}
    edges: set[tuple[str, str]] = {("user", e.service) for e in topo.entries}
    for sid, svc in topo.services.items():
        entities[sid] = Entity(sid, svc.name, EntityKind.SERVICE, svc.namespace)
        for op in svc.operations:
            for call in op.calls:
                if call.target in topo.backends:
                    entities.setdefault(call.target, Entity(call.target, call.target, EntityKind.DATABASE))
                edges.add((sid, call.target))
    end = 1_800_000_000

    def rows(top: int) -> tuple[BucketRow, ...]:
        out = []
        for m in range(45):
            n = rng.randrange(1, top)
            hist = [0] * HISTOGRAM_BUCKETS
            hist[rng.randrange(HISTOGRAM_BUCKETS)] = n
            out.append(BucketRow(end - 2700 + 60 * m, n, rng.randrange(3), n * rng.uniform(2, 50), 0.0, 0,
                                 tuple(hist)))
        return tuple(out)

    served = {b for _, b in edges}
    return WindowData(Window(end - 900, end), Window(end - 2700, end - 900), 60, entities,
                      {e: rows(200) for e in sorted(served) if entities[e].kind is EntityKind.SERVICE},
                      tuple(EdgeInfo(a, b, False, rows(100)) for a, b in sorted(edges)), {}, ())


def test_fleet_ranking_with_vectorised_shifts_equals_the_one_pair_at_a_time_reference(monkeypatch):
    """Issue 16: ``_shift_test`` computes its leave-one-out shifts in one ``hl_shifts``
    call; with the per-pair reference put back, the evidence and the ranking of an
    all-anomalous fleet window are exactly the same."""
    import rootgraph.inference.evidence as evidence

    data = _active_fleet(120, seed=5)
    fast_ev = score_window(data)
    fast = RootCauseRanker().rank(data, (), 5)
    calls = {"pairs": 0}
    fast_hl = evidence.hl_shifts

    def reference(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        if len(xs) == 1:  # rank_test's own pair, not the leave-one-out rows
            return fast_hl(xs, ys)
        calls["pairs"] += len(xs)
        return np.array([_hl_shift_by_correlate(x, y) for x, y in zip(xs, ys)])

    monkeypatch.setattr(evidence, "hl_shifts", reference)
    assert score_window(data) == fast_ev
    slow = RootCauseRanker().rank(data, (), 5)
    assert calls["pairs"] > 1000  # the leave-one-out branch ran, over many series
    assert sum(e.anomalous for e in fast_ev.entities.values()) >= 10  # ~15 % of the fleet
    assert [c.entity for c in slow.causes] == [c.entity for c in fast.causes]
    assert slow.all_posteriors == fast.all_posteriors
    assert slow == fast
