"""``ModelParams`` ⇄ JSON, for ``(:ModelVersion).params_json``.

A model version must replay bit for bit (the audit promise of issue 7), so this is a
plain field-by-field mapping: floats go through ``json`` unchanged (``repr`` round
trip) and the learned tables come back as the tuples the frozen dataclass expects.
Unknown keys are refused rather than ignored: a params document written by a newer
rootgraph must not be silently run with half its parameters.
"""

from __future__ import annotations

import dataclasses
import json

from rootgraph.inference.errors import InvalidArgument
from rootgraph.inference.network import ModelParams

__all__ = ["params_to_json", "params_from_json"]

_TABLES = {"learned_priors", "learned_strengths", "learned_kind_priors", "action_stats"}


def params_to_json(p: ModelParams) -> str:
    doc = {f.name: getattr(p, f.name) for f in dataclasses.fields(p)}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def params_from_json(text: str) -> ModelParams:
    doc = json.loads(text)
    known = {f.name for f in dataclasses.fields(ModelParams)}
    extra = set(doc) - known
    if extra:
        raise InvalidArgument("params_json", f"unknown parameters {sorted(extra)}")
    for name in _TABLES & set(doc):
        doc[name] = tuple(tuple(row) for row in doc[name])
    return ModelParams(**doc)
