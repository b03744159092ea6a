"""Log and metric detectors: the window's log and metric rows vs the baseline's (issue 14).

Each detector gives a :class:`SignalVerdict` per entity -- fired or not, a strength in
[0, 1] (the network turns it into a graded false-alarm rate, as for the trace
detectors) and the items an explanation quotes. The network observes them as ``L|x``
and ``M|m`` (``inference/network.py``). An entity without rows of a kind in the incident
window gets no verdict of that kind, so a window without logs or metrics is scored
exactly as before they existed.

Logs (:func:`score_logs`), per entity with log rows in the incident window and in the
baseline (without baseline logs nothing is "new" or "risen"):

* *error-logged spans*: distinct spans of the entity that logged an ERROR/FATAL record,
  out of its requests, against the baseline's -- the binomial test of the trace error
  counts (``evidence._count_test``: smoothed baseline rate, ``alpha``, minimum absolute
  and relative effect). A span whose own service logged an error is an erroring span
  even with no status code (code faults that return a wrong value or swallow an
  exception show there, not in span status);
* *error share of records*: ERROR/FATAL records out of all records, the same test (for
  entities that log without trace ids, or have no spans);
* *new or surging templates*: one template's records out of all records, the same test
  (a template absent from the baseline has the smoothed prior rate). A new message is
  weaker evidence than an error rise (it may be a benign new code path), so its
  strength counts ``template_weight`` times.

Baseline spread for the count tests: with several baseline buckets, the counts are
tested as quasi-binomial (McCullagh & Nelder, *Generalized Linear Models*, 2nd ed.,
sec. 4.5): the baseline's Pearson dispersion ``phi`` (chi-square of its per-bucket
counts around the pooled rate, over B - 1 degrees of freedom, at least 1) divides every
count, so an entity whose error logs come in bursts in its baseline needs a window that
many times more extreme. An entity as noisy in its baseline as in the window is not
blamed.

Metrics (:func:`score_metrics`), per entity (pod, node, host or service) and canonical
metric with rows in the incident window and in the baseline:

* *levels* (``cpu_utilization``, ``cpu_seconds`` per row, throttled share of CFS
  periods, ``memory_utilization``): the window's mean of the per-row means against the
  per-row baseline values, with the robust test of the latency detectors (median/MAD,
  ``latency_z``, ``min_latency_ratio``; ``evidence._robust_test``) and beyond every
  baseline value when there are ``min_spread_buckets`` of them (``beyond_spread``): a pod
  as busy in its baseline as in the window is not saturated. Rows may be sparse (a
  per-minute scrape lands in one bucket in six at 10 s buckets): only rows are compared,
  never empty buckets. ``memory_utilization`` must also reach ``memory_near_limit``
  (memory is harmless until the limit: the OOM killer acts at it);
* *events* (``restarts``, ``oom_kills``): any in the window when the baseline had none
  (a restart is a fault symptom in itself: crash, OOM kill or failed liveness probe;
  a test against a baseline of a few minutes has no power for rare events).

Strength of a level = effect (``log2 ratio / 2``, 4x = full, as the latency tests) x
support (``B / min_spread_buckets`` baseline rows, capped at 1: one baseline minute is
weak grounds). Events: 0.5 for one, 1 for two or more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from scipy.special import betainc

from rootgraph.graph.records import MetricRow, WindowData
from rootgraph.inference.evidence import EvidenceConfig, _robust_test, beyond_spread, pct
from rootgraph.inference.results import EvidenceItem

#: level metrics and how an explanation names them
_LEVELS = {"cpu_utilization": "CPU", "cpu_seconds": "CPU time", "memory_utilization": "memory"}
_EVENTS = {"restarts": "container restarts", "oom_kills": "OOM kills"}
#: signals a service's own log and metric items use (``explain.observed_fault`` reads them)
LOG_SIGNALS = ("log_error_rate", "log_error_spans", "log_template")


@dataclass(frozen=True, slots=True)
class SignalVerdict:
    """One detector's verdict on one entity (logs or metrics)."""

    entity: str
    fired: bool
    strength: float
    items: tuple[EvidenceItem, ...] = ()
    onset_s: int | None = None


def _split(rows: Sequence, data: WindowData) -> tuple[list, list]:
    inc, base = data.incident, data.baseline
    b = [r for r in rows if base.start_s <= r.start_s < base.end_s]
    i = sorted((r for r in rows if inc.start_s <= r.start_s < inc.end_s), key=lambda r: r.start_s)
    return b, i


def dispersion(pairs: Sequence[tuple[float, float]]) -> float:
    """Pearson dispersion of per-bucket (k, n) counts around their pooled rate, >= 1.

    ``phi = sum((k - n p)^2 / (n p (1 - p))) / (B - 1)`` over buckets with n > 0: 1 for
    binomial noise, larger for bursty counts. Fewer than two buckets, or a pooled rate
    of 0 or 1: 1 (no spread to measure).
    """
    used = [(k, n) for k, n in pairs if n > 0]
    k0, n0 = sum(k for k, _ in used), sum(n for _, n in used)
    if len(used) < 2 or n0 <= 0 or k0 <= 0 or k0 >= n0:
        return 1.0
    p = k0 / n0
    chi2 = sum((k - n * p) ** 2 / (n * p * (1.0 - p)) for k, n in used)
    return max(1.0, chi2 / (len(used) - 1))


def count_test(k: float, n: float, k0: float, n0: float, phi: float, cfg: EvidenceConfig) -> tuple[bool, float, float]:
    """(fired, strength, smoothed baseline rate) of k of n against k0 of n0, quasi-binomial.

    ``evidence._count_test``'s rule (smoothed rate, ``alpha``, ``min_error_delta``,
    ``min_error_ratio``, strength = significance x excess / ``full_strength_excess``) on
    counts divided by ``phi`` (:func:`dispersion`); the tail is the regularized incomplete
    beta, which is the binomial tail at integer counts and continuous between them.
    """
    p0 = (k0 + cfg.prior_weight * cfg.prior_error_rate) / (n0 + cfg.prior_weight)
    n = max(n, k)
    if n <= 0 or k <= 0:
        return False, 0.0, p0
    ke, ne = k / phi, n / phi
    pval = float(betainc(ke, ne - ke + 1.0, p0)) if ke >= 1.0 else 1.0
    rate = k / n
    ok = pval < cfg.alpha and rate - p0 >= cfg.min_error_delta and rate >= cfg.min_error_ratio * p0
    sig = 1.0 if pval <= 0 else min(1.0, -math.log10(pval) / 6.0)
    excess = (k - n * p0) / phi
    strength = sig * min(1.0, max(excess, 0.0) / cfg.full_strength_excess)
    return ok, (strength if ok else 0.0), p0


def _clip(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def score_logs(data: WindowData, cfg: EvidenceConfig) -> dict[str, SignalVerdict]:
    """Log verdict per entity with log rows in the incident window (module doc)."""
    out: dict[str, SignalVerdict] = {}
    for eid, rows in data.log_buckets.items():
        b, i = _split(rows, data)
        if not i or not b:
            # No logs in the baseline (collection began, or was off then): every template
            # would be "new" and no error share is known to compare with -- no verdict.
            continue
        items: list[EvidenceItem] = []
        best = 0.0
        fired = False
        # error-logged spans, out of the entity's requests
        svc = data.service_buckets.get(eid)
        if svc:
            sb, si = _split(svc, data)
            req_b = {r.start_s: r.requests for r in sb}
            req_i = sum(r.requests for r in si)
            k, k0 = sum(r.error_spans for r in i), sum(r.error_spans for r in b)
            n0 = sum(req_b.values())
            phi = dispersion([(r.error_spans, max(req_b.get(r.start_s, 0), r.error_spans)) for r in b])
            ok, s, p0 = count_test(k, req_i, k0, n0, phi, cfg)
            if ok:
                fired, best = True, max(best, s)
                n = max(req_i, k)
                items.append(EvidenceItem(eid, "log_error_spans", k / n, p0, s,
                                          f"{k} of {n} requests logged an ERROR ({pct(k / n)}) vs "
                                          f"{k0} of {n0} in baseline"))
        # ERROR/FATAL share of records
        k, n = sum(r.error_records for r in i), sum(r.records for r in i)
        k0, n0 = sum(r.error_records for r in b), sum(r.records for r in b)
        phi = dispersion([(r.error_records, r.records) for r in b])
        ok, s, p0 = count_test(k, n, k0, n0, phi, cfg)
        if ok:
            fired, best = True, max(best, s)
            items.append(EvidenceItem(eid, "log_error_rate", k / n, p0, s,
                                      f"{k} ERROR logs ({pct(k / n)} of {n} records) vs {k0} of {n0} "
                                      f"in baseline"))
        # new or surging templates
        texts = data.log_templates.get(eid, {})
        cnt_i: dict[str, int] = {}
        for r in i:
            for tid, c in r.templates:
                cnt_i[tid] = cnt_i.get(tid, 0) + c
        cnt_b: dict[str, int] = {}
        for r in b:
            for tid, c in r.templates:
                cnt_b[tid] = cnt_b.get(tid, 0) + c
        for tid, c in sorted(cnt_i.items(), key=lambda kv: -kv[1]):
            c0 = cnt_b.get(tid, 0)
            phi = dispersion([(dict(r.templates).get(tid, 0), r.records) for r in b])
            ok, s, p0 = count_test(c, n, c0, n0, phi, cfg)
            if not ok:
                continue
            s *= cfg.template_weight
            fired, best = True, max(best, s)
            what = "new" if c0 == 0 else "surging"
            items.append(EvidenceItem(eid, "log_template", c / n, p0, s,
                                      f"{what} log message \"{_clip(texts.get(tid, tid))}\": {c} records "
                                      f"vs {c0} in baseline"))
        onset = next((r.start_s for r in i if r.error_records > 0 or r.error_spans > 0), None) if fired else None
        out[eid] = SignalVerdict(eid, fired, best if fired else 0.0,
                                 tuple(sorted(items, key=lambda x: -x.score)[:4]), onset)
    return out


def _level_values(rows: Sequence[MetricRow]) -> list[float]:
    return [r.sum / r.count for r in rows if r.count > 0]


def _throttled(metrics: dict[str, tuple[MetricRow, ...]], data: WindowData) -> tuple[list[float], list[float]]:
    """Per-row throttled share of CFS periods (rows matched by bucket), baseline and window."""
    per = {r.start_s: r.sum for r in metrics.get("cpu_periods", ()) if r.sum > 0}
    thr = [MetricRow(r.start_s, r.sum / per[r.start_s], 1, 0.0, 0.0)
           for r in metrics.get("cpu_throttled_periods", ()) if r.start_s in per]
    b, i = _split(thr, data)
    return _level_values(b), _level_values(i)


def _fmt(metric: str, x: float) -> str:
    if metric in ("cpu_utilization", "memory_utilization", "cpu_throttled"):
        return f"{100.0 * x:.3g} %"
    return f"{x:.3g}"


def _level_test(x: float, base: list[float], cfg: EvidenceConfig) -> tuple[bool, float, float]:
    ok, _, m = _robust_test(x, base, cfg.full_strength_requests, cfg)
    if not ok or not beyond_spread(x, base, True, cfg):
        return False, 0.0, m
    ratio = x / m if m > 0 else math.inf
    effect = min(1.0, math.log2(max(ratio, 1.0)) / 2.0)
    support = min(1.0, len(base) / cfg.min_spread_buckets)
    return True, effect * support, m


def score_metrics(data: WindowData, cfg: EvidenceConfig) -> dict[str, SignalVerdict]:
    """Metric verdict per entity with metric rows in the incident window (module doc)."""
    out: dict[str, SignalVerdict] = {}
    for eid, metrics in data.metric_buckets.items():
        items: list[EvidenceItem] = []
        tested = False
        series: list[tuple[str, list[float], list[float]]] = []
        for metric in _LEVELS:
            b, i = _split(metrics.get(metric, ()), data)
            series.append((metric, _level_values(b), _level_values(i)))
        series.append(("cpu_throttled", *_throttled(metrics, data)))
        for metric, base, win in series:
            if not win or not base:
                continue
            tested = True
            x = sum(win) / len(win)
            if metric == "memory_utilization" and x < cfg.memory_near_limit:
                continue
            ok, s, m = _level_test(x, base, cfg)
            if ok:
                name = _LEVELS.get(metric, "CPU throttled")
                ratio = f"{x / m:.1f}x, " if m > 0 else ""
                items.append(EvidenceItem(eid, metric, x, m, s,
                                          f"{name} {_fmt(metric, x)} vs {_fmt(metric, m)} baseline "
                                          f"({ratio}{len(win)} vs {len(base)} samples)"))
        for metric, name in _EVENTS.items():
            b, i = _split(metrics.get(metric, ()), data)
            if not i:
                continue
            tested = True
            k, k0 = sum(r.sum for r in i), sum(r.sum for r in b)
            if k >= 1 and k0 == 0:
                s = 1.0 if k >= 2 else 0.5
                items.append(EvidenceItem(eid, metric, k, k0, s, f"{k:.0f} {name} in the window, none in baseline"))
        if not tested:
            continue
        onset = None
        if items:
            starts = [r.start_s for mname in (*_LEVELS, *_EVENTS) for r in _split(metrics.get(mname, ()), data)[1]]
            onset = min(starts) if starts else None
        out[eid] = SignalVerdict(eid, bool(items), max((x.score for x in items), default=0.0),
                                 tuple(sorted(items, key=lambda x: -x.score)), onset)
    return out
