"""Ground truth measured from the simulation itself, not derived from a formula.

The engine tags every span with what the fault did to it: whether its error is
*caused* by a fault (the fault's own failure, or a failure that travelled up from a
fault through callers without a fallback), and how many milliseconds of its duration
are the fault's (added self time, slower callees, a retry forced by a fault). That is a
per-span counterfactual, so background noise never enters the truth and a callee error
swallowed by a fallback leaves the caller out.

An entity is in the blast radius when, over the incident window (from the first onset),
the fault caused at least ``min_error_share`` of its spans to fail (and at least
``MIN_FAULT_ERRORS`` spans, so a handful of requests is not "anomalous"), or added at least
``min_latency_ratio`` × its baseline mean duration to its mean duration. Both
thresholds are recorded in the labels.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EntityImpact", "TruthRecorder"]

# Row layout (lists for speed; one row per entity and phase).
_REQ, _ERR, _FERR, _DUR, _FDELAY = range(5)
MIN_FAULT_ERRORS = 5


@dataclass(frozen=True, slots=True)
class EntityImpact:
    """What the fault did to one entity over the incident window."""

    entity: str
    baseline_requests: int
    baseline_error_rate: float
    baseline_mean_ms: float
    incident_requests: int
    incident_error_rate: float
    incident_mean_ms: float
    fault_errors: int
    fault_error_share: float
    fault_latency_ratio: float


class TruthRecorder:
    """Accumulates per-entity statistics, split at the incident start."""

    def __init__(self, incident_start_ns: int) -> None:
        self._split = incident_start_ns
        self._base: dict[str, list[float]] = {}
        self._inc: dict[str, list[float]] = {}

    def record(self, entity: str, start_ns: int, duration_ns: int, error: bool,
               fault_error: bool, fault_delay_ns: int) -> None:
        table = self._inc if start_ns >= self._split else self._base
        row = table.get(entity)
        if row is None:
            row = table[entity] = [0, 0, 0, 0.0, 0.0]
        row[_REQ] += 1
        row[_ERR] += error
        row[_FERR] += fault_error
        row[_DUR] += duration_ns
        if fault_delay_ns > 0:
            row[_FDELAY] += fault_delay_ns

    def impacts(self) -> list[EntityImpact]:
        """One :class:`EntityImpact` per entity seen in the incident window."""
        out = []
        for entity, inc in sorted(self._inc.items()):
            base = self._base.get(entity, [0, 0, 0, 0.0, 0.0])
            b_req, i_req = int(base[_REQ]), int(inc[_REQ])
            b_mean = base[_DUR] / b_req / 1e6 if b_req else 0.0
            i_mean = inc[_DUR] / i_req / 1e6
            ref = b_mean if b_mean > 0 else max(i_mean - inc[_FDELAY] / i_req / 1e6, 1e-3)
            out.append(EntityImpact(
                entity=entity,
                baseline_requests=b_req,
                baseline_error_rate=base[_ERR] / b_req if b_req else 0.0,
                baseline_mean_ms=round(b_mean, 3),
                incident_requests=i_req,
                incident_error_rate=inc[_ERR] / i_req,
                incident_mean_ms=round(i_mean, 3),
                fault_errors=int(inc[_FERR]),
                fault_error_share=inc[_FERR] / i_req,
                fault_latency_ratio=inc[_FDELAY] / i_req / 1e6 / ref,
            ))
        return out

    def blast_radius(self, min_error_share: float, min_latency_ratio: float) -> list[str]:
        """Entities the fault made anomalous (see the module docstring)."""
        return [
            i.entity for i in self.impacts()
            if (i.fault_error_share >= min_error_share and i.fault_errors >= MIN_FAULT_ERRORS)
            or i.fault_latency_ratio >= min_latency_ratio
        ]
