"""The Bayesian network of faults and anomalies, and its pgmpy encoding.

Variables (all binary), named ``<role>|<entity>``:

* ``F|x`` — x is a root cause. Root node; prior = base rate, raised for a recent
  deployment, overridden by learned priors (``ModelParams``). One per candidate:
  services, virtual nodes, and infrastructure entities shared by >= 2 symptomatic
  services (anomalous, or with a self-time/exclusive-error anomaly) (DESIGN.md "Inference");
  infrastructure candidates with exactly the same services (``host:X`` = ``node:X``) are
  one candidate (:func:`merge_same_machine`, ``CausalModel.aliases``).
* ``A|x`` — x is anomalous. Noisy-OR with leak of ``F|x``, ``F|h`` for x's candidate
  hosts, and ``A|c`` for every callee c: faults travel callee -> caller.
* ``S|x`` — self/exclusive detector of an instrumented service: noisy-OR of ``F|x`` and
  ``F|h`` only. A fault *originating* at x raises exclusive errors / self time, a
  propagated one does not: this detector is what separates a cause from a victim.
* ``E|p|c`` — client-side detector on edge p -> c, observes ``A|c``. Only emitted for
  callees whose ``A`` is hidden (uninstrumented), where it is the only evidence.
* ``L|x`` — log detector of candidate x (error-logged spans, error share of records,
  new/surging templates; ``inference/signals.py``), observed, only when x has log rows
  in the incident and baseline windows. Noisy-OR of ``F|x`` (``log_sensitivity``) and ``A|c`` for
  every kept callee c (``log_sensitivity`` x the link's strength): a service logs errors
  about a failing callee as often as that callee's fault reaches it, so a caller's error
  logs are explained away by an anomalous callee, and only errors with no anomalous
  callee to blame -- exclusive-error-like, what localises code faults -- point at x.
  (The detector also sets ``A|x`` when it fires: an error-logged span is an erroring span.)
* ``M|m`` — metric saturation detector of entity m (CPU, throttling, memory near its
  limit, restarts; ``inference/signals.py``), observed, only when m has metric rows in
  the incident and baseline windows. Noisy-OR of ``F|m`` when m is a candidate and
  ``F|s`` for every candidate service s running on m (RUNS_ON; a service's own metrics
  count for itself), all ``metric_sensitivity``: a saturated pod or node is evidence for
  itself and for what runs on it, and it is what explains a self-time rise as a CPU
  fault rather than a code change.

Why ``log_sensitivity = metric_sensitivity = 0.5`` (set by reasoning, not fitted): of
the fault classes the product ranks -- error-returning and code faults, latency, CPU /
resource, network -- roughly half show in a given signal (code and error faults log
errors, resource faults do not; resource faults saturate metrics, the others do not),
so a silent detector halves a candidate's odds and a firing one multiplies them by up
to ``0.5 / false_alarm``. Their false-alarm rates are graded from the detector strength
like every other detector's. With no logs or metrics in the window there are no ``L``
or ``M`` nodes and the network is exactly the trace-only one.

``A|x`` of an instrumented service is observed hard (issue 4: with every instrumented
anomaly state observed the network falls apart into tiny pieces). Detector strength
from ``evidence.py`` grades the leak / false-alarm rate of the observed node, so weak
evidence explains itself away without coupling anything.

Propagation strength callee -> caller: ``0.3 + 0.65 * share`` (share of the caller's
requests that call the callee; :func:`rootgraph.inference.topology.base_strength`, which
says what is known of the numbers); when the edge is anomalous in the incident window it
is blended towards the observed co-failure (``0.3 * base + 0.7 * co``), so a caller with a
fallback (callee failing, caller healthy) gets a weak link; async edges are scaled by
``async_factor``; always clipped to ``[min_strength, max_strength]`` so no observation
has likelihood 0.

Cycles: the propagation graph must be a DAG. In every strongly connected component we
repeatedly find a cycle and drop its least important edge, so the edges that carry the
incident and the dominant call direction survive. Importance, compared in order:
(1) the edge is anomalous and its callee shows an originating (self/exclusive) anomaly
-- the incident visibly travelled along it; (2) the edge is anomalous; (3) traffic
(requests in both windows); ties drop the lexicographically largest edge. Self-calls are
dropped (what-if queries keep every edge and build no network: ``inference/blast.py``). Dropped edges are reported in
``CausalModel.dropped_edges`` and in the ranking notes.

Encoding: every node is a noisy-OR with leak; a node with more than two parents is
written as a chain of 2-parent OR gates (``name#1``, ``name#2``, ...), exact and with
8-entry tables, never a 2^k table for a hub.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Iterable

import networkx as nx
import numpy as np
from pgmpy.factors.discrete import TabularCPD
from pgmpy.models import DiscreteBayesianNetwork

from rootgraph.graph.records import EntityKind
from rootgraph.inference.evidence import INFRA_KINDS, VIRTUAL_KINDS, WindowEvidence
from rootgraph.inference.errors import InvalidArgument
from rootgraph.inference.topology import base_strength


@dataclass(frozen=True, slots=True)
class ModelParams:
    """Priors, detector rates and link bounds; ``version`` is recorded with every answer.

    ``learned_priors`` ((entity, prior), ...), ``learned_kind_priors`` ((kind, prior), ...)
    and ``learned_strengths`` ((caller, callee, strength), ...) are filled by
    ``inference/learning.py`` from confirmed incidents; ``action_stats``
    ((action, context, resolved, total, confidence), ...) gives suggested actions a
    confidence. A learned prior replaces the base rate; a recent deployment multiplies
    its odds by ``odds(deploy_prior) / odds(base)``, so with nothing learned a deployed
    candidate gets exactly ``deploy_prior``. A learned strength replaces the traffic-share
    base of a link; the window's observed co-failure is still blended in.
    """

    version: str = "prior-v1"
    base_prior: float = 0.01
    deploy_prior: float = 0.15
    infra_prior: float = 0.01
    fault_strength: float = 0.95
    host_strength: float = 0.9
    leak: float = 0.001
    weak_leak: float = 0.2
    self_sensitivity: float = 0.8
    host_self_sensitivity: float = 0.8
    false_alarm: float = 0.002
    weak_false_alarm: float = 0.2
    edge_sensitivity: float = 0.9
    log_sensitivity: float = 0.5
    metric_sensitivity: float = 0.5
    min_strength: float = 0.05
    max_strength: float = 0.95
    async_factor: float = 0.3
    learned_priors: tuple[tuple[str, float], ...] = ()
    learned_strengths: tuple[tuple[str, str, float], ...] = ()
    learned_kind_priors: tuple[tuple[str, float], ...] = ()
    action_stats: tuple[tuple[str, str, int, int, float], ...] = ()
    #: pockets whose elimination width exceeds this use loopy BP (see posterior.py)
    max_exact_width: int = 16

    def __post_init__(self) -> None:
        for name in ("base_prior", "deploy_prior", "infra_prior", "fault_strength", "host_strength",
                     "leak", "weak_leak", "self_sensitivity", "host_self_sensitivity", "false_alarm",
                     "weak_false_alarm", "edge_sensitivity", "log_sensitivity", "metric_sensitivity",
                     "min_strength", "max_strength", "async_factor"):
            v = getattr(self, name)
            if not 0.0 < v < 1.0:
                raise InvalidArgument(name, f"must be in (0, 1), got {v}")
        if self.min_strength > self.max_strength:
            raise InvalidArgument("min_strength", "must not exceed max_strength")
        if self.max_exact_width < 0:
            raise InvalidArgument("max_exact_width", "must be >= 0")
        for name, pairs in (("learned_priors", self.learned_priors), ("learned_kind_priors", self.learned_kind_priors)):
            for key, v in pairs:
                if not 0.0 < v < 1.0:
                    raise InvalidArgument(name, f"{key}: must be in (0, 1), got {v}")
        for a, b, v in self.learned_strengths:
            if not 0.0 < v < 1.0:
                raise InvalidArgument("learned_strengths", f"{a}->{b}: must be in (0, 1), got {v}")

    def graded(self, strong: float, weak: float, strength: float) -> float:
        """False-alarm rate for a detector firing with ``strength`` (log-interpolated)."""
        s = min(1.0, max(0.0, strength))
        return math.exp(s * math.log(strong) + (1.0 - s) * math.log(weak))


#: The hand-set parameters, stored as the built-in model version (``prior-v1``): what the
#: server answers with until a learned version is promoted, and what learning always
#: starts from (``rootgraph/modelops.py``).
DEFAULT_PARAMS = ModelParams()


@dataclass(frozen=True, slots=True)
class Node:
    """A noisy-OR variable: P(1 | parents) = 1 - (1 - leak) * prod(1 - w_i)^{parent_i}.

    Roots use ``leak`` as their prior. ``observed`` is 0/1 or None (hidden).
    """

    name: str
    parents: tuple[str, ...] = ()
    weights: tuple[float, ...] = ()
    leak: float = 0.0
    observed: int | None = None


@dataclass(frozen=True, slots=True)
class CausalModel:
    """The network for one window: nodes in topological order plus bookkeeping."""

    nodes: dict[str, Node]
    candidates: dict[str, EntityKind]
    priors: dict[str, float]
    #: kept call edges (caller, callee) -> propagation strength callee -> caller
    strengths: dict[tuple[str, str], float]
    #: service -> candidate infra entities it runs on
    hosts_of: dict[str, tuple[str, ...]]
    dropped_edges: tuple[tuple[str, str], ...]
    params: ModelParams = field(default_factory=ModelParams)
    #: representative -> the other infra ids folded into it (same set of services; see
    #: :func:`merge_same_machine`)
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def display_name(self, entity: str) -> str:
        """``entity``, plus the ids merged into it: ``node:n1 (= host:n1)``."""
        merged = self.aliases.get(entity)
        return f"{entity} (= {', '.join(merged)})" if merged else entity

    def to_pgmpy(self, names: Iterable[str] | None = None) -> DiscreteBayesianNetwork:
        """pgmpy network over ``names`` (default: all), chain-decomposed.

        Parents outside ``names`` must be observed; they are folded into the leak.
        ``check_model`` is left to the caller: it is costly on big networks.
        """
        keep = list(self.nodes) if names is None else [n for n in self.nodes if n in set(names)]
        kept = set(keep)
        bn = DiscreteBayesianNetwork()
        bn.add_nodes_from(keep)
        cpds: list[TabularCPD] = []
        for name in keep:
            node = self.nodes[name]
            leak, parents, weights = node.leak, [], []
            for p, w in zip(node.parents, node.weights):
                if p in kept:
                    parents.append(p)
                    weights.append(w)
                elif self.nodes[p].observed is None:
                    raise InvalidArgument("names", f"hidden parent {p} of {name} left out")
                elif self.nodes[p].observed:
                    leak = 1.0 - (1.0 - leak) * (1.0 - w)
            cpds.extend(chain_cpds(bn, name, parents, weights, leak))
        bn.add_cpds(*cpds)
        return bn

    def evidence(self) -> dict[str, int]:
        return {n.name: n.observed for n in self.nodes.values() if n.observed is not None}


def odds(p: float) -> float:
    """p / (1 - p), for combining prior factors multiplicatively without leaving (0, 1)."""
    return p / (1.0 - p)


def from_odds(o: float) -> float:
    return o / (1.0 + o)


def noisy_or_table(weights: list[float], leak: float) -> np.ndarray:
    """P(X=1 | parent states) for every parent configuration, first parent slowest."""
    if not weights:
        return np.array([leak])
    grid = np.array(list(itertools.product((0, 1), repeat=len(weights))), dtype=float)
    off = (1.0 - leak) * np.prod(np.power(1.0 - np.array(weights), grid), axis=1)
    return 1.0 - off


def _cpd(name: str, parents: list[str], weights: list[float], leak: float) -> TabularCPD:
    p1 = noisy_or_table(weights, leak)
    values = np.vstack([1.0 - p1, p1])
    if not parents:
        return TabularCPD(name, 2, values.reshape(2, 1))
    return TabularCPD(name, 2, values, evidence=parents, evidence_card=[2] * len(parents))


def chain_cpds(bn: DiscreteBayesianNetwork, name: str, parents: list[str], weights: list[float],
               leak: float) -> list[TabularCPD]:
    """CPDs of a noisy-OR, as a chain of 2-parent OR gates when it has > 2 parents.

    ``Z1 = noisyOR(p1, p2; leak)``, ``Z_i = Z_{i-1} OR (link_i AND p_{i+1})``; the last
    link is ``name`` itself. Exact, and every table has at most 8 entries.
    """
    if len(parents) <= 2:
        for p in parents:
            bn.add_edge(p, name)
        return [_cpd(name, parents, weights, leak)]
    out: list[TabularCPD] = []
    prev = f"{name}#1"
    bn.add_edges_from([(parents[0], prev), (parents[1], prev)])
    out.append(_cpd(prev, parents[:2], weights[:2], leak))
    for i in range(2, len(parents)):
        cur = name if i == len(parents) - 1 else f"{name}#{i}"
        bn.add_edges_from([(prev, cur), (parents[i], cur)])
        out.append(_cpd(cur, [prev, parents[i]], [1.0, weights[i]], 0.0))
        prev = cur
    return out


def break_cycles(traffic: dict[tuple[str, str], tuple[float, ...]]
                 ) -> tuple[set[tuple[str, str]], list[tuple[str, str]]]:
    """Split call edges into (kept, dropped) so kept edges form a DAG (see module doc).

    ``traffic`` maps an edge to its importance key (a number or a tuple compared
    lexicographically); the least important edge of each found cycle is dropped.
    """
    kept = {e for e in traffic if e[0] != e[1]}
    dropped = sorted(e for e in traffic if e[0] == e[1])
    g = nx.DiGraph(list(kept))
    for scc in list(nx.strongly_connected_components(g)):
        if len(scc) < 2:
            continue
        sub = g.subgraph(scc).copy()
        while True:
            try:
                cycle = nx.find_cycle(sub)
            except nx.NetworkXNoCycle:
                break
            edges = sorted(((u, v) for u, v in cycle), reverse=True)
            worst = min(edges, key=lambda e: traffic[e])
            sub.remove_edge(*worst)
            kept.discard(worst)
            dropped.append(worst)
    return kept, dropped


#: Which id of a merged group names it: the k8s node (what one cordons), then the host.
_REPRESENTATIVE_ORDER = {EntityKind.NODE: 0, EntityKind.HOST: 1, EntityKind.POD: 2}


def merge_same_machine(cand: dict[str, EntityKind], hosts_of: dict[str, list[str]],
                       priors: dict[str, float]) -> dict[str, tuple[str, ...]]:
    """Fold infrastructure candidates that carry exactly the same services into one.

    Why: ``host:X`` and ``node:X`` are usually one machine (``host.name`` =
    ``k8s.node.name``); as two candidates with identical children they are
    indistinguishable by any evidence, so the posterior of a certain host fault split
    ~0.5/0.5 between them (BENCHMARKS.md "Host/node duality"). Rule: group the infra
    candidates by the set of candidate services in ``hosts_of`` that run on them; each
    group of two or more becomes its first member by (node, host, pod; then id), with
    the largest prior of the group (so a learned prior on either id still counts).
    Mutates ``cand``, ``hosts_of`` and ``priors``; returns representative -> the others.
    """
    services_of: dict[str, set[str]] = {}
    for svc, hs in hosts_of.items():
        for h in hs:
            services_of.setdefault(h, set()).add(svc)
    groups: dict[frozenset[str], list[str]] = {}
    for h, svcs in services_of.items():
        groups.setdefault(frozenset(svcs), []).append(h)
    aliases: dict[str, tuple[str, ...]] = {}
    alias_of: dict[str, str] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        members.sort(key=lambda h: (_REPRESENTATIVE_ORDER.get(cand[h], 9), h))
        rep = members[0]
        aliases[rep] = tuple(members[1:])
        priors[rep] = max(priors[m] for m in members)
        for m in members[1:]:
            alias_of[m] = rep
            del cand[m], priors[m]
    if alias_of:
        for svc, hs in hosts_of.items():
            hosts_of[svc] = list(dict.fromkeys(alias_of.get(h, h) for h in hs))
    return dict(sorted(aliases.items()))


def build_model(ev: WindowEvidence, params: ModelParams | None = None) -> CausalModel:
    """Build the ranking network for a scored window (what-if queries build none:
    ``inference/blast.py``)."""
    prm = params or ModelParams()
    data = ev.window
    ents = data.entities
    learned_p = dict(prm.learned_priors)
    learned_k = dict(prm.learned_kind_priors)
    learned_w = {(c, e): w for c, e, w in prm.learned_strengths}
    cand: dict[str, EntityKind] = {}
    for eid, ent in ents.items():
        if ent.kind == EntityKind.SERVICE or ent.kind in VIRTUAL_KINDS:
            cand[eid] = ent.kind
    # A self-time/exclusive anomaly counts: it is the very signature of a saturated host
    # (every service on it slows in its own code), often without the service's latency
    # percentiles crossing the anomaly bar when most of its time is spent in callees.
    symptomatic = {s for s, e in ev.entities.items() if e.anomalous or e.self_anomalous}
    hosts_of: dict[str, list[str]] = {}
    users: dict[str, int] = {}
    for svc, infra in data.runs_on.items():
        for h in infra:
            if h in ents and ents[h].kind in INFRA_KINDS and svc in cand:
                users[h] = users.get(h, 0) + (1 if svc in symptomatic else 0)
    for svc, infra in data.runs_on.items():
        for h in infra:
            if users.get(h, 0) >= 2 and svc in cand:
                cand[h] = ents[h].kind
                hosts_of.setdefault(svc, []).append(h)
    priors: dict[str, float] = {}
    for x, kind in cand.items():
        e = ev.entities.get(x)
        base = prm.infra_prior if kind in INFRA_KINDS else prm.base_prior
        deployed = e is not None and bool(e.deployments)
        if x not in learned_p and kind.value not in learned_k:
            priors[x] = prm.deploy_prior if deployed else base
            continue
        p = learned_p.get(x, learned_k.get(kind.value, base))
        if deployed:  # a deployment multiplies the odds, whatever the entity's history
            p = from_odds(odds(p) * odds(prm.deploy_prior) / odds(prm.base_prior))
        priors[x] = p
    aliases = merge_same_machine(cand, hosts_of, priors)

    traffic: dict[tuple[str, str], float] = {}
    for (caller, callee), edge in ev.edges.items():
        if caller in cand and callee in cand and ents[caller].kind == EntityKind.SERVICE:
            callee_ev = ev.entities.get(callee)
            carried = edge.series.anomalous and callee_ev is not None and callee_ev.self_anomalous
            traffic[(caller, callee)] = (float(carried), float(edge.series.anomalous),
                                         float(edge.series.requests_baseline + edge.series.requests_incident))
    kept, dropped = break_cycles(traffic)
    strengths: dict[tuple[str, str], float] = {}
    for key in kept:
        edge = ev.edges[key]
        learned = learned_w.get(key)
        w = base_strength(edge.share) if learned is None else learned
        if edge.co_failure is not None:
            w = 0.3 * w + 0.7 * edge.co_failure
        if edge.is_async and learned is None:
            w *= prm.async_factor
        strengths[key] = min(prm.max_strength, max(prm.min_strength, w))
    callees: dict[str, list[str]] = {}
    for caller, callee in sorted(kept):
        callees.setdefault(caller, []).append(callee)
    dag = nx.DiGraph()
    dag.add_nodes_from(x for x in cand if cand[x] not in INFRA_KINDS)
    dag.add_edges_from((callee, caller) for caller, callee in kept)

    nodes: dict[str, Node] = {}
    for x in sorted(cand):
        nodes[f"F|{x}"] = Node(f"F|{x}", leak=priors[x])
    for x in nx.lexicographical_topological_sort(dag):
        e = ev.entities.get(x)
        observed = None
        if e is not None and (e.instrumented or e.forced):
            observed = int(e.anomalous)
        parents = [f"F|{x}"] + [f"F|{h}" for h in hosts_of.get(x, ())] + [f"A|{c}" for c in callees.get(x, ())]
        weights = [prm.fault_strength] + [prm.host_strength] * len(hosts_of.get(x, ())) + \
            [strengths[(x, c)] for c in callees.get(x, ())]
        leak = prm.graded(prm.leak, prm.weak_leak, e.strength) if observed == 1 and e is not None else prm.leak
        nodes[f"A|{x}"] = Node(f"A|{x}", tuple(parents), tuple(weights), leak, observed)
    for x in sorted(cand):
        e = ev.entities.get(x)
        if e is None or not e.instrumented or cand[x] in INFRA_KINDS:
            continue
        hs = hosts_of.get(x, ())
        fa = prm.graded(prm.false_alarm, prm.weak_false_alarm, e.self_strength) if e.self_anomalous \
            else prm.false_alarm
        nodes[f"S|{x}"] = Node(f"S|{x}", (f"F|{x}",) + tuple(f"F|{h}" for h in hs),
                               (prm.self_sensitivity,) + (prm.host_self_sensitivity,) * len(hs),
                               fa, int(e.self_anomalous))
    for (caller, callee), edge in sorted(ev.edges.items()):
        a = nodes.get(f"A|{callee}")
        if a is None or a.observed is not None or caller not in cand or caller == callee:
            continue
        s = edge.series
        fa = prm.graded(prm.false_alarm, prm.weak_false_alarm, s.strength) if s.anomalous else prm.false_alarm
        link = (prm.edge_sensitivity - fa) / (1.0 - fa)
        name = f"E|{caller}|{callee}"
        nodes[name] = Node(name, (f"A|{callee}",), (max(link, 0.0),), fa, int(s.anomalous))
    _signal_nodes(nodes, ev, prm, cand, callees, strengths, aliases)
    return CausalModel(nodes, cand, priors, strengths, {k: tuple(v) for k, v in hosts_of.items()},
                       tuple(dropped), prm, aliases)


def _signal_nodes(nodes: dict[str, Node], ev: WindowEvidence, prm: ModelParams, cand: dict[str, EntityKind],
                  callees: dict[str, list[str]], strengths: dict[tuple[str, str], float],
                  aliases: dict[str, tuple[str, ...]]) -> None:
    """Add the observed ``L|x`` and ``M|m`` detectors (module doc) to ``nodes``."""
    for x, v in sorted(ev.logs.items()):
        if x not in cand:
            continue
        cs = [c for c in callees.get(x, ()) if f"A|{c}" in nodes]
        fa = prm.graded(prm.false_alarm, prm.weak_false_alarm, v.strength) if v.fired else prm.false_alarm
        nodes[f"L|{x}"] = Node(f"L|{x}", (f"F|{x}",) + tuple(f"A|{c}" for c in cs),
                               (prm.log_sensitivity,) + tuple(prm.log_sensitivity * strengths[(x, c)] for c in cs),
                               fa, int(v.fired))
    rep = {m: r for r, ms in aliases.items() for m in ms}
    on: dict[str, list[str]] = {}
    for svc, infra in ev.window.runs_on.items():
        if svc in cand:
            for h in infra:
                on.setdefault(h, []).append(svc)
    for m, v in sorted(ev.metrics.items()):
        parents = [x for x in dict.fromkeys([rep.get(m, m)] + sorted(on.get(m, ()))) if x in cand]
        if not parents:
            continue
        fa = prm.graded(prm.false_alarm, prm.weak_false_alarm, v.strength) if v.fired else prm.false_alarm
        nodes[f"M|{m}"] = Node(f"M|{m}", tuple(f"F|{x}" for x in parents),
                               (prm.metric_sensitivity,) * len(parents), fa, int(v.fired))
