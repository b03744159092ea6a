"""All fault posteriors of a :class:`CausalModel`, exploiting what observation decouples.

Exact inference over a whole call graph is infeasible (issue 4: treewidth 24 at 100
services, 51-72 at 500), but once every instrumented ``A|x`` is observed the network
falls apart. The engine:

1. prunes barren hidden nodes (no observed descendant; their F keeps its prior);
2. links hidden variables that share a factor (a CPD with the evidence plugged in) and
   splits them into connected *pockets*;
3. singleton pockets ``{F|x}`` (the common case) are solved in closed form:
   ``logit P = logit prior + sum_children log P(obs | F=1) / P(obs | F=0)``;
4. in a larger pocket, an independent set of low-degree ``F`` variables whose children
   are all observed is eliminated analytically into likelihood tables over their
   neighbours (merged per scope, in log space); every small observed factor joins
   those tables. What is left -- hidden ``A`` of uninstrumented nodes, host faults,
   the likelihood nodes -- is a small pgmpy ``DiscreteBayesianNetwork`` (noisy-ORs
   chain-decomposed) solved exactly with ``VariableElimination``, a few joint queries
   over groups of <= 12 variables; eliminated ``F`` are recovered exactly as
   ``sum_h P(h | e) P(F | h, e)``;
5. if the core's min-fill elimination width exceeds ``ModelParams.max_exact_width``,
   loopy belief propagation (damped sum-product on the same pgmpy factors) replaces VE.
   Its error against exact VE is measured in ``tests/test_inference_posterior.py``.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np
from pgmpy.factors.discrete import DiscreteFactor, TabularCPD
from pgmpy.inference import BeliefPropagation, VariableElimination
from pgmpy.models import DiscreteBayesianNetwork, JunctionTree

from rootgraph.inference.network import CausalModel, Node, chain_cpds, noisy_or_table

MAX_ABSORB_SCOPE = 3
MAX_GROUP = 12


@dataclass(frozen=True, slots=True)
class PocketReport:
    """How one pocket was solved (for benchmarks and audit)."""

    size: int
    core: int
    width: int
    method: str  # closed-form | pgmpy-ve | loopy-bp


@dataclass(frozen=True, slots=True)
class Posteriors:
    """``P(F|x = 1 | evidence)`` per candidate entity, and how each pocket was solved."""

    fault: dict[str, float]
    pockets: tuple[PocketReport, ...]


def _likelihood(node: Node, hidden: list[str], obs: dict[str, int]) -> np.ndarray:
    """P(node = observed | hidden parents), axes in ``hidden`` order (parents order)."""
    off = 1.0 - node.leak
    ws = []
    for p, w in zip(node.parents, node.weights):
        if p in obs:
            off *= (1.0 - w) ** obs[p]
        else:
            ws.append(w)
    p1 = noisy_or_table(ws, 1.0 - off)
    t = p1 if node.observed else 1.0 - p1
    return t.reshape((2,) * len(hidden)) if hidden else t


def _align(table: np.ndarray, scope: tuple[str, ...], target: tuple[str, ...]) -> np.ndarray:
    perm = sorted(range(len(scope)), key=lambda i: target.index(scope[i]))
    return np.transpose(table, perm).reshape([2 if v in scope else 1 for v in target])


def min_fill(scopes: list[set[str]]) -> list[tuple[str, frozenset[str]]]:
    """Greedy min-fill elimination: [(variable, its clique when eliminated), ...].

    Fill scores are refreshed for the neighbours of each eliminated variable only (a
    heuristic either way); the induced width of the returned order is exact for it.
    """
    adj: dict[str, set[str]] = {}
    for s in scopes:
        for v in s:
            adj.setdefault(v, set()).update(s - {v})

    def score(v: str) -> tuple[int, int]:
        nb = list(adj[v])
        return sum(1 for i, a in enumerate(nb) for b in nb[i + 1:] if b not in adj[a]), len(nb)

    heap = [(score(v), v) for v in adj]
    heapq.heapify(heap)
    current = {v: sc for sc, v in heap}
    out: list[tuple[str, frozenset[str]]] = []
    while heap:
        sc, v = heapq.heappop(heap)
        if v not in adj or current.get(v) != sc:
            continue
        nb = adj.pop(v)
        out.append((v, frozenset(nb | {v})))
        for a in nb:
            adj[a].discard(v)
            adj[a].update(nb - {a})
        for a in nb:
            current[a] = score(a)
            heapq.heappush(heap, (current[a], a))
    return out


def elimination_width(scopes: list[set[str]]) -> int:
    """Induced width of the greedy min-fill order over an interaction graph."""
    return max((len(c) - 1 for _, c in min_fill(scopes)), default=0)


def compute_posteriors(model: CausalModel) -> Posteriors:
    """Posterior of every ``F`` node given the model's observations."""
    nodes = model.nodes
    obs = {n: v.observed for n, v in nodes.items() if v.observed is not None}
    relevant: set[str] = set()
    for name in reversed(list(nodes)):
        if name in obs or name in relevant:
            relevant.update(nodes[name].parents)
    hidden = {n for n in relevant if n not in obs}
    parent_of: dict[str, list[str]] = {}
    uf = {h: h for h in hidden}

    def find(x: str) -> str:
        while uf[x] != x:
            uf[x] = uf[uf[x]]
            x = uf[x]
        return x

    factors: list[tuple[str, tuple[str, ...]]] = []  # (node, hidden scope)
    for name, node in nodes.items():
        if name not in obs and name not in hidden:
            continue
        scope = tuple(p for p in node.parents if p in hidden)
        if name in hidden:
            scope = (name,) + scope
        if not scope:
            continue
        factors.append((name, scope))
        for v in scope[1:]:
            uf[find(v)] = find(scope[0])
        for v in scope:
            parent_of.setdefault(v, []).append(name)
    pockets: dict[str, list[str]] = {}
    for h in sorted(hidden):
        pockets.setdefault(find(h), []).append(h)
    fault = {x: model.priors[x] for x in model.candidates}
    reports: list[PocketReport] = []
    by_node = dict(factors)
    singles = 0
    for members in pockets.values():
        if len(members) == 1:
            (f,) = members
            lo = math.log(nodes[f].leak) - math.log1p(-nodes[f].leak)
            for child in parent_of.get(f, ()):
                if child != f:
                    t = _likelihood(nodes[child], [f], obs)
                    lo += math.log(t[1]) - math.log(t[0])
            fault[f[2:]] = 1.0 / (1.0 + math.exp(-lo)) if lo > -700 else 0.0
            singles += 1
            continue
        post, rep = _solve_pocket(model, members, parent_of, by_node, obs)
        fault.update(post)
        reports.append(rep)
    if singles:
        reports.append(PocketReport(singles, 0, 1, "closed-form"))
    return Posteriors(fault, tuple(reports))


def _cpd_table(node: Node, scope: tuple[str, ...], obs: dict[str, int]) -> np.ndarray:
    """P(node | hidden parents) over ``scope`` = (node, hidden parents in order)."""
    p1 = _likelihood(Node(node.name, node.parents, node.weights, node.leak, 1), list(scope[1:]), obs)
    return np.stack([1.0 - p1, p1])


def _solve_pocket(model: CausalModel, members: list[str], parent_of: dict[str, list[str]],
                  by_node: dict[str, tuple[str, ...]], obs: dict[str, int]) -> tuple[dict[str, float], PocketReport]:
    nodes = model.nodes
    member_set = set(members)
    touching = {m: list(parent_of[m]) for m in members}
    nbrs = {m: {v for n in touching[m] for v in by_node[n]} - {m} for m in members}
    # Eliminate an independent set of F variables analytically: the product of every
    # factor that mentions F (its prior, its children's CPDs or likelihoods) summed
    # over F is a table over F's neighbours; P(F | neighbours, e) is kept to recover F.
    absorbed: dict[str, tuple[str, ...]] = {}
    blocked: set[str] = set()
    for f in sorted((m for m in members if m.startswith("F|")), key=lambda m: (len(nbrs[m]), m)):
        if f in blocked or not nbrs[f] or len(nbrs[f]) > MAX_ABSORB_SCOPE:
            continue
        absorbed[f] = tuple(sorted(nbrs[f]))
        blocked.update(nbrs[f] | {f})
    pools: dict[tuple[str, ...], np.ndarray] = {}
    cond: dict[str, np.ndarray] = {}
    used: set[str] = set()
    for f, scope in absorbed.items():
        target = (f,) + scope
        logphi = np.log(np.array([1.0 - nodes[f].leak, nodes[f].leak])).reshape([2] + [1] * len(scope))
        for n in touching[f]:
            if n == f:
                continue
            used.add(n)
            sc = by_node[n]
            table = _likelihood(nodes[n], list(sc), obs) if n in obs else _cpd_table(nodes[n], sc, obs)
            logphi = logphi + _align(np.log(table), sc, target)
        lam = np.logaddexp(logphi[0], logphi[1])
        cond[f] = np.exp(logphi[1] - lam)
        pools[scope] = pools.get(scope, 0.0) + lam
    core = [m for m in members if m not in absorbed]
    big_obs: list[str] = []
    for n, sc in by_node.items():
        if n in used or n not in obs or not (set(sc) & member_set):
            continue
        if len(sc) <= MAX_ABSORB_SCOPE:
            key = tuple(sorted(sc))
            pools[key] = pools.get(key, 0.0) + _align(np.log(_likelihood(nodes[n], list(sc), obs)), sc, key)
        else:
            big_obs.append(n)
    bn, evidence = _core_network(model, core, used, big_obs, pools)
    facs = _reduced_factors(bn, evidence)
    order = min_fill([set(v) for v, _ in facs])
    width = max((len(c) - 1 for _, c in order), default=0)
    needed = [(m,) for m in core if m.startswith("F|")] + sorted(set(absorbed.values()))
    if width > model.params.max_exact_width:
        joints, method = _bp_joints(facs, needed), "loopy-bp"
    elif len({v for sc in needed for v in sc}) <= MAX_GROUP:
        joints, method = _ve_joints(bn, evidence, needed), "pgmpy-ve"
    else:
        joints, method = _jt_joints(facs, order, needed), "pgmpy-junction-tree"
    post = {m[2:]: float(joints[(m,)][1]) for m in core if m.startswith("F|")}
    for f, scope in absorbed.items():
        post[f[2:]] = float(np.sum(joints[scope] * cond[f]))
    return post, PocketReport(len(members), len(core) + len(pools), width, method)


def _core_network(model: CausalModel, core: list[str], consumed: set[str], big_obs: list[str],
                  pools: dict[tuple[str, ...], np.ndarray]) -> tuple[DiscreteBayesianNetwork, dict[str, int]]:
    """pgmpy network of the core: hidden nodes, large observed nodes, likelihood nodes.

    A hidden node whose CPD went into an eliminated F's table is a uniform root here:
    that table (a likelihood node over its scope) carries the dependency instead.
    """
    nodes = model.nodes
    bn = DiscreteBayesianNetwork()
    keep = set(core)
    bn.add_nodes_from(sorted(keep))
    cpds: list[TabularCPD] = []
    evidence: dict[str, int] = {}
    for name in [n for n in nodes if n in keep] + big_obs:
        if name in consumed:
            cpds.append(TabularCPD(name, 2, [[0.5], [0.5]]))
            continue
        node = nodes[name]
        leak, parents, weights = node.leak, [], []
        for p, w in zip(node.parents, node.weights):
            if p in keep:
                parents.append(p)
                weights.append(w)
            elif nodes[p].observed:
                leak = 1.0 - (1.0 - leak) * (1.0 - w)
        if name not in keep:
            bn.add_node(name)
            evidence[name] = int(node.observed or 0)
        cpds.extend(chain_cpds(bn, name, parents, weights, leak))
    for i, (scope, loglam) in enumerate(sorted(pools.items())):
        name = f"L#{i}"
        lam = np.exp(loglam - np.max(loglam)).reshape(-1)
        bn.add_node(name)
        bn.add_edges_from((s, name) for s in scope)
        cpds.append(TabularCPD(name, 2, np.vstack([1.0 - lam, lam]), evidence=list(scope),
                               evidence_card=[2] * len(scope)))
        evidence[name] = 1
    bn.add_cpds(*cpds)
    return bn, evidence


def _reduced_factors(bn: DiscreteBayesianNetwork, evidence: dict[str, int]) -> list[tuple[list[str], np.ndarray]]:
    """The network's CPDs as factors with the evidence plugged in (empty scopes dropped)."""
    facs = []
    for cpd in bn.cpds:
        phi = cpd.to_factor()
        ev = [(v, evidence[v]) for v in phi.variables if v in evidence]
        if ev:
            phi = phi.reduce(ev, inplace=False)
        if phi.variables:
            facs.append((list(phi.variables), np.asarray(phi.values, dtype=float)))
    return facs


def _jt_joints(facs: list[tuple[list[str], np.ndarray]], order: list[tuple[str, frozenset[str]]],
               needed: list[tuple[str, ...]]) -> dict[tuple[str, ...], np.ndarray]:
    """Exact: pgmpy ``BeliefPropagation`` on the junction tree of the min-fill order.

    One calibration yields every marginal, where VE would need one query per group
    (pgmpy re-prunes the model on every query, which dominates on large pockets).
    Cliques are the elimination cliques; each clique hangs below the clique of its
    earliest-eliminated neighbour (running intersection holds by construction).
    """
    pos = {v: i for i, (v, _) in enumerate(order)}
    clique = {v: tuple(sorted(c, key=pos.__getitem__)) for v, c in order}
    parent = {}
    for v, c in order:
        rest = [u for u in c if u != v]
        if rest:
            parent[v] = min(rest, key=pos.__getitem__)
    pots = {v: np.ones((2,) * len(clique[v])) for v in clique}
    for vs, t in facs:
        home = min(vs, key=pos.__getitem__)
        pots[home] = pots[home] * _align(t, tuple(vs), clique[home])
    comp: dict[str, list[str]] = {}
    for v, _ in reversed(order):
        root = v
        while root in parent:
            root = parent[root]
        comp.setdefault(root, []).append(v)
    beliefs: dict[str, np.ndarray] = {}
    for root, members in comp.items():
        if len(members) == 1:
            beliefs[root] = pots[root] / pots[root].sum()
            continue
        jt = JunctionTree()
        jt.add_nodes_from(clique[v] for v in members)
        jt.add_edges_from((clique[v], clique[parent[v]]) for v in members if v in parent)
        jt.add_factors(*[DiscreteFactor(list(clique[v]), [2] * len(clique[v]), pots[v]) for v in members])
        bp = BeliefPropagation(jt)
        bp.calibrate()
        for cl, phi in bp.get_clique_beliefs().items():
            v = cl[0]
            vals = _align(np.asarray(phi.values), tuple(phi.variables), cl)
            beliefs[v] = vals / vals.sum()
    out: dict[tuple[str, ...], np.ndarray] = {}
    for scope in needed:
        home = min(scope, key=pos.__getitem__)
        out[scope] = _marginal(beliefs[home], list(clique[home]), scope)
    return out


def _groups(needed: list[tuple[str, ...]]) -> list[list[str]]:
    groups: list[list[str]] = []
    for scope in sorted(needed, key=len, reverse=True):
        for g in groups:
            if set(scope) <= set(g):
                break
        else:
            for g in groups:
                if len(set(g) | set(scope)) <= MAX_GROUP:
                    g.extend(v for v in scope if v not in g)
                    break
            else:
                groups.append(list(scope))
    return groups


def _marginal(values: np.ndarray, variables: list[str], scope: tuple[str, ...]) -> np.ndarray:
    other = tuple(i for i, v in enumerate(variables) if v not in scope)
    m = values.sum(axis=other) if other else values
    kept = [v for v in variables if v in scope]
    return np.transpose(m, [kept.index(v) for v in scope])


def _ve_joints(bn: DiscreteBayesianNetwork, evidence: dict[str, int],
               needed: list[tuple[str, ...]]) -> dict[tuple[str, ...], np.ndarray]:
    ve = VariableElimination(bn)
    out: dict[tuple[str, ...], np.ndarray] = {}
    for group in _groups(needed):
        phi = ve.query(group, evidence=evidence, joint=True, show_progress=False)
        for scope in needed:
            if scope not in out and set(scope) <= set(group):
                out[scope] = _marginal(phi.values, list(phi.variables), scope)
    return out


def _bp_joints(facs: list[tuple[list[str], np.ndarray]], needed: list[tuple[str, ...]],
               iters: int = 300, damping: float = 0.5, tol: float = 1e-10) -> dict[tuple[str, ...], np.ndarray]:
    """Damped loopy sum-product over the core's CPD factors with evidence plugged in.

    Joints over a scope are read from the belief of the smallest factor covering it
    (every absorbed scope has its own likelihood factor), marginals from variables.
    """
    var_f: dict[str, list[int]] = {}
    for i, (vs, _) in enumerate(facs):
        for v in vs:
            var_f.setdefault(v, []).append(i)
    f2v = {(i, v): np.full(2, 0.5) for i, (vs, _) in enumerate(facs) for v in vs}

    def v2f(v: str, i: int) -> np.ndarray:
        m = np.ones(2)
        for j in var_f[v]:
            if j != i:
                m = m * f2v[(j, v)]
        return m / m.sum()

    for _ in range(iters):
        delta = 0.0
        for i, (vs, t) in enumerate(facs):
            ins = [v2f(v, i) for v in vs]
            for k, v in enumerate(vs):
                x = t
                for a, m in enumerate(ins):
                    if a != k:
                        x = x * m.reshape([2 if b == a else 1 for b in range(len(vs))])
                new = x.sum(axis=tuple(a for a in range(len(vs)) if a != k))
                new = new / new.sum()
                new = damping * f2v[(i, v)] + (1.0 - damping) * new
                delta = max(delta, float(np.abs(new - f2v[(i, v)]).max()))
                f2v[(i, v)] = new
        if delta < tol:
            break
    out: dict[tuple[str, ...], np.ndarray] = {}
    for scope in needed:
        if len(scope) == 1:
            out[scope] = v2f(scope[0], -1)
            continue
        i = min((i for i, (vs, _) in enumerate(facs) if set(scope) <= set(vs)), key=lambda i: len(facs[i][0]))
        vs, t = facs[i]
        b = t
        for a, v in enumerate(vs):
            b = b * v2f(v, i).reshape([2 if c == a else 1 for c in range(len(vs))])
        out[scope] = _marginal(b / b.sum(), vs, scope)
    return out
