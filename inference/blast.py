"""What-if blast radius: ``P(k visibly impacted | do(fault at x))`` for every entity k.

**What "impacted" means.** Over an incident of ``incident_s`` (15 min, RankCauses'
default incident window) the fault makes at least ``min_error_share`` (1 %) of k's
requests fail *and* at least ``min_fault_errors`` (5) of them, or adds at least
``min_latency_ratio`` (20 %) to k's mean duration -- an effect an on-call engineer sees
on k's dashboard, and the definition the accuracy benchmark measures (BENCHMARKS.md
"Accuracy"). All thresholds are :class:`WhatIfConfig` fields.

**Why effects are propagated as magnitudes, not as anomalous/healthy links.** A fault's
effect shrinks at every hop by how much of the caller's work touches the callee, and
whether it shows depends on the caller's own volume and latency. A binary noisy-OR
link ("callee anomalous -> caller anomalous with strength w", the previous
``0.3 + 0.65 * share``) forgets how much: a database failing 30 % of calls, called by
10 % of a service's requests, gives that service 3 % errors (visible); one more such hop
gives 0.3 % (invisible), but links of any fixed strength give ``w**2``. So a front-end
with 3-4 % errors got P < 0.5, a caller whose latency grew 5 % got P > 0.8, and a caller
with two requests a quarter hour, which can never collect 5 errors, got P > 0.5. Here
the *size* of the effect travels through the call graph and the visibility test is
applied where it is measured:

* ``f_k`` = share of k's requests the fault fails, ``a_k`` = milliseconds it adds per
  request. At the faulty entity an *error* fault fails a share ``eps`` of its requests,
  a *latency* fault adds ``delay`` ms, *saturation* multiplies the self time of the
  services on a host (or of the service) by ``factor``, *down* fails everything.
* callee x -> caller c, ``lam`` = calls to x per request of c:
  ``f_c = 1 - prod_x (1 - rho_c * hit(lam, fx))`` with ``hit`` the chance that a request
  of c makes at least one failing call (``lam * fx``; ``1 - (1 - fx) ** lam`` for
  fan-out), and ``a_c = sum_x lam * ax`` (sequential calls; parallel fan-out
  overestimates).
* ``fx``/``ax`` as c sees them: the fault's own effect at x is uniform over x's
  requests; what x inherited from *its* callees is carried only by the calls that reach
  below x, so it is scaled by c's *exposure* -- the time c's calls spend below x
  (edge duration minus x's self time) over the average call's. A caller that only uses
  x's cheap operation (its calls last x's self time) is not exposed to x's slow
  dependency; one whose calls are 4x longer than average carries most of it.
* ``rho_c``: the share of the errors c's calls returned that c passed on (its errors
  minus its exclusive errors, over the errors on its outgoing edges; Beta prior
  ``passthrough_prior``), so a caller seen handling callee errors (fallback, retry)
  passes fewer on. Per caller: totals do not say which call an error came from.
* asynchronous edges carry nothing back (a consumer never answers the producer), except
  the publish to a broker itself, which the producer waits for.
* call loops are kept (cutting one, as the ranking network must, would cut a path a
  fault travels); each strongly connected component is iterated to its fixed point.
  Nothing feeds back into the faulty entity: its effect *is* the fault's size.
* the error test uses the Poisson tail of the expected count ``f_k * rate_k *
  incident_s`` (``rate_k`` = k's requests over the span of the history); the latency
  test needs k to see a request during the incident.

**Why a probability.** A what-if query does not know how bad the fault will be. Its
size has a log-uniform prior: an error fault fails from ``error_rate[0]`` (5 %, the
smallest rise rootgraph's own error detector flags, ``EvidenceConfig.min_error_delta``)
to 100 % of requests; a latency fault adds from the smallest delay visible at the faulty
entity itself (``min_latency_ratio`` x its mean duration) to ``max_delay_ms`` (1 s, a
client timeout); saturation slows self time 2-10x. Every effect grows monotonically with
the size, so P(k) is the share of the prior under which k's impact is visible -- "how
bad must the fault be before k notices" -- integrated on a deterministic quantile grid
(same answer every time, no sampling noise). A fault of unknown kind
(``fault_kind=None``) is an even mixture of an error and a latency fault for a service or
a virtual node, and saturation for infrastructure. A fault whose size was *observed*
(``fault_size``: what RankCauses' evidence shows, ``Cause.fault_size``) replaces the
prior by a log-uniform band of ``size_band`` either way around it: an incident-window
average of a fault that may still grow or shrink.

**Inputs: per-series totals over the history window only** (:func:`traffic_totals`; no
per-bucket anomaly tests, no Bayesian network -- the ranking network's links, priors
and cycle cuts have no part in a what-if): per service requests, errors, exclusive
errors, duration and self-time sums; per edge requests, errors, duration sum and the
async flag; the span of the history; entity kinds, the hosts of every service and the
share of user traffic entering through each entry point (:func:`whatif_model`).

**What totals cannot see** (the remaining benchmark misses): a fallback on one call
of a caller that passes other callees' errors on; and which of a callee's operations a
caller uses beyond what call durations tell (entity-level edges mix them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
from scipy.special import pdtr

from rootgraph.graph.records import EntityKind, WindowData
from rootgraph.inference.errors import InvalidArgument, UnknownEntity
from rootgraph.inference.evidence import INFRA_KINDS, VIRTUAL_KINDS, EvidenceConfig
from rootgraph.inference.faults import FaultKind, parse_fault_kind
from rootgraph.inference.results import BlastRadius, Impact
from rootgraph.inference.topology import bfs_up, callers_of, entry_shares, path_to

#: passes around a call loop before its effect is taken as converged
_MAX_LOOP_PASSES = 30
#: floor of the delay prior for an entity without a measured duration
_MIN_DELAY_MS = 0.1


@dataclass(frozen=True, slots=True)
class WhatIfConfig:
    """What counts as a visible impact, and the prior of a fault's size (module doc)."""

    incident_s: float = 900.0
    min_error_share: float = 0.01
    min_fault_errors: int = 5
    min_latency_ratio: float = 0.2
    #: error fault: log-uniform failing share, from the smallest error-rate rise rootgraph's
    #: own detector calls an anomaly (``EvidenceConfig.min_error_delta``) to everything
    error_rate: tuple[float, float] = (EvidenceConfig().min_error_delta, 1.0)
    #: latency fault: log-uniform added ms, from the smallest delay visible at the faulty
    #: entity itself (``min_latency_ratio`` x its mean duration) to a client timeout
    max_delay_ms: float = 1000.0
    #: saturation: log-uniform factor on the self time of the services on a host
    saturation: tuple[float, float] = (2.0, 10.0)
    #: Beta(a, b) prior of the share of callee errors a caller passes on
    passthrough_prior: tuple[float, float] = (9.0, 1.0)
    #: an observed fault size is taken as log-uniform over ``size_band`` x either way
    #: (errors clipped at 100 %; saturation: around the slowdown, factor - 1)
    size_band: float = 2.0

    def __post_init__(self) -> None:
        lo, hi = self.error_rate
        if not 0.0 < lo <= hi <= 1.0:
            raise InvalidArgument("error_rate", f"must be 0 < low <= high <= 1, got {(lo, hi)}")
        lo, hi = self.saturation
        if not 1.0 <= lo <= hi:
            raise InvalidArgument("saturation", f"must be 1 <= low <= high, got {(lo, hi)}")
        if min(self.passthrough_prior) <= 0.0:
            raise InvalidArgument("passthrough_prior", "must be positive")
        if not self.size_band >= 1.0:  # NaN too
            raise InvalidArgument("size_band", f"must be >= 1, got {self.size_band}")
        for name in ("incident_s", "max_delay_ms", "min_latency_ratio"):
            if getattr(self, name) <= 0:
                raise InvalidArgument(name, f"must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.min_error_share <= 1.0 or self.min_fault_errors < 0:
            raise InvalidArgument("min_error_share", "must be in [0, 1] with min_fault_errors >= 0")


@dataclass(frozen=True, slots=True)
class Traffic:
    """Per-series totals over the history window, as the propagation reads them."""

    span_s: float
    #: entity -> requests served (a virtual node: calls it received)
    requests: dict[str, float]
    #: entity -> mean duration (ms) and mean self time (ms) per request
    mean_ms: dict[str, float]
    self_ms: dict[str, float]
    #: (caller, callee) -> calls per caller request, synchronous edges only
    calls: dict[tuple[str, str], float]
    #: caller -> share of the errors its calls returned that it passed on
    passthrough: dict[str, float]
    #: (caller, callee) -> the caller's calls' time below the callee over the average call's
    exposure: dict[tuple[str, str], float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WhatIfModel:
    """Everything a what-if query of one window reads; built once, asked per entity.

    ``candidates``: what can be faulted (services, virtual backends, infrastructure with
    a service on it -- every infra id, not merged as in ranking: a blast radius is asked
    of the id the caller names); ``hosts_of``: service -> those infra ids;
    ``entry_share``: entry entity -> share of the calls from ``user`` it receives;
    ``callers``: the graph a fault climbs (:func:`caller_graph`), the same for every query.
    """

    candidates: dict[str, EntityKind]
    hosts_of: dict[str, tuple[str, ...]]
    entry_share: dict[str, float]
    traffic: Traffic
    callers: dict[str, list[str]]


def traffic_totals(window: WindowData, config: WhatIfConfig | None = None) -> Traffic:
    """Sum every series of ``window`` once (both halves: a what-if window is all history)."""
    cfg = config or WhatIfConfig()
    lo, hi = math.inf, -math.inf
    svc: dict[str, list[float]] = {}
    for e, rows in window.service_buckets.items():
        t = svc[e] = [0.0] * 5  # requests, errors, exclusive errors, duration, self time
        for r in rows:
            t[0] += r.requests
            t[1] += r.errors
            t[2] += r.exclusive_errors
            t[3] += r.duration_ms_sum
            t[4] += r.self_ms_sum
            lo, hi = min(lo, r.start_s), max(hi, r.start_s)
    edge: dict[tuple[str, str], list[float]] = {}
    sync: set[tuple[str, str]] = set()
    for info in window.edges:
        t = edge.setdefault((info.caller, info.callee), [0.0] * 3)  # requests, errors, duration
        for r in info.buckets:
            t[0] += r.requests
            t[1] += r.errors
            t[2] += r.duration_ms_sum
            lo, hi = min(lo, r.start_s), max(hi, r.start_s)
        # A publish is synchronous for the producer (it waits for the broker); what is
        # asynchronous is the consumer behind the queue, which never answers the caller.
        callee = window.entities.get(info.callee)
        if not info.is_async or (callee is not None and callee.kind == EntityKind.MESSAGING):
            sync.add((info.caller, info.callee))
    span = float(hi - lo + window.bucket_seconds) if hi >= lo else float(window.bucket_seconds)
    requests: dict[str, float] = {}
    mean: dict[str, float] = {}
    self_ms: dict[str, float] = {}
    virtual: dict[str, list[float]] = {}
    for (caller, callee), t in edge.items():
        if callee not in svc:
            v = virtual.setdefault(callee, [0.0, 0.0])
            v[0] += t[0]
            v[1] += t[2]
    for e, (n, _, _, d, s) in svc.items():
        requests[e] = n
        mean[e] = d / n if n > 0 else 0.0
        self_ms[e] = s / n if n > 0 else 0.0
    for e, (n, d) in virtual.items():
        requests[e] = n
        mean[e] = d / n if n > 0 else 0.0
        self_ms[e] = mean[e]
    calls: dict[tuple[str, str], float] = {}
    returned: dict[str, float] = {}
    for (caller, callee), t in edge.items():
        if (caller, callee) not in sync or caller == callee or caller not in svc:
            continue
        n = svc[caller][0]
        calls[(caller, callee)] = t[0] / n if n > 0 else 1.0
        returned[caller] = returned.get(caller, 0.0) + t[1]
    pa, pb = cfg.passthrough_prior
    passthrough = {}
    for c, got in returned.items():
        passed = min(max(svc[c][1] - svc[c][2], 0.0), got)  # errors minus exclusive errors
        passthrough[c] = (passed + pa) / (got + pa + pb)
    # Time below x (a call's duration minus x's self time) per caller, over the average
    # call's: which callers' calls carry x's downstream work.
    below: dict[str, list[float]] = {}
    for (caller, callee), t in edge.items():
        if callee in svc and t[0] > 0:
            acc = below.setdefault(callee, [0.0, 0.0])
            acc[0] += max(t[2] - t[0] * self_ms[callee], 0.0)
            acc[1] += t[0]
    exposure: dict[tuple[str, str], float] = {}
    for (caller, callee) in calls:
        acc = below.get(callee)
        t = edge[(caller, callee)]
        if acc is None or acc[0] <= 0 or t[0] <= 0:
            continue
        exposure[(caller, callee)] = max(t[2] / t[0] - self_ms[callee], 0.0) / (acc[0] / acc[1])
    return Traffic(span, requests, mean, self_ms, calls, passthrough, exposure)


def whatif_model(window: WindowData, config: WhatIfConfig | None = None) -> WhatIfModel:
    """The what-if model of ``window`` (reusable across what-if queries).

    One pass over the rows (:func:`traffic_totals`); the rest is entity bookkeeping.
    Nothing here reads an anomaly verdict: a what-if is about how traffic flows.
    """
    ents = window.entities
    cand = {e: ent.kind for e, ent in ents.items()
            if ent.kind == EntityKind.SERVICE or ent.kind in VIRTUAL_KINDS}
    hosts_of: dict[str, tuple[str, ...]] = {}
    for svc, infra in window.runs_on.items():
        if svc not in cand:
            continue
        hs = tuple(h for h in infra if h in ents and ents[h].kind in INFRA_KINDS)
        if hs:
            hosts_of[svc] = hs
    for hs in hosts_of.values():
        cand.update((h, ents[h].kind) for h in hs)
    share = entry_shares(((i.caller, i.callee, sum(r.requests for r in i.buckets)) for i in window.edges),
                         ents, cand)
    traffic = traffic_totals(window, config)
    return WhatIfModel(cand, hosts_of, share, traffic, caller_graph(traffic.calls, cand, hosts_of))


def _delay_range(cfg: WhatIfConfig, mean_ms: float) -> tuple[float, float]:
    """A latency fault is at least visible where it happens: >= min_latency_ratio x mean."""
    hi = cfg.max_delay_ms
    return min(max(cfg.min_latency_ratio * mean_ms, _MIN_DELAY_MS), hi), hi


def _grid(lo: float, hi: float, n: int) -> np.ndarray:
    """``n`` mid-quantiles of a log-uniform prior on ``[lo, hi]``."""
    q = (np.arange(n) + 0.5) / n
    return np.exp(math.log(lo) + q * (math.log(hi) - math.log(lo)))


def caller_graph(calls: dict[tuple[str, str], float], candidates: dict[str, EntityKind],
                 hosts_of: dict[str, tuple[str, ...]]) -> dict[str, list[str]]:
    """callee -> callers over every synchronous call edge; infra -> services on it.

    All edges, cycles included: the fixed point of the propagation handles a loop
    (each pass around it is scaled by its call rates), whereas cutting it -- as the
    ranking network must -- would cut the very path a fault travels (A calls B on every
    request and B calls A on a third of its requests: a fault at A still reaches B).
    """
    return callers_of(((a, b) for a, b in calls if a in candidates and b in candidates and a != b), hosts_of)


def _sizes(cfg: WhatIfConfig, kind: FaultKind, prior: tuple[float, float], size: float, n: int) -> np.ndarray:
    """The grid of a fault's size: its prior, or a band around an observed ``size``."""
    if size <= 0.0:
        return _grid(*prior, n)
    lo, hi = size / cfg.size_band, size * cfg.size_band
    if kind == FaultKind.ERRORS:
        lo, hi = min(lo, 1.0), min(hi, 1.0)
    elif kind == FaultKind.SATURATION:  # a factor: the band is around the slowdown, never below 1x
        lo, hi = max(1.0 + (size - 1.0) / cfg.size_band, 1.0 + 1e-6), 1.0 + (size - 1.0) * cfg.size_band
    return _grid(lo, hi, n)


def impact_probabilities(model: WhatIfModel, entity: str, fault_kind: FaultKind | None = None,
                         config: WhatIfConfig | None = None, grid: int = 256,
                         fault_size: float = 0.0) -> dict[str, float]:
    """``P(k visibly impacted | do(fault at entity))`` for every k the fault can reach.

    ``fault_size`` (with a ``fault_kind``; 0 = unknown): the failing share of an error
    fault, ms added by a latency fault, the self-time factor of saturation. The faulty
    entity itself is not in the answer (nor, for infrastructure, the host).
    """
    cfg = config or WhatIfConfig()
    tr = model.traffic
    kind = model.candidates[entity]
    if fault_kind is None:
        kinds = (FaultKind.SATURATION,) if kind in INFRA_KINDS else (FaultKind.ERRORS, FaultKind.LATENCY)
    else:
        kinds = (fault_kind,)
    up = model.callers
    hit = [s for s in up.get(entity, ()) if entity in model.hosts_of.get(s, ())] if kind in INFRA_KINDS \
        else [entity]
    g = nx.DiGraph()
    g.add_nodes_from(hit)
    stack, seen = list(hit), set(hit)
    while stack:
        x = stack.pop()
        for c in up.get(x, ()):
            # The faulty entity's own impact is the fault's size: nothing feeds back into it.
            if c != entity and (x, c) not in g.edges:
                g.add_edge(x, c)
                if c not in seen:
                    seen.add(c)
                    stack.append(c)
    # Strongly connected components in topological order; a loop is iterated to its
    # fixed point (bounded: a loop whose call rates multiply to >= 1 would not converge).
    cond = nx.condensation(g)
    groups = [sorted(cond.nodes[c]["members"]) for c in nx.topological_sort(cond)]
    ones, zeros = np.ones(grid), np.zeros(grid)
    probs: dict[str, float] = {}
    size = fault_size if fault_kind is not None else 0.0  # a size without a kind means nothing
    for fk in kinds:
        own_f: dict[str, np.ndarray] = {}
        own_a: dict[str, np.ndarray] = {}
        # The fault acts on ``hit``: the entity itself, or every service on a host (a
        # host that is down fails its services' requests; one that stalls slows them).
        if fk == FaultKind.ERRORS:
            eps = _sizes(cfg, fk, cfg.error_rate, size, grid)
            own_f.update((s, eps) for s in hit)
        elif fk == FaultKind.DOWN:
            own_f.update((s, ones) for s in hit)
        elif fk == FaultKind.LATENCY:
            # visible at the faulty entity itself: at its (a host's: its least busy
            # service's) mean duration
            mean = min((tr.mean_ms.get(s, 0.0) for s in hit), default=0.0)
            delay = _sizes(cfg, fk, _delay_range(cfg, mean), size, grid)
            own_a.update((s, delay) for s in hit)
        else:  # saturation: the self time of every service on the host (or of the service)
            factor = _sizes(cfg, fk, cfg.saturation, size, grid) - 1.0
            for s in hit:
                own_a[s] = factor * tr.self_ms.get(s, 0.0)
        # f / a: inherited from callees (the part a caller sees in proportion to its
        # exposure); the fault's own effect at k is uniform over k's requests.
        f: dict[str, np.ndarray] = {}
        a: dict[str, np.ndarray] = {}

        def update(k: str) -> float:
            ok, add = ones, zeros
            if k != entity:
                rho = tr.passthrough.get(k, 1.0)
                for x in g.predecessors(k):
                    if x not in f:
                        continue
                    lam = tr.calls[(k, x)]
                    r = tr.exposure.get((k, x), 1.0)
                    fx = 1.0 - (1.0 - own_f.get(x, zeros)) * (1.0 - np.minimum(1.0, r * f[x]))
                    p_fail = lam * fx if lam <= 1.0 else 1.0 - np.power(1.0 - fx, lam)
                    ok = ok * (1.0 - rho * p_fail)
                    add = add + lam * (own_a.get(x, zeros) + r * a[x])
            change = 0.0
            if k in f:
                change = max(float(np.max(np.abs(1.0 - ok - f[k]))),
                             float(np.max(np.abs(add - a[k]) / (np.abs(add) + 1e-9))))
            f[k], a[k] = 1.0 - ok, add
            return change

        for members in groups:
            if len(members) == 1:
                update(members[0])
                continue
            for k in members:
                f[k], a[k] = zeros, zeros
            for _ in range(_MAX_LOOP_PASSES):
                if max(update(k) for k in members) < 1e-3:
                    break
        for k in seen:
            if k == entity:
                continue
            fk_ = 1.0 - (1.0 - own_f.get(k, zeros)) * (1.0 - f[k])
            ak = own_a.get(k, zeros) + a[k]
            expected = fk_ * tr.requests.get(k, 0.0) / tr.span_s * cfg.incident_s
            p_err = np.where(fk_ >= cfg.min_error_share, 1.0 - pdtr(cfg.min_fault_errors - 1, expected), 0.0)
            # a slower mean needs requests to be seen: at least one in the incident
            n_inc = tr.requests.get(k, 0.0) / tr.span_s * cfg.incident_s
            p_lat = ((ak >= cfg.min_latency_ratio * tr.mean_ms.get(k, 0.0)) & (ak > 0)) * -math.expm1(-n_inc)
            p = float(np.mean(1.0 - (1.0 - p_err) * (1.0 - p_lat)))
            probs[k] = probs.get(k, 0.0) + p / len(kinds)
    return probs


def check_fault_size(fault_kind: FaultKind | None, size: float) -> None:
    """Raise :class:`InvalidArgument` unless ``size`` fits ``fault_kind`` (0 always does)."""
    if not math.isfinite(size) or size < 0.0:
        raise InvalidArgument("fault_size", f"must be a finite number >= 0, got {size}")
    if size == 0.0:
        return
    if fault_kind is None or fault_kind == FaultKind.DOWN:
        raise InvalidArgument("fault_size", "needs a fault kind with a size: errors, latency or saturation")
    if fault_kind == FaultKind.ERRORS and size > 1.0:
        raise InvalidArgument("fault_size", f"an error fault's size is the failing share, in (0, 1]; got {size}")
    if fault_kind == FaultKind.SATURATION and size <= 1.0:
        raise InvalidArgument("fault_size", f"a saturation's size is a slowdown factor > 1, got {size}")


def blast_radius(window_or_model: WindowData | WhatIfModel, entity: str, fault_kind: FaultKind | None = None,
                 samples: int = 256, min_probability: float = 0.0,
                 config: WhatIfConfig | None = None, fault_size: float = 0.0) -> BlastRadius:
    """Impacts of a fault at ``entity`` on every entity it can reach, most likely first.

    ``fault_kind``: a :class:`FaultKind` (or its name), or None (see the module doc);
    ``fault_size``: its observed size (see :func:`impact_probabilities`), 0 = unknown.
    ``samples`` is the size of the quantile grid over the fault's size (the answer is
    deterministic). The faulty entity itself is listed with probability 1. A ranking
    network (``CausalModel``: no traffic totals) is refused. Raises
    :class:`UnknownEntity` / :class:`InvalidArgument`.
    """
    fault_kind = parse_fault_kind(fault_kind)
    if samples < 16:
        raise InvalidArgument("samples", f"must be >= 16, got {samples}")
    check_fault_size(fault_kind, fault_size)
    if isinstance(window_or_model, WhatIfModel):
        model = window_or_model
    elif isinstance(window_or_model, WindowData):
        model = whatif_model(window_or_model, config)
    else:
        raise InvalidArgument("window_or_model", "a window or a what-if model from whatif_model(), "
                                                 f"not a {type(window_or_model).__name__}")
    if entity not in model.candidates:
        raise UnknownEntity(entity)
    probs = impact_probabilities(model, entity, fault_kind, config, samples, fault_size)
    prev = bfs_up(model.callers, entity)
    impacts = []
    total = 0.0
    for k, hop_prev in sorted(prev.items()):
        if k == entity:
            p = 1.0
        elif k in probs:
            p = probs[k]
        else:
            continue
        path = path_to(prev, k)
        share = model.entry_share.get(k, 0.0) * p
        total += share
        if p >= min_probability:
            impacts.append(Impact(k, model.candidates[k].value, p, len(path) - 1, path, share))
    impacts.sort(key=lambda i: (-i.probability, i.hops, i.entity))
    return BlastRadius(entity, tuple(impacts), min(1.0, total))
