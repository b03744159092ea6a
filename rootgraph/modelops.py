"""``rootgraph model …``: train, evaluate, promote, roll back and list model versions.

Talks to Neo4j directly (like ``rootgraph graph``): the training data is the audit
trail itself -- every recorded incident with feedback, replayed from its stored inputs
(``inputs_gz``: the window, symptoms and top_k it was ranked with) -- so no separate
dataset can drift from what the server actually saw.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass

from rootgraph.graph.incidents import IncidentStore, unpack_inputs
from rootgraph.graph.records import decode_window
from rootgraph.graph.model_versions import ModelStore, ModelVersionRecord
from rootgraph.inference.learning import Accuracy, LabelledIncident, LearningConfig, evaluate, learn
from rootgraph.inference.network import DEFAULT_PARAMS, ModelParams
from rootgraph.inference.serialize import params_from_json, params_to_json

__all__ = ["ModelOps"]


def examples_from(incidents: IncidentStore) -> list[LabelledIncident]:
    """Every incident with feedback, as learning examples (latest feedback wins)."""
    out = []
    for inc_id, _version, gz, fb in incidents.labelled_incidents():
        if not gz:
            continue
        doc = json.loads(unpack_inputs(gz))
        out.append(LabelledIncident(
            id=inc_id, window=decode_window(doc["window"]), symptoms=tuple(doc.get("symptoms", ())),
            confirmed_cause="" if fb.none_of_these else fb.confirmed_cause,
            action=fb.action, outcome=fb.outcome))
    return out


@dataclass
class ModelOps:
    models: ModelStore
    incidents: IncidentStore

    def _current(self) -> ModelVersionRecord:
        self.models.ensure_default(DEFAULT_PARAMS.version, params_to_json(DEFAULT_PARAMS))
        cur = self.models.current()
        assert cur is not None  # ensure_default makes one current when none is
        return cur

    def params(self, version: str) -> ModelParams:
        return params_from_json(self.models.get(version).params_json)

    def train(self, version: str | None = None, config: LearningConfig | None = None) -> tuple[ModelVersionRecord, dict]:
        """Learn a candidate from all feedback; its parent is the current version.

        Always estimated from the hand-set parameters (the built-in version), never on
        top of an earlier learned set: every run uses all the feedback there is, so
        starting from a learned set would count the same incidents twice.
        """
        cur = self._current()
        base = params_from_json(self.models.get(DEFAULT_PARAMS.version).params_json)
        examples = examples_from(self.incidents)
        params, report = learn(examples, base, version or "pending", config)
        if version is None:
            digest = hashlib.sha256(params_to_json(params).encode()).hexdigest()[:6]
            version = f"learned-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{digest}"
            params = dataclasses.replace(params, version=version)
        metrics = {"training": report.to_dict()}
        rec = self.models.create(version, cur.version, params_to_json(params), json.dumps(metrics))
        return rec, metrics

    def evaluate(self, version: str) -> dict:
        """AC@1/AC@3 of ``version`` vs the current version on incidents with feedback.

        ``unseen`` restricts to incidents the candidate was not trained on (recorded
        after training): the honest number once new feedback arrives.
        """
        cand = self.models.get(version)
        cur = self._current()
        examples = examples_from(self.incidents)
        trained = set(json.loads(cand.metrics_json or "{}").get("training", {}).get("used", ()))
        unseen = [e for e in examples if e.id not in trained]
        a = evaluate(params_from_json(cand.params_json), examples)
        b = evaluate(params_from_json(cur.params_json), examples)
        out = {"version": version, "current": cur.version, "incidents": a.n,
               "candidate": a.to_dict(), "current_model": b.to_dict(),
               "unseen": {"candidate": evaluate(params_from_json(cand.params_json), unseen).to_dict(),
                          "current_model": evaluate(params_from_json(cur.params_json), unseen).to_dict()},
               "changed": _changed(a, b), "at": int(time.time() * 1000)}
        metrics = json.loads(cand.metrics_json or "{}")
        metrics["evaluation"] = out
        self.models.set_metrics(version, json.dumps(metrics))
        return out

    def promote(self, version: str) -> ModelVersionRecord:
        self._current()
        return self.models.promote(version)

    def rollback(self) -> ModelVersionRecord:
        return self.models.rollback()

    def list(self) -> list[ModelVersionRecord]:
        self._current()
        return self.models.list()


def _changed(a: Accuracy, b: Accuracy) -> dict:
    """Incidents whose top-1 verdict differs: {id: [candidate position, current position]}."""
    return {i: [a.positions[i], b.positions.get(i, 0)] for i in sorted(a.positions)
            if (a.positions[i] == 1) != (b.positions.get(i, 0) == 1)}
