"""``RootCauseRanker``: the one public ranking query over a window of statistics.

A thin class over the engine (STYLE.md #5, #6): it holds configuration, and ``rank``
runs evidence -> model -> posteriors -> explanations; the steps stay private modules.
"""

from __future__ import annotations

from typing import Sequence

from rootgraph.graph.records import WindowData
from rootgraph.inference.actions import action_context, suggest_actions, with_confidence
from rootgraph.inference.errors import InvalidArgument
from rootgraph.inference.evidence import EvidenceConfig, score_window
from rootgraph.inference.explain import (caller_map, evidence_items, explanation, observed_fault,
                                         propagation_paths, why_not)
from rootgraph.inference.network import ModelParams, build_model
from rootgraph.inference.posterior import compute_posteriors
from rootgraph.inference.results import Cause, Ranking
from rootgraph.results import is_plausible


class RootCauseRanker:
    """Ranks root-cause candidates of an incident window by ``P(fault | evidence)``.

    ``min_probability``: below it the answer is "no clear cause" (a low top posterior
    is an answer, not a failure). ``tie_tolerance``: causes closer than this share a
    rank and the tie is reported in the notes.
    """

    def __init__(self, params: ModelParams | None = None, evidence_config: EvidenceConfig | None = None,
                 min_probability: float = 0.3, tie_tolerance: float = 0.02) -> None:
        if not 0.0 <= min_probability <= 1.0:
            raise InvalidArgument("min_probability", f"must be in [0, 1], got {min_probability}")
        if not 0.0 <= tie_tolerance < 1.0:
            raise InvalidArgument("tie_tolerance", f"must be in [0, 1), got {tie_tolerance}")
        self.params = params or ModelParams()
        self.evidence_config = evidence_config or EvidenceConfig()
        self.min_probability = min_probability
        self.tie_tolerance = tie_tolerance

    @property
    def model_version(self) -> str:
        """Version of the parameter set every answer of this ranker names."""
        return self.params.version

    def rank(self, window: WindowData, symptoms: Sequence[str] = (), top_k: int = 5) -> Ranking:
        """Rank the candidates of ``window``; ``symptoms`` are forced anomalous.

        Raises :class:`InvalidArgument` for ``top_k < 1`` and :class:`UnknownEntity` for
        a symptom that is not in the window.
        """
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise InvalidArgument("top_k", f"must be an integer >= 1, got {top_k!r}")
        if isinstance(symptoms, str):
            raise InvalidArgument("symptoms", "must be a sequence of entity ids, not a string")
        ev = score_window(window, symptoms, self.evidence_config)
        model = build_model(ev, self.params)
        post = compute_posteriors(model).fault
        version = self.params.version
        notes: list[str] = []
        if model.dropped_edges:
            notes.append("call cycles broken by ignoring the lowest-traffic edge(s): "
                         + ", ".join(f"{a}\u2192{b}" for a, b in model.dropped_edges))
        if not ev.symptoms:
            notes.insert(0, "no anomalous entity in the incident window and no symptom named")
            return Ranking((), (), version, True, tuple(notes), post, model.aliases)
        order = sorted(post, key=lambda x: (-post[x], x))
        up = caller_map(model)
        causes: list[Cause] = []
        rank = 0
        for i, x in enumerate(order[:top_k]):
            if i == 0 or post[order[i - 1]] - post[x] > self.tie_tolerance:
                rank = i + 1
            e = ev.entities.get(x)
            kind = model.candidates[x].value
            items = evidence_items(model, ev, x)
            paths = propagation_paths(model, ev, x, up)
            deps = e.deployments if e is not None else ()
            actions = suggest_actions(x, model.candidates[x], ev,
                                      plausible=is_plausible(post[x], post[order[0]]))
            if self.params.action_stats:
                ctx = action_context(model.candidates[x], deps, window.incident.start_s)
                actions = with_confidence(actions, ctx, self.params.action_stats)
            causes.append(Cause(x, kind, post[x], rank, explanation(model.display_name(x), kind, post[x], items,
                                                                    paths), items, paths, deps, actions,
                                *observed_fault(model.candidates[x], items)))
        top = order[0]
        no_clear = post[top] < self.min_probability
        if no_clear:
            notes.insert(0, f"no clear cause: best candidate {top} has P={post[top]:.2f} "
                            f"< {self.min_probability:.2f}")
        if len(order) > 1:
            second = order[1]
            if post[top] - post[second] <= self.tie_tolerance:
                notes.append(f"tie: {top} and {second} are indistinguishable from this evidence "
                             f"(P={post[top]:.2f} vs {post[second]:.2f})")
            else:
                notes.append(why_not(model, ev, top, second, post[top], post[second], up))
        for c in causes:
            if c.entity in model.aliases:
                notes.append(f"{model.display_name(c.entity)}: one candidate, they run exactly the same "
                             f"services (the same machine), so no evidence tells them apart")
        return Ranking(tuple(causes), ev.symptoms, version, no_clear, tuple(notes), post, model.aliases)
