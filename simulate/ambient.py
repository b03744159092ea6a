"""Healthy variation: load over the day, bursts of load, naturally noisy services (issue 15).

None of this is a fault: the truth recorder never counts it as fault-caused, and a
detector that opens an incident because of it has raised a false alarm. It exists so the
simulator can produce a *healthy day* (``suite.healthy_day``) as well as incidents:

* :class:`Load` -- the user arrival rate as a function of time: a diurnal sinusoid
  between ``trough`` x peak and the peak (``ScenarioSpec.rate_rps``), times the factor
  of any :class:`Burst` covering the moment. Arrivals stay Poisson (thinning, Lewis &
  Shedler 1979: candidates at the maximum rate, each kept with probability
  rate(t) / max rate);
* :class:`Noise` -- a service whose exclusive error probability and self time wander
  from minute to minute: each ``period_s`` the operation's ``error_rate`` and self time
  are multiplied by independent mean-one lognormal factors of log-spread ``wander``
  (for latency, half of it). That is extra-binomial variation between buckets, which
  real noisy services show and a binomial test alone mistakes for anomalies.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["Ambient", "Burst", "Load", "Noise"]

_DAY_S = 86400.0
_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Burst:
    """``factor`` x the load for ``duration_s`` from ``at_s`` (seconds from the data start)."""

    at_s: float
    duration_s: float
    factor: float


@dataclass(frozen=True, slots=True)
class Load:
    """Diurnal load: ``trough`` x peak at ``peak_s - 12 h``, the peak at ``peak_s``
    (seconds from the data start, modulo a day), cosine in between; times bursts."""

    trough: float = 0.25
    peak_s: float = 20 * 3600.0
    bursts: tuple[Burst, ...] = ()

    def validate(self, name: str) -> None:
        if not 0 < self.trough <= 1:
            raise ValueError(f"{name}: load.trough must be in (0, 1], got {self.trough}")
        for b in self.bursts:
            if b.duration_s <= 0 or b.factor <= 0:
                raise ValueError(f"{name}: load.bursts: duration_s and factor must be > 0")

    @property
    def max_factor(self) -> float:
        """Upper bound of :meth:`factor` (the thinning envelope)."""
        return max((b.factor for b in self.bursts), default=1.0) if self.bursts else 1.0

    def factor(self, t_s: float) -> float:
        """Load at ``t_s`` (seconds from the data start) as a fraction of the peak."""
        shape = 0.5 * (1.0 + math.cos(2.0 * math.pi * (t_s - self.peak_s) / _DAY_S))
        f = self.trough + (1.0 - self.trough) * shape
        for b in self.bursts:
            if b.at_s <= t_s < b.at_s + b.duration_s:
                f *= b.factor
        return f


@dataclass(frozen=True, slots=True)
class Noise:
    """``service``'s error rate and self time wander every ``period_s`` (module doc)."""

    service: str
    wander: float = 0.5
    period_s: float = 60.0


class Ambient:
    """Per-span multipliers of the healthy noise: ``service(sid, t_ns)`` ->
    (error-rate factor, self-time factor); (1, 1) for a service without noise."""

    def __init__(self, noise: tuple[Noise, ...], seed: int) -> None:
        self._noise = {n.service: n for n in noise}
        self._seed = seed
        self._cache: dict[tuple[str, int], tuple[float, float]] = {}

    def service(self, sid: str, t_ns: int) -> tuple[float, float]:
        n = self._noise.get(sid)
        if n is None:
            return 1.0, 1.0
        period = int(t_ns // int(n.period_s * _S))
        got = self._cache.get((sid, period))
        if got is None:
            # one seeded stream per (service, period): reproducible, order-independent
            rng = random.Random(f"{self._seed}:noise:{sid}:{period}")
            w, wl = n.wander, n.wander / 2.0
            got = (math.exp(rng.gauss(-w * w / 2.0, w)), math.exp(rng.gauss(-wl * wl / 2.0, wl)))
            if len(self._cache) > 4096:  # time only moves forward: old periods are done
                self._cache.clear()
            self._cache[(sid, period)] = got
        return got
