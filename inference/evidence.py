"""Anomaly scoring: incident window vs baseline window, per entity and per edge.

The model (``inference/network.py``) observes booleans; this module decides them with
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
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided
from scipy.special import bdtrc, ndtr, pdtr

from rootgraph.graph.records import (
    BucketRow,
    Deployment,
    EntityKind,
    WindowData,
)
from rootgraph.inference.errors import UnknownEntity
from rootgraph.inference.results import EvidenceItem
from rootgraph.inference.topology import entry_callers

if TYPE_CHECKING:
    from rootgraph.inference.signals import SignalVerdict

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
    #: baseline buckets needed before their own spread is a test (the window must lie
    #: beyond every one of them: an empirical tail of at most 1/(B+1) = 0.25 at B = 3)
    min_spread_buckets: int = 3
    #: a new or surging log template counts this much of an error rise's strength (a new
    #: message may be a benign new code path; ``inference/signals.py``)
    template_weight: float = 0.5
    #: memory_utilization (of the limit) below this is no saturation, whatever its rise:
    #: memory costs nothing until the limit, where the OOM killer acts
    memory_near_limit: float = 0.9


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
    #: edges only: the time between the instrumented ends (client minus server) rose
    gap_anomalous: bool = False
    gap_strength: float = 0.0
    gap_item: EvidenceItem | None = None
    gap_onset_s: int | None = None
    #: edges only: calls whose server half paired, in the incident window
    paired_incident: int = 0


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
    #: log / metric verdicts (``inference/signals.py``) of the entities with such rows in
    #: the incident window; empty when the window has none
    logs: dict[str, "SignalVerdict"] = field(default_factory=dict)
    metrics: dict[str, "SignalVerdict"] = field(default_factory=dict)


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


def rank_test(x: np.ndarray, y: np.ndarray, p_below: float = math.inf) -> tuple[float, float]:
    """(two-sided p, Hodges-Lehmann shift in histogram bins) of sample x vs sample y.

    The Mann-Whitney U test computed from the binned counts (every request of a bin is
    tied with the others of its bin, so the tie-corrected variance is exact for binned
    data; with continuity correction, as ``scipy.stats.mannwhitneyu(method="asymptotic")``).
    A rank test needs no minimum count and no distribution (a p95 needs 40 requests;
    a low-traffic service is tested as well as a busy one, at its own power). The shift
    is the median of all pairwise bin differences x - y (bins are sqrt(2) apart, so a
    shift of d bins is a factor 2**(d/2)), interpolated within its bin.

    ``p_below``: a caller that only wants the shift of a significant test gets a shift
    of 0 when ``p >= p_below`` (the shift costs as much as the test; issue 15's cost).
    """
    n1, n2 = float(x.sum()), float(y.sum())
    if n1 <= 0 or n2 <= 0:
        return 1.0, 0.0
    below = np.cumsum(y) - y
    u = float((x * (below + 0.5 * y)).sum())
    big_n = n1 + n2
    t = x + y
    ties = float((t ** 3 - t).sum())
    var = n1 * n2 / 12.0 * ((big_n + 1.0) - (ties / (big_n * (big_n - 1.0)) if big_n > 1 else 0.0))
    if var <= 0:
        return 1.0, 0.0
    z = (abs(u - 0.5 * n1 * n2) - 0.5) / math.sqrt(var)
    p = min(1.0, 2.0 * float(ndtr(-z))) if z > 0 else 1.0
    if p >= p_below:
        return p, 0.0
    return p, _hl_shift(x, y)


def _hl_shift(x: np.ndarray, y: np.ndarray) -> float:
    """One pair's Hodges-Lehmann shift in bins: :func:`hl_shifts` for a single row, in
    scalar steps (the batched form's array set-up cost ~10 % more on a fleet whose
    series mostly need only this one; equality pinned in tests/test_inference_stats.py)."""
    diff = np.correlate(x, y, mode="full")  # index k <-> difference k - (len(y) - 1)
    cum = np.cumsum(diff)
    half = 0.5 * cum[-1]
    k = int(np.searchsorted(cum, half))
    prev = cum[k - 1] if k > 0 else 0.0
    frac = (half - prev) / diff[k] if diff[k] > 0 else 0.5
    return float(k - (len(y) - 1) - 0.5 + frac)


def hl_shifts(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Hodges-Lehmann shift (in bins) of each row of ``xs`` against the same row of ``ys``.

    The shift half of :func:`rank_test`, for many pairs at once: ``_shift_test`` needs
    the leave-one-out shift of every baseline bucket, ~30 per series, and one
    ``rank_test`` call each was ~70 % of scoring a fleet whose every series is active
    and noisy (issue 16: 50,000 calls at 500 services). Rows need requests on both
    sides. The pairwise-difference counts are sums of products of integer counts, exact
    in float64 in any summation order (below 2**53 pairs), so every shift is
    bit-identical to the one-pair computation (``np.correlate``; pinned in
    tests/test_inference_stats.py).
    """
    b, lx = xs.shape
    ly = ys.shape[1]
    width = lx + ly - 1
    # diff[r, k] = sum_n ys[r, n] * xs[r, n + k - (ly - 1)] (np.correlate "full"): request
    # pairs of row r whose bin difference x - y is k - (ly - 1), over a zero-padded view
    if b == 1:  # rank_test's one pair: np.correlate is the same sums, with less overhead
        diff = np.correlate(xs[0], ys[0], mode="full")[None, :]
    else:
        padded = np.zeros((b, lx + 2 * (ly - 1)))
        padded[:, ly - 1:ly - 1 + lx] = xs
        s0, s1 = padded.strides
        view = as_strided(padded, (b, width, ly), (s0, s1, s1), writeable=False)
        diff = np.einsum("rkn,rn->rk", view, ys)
    cum = np.zeros((b, width + 1))  # cum[:, k + 1] = pairs with difference <= k - (ly - 1)
    np.cumsum(diff, axis=1, out=cum[:, 1:])
    half = 0.5 * cum[:, -1]
    k = (cum[:, 1:] < half[:, None]).sum(axis=1)  # = searchsorted(cum, half) per row: cum is sorted
    rows = np.arange(b)
    prev, at = cum[rows, k], diff[rows, k]
    frac = np.divide(half - prev, at, out=np.full(b, 0.5), where=at > 0)
    return k - (ly - 1) - 0.5 + frac


def beyond_spread(x: float, base: Sequence[float], up: bool, cfg: EvidenceConfig) -> bool:
    """Does ``x`` lie beyond every per-bucket baseline value (``up``: above the max)?

    Baseline variability (issue 14): a service as noisy in its baseline buckets as in the
    window is not anomalous. With B buckets, a window value beyond all of them is at
    most a 1/(B+1) event under "the window is one more baseline bucket" -- an empirical
    test that needs no model of the noise. Fewer than ``min_spread_buckets`` buckets:
    no spread to compare with, True.
    """
    if len(base) < cfg.min_spread_buckets:
        return True
    return x > max(base) if up else x < min(base)


def _buckets_exceed(window: Sequence[float], base: Sequence[float], cfg: EvidenceConfig) -> bool:
    """Do more window buckets lie above every baseline bucket than chance allows?

    If the window's buckets were more baseline buckets (exchangeable), each would lie
    above all B baseline values with probability 1/(B+1); the count of those that do
    among the window's m buckets is then Binomial(m, 1/(B+1)), tested at ``alpha``. One
    outlier moves one bucket, not the count. Fewer than ``min_spread_buckets`` baseline
    buckets: no spread to compare with, True.
    """
    if len(base) < cfg.min_spread_buckets:
        return True
    top = max(base)
    k = sum(1 for v in window if v > top)
    return k > 0 and float(bdtrc(k - 1, len(window), 1.0 / (len(base) + 1))) < cfg.alpha


def _shift_test(hi: np.ndarray, hb: "_Hists", cfg: EvidenceConfig) -> tuple[bool, float, float, float]:
    """(anomalous, strength, factor, p) of the window's duration distribution vs baseline.

    Either direction counts (a fault that answers 200x faster -- an early error return
    -- is as anomalous as a slowdown). Fires when the rank test is significant at
    ``alpha``, the shift is at least ``min_latency_ratio`` (as the percentile tests),
    and the shift exceeds the leave-one-out shift of every baseline bucket against the
    rest of the baseline (:func:`beyond_spread`). Strength = significance x effect,
    significance as for error counts (``-log10 p / 6``), effect ``|log2 factor| / 2``
    (4x = full, as the percentile tests).
    """
    pooled = hb.pooled[0]
    p, shift = rank_test(hi, pooled, cfg.alpha)
    min_bins = 2.0 * math.log2(cfg.min_latency_ratio)
    if p >= cfg.alpha or abs(shift) < min_bins:
        return False, 0.0, 2.0 ** (shift / 2.0), p
    rows = hb.rows
    rest = pooled - rows
    # Leave-one-out shifts of every baseline bucket with requests on both sides, at once.
    # ``rank_test`` would report 0 for a pair with zero variance (every request in one
    # bin), which is exactly the shift such a pair has, so no variance check is needed.
    keep = (rows.sum(axis=1) > 0) & (rest.sum(axis=1) > 0)
    per_bucket = hl_shifts(rows[keep], rest[keep]).tolist()
    if not beyond_spread(shift, per_bucket, shift > 0, cfg):
        return False, 0.0, 2.0 ** (shift / 2.0), p
    sig = 1.0 if p <= 0 else min(1.0, -math.log10(p) / 6.0)
    strength = sig * min(1.0, abs(shift) / 2.0 / 2.0)
    return True, strength, 2.0 ** (shift / 2.0), p


def _gap_test(rows: "_Rows", cfg: EvidenceConfig, where: str, callee: str) -> tuple[bool, float, EvidenceItem | None, int | None]:
    """Time between the two instrumented ends of an edge (client minus server, per paired
    call) in the window vs the baseline buckets' own values.

    The evidence of a link/network fault: the callee's server time does not move, its
    callers' client spans do. Fires when the window's mean gap (1) exceeds every
    baseline bucket's (:func:`beyond_spread`), (2) passes the robust median/MAD test of
    the latency detector (``latency_z``, ``min_latency_ratio``), and (3) its rise would
    make the whole call ``min_latency_ratio`` x slower (the bar a call's latency must pass
    to be anomalous at all; a microsecond of extra network on a 50 ms call is not).
    Strength = ``log2`` of that call factor / 2 (4x = full, as the latency tests).
    Only per-bucket sums exist, and a mean is moved by one slow call, so (1) is tested
    per window bucket (:func:`_buckets_exceed`), not on the window's mean.
    """
    pi = sum(r.paired for r in rows.i)
    if pi <= 0:
        return False, 0.0, None, None
    base = [r.gap_ms_sum / r.paired for r in rows.b if r.paired > 0]
    if not base:
        return False, 0.0, None, None
    x = sum(r.gap_ms_sum for r in rows.i) / pi
    m = _median(base)
    pb = sum(r.paired for r in rows.b)
    call0 = sum(r.duration_ms_sum for r in rows.b if r.paired > 0) / max(1, sum(r.requests for r in rows.b if r.paired > 0))
    rise = x - m
    if call0 <= 0 or rise < (cfg.min_latency_ratio - 1.0) * call0 or pb <= 0:
        return False, 0.0, None, None
    mad = _median([abs(b - m) for b in base])
    scale = max(1.4826 * mad, 0.1 * abs(m), 1e-6)
    if rise / scale < cfg.latency_z or not _buckets_exceed(
            [r.gap_ms_sum / r.paired for r in rows.i if r.paired > 0], base, cfg):
        return False, 0.0, None, None
    factor = (call0 + rise) / call0
    strength = min(1.0, math.log2(factor) / 2.0)
    limit = max(max(base), m + (cfg.min_latency_ratio - 1.0) * call0)
    onset = next((r.start_s for r in rows.i if r.paired > 0 and r.gap_ms_sum / r.paired > limit), None)
    item = EvidenceItem(callee, "link_gap", x, m, strength,
                        f"edge {where.strip()}: {_ms(x)} per call outside the callee's own time, "
                        f"vs {_ms(m)} baseline ({pi} paired calls)")
    return True, strength, item, onset


class _Hists:
    """The baseline histograms of one series: pooled always, per bucket on demand.

    Cost (issue 15: one bucket at 2,000 services in <= 1 s): turning ~30 tuples of 40
    counts into a float array per series was a third of a window's scoring, and the
    per-bucket rows are needed only by a test that already passed its pooled stage
    (a tail ratio, a significant rank test, an onset). The pooled sum is exact either
    way (integer counts), so the statistics are the same.
    """

    __slots__ = ("_src", "_rows", "count", "pooled")

    def __init__(self, base: Sequence[BucketRow]) -> None:
        self._src = [r.histogram for r in base if r.requests > 0]
        self._rows: np.ndarray | None = None
        self.count = len(self._src)
        self.pooled = np.array([list(map(sum, zip(*self._src)))] if self._src else np.zeros((1, 40)),
                               dtype=float).reshape(1, -1)

    @property
    def rows(self) -> np.ndarray:
        if self._rows is None:
            self._rows = np.array(self._src, dtype=float).reshape(-1, 40)
        return self._rows


class _Rows:
    """One series split into baseline and incident arrays (columns of BucketRow)."""

    def __init__(self, rows: Sequence[BucketRow], data: WindowData) -> None:
        inc, base = data.incident, data.baseline
        b = [r for r in rows if base.start_s <= r.start_s < base.end_s]
        i = sorted((r for r in rows if inc.start_s <= r.start_s < inc.end_s), key=lambda r: r.start_s)
        self.b, self.i = b, i
        nb = eb = xb = 0
        for r in b:  # one pass (issue 15's cost: ~8,000 series per judged bucket)
            nb += r.requests
            eb += r.errors
            xb += r.exclusive_errors
        self.nb, self.eb, self.xb = nb, eb, xb
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
    hb = _Hists(rows.b)
    if rows.i and rows.ni > 0:
        hi = np.array([list(map(sum, zip(*(r.histogram for r in rows.i))))], dtype=float)
        pooled = hb.pooled
        for q, label in ((0.95, "p95"), (0.99, "p99")):
            if rows.ni < 2.0 / (1.0 - q) or not hb.count:
                continue  # too few requests to read this tail
            x = float(_quantiles(hi, q)[0])
            center = float(_quantiles(pooled, q)[0])
            if x < cfg.min_latency_ratio * center:
                continue
            per_bucket = _quantiles(hb.rows, q).tolist()
            ok, s, m = _robust_test(x, per_bucket, rows.ni, cfg, center)
            if ok and beyond_spread(x, per_bucket, True, cfg):
                lat_ok, lat_s = True, max(lat_s, s)
                items.append(EvidenceItem(entity, f"{where}latency_{label}", x, m, s,
                                          f"{where}{label} latency {_ms(x)} vs {_ms(m)} baseline"))
        if hb.count:
            ok, s, factor, pval = _shift_test(hi[0], hb, cfg)
            if ok:
                lat_ok, lat_s = True, max(lat_s, s)
                word = f"{factor:.1f}x slower" if factor >= 1 else f"{1 / factor:.1f}x faster"
                med_i = float(_quantiles(hi, 0.5)[0])
                med_b = float(_quantiles(hb.pooled, 0.5)[0])
                items.append(EvidenceItem(entity, f"{where}latency_shift", med_i, med_b, s,
                                          f"{where}durations {word} than baseline (median "
                                          f"{_ms(med_i)} vs {_ms(med_b)}; rank test p={pval:.1g}, "
                                          f"{rows.ni} vs {rows.nb} requests)"))
    gap_ok, gap_s, gap_item, gap_onset = (False, 0.0, None, None) if server else _gap_test(rows, cfg, where, entity)
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
        excess_errors=excess, items=tuple(items), gap_anomalous=gap_ok, gap_strength=gap_s,
        gap_item=gap_item, gap_onset_s=gap_onset, paired_incident=sum(r.paired for r in rows.i))


def _first_error_bucket(rows: _Rows, cfg: EvidenceConfig, p0: float) -> int | None:
    for r in rows.i:
        if r.errors > 0 and r.requests > 0 and bdtrc(r.errors - 1, r.requests, p0) < cfg.onset_alpha \
                and r.errors / r.requests - p0 >= cfg.min_error_delta:
            return r.start_s
    return None


def _onset(rows: _Rows, cfg: EvidenceConfig, p0: float, hb: _Hists, errors: bool, latency: bool) -> int | None:
    """First incident bucket where a detector that fired overall fires on its own.

    A bucket's p95 must beat both ``min_latency_ratio`` x the pooled baseline p95 and
    every per-bucket baseline p95, so ordinary minute-to-minute noise is not an onset.
    """
    p95_limit = math.inf
    if latency and hb.count:
        per_bucket = _quantiles(hb.rows, 0.95)
        pooled = float(_quantiles(hb.pooled, 0.95)[0])
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
    links = _link_faults(edges, server, outside)
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
            link = links.get(eid)
            if link:
                # A link fault at ``eid``: the callers see it, its own server time does
                # not. The gap is an anomaly of ``eid`` as its callers see it (A) and it
                # originates at ``eid``'s end of the calls, not in a caller's code (S).
                ls = min(e.series.gap_strength for e in link)
                anomalous, strength = True, max(strength, ls)
                self_ok, self_s = True, max(self_s, ls)
                items = items + tuple(e.series.gap_item for e in link if e.series.gap_item is not None)
                g_on = min((e.series.gap_onset_s for e in link if e.series.gap_onset_s is not None), default=None)
                onset = g_on if onset is None or (g_on is not None and g_on < onset) else onset
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
    from rootgraph.inference.signals import score_logs, score_metrics  # signals builds on this module
    logs, metrics = score_logs(data, cfg), score_metrics(data, cfg)
    for eid, v in logs.items():
        e = entities.get(eid)
        if e is None or not v.fired:
            continue
        # A span whose own service logged an error is an erroring span even with no
        # status code (issue 14): the log detector makes the entity anomalous (A|x); what
        # says the errors originate there is the network's L|x.
        onset = v.onset_s if e.onset_s is None or (v.onset_s is not None and v.onset_s < e.onset_s) else e.onset_s
        entities[eid] = replace(e, anomalous=True, strength=max(e.strength, v.strength),
                                items=e.items + v.items, onset_s=onset)
    syms = [e.entity for e in entities.values() if e.anomalous and e.kind not in INFRA_KINDS]
    syms.sort(key=lambda s: (entities[s].onset_s if entities[s].onset_s is not None else math.inf, s))
    onset = min((entities[s].onset_s for s in syms if entities[s].onset_s is not None), default=None)
    if onset is not None:
        # A change after the first symptom began cannot have caused it. One bucket of
        # slack: an onset is the start of the first anomalous bucket, so a deployment
        # inside that bucket may still precede the first bad request.
        limit_ms = (onset + data.bucket_seconds) * 1000
        for eid, e in entities.items():
            if e.deployments and any(d.at_ms >= limit_ms for d in e.deployments):
                entities[eid] = replace(e, deployments=tuple(d for d in e.deployments if d.at_ms < limit_ms))
    return WindowEvidence(data, entities, edges, tuple(syms), onset, cfg, logs, metrics)


def _link_faults(edges: dict[tuple[str, str], EdgeEvidence], server: dict[str, SeriesEvidence],
                 outside: set[str] | frozenset[str]) -> dict[str, list[EdgeEvidence]]:
    """Instrumented callees whose every paired caller sees a call gap: link faults.

    Rule (how a network fault between instrumented services shows): callee ``c`` gets
    the link evidence when *all* its incoming paired edges from instrumented callers
    have a gap anomaly. Not when those callers are explained on their own side: a
    caller with at least two paired callees, every one of them gapped, is slow before
    its requests leave it (its CPU, its network), and those gaps are no callee's.
    """
    out_paired: dict[str, list[EdgeEvidence]] = {}
    in_paired: dict[str, list[EdgeEvidence]] = {}
    for (caller, callee), e in edges.items():
        if e.is_async or caller in outside or caller == callee or e.series.paired_incident <= 0:
            continue
        if caller not in server or callee not in server:
            continue
        out_paired.setdefault(caller, []).append(e)
        in_paired.setdefault(callee, []).append(e)
    caller_side = {p for p, es in out_paired.items() if len(es) >= 2 and all(e.series.gap_anomalous for e in es)}
    found: dict[str, list[EdgeEvidence]] = {}
    for c, es in in_paired.items():
        if all(e.series.gap_anomalous for e in es) and not all(e.caller in caller_side for e in es):
            found[c] = es
    return found
