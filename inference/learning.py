"""Learning from outcomes: re-estimate priors, link strengths and action confidence.

Issue 7, stage 5 of the incident-response model: the answers people confirmed become
training data. Everything is estimated with pgmpy's Bayesian parameter estimator
(:class:`~pgmpy.parameter_estimator.DiscreteBayesianEstimator`) under a
Dirichlet prior centred on what the model believes today, from pandas frames built out
of the *recorded* evidence, so:

* a handful of confirmed incidents moves a parameter a little, many move it a lot
  (the pseudo-count ``ess`` is how many incidents the current belief is worth);
* with no data nothing changes (the posterior mean is the centre).

Frames (one row per ...):

* **candidates** (incident x implicated candidate): ``entity, kind, deployed,
  anomalous, self_anomalous, cause``. *Implicated* = anomalous, self-anomalous,
  recently deployed, an infrastructure candidate (those exist only when shared by
  symptomatic services) or the confirmed cause. The rate ``P(cause | group)`` is
  turned into a prior through odds ratios against the population, so learned priors
  keep the per-window scale of the hand-set ones:
  ``odds(prior_kind) = odds(base) * odds(P(cause | kind)) / odds(P(cause))`` and
  ``odds(prior_x) = odds(prior_kind) * odds(P(cause | x)) / odds(P(cause | kind))``
  (entity rates shrink to their kind's rate, kind rates to the population rate).
  Entity and kind rates use non-deployed rows only; deployments have their own odds
  ratio (``deployed -> cause``), so a deploy-caused incident is not counted twice.
* **edges** (incident x kept call edge whose callee carried the confirmed fault):
  ``edge, propagated`` -- did the caller turn anomalous? The rate replaces the
  traffic-share base strength of the link.
* **actions** (incident with an action and an outcome): ``key, resolved``, key =
  action + :func:`~rootgraph.inference.actions.action_context`; confidence is the
  smoothed resolve rate, shown with its counts ("rollback resolved 7 of 8 ...").

"None of these" feedback says the answer was wrong but not what was right: it is not
learned from (it is counted in the report).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from rootgraph.graph.records import EntityKind, WindowData
from rootgraph.inference.actions import action_context
from rootgraph.inference.evidence import INFRA_KINDS, EvidenceConfig, WindowEvidence, score_window
from rootgraph.inference.network import CausalModel, ModelParams, build_model, from_odds, odds
from rootgraph.inference.rank import RootCauseRanker
from rootgraph.inference.topology import base_strength, bfs_up, callers_of

from pgmpy.models import DiscreteBayesianNetwork
from pgmpy.parameter_estimator import DiscreteBayesianEstimator

__all__ = [
    "Accuracy", "LabelledIncident", "LearnReport", "LearningConfig", "action_frame",
    "candidate_frame", "edge_frame", "evaluate", "learn",
]

logging.getLogger("pgmpy").setLevel(logging.ERROR)

#: feedback actions that map onto a suggested action kind
LEARNABLE_ACTIONS = ("rollback", "restart", "scale", "failover")
#: made_worse is learned as not resolved (the action did not resolve the cause)
OUTCOMES = ("resolved", "not_resolved", "made_worse")


@dataclass(frozen=True, slots=True)
class LabelledIncident:
    """A recorded incident and what people confirmed: the unit of training data.

    ``confirmed_cause`` is empty for "none of these"; ``action``/``outcome`` use the
    feedback vocabulary (``rollback`` ..., ``resolved`` | ``not_resolved``).
    """

    id: str
    window: WindowData
    symptoms: tuple[str, ...]
    confirmed_cause: str
    action: str = ""
    outcome: str = ""


@dataclass(frozen=True, slots=True)
class LearningConfig:
    """Pseudo-counts: how many incidents' worth of weight the current belief carries."""

    entity_ess: float = 4.0
    kind_ess: float = 40.0
    deploy_ess: float = 20.0
    strength_ess: float = 4.0
    action_ess: float = 2.0
    min_prior: float = 1e-4
    max_prior: float = 0.5

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if getattr(self, f.name) <= 0:
                raise ValueError(f"{f.name}: must be > 0")


@dataclass(frozen=True)
class LearnReport:
    """What a training run saw and did; stored as the version's ``metrics_json``."""

    incidents: int
    used: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    candidate_rows: int
    edge_rows: int
    action_rows: int
    population_rate: float
    deploy_odds_ratio: float

    def to_dict(self) -> dict:
        return {"incidents": self.incidents, "used": list(self.used),
                "skipped": [list(s) for s in self.skipped], "candidate_rows": self.candidate_rows,
                "edge_rows": self.edge_rows, "action_rows": self.action_rows,
                "population_rate": self.population_rate, "deploy_odds_ratio": self.deploy_odds_ratio}


@dataclass(frozen=True)
class Accuracy:
    """AC@k over incidents with a confirmed cause: the cause is among the first k answers."""

    n: int
    ac1: float
    ac3: float
    #: incident id -> 1-based position of the confirmed cause in the answer, 0 = absent
    positions: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"n": self.n, "ac1": self.ac1, "ac3": self.ac3}


@dataclass(frozen=True, slots=True)
class _Scored:
    ex: LabelledIncident
    ev: WindowEvidence
    model: CausalModel


def _score(examples: Iterable[LabelledIncident], params: ModelParams,
           cfg: EvidenceConfig) -> tuple[list[_Scored], list[tuple[str, str]]]:
    """Evidence + candidate set of every usable example (the model's own view of it)."""
    base = dataclasses.replace(params, learned_priors=(), learned_strengths=(), learned_kind_priors=())
    out, skipped = [], []
    for ex in examples:
        if not ex.confirmed_cause:
            skipped.append((ex.id, "none of these"))
            continue
        try:
            ev = score_window(ex.window, ex.symptoms, cfg)
        except LookupError as exc:
            skipped.append((ex.id, f"unreplayable: {exc}"))
            continue
        model = build_model(ev, base)
        merged_into = {a: rep for rep, rest in model.aliases.items() for a in rest}
        if ex.confirmed_cause in merged_into:  # host:X confirmed, node:X ranked: one machine
            ex = dataclasses.replace(ex, confirmed_cause=merged_into[ex.confirmed_cause])
        if ex.confirmed_cause not in model.candidates:
            skipped.append((ex.id, f"confirmed cause {ex.confirmed_cause} is not a candidate in its window"))
            continue
        out.append(_Scored(ex, ev, model))
    return out, skipped


def candidate_frame(scored: Sequence[_Scored]) -> pd.DataFrame:
    rows = []
    for s in scored:
        for x, kind in s.model.candidates.items():
            e = s.ev.entities.get(x)
            deployed = bool(e is not None and e.deployments)
            anomalous = bool(e is not None and e.anomalous)
            self_anom = bool(e is not None and e.self_anomalous)
            if not (x == s.ex.confirmed_cause or anomalous or self_anom or deployed or kind in INFRA_KINDS):
                continue
            rows.append({"incident": s.ex.id, "entity": x, "kind": kind.value, "deployed": int(deployed),
                         "anomalous": int(anomalous), "self_anomalous": int(self_anom),
                         "cause": int(x == s.ex.confirmed_cause)})
    return pd.DataFrame(rows, columns=["incident", "entity", "kind", "deployed", "anomalous",
                                       "self_anomalous", "cause"])


def _base_strength(s: _Scored, key: tuple[str, str], prm: ModelParams) -> float:
    edge = s.ev.edges[key]
    w = base_strength(edge.share)
    if edge.is_async:
        w *= prm.async_factor
    return min(prm.max_strength, max(prm.min_strength, w))


def edge_frame(scored: Sequence[_Scored], prm: ModelParams) -> pd.DataFrame:
    rows = []
    for s in scored:
        anomalous = {x for x, e in s.ev.entities.items() if e.anomalous}
        # Where the fault went: up the callers of the network's edges, through anomalous
        # ones. Call edges only: the host -> services links of ``explain.caller_map`` are
        # not followed (they never were here), so a host cause yields no edge rows.
        callers = callers_of(s.model.strengths)
        carried = set(bfs_up(callers, s.ex.confirmed_cause, anomalous))
        for caller, callee in sorted(s.model.strengths):
            if callee in carried:
                rows.append({"incident": s.ex.id, "edge": f"{caller}\t{callee}",
                             "center": _base_strength(s, (caller, callee), prm),
                             "propagated": int(caller in anomalous)})
    return pd.DataFrame(rows, columns=["incident", "edge", "center", "propagated"])


def action_frame(scored: Sequence[_Scored]) -> pd.DataFrame:
    rows = []
    for s in scored:
        if s.ex.action not in LEARNABLE_ACTIONS or s.ex.outcome not in OUTCOMES:
            continue
        c = s.ex.confirmed_cause
        e = s.ev.entities.get(c)
        ctx = action_context(s.model.candidates[c], e.deployments if e is not None else (),
                             s.ex.window.incident.start_s)
        rows.append({"incident": s.ex.id, "key": f"{s.ex.action}\t{ctx}",
                     "resolved": int(s.ex.outcome == "resolved")})
    return pd.DataFrame(rows, columns=["incident", "key", "resolved"])


def dirichlet_rates(df: pd.DataFrame, group: str, label: str, centers: dict, ess: float) -> dict:
    """``P(label = 1 | group)`` per group, Bayesian estimate with Dirichlet pseudo-counts.

    Each group's prior is ``ess`` virtual rows with rate ``centers[group]``: the answer
    is ``(k + ess * c) / (n + ess)``, computed by pgmpy's ``DiscreteBayesianEstimator``
    on the two-node network ``group -> label``.
    """
    if df.empty:
        return {}
    states = sorted(df[group].unique().tolist(), key=str)
    data = df[[group, label]].copy()
    bn = DiscreteBayesianNetwork([(group, label)])
    c = np.array([min(1 - 1e-9, max(1e-9, centers[s])) for s in states])
    est = DiscreteBayesianEstimator(
        state_names={group: states, label: [0, 1]}, prior_type="dirichlet",
        pseudo_counts={label: np.vstack([ess * (1 - c), ess * c]), group: np.ones((len(states), 1))},
    ).fit(bn, data)
    cpd = next(p for p in est.parameters_ if p.variable == label)
    values = cpd.get_values()
    order = cpd.state_names[group]
    return {s: float(values[1, order.index(s)]) for s in states}


def _clip(p: float, cfg: LearningConfig) -> float:
    return min(cfg.max_prior, max(cfg.min_prior, p))


def learn(examples: Iterable[LabelledIncident], base: ModelParams, version: str,
          config: LearningConfig | None = None,
          evidence_config: EvidenceConfig | None = None) -> tuple[ModelParams, LearnReport]:
    """A new parameter set named ``version``, re-estimated from ``examples``.

    ``base`` should be the hand-set parameters (its learned tables are replaced, and its
    ``deploy_prior`` is the centre of the deployment estimate): training always uses all
    the feedback there is, so re-training on the same feedback gives the same parameters.
    """
    cfg = config or LearningConfig()
    examples = list(examples)
    scored, skipped = _score(examples, base, evidence_config or EvidenceConfig())
    cands = candidate_frame(scored)
    plain = cands[cands["deployed"] == 0]

    kind_priors: dict[str, float] = {}
    entity_priors: dict[str, float] = {}
    r = float(plain["cause"].mean()) if len(plain) else 0.0
    if len(plain) and 0.0 < r < 1.0:
        kinds = dirichlet_rates(plain, "kind", "cause", {k: r for k in plain["kind"].unique()}, cfg.kind_ess)
        for k, pk in kinds.items():
            base_k = base.infra_prior if EntityKind(k) in INFRA_KINDS else base.base_prior
            kind_priors[k] = _clip(from_odds(odds(base_k) * odds(pk) / odds(r)), cfg)
        kind_of = dict(zip(plain["entity"], plain["kind"]))
        ents = dirichlet_rates(plain, "entity", "cause", {x: kinds[kind_of[x]] for x in kind_of}, cfg.entity_ess)
        for x, px in ents.items():
            k = kind_of[x]
            entity_priors[x] = _clip(from_odds(odds(kind_priors[k]) * odds(px) / odds(kinds[k])), cfg)

    deploy_prior, deploy_or = base.deploy_prior, odds(base.deploy_prior) / odds(base.base_prior)
    r_all = float(cands["cause"].mean()) if len(cands) else 0.0
    if len(cands) and 0.0 < r_all < 1.0 and cands["deployed"].any():
        center1 = from_odds(odds(r_all) * deploy_or)
        dep = dirichlet_rates(cands, "deployed", "cause", {0: r_all, 1: center1}, cfg.deploy_ess)
        p0, p1 = dep.get(0, r_all), dep.get(1, center1)
        deploy_or = odds(p1) / odds(p0)
        deploy_prior = _clip(from_odds(odds(base.base_prior) * deploy_or), cfg)

    edges = edge_frame(scored, base)
    strengths: list[tuple[str, str, float]] = []
    if len(edges):
        centers = edges.groupby("edge")["center"].mean().to_dict()
        for key, w in sorted(dirichlet_rates(edges, "edge", "propagated", centers, cfg.strength_ess).items()):
            caller, callee = key.split("\t")
            strengths.append((caller, callee, min(base.max_strength, max(base.min_strength, w))))

    acts = action_frame(scored)
    stats: list[tuple[str, str, int, int, float]] = []
    if len(acts):
        conf = dirichlet_rates(acts, "key", "resolved", {k: 0.5 for k in acts["key"].unique()}, cfg.action_ess)
        counts = acts.groupby("key")["resolved"].agg(["sum", "count"])
        for key, p in sorted(conf.items()):
            action, ctx = key.split("\t")
            stats.append((action, ctx, int(counts.loc[key, "sum"]), int(counts.loc[key, "count"]), p))

    params = dataclasses.replace(
        base, version=version, deploy_prior=deploy_prior,
        learned_priors=tuple(sorted(entity_priors.items())),
        learned_kind_priors=tuple(sorted(kind_priors.items())),
        learned_strengths=tuple(strengths), action_stats=tuple(stats))
    report = LearnReport(len(examples), tuple(s.ex.id for s in scored), tuple(skipped), len(cands),
                         len(edges), len(acts), r, deploy_or)
    return params, report


def evaluate(params: ModelParams, examples: Iterable[LabelledIncident],
             evidence_config: EvidenceConfig | None = None, top_k: int = 5) -> Accuracy:
    """Replay ``examples`` with ``params``: AC@1 and AC@3 against the confirmed causes.

    Position in the answer, not the tie-aware ``rank``: a tie at the top must not count
    as two hits.
    """
    ranker = RootCauseRanker(params, evidence_config)
    positions: dict[str, int] = {}
    for ex in examples:
        if not ex.confirmed_cause:
            continue
        try:
            ranking = ranker.rank(ex.window, ex.symptoms, top_k)
        except LookupError:
            continue
        order = [{c.entity, *ranking.aliases.get(c.entity, ())} for c in ranking.causes]
        positions[ex.id] = next((i + 1 for i, ids in enumerate(order) if ex.confirmed_cause in ids), 0)
    n = len(positions)
    hits = list(positions.values())
    ac1 = sum(1 for p in hits if p == 1) / n if n else 0.0
    ac3 = sum(1 for p in hits if 1 <= p <= 3) / n if n else 0.0
    return Accuracy(n, ac1, ac3, positions)
