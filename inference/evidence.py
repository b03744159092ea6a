"""Anomaly scoring: incident window vs baseline window, per entity and per edge.

The model (``inference/model.py``) observes booleans; this module decides them with
tests that stay honest at low traffic, and grades each decision with a *strength* in
[0, 1] that the model turns into a detector false-alarm rate (issue 4: "2 errors in 3
requests is not the same evidence as 200 in 300"):

* error rates (all and exclusive): one-sided binomial tail of the incident count
  against a baseline rate smoothed towards ``prior_error_rate`` (so an empty or
  error-free baseline is never a rate of 0), plus a minimum absolute and relative
  effect; strength = significance x support (excess errors / ``full_strength_excess``);
* latency p95/p99 read back from the histogram, self time per request: median/MAD over
  the per-bucket baseline values, with a minimum ratio;
* traffic drop: Poisson lower tail of the incident count against the baseline rate;
* onset: the first incident bucket in which a detector fires on its own.

Virtual nodes (databases, queues, externals) have no server side: their evidence is
what their callers measure on the edges. Infrastructure entities have no statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
from scipy.special import bdtrc, pdtr

from rootgraph.graph.model import (
    BucketRow,
    Deployment,
    EntityKind,
    WindowData,
)
from rootgraph.inference.errors import UnknownEntity
from rootgraph.inference.results import EvidenceItem
from rootgraph.inference.topology import entry_callers

VIRTUAL_KINDS = frozenset({EntityKind.DATABASE, EntityKind.MESSAGING, EntityKind.EXTERNAL})
INFRA_KINDS = frozenset({EntityKind.HOST, EntityKind.NODE, EntityKind.POD})


@dataclass(frozen=True, slots=True)
class EvidenceConfig:
    """Detector thresholds, all defaults in one place (STYLE.md #3)."""

    alpha: float = 1e-3
    min_error_delta: float = 0.05
    min_error_ratio: float = 2.0
    prior_error_rate: float = 0.005
    prior_weight: float = 20.0
    full_strength_excess: float = 10.0
    min_latency_ratio: float = 1.5
    latency_z: float = 4.0
    min_latency_requests: int = 3
    full_strength_requests: int = 30
    traffic_drop_ratio: float = 0.5
    onset_alpha: float = 0.01
    deploy_lookback_s: int = 900


@dataclass(frozen=True, slots=True)
class SeriesEvidence:
    """Verdict on one statistics series (an entity as server, or one edge)."""

    anomalous: bool = False
    strength: float = 0.0
    error_anomalous: bool = False
    latency_anomalous: bool = False
    self_anomalous: bool = False
    self_strength: float = 0.0
    traffic_drop: bool = False
    onset_s: int | None = None
    requests_baseline: int = 0
    requests_incident: int = 0
    excess_errors: float = 0.0
    items: tuple[EvidenceItem, ...] = ()


@dataclass(frozen=True, slots=True)
class EdgeEvidence:
    """Client-side view of one call edge, with what the model needs for its link.

    ``share`` is the fraction of the caller's requests that call the callee (capped at
    1); ``co_failure`` in [0, 1] is how much of the edge's anomaly surfaced at the
    caller in the incident window (``None`` when the edge is healthy).
    """

    caller: str
    callee: str
    is_async: bool
    share: float
    co_failure: float | None
    series: SeriesEvidence


@dataclass(frozen=True, slots=True)
class EntityEvidence:
    """What the detectors say about one entity; the model observes the booleans."""

    entity: str
    kind: EntityKind
    instrumented: bool
    anomalous: bool
    strength: float
    self_anomalous: bool
    self_strength: float
    forced: bool
    onset_s: int | None
    items: tuple[EvidenceItem, ...]
    deployments: tuple[Deployment, ...]
    saturation: bool = False


@dataclass(frozen=True, slots=True)
class WindowEvidence:
    """Evidence for a whole window: per entity, per edge, and the symptoms."""

    window: WindowData
    entities: dict[str, EntityEvidence]
    edges: dict[tuple[str, str], EdgeEvidence]
    symptoms: tuple[str, ...]
    onset_s: int | None
    config: EvidenceConfig = field(default_factory=EvidenceConfig)


def pct(x: float) -> str:
    """Percent with as many digits as a human needs: 41%, 2.5%, 0.2%, 0.03%."""
    v = 100.0 * x
    if v >= 10 or v == 0:
        return f"{v:.0f}%"
    if v >= 1:
        return f"{v:.1f}%"
    return f"{v:.1g}%"


def _ms(x: float) -> str:
    return f"{x:.0f} ms" if x >= 10 else f"{x:.1f} ms"


def _quantiles(hist: np.ndarray, q: float) -> np.ndarray:
    """Per-row quantile of histogram rows, read as the bucket upper bound."""
    cum = hist.cumsum(axis=1)
    idx = (cum < (q * cum[:, -1])[:, None]).sum(axis=1)
    return 0.1 * np.power(2.0, np.minimum(idx, hist.shape[1] - 1) / 2.0)


def _count_test(k: float, n: float, k0: float, n0: float, cfg: EvidenceConfig) -> tuple[bool, float, float, float]:
    """(anomalous, strength, smoothed baseline rate, excess) of k errors in n requests."""
    p0 = (k0 + cfg.prior_weight * cfg.prior_error_rate) / (n0 + cfg.prior_weight)
    if n <= 0 or k <= 0:
        return False, 0.0, p0, 0.0
    rate = k / n
    pval = float(bdtrc(k - 1, n, p0))
    excess = k - n * p0
    ok = pval < cfg.alpha and rate - p0 >= cfg.min_error_delta and rate >= cfg.min_error_ratio * p0
    sig = 1.0 if pval <= 0 else min(1.0, -math.log10(pval) / 6.0)
    strength = sig * min(1.0, max(excess, 0.0) / cfg.full_strength_excess)
    return ok, (strength if ok else 0.0), p0, excess


def _median(xs: list[float]) -> float:
    """Median of a short list (pure Python: numpy's per-call overhead dominates here)."""
    ys = sorted(xs)
    k = len(ys)
    return ys[k // 2] if k % 2 else 0.5 * (ys[k // 2 - 1] + ys[k // 2])


def _robust_test(x: float, base: list[float], n: int, cfg: EvidenceConfig,
                 center: float | None = None) -> tuple[bool, float, float]:
    """(anomalous, strength, baseline) of value x against per-bucket baseline values.

    ``center`` overrides the median as the baseline value (quantiles use the pooled
    baseline histogram: per-bucket tail quantiles of a few requests are biased low).
    """
    if not base:
        return False, 0.0, 0.0
    m = _median(base) if center is None else center
    if n < cfg.min_latency_requests or (m > 0 and x < cfg.min_latency_ratio * m):
        return False, 0.0, m  # cheap exit before the MAD: the ratio test fails anyway
    med = m if center is None else _median(base)
    mad = _median([abs(b - med) for b in base])
    scale = max(1.4826 * mad, 0.1 * m, 1e-6)
    ratio = x / m if m > 0 else math.inf
    ok = ratio >= cfg.min_latency_ratio and (x - m) / scale >= cfg.latency_z
    strength = min(1.0, math.log2(max(ratio, 1.0)) / 2.0) * min(1.0, n / cfg.full_strength_requests)
    return ok, (strength if ok else 0.0), m


class _Rows:
    """One series split into baseline and incident arrays (columns of BucketRow)."""

    def __init__(self, rows: Sequence[BucketRow], data: WindowData) -> None:
        inc, base = data.incident, data.baseline
        b = [r for r in rows if base.start_s <= r.start_s < base.end_s]
        i = sorted((r for r in rows if inc.start_s <= r.start_s < inc.end_s), key=lambda r: r.start_s)
        self.b, self.i = b, i
        self.nb = sum(r.requests for r in b)
        self.eb = sum(r.errors for r in b)
        self.xb = sum(r.exclusive_errors for r in b)
        self.ni = sum(r.requests for r in i)
        self.ei = sum(r.errors for r in i)
        self.xi = sum(r.exclusive_errors for r in i)
        self.selfi = sum(r.self_ms_sum for r in i)
        self.n_base_buckets = max(1, (base.end_s - base.start_s) // data.bucket_seconds)
        self.n_inc_buckets = max(1, (inc.end_s - inc.start_s) // data.bucket_seconds)


def _score_series(rows: _Rows, cfg: EvidenceConfig, entity: str, server: bool, where: str) -> SeriesEvidence:
    items: list[EvidenceItem] = []
    ni, ei, xi = rows.ni, rows.ei, rows.xi
    err_ok, err_s, p0, excess = _count_test(ei, ni, rows.eb, rows.nb, cfg)
    if not err_ok:
        # A burst late in the window is diluted by the healthy minutes before it: test
        # again from the first bucket that is anomalous on its own.
        start = _first_error_bucket(rows, cfg, p0)
        if start is not None:
            tail_rows = [r for r in rows.i if r.start_s >= start]
            ni = sum(r.requests for r in tail_rows)
            ei = sum(r.errors for r in tail_rows)
            xi = sum(r.exclusive_errors for r in tail_rows)
            err_ok, err_s, p0, excess = _count_test(ei, ni, rows.eb, rows.nb, cfg)
            if not err_ok:
                ni, ei, xi = rows.ni, rows.ei, rows.xi
    x_ok, x_s, px0, _ = _count_test(xi, ni, rows.xb, rows.nb, cfg) if server else (False, 0.0, 0.0, 0.0)
    if err_ok:
        tail = ", exclusive" if x_ok else ""
        items.append(EvidenceItem(entity, f"{where}error_rate", ei / ni, p0, err_s,
                                  f"{where}error rate {pct(ei / ni)} vs {pct(p0)} baseline "
                                  f"({ei}/{ni} requests){tail}"))
    if x_ok:
        items.append(EvidenceItem(entity, "exclusive_errors", xi / ni, px0, x_s,
                                  f"exclusive errors {pct(xi / ni)} vs {pct(px0)} baseline"))
    lat_ok, lat_s = False, 0.0
    hb = np.array([r.histogram for r in rows.b if r.requests > 0], dtype=float).reshape(-1, 40)
    if rows.i and rows.ni > 0:
        hi = np.sum([r.histogram for r in rows.i], axis=0, dtype=float).reshape(1, -1)
        pooled = hb.sum(axis=0, keepdims=True)
        for q, label in ((0.95, "p95"), (0.99, "p99")):
            if rows.ni < 2.0 / (1.0 - q) or not hb.size:
                continue  # too few requests to read this tail
            x = float(_quantiles(hi, q)[0])
            center = float(_quantiles(pooled, q)[0])
            if x < cfg.min_latency_ratio * center:
                continue
            ok, s, m = _robust_test(x, _quantiles(hb, q).tolist(), rows.ni, cfg, center)
            if ok:
                lat_ok, lat_s = True, max(lat_s, s)
                items.append(EvidenceItem(entity, f"{where}latency_{label}", x, m, s,
                                          f"{where}{label} latency {_ms(x)} vs {_ms(m)} baseline"))
    self_ok, self_s = False, 0.0
    if server and rows.ni > 0:
        per_b = [r.self_ms_sum / r.requests for r in rows.b if r.requests > 0]
        x = rows.selfi / rows.ni
        self_ok, self_s, m = _robust_test(x, per_b, rows.ni, cfg)
        if self_ok:
            items.append(EvidenceItem(entity, "self_time", x, m, self_s,
                                      f"self time {_ms(x)}/request vs {_ms(m)} baseline ({x / m:.1f}x)"
                                      if m > 0 else f"self time {_ms(x)}/request, none in baseline"))
    mu = rows.nb / rows.n_base_buckets * rows.n_inc_buckets
    drop = bool(mu > 0 and pdtr(rows.ni, mu) < cfg.alpha and rows.ni <= cfg.traffic_drop_ratio * mu)
    if drop:
        items.append(EvidenceItem(entity, f"{where}traffic", rows.ni, mu, min(1.0, 1 - rows.ni / mu),
                                  f"{where}traffic {rows.ni} requests vs {mu:.0f} expected"))
    anomalous = err_ok or lat_ok
    onset = _onset(rows, cfg, p0, hb, err_ok or x_ok, lat_ok) if (anomalous or self_ok or x_ok) else None
    return SeriesEvidence(
        anomalous=anomalous, strength=max(err_s, lat_s), error_anomalous=err_ok,
        latency_anomalous=lat_ok, self_anomalous=self_ok or x_ok, self_strength=max(self_s, x_s),
        traffic_drop=drop, onset_s=onset, requests_baseline=rows.nb, requests_incident=rows.ni,
        excess_errors=excess, items=tuple(items))


def _first_error_bucket(rows: _Rows, cfg: EvidenceConfig, p0: float) -> int | None:
    for r in rows.i:
        if r.errors > 0 and r.requests > 0 and bdtrc(r.errors - 1, r.requests, p0) < cfg.onset_alpha \
                and r.errors / r.requests - p0 >= cfg.min_error_delta:
            return r.start_s
    return None


def _onset(rows: _Rows, cfg: EvidenceConfig, p0: float, hb: np.ndarray, errors: bool, latency: bool) -> int | None:
    """First incident bucket where a detector that fired overall fires on its own.

    A bucket's p95 must beat both ``min_latency_ratio`` x the pooled baseline p95 and
    every per-bucket baseline p95, so ordinary minute-to-minute noise is not an onset.
    """
    p95_limit = math.inf
    if latency and hb.size:
        per_bucket = _quantiles(hb, 0.95)
        pooled = float(_quantiles(hb.sum(axis=0, keepdims=True), 0.95)[0])
        p95_limit = max(cfg.min_latency_ratio * pooled, 1.01 * float(per_bucket.max()))
    first_err = _first_error_bucket(rows, cfg, p0) if errors else None
    for r in rows.i:
        if first_err is not None and r.start_s >= first_err:
            return first_err
        if r.requests > 0 and float(_quantiles(np.array([r.histogram], dtype=float), 0.95)[0]) >= p95_limit:
            return r.start_s
    return first_err if first_err is not None else (rows.i[0].start_s if rows.i else None)


def _share(caller: SeriesEvidence | None, edge_baseline: int, edge_incident: int) -> float:
    """Share of the caller's requests that make this call (``EdgeEvidence.share``): from
    the baseline when the caller had traffic then, else from the incident; 1 when the
    caller is not instrumented."""
    if caller is None:
        return 1.0
    denom = caller.requests_baseline or caller.requests_incident
    num = edge_baseline if caller.requests_baseline else edge_incident
    return min(1.0, num / denom) if denom > 0 else 1.0


def recent_deployments(data: WindowData, entity: str, lookback_s: int) -> tuple[Deployment, ...]:
    """Deployments of ``entity`` in [incident.start - lookback, incident.end)."""
    lo = (data.incident.start_s - lookback_s) * 1000
    hi = data.incident.end_s * 1000
    return tuple(sorted((d for d in data.deployments if d.service == entity and lo <= d.at_ms < hi),
                        key=lambda d: d.at_ms))


def score_window(data: WindowData, symptoms: Iterable[str] = (),
                 config: EvidenceConfig | None = None) -> WindowEvidence:
    """Score every entity and edge of ``data``; named ``symptoms`` are forced anomalous.

    Raises :class:`UnknownEntity` for a symptom that is not in the window.
    """
    cfg = config or EvidenceConfig()
    forced = set()
    for s in symptoms:
        if s not in data.entities:
            raise UnknownEntity(s, "symptoms")
        forced.add(s)
    server = {e: _score_series(_Rows(rows, data), cfg, e, True, "")
              for e, rows in data.service_buckets.items() if e in data.entities}
    edges: dict[tuple[str, str], EdgeEvidence] = {}
    incoming: dict[str, list[EdgeEvidence]] = {}
    for info in data.edges:
        rows = _Rows(info.buckets, data)
        ser = _score_series(rows, cfg, info.callee, False, f"{info.caller}\u2192{info.callee} ")
        caller_ev = server.get(info.caller)
        share = _share(caller_ev, rows.nb, rows.ni)
        co = None
        if ser.anomalous and caller_ev is not None:
            co = 0.0
            if ser.error_anomalous and ser.excess_errors > 0:
                co = min(1.0, max(caller_ev.excess_errors, 0.0) / ser.excess_errors) if caller_ev.error_anomalous else 0.0
            if ser.latency_anomalous and caller_ev.latency_anomalous:
                co = 1.0
        ev = EdgeEvidence(info.caller, info.callee, info.is_async, share, co, ser)
        edges[(info.caller, info.callee)] = ev
        incoming.setdefault(info.callee, []).append(ev)
    entities: dict[str, EntityEvidence] = {}
    outside = entry_callers(data.entities)  # ``user``: not scored, nor its calls as a caller's view
    for eid, ent in data.entities.items():
        if eid in outside:
            continue
        deps = recent_deployments(data, eid, cfg.deploy_lookback_s)
        ins = [e for e in incoming.get(eid, ()) if e.caller not in outside]
        ser = server.get(eid)
        if ser is not None:
            # A traffic drop counts only when callers also see the entity failing;
            # otherwise it is an upstream effect, not this entity's anomaly.
            drop_seen = ser.traffic_drop and any(e.series.anomalous for e in ins)
            anomalous = ser.anomalous or drop_seen
            strength = max(ser.strength, 1.0 if drop_seen else 0.0)
            items = ser.items
            self_ok, self_s, onset = ser.self_anomalous, ser.self_strength, ser.onset_s
            saturation = (ser.latency_anomalous or ser.self_anomalous) and not ser.error_anomalous
        else:
            bad = [e for e in ins if e.series.anomalous]
            anomalous = bool(bad)
            strength = max((e.series.strength for e in bad), default=0.0)
            items = tuple(i for e in bad for i in e.series.items)
            self_ok, self_s, saturation = False, 0.0, False
            onset = min((e.series.onset_s for e in bad if e.series.onset_s is not None), default=None)
        is_forced = eid in forced
        entities[eid] = EntityEvidence(
            entity=eid, kind=ent.kind, instrumented=ser is not None, anomalous=anomalous or is_forced,
            strength=1.0 if is_forced else strength, self_anomalous=self_ok, self_strength=self_s,
            forced=is_forced, onset_s=onset, items=items, deployments=deps, saturation=saturation)
    syms = [e.entity for e in entities.values() if e.anomalous and e.kind not in INFRA_KINDS]
    syms.sort(key=lambda s: (entities[s].onset_s if entities[s].onset_s is not None else math.inf, s))
    onset = min((entities[s].onset_s for s in syms if entities[s].onset_s is not None), default=None)
    return WindowEvidence(data, entities, edges, tuple(syms), onset, cfg)
