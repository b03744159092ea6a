"""Healthy variation in the simulator (issue 15's healthy day): diurnal load with bursts,
innocent rollouts, noisy services -- measured from the spans a run produces."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import replace

import pytest

from rootgraph.simulate import ScenarioError, ScenarioSpec, run
from rootgraph.simulate.ambient import Ambient, Burst, Load, Noise
from rootgraph.simulate.suite import healthy_day
from rootgraph.simulate.topologies import get

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


class _Keep(SpanExporter):
    def __init__(self) -> None:
        self.spans: list = []

    def export(self, spans):  # noqa: ANN001,ANN201
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def test_load_is_a_diurnal_cosine_between_trough_and_peak_times_the_bursts() -> None:
    load = Load(trough=0.25, peak_s=20 * 3600.0, bursts=(Burst(3600.0, 120.0, 3.0),))
    assert load.factor(20 * 3600.0) == pytest.approx(1.0)
    assert load.factor(8 * 3600.0) == pytest.approx(0.25)
    at = load.factor(3600.0 + 60)
    assert at == pytest.approx(3.0 * Load(0.25, 20 * 3600.0).factor(3600.0 + 60))
    assert load.max_factor == 3.0


def test_arrivals_follow_the_load_and_rollouts_change_versions_without_effect() -> None:
    spec = ScenarioSpec("amb", "tiny", (), seed=3, baseline_s=600.0, incident_s=600.0, rate_rps=20.0,
                        load=Load(trough=0.25, peak_s=0.0, bursts=(Burst(900.0, 120.0, 3.0),)),
                        rollouts=(("gateway", 300.0),))
    # peak_s = 0: the load at minute m is 0.25 + 0.75 (1 + cos(2 pi 60 m / 1 day)) / 2 ~ 1.0
    out = _Keep()
    labels = run(spec, out)
    t0 = spec.start_epoch_s
    roots = [s for s in out.spans if s.parent is None]
    per_min = Counter(int((s.start_time / 1e9 - t0) // 60) for s in roots)
    calm = statistics.mean(per_min[m] for m in range(0, 15))
    burst = statistics.mean(per_min[m] for m in range(15, 17))
    assert 20 * 60 * 0.85 < calm < 20 * 60 * 1.1
    assert burst > 2.5 * calm
    (dep,) = labels.deployments
    assert dep.service == "gateway" and dep.decoy and dep.at_s == t0 + 300.0
    versions = {(s.resource.attributes["service.version"], s.start_time / 1e9 >= t0 + 300.0)
                for s in roots}
    assert {v for v, after in versions if after} == {dep.version}
    assert {v for v, after in versions if not after} == {dep.previous}
    assert labels.blast_radius == ()  # no fault: nothing is in any blast radius


def test_noise_wanders_per_period_reproducibly_with_mean_one() -> None:
    a = Ambient((Noise("x", 0.5, 60.0),), seed=1)
    draws = [a.service("x", m * 60 * 10**9)[0] for m in range(4000)]
    assert statistics.mean(draws) == pytest.approx(1.0, abs=0.05)
    assert max(draws) > 2.0 > 0.5 > min(draws)
    assert a.service("x", 5) == Ambient((Noise("x", 0.5, 60.0),), seed=1).service("x", 59 * 10**9)
    assert a.service("other", 5) == (1.0, 1.0)


def test_healthy_day_spec_is_valid_and_names_what_it_varies() -> None:
    spec = healthy_day()
    topo = get(spec.topology)
    spec.validate(topo)
    assert spec.baseline_s + spec.incident_s == 24 * 3600.0
    assert len(spec.load.bursts) == 8 and len(spec.rollouts) == 8 and not spec.faults
    assert {"reportservice", "webhookservice"} <= set(topo.services)
    with pytest.raises(ScenarioError, match="rollout service"):
        replace(spec, rollouts=(("nope", 1.0),)).validate(topo)
    with pytest.raises(ScenarioError, match="noise service"):
        replace(spec, noise=(Noise("nope"),)).validate(topo)
