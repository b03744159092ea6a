"""The detector's pure decisions (inference/detector.py) on the in-memory graph fake."""

from __future__ import annotations

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
