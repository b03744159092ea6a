"""Auto-execution policies: when an action may run without a human, and under whose name.

Off by default: with no policy file every proposal waits for a person. A policy is a
TOML file with a ``name``, a ``version`` and ``[[allow]]`` rules; a rule lets one action
kind run without approval for causes of one context (the ranker's similarity class,
``service/deploy`` etc., see :class:`rootgraph.remediate.proposal.Learned`) when the
learned confidence and the number of outcomes it rests on pass the stated bounds::

    name = "rollback-bad-deploys"
    version = "2"

    [[allow]]
    action = "rollback"
    context = "service/deploy"
    min_confidence = 0.9      # share of past similar incidents the action resolved
    min_outcomes = 10         # ... out of at least this many
    max_blast_share = 0.5     # optional: never without a human above this blast radius

Policies are versioned like models: ``name@version`` is written on every step the
policy decides (``RemediationStep.policy_version``), so the audit trail says which
revision of which policy let an action run, and a changed rule is a new version.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from rootgraph.config import ConfigError
from rootgraph.remediate.config import EXECUTABLE_ACTIONS, read_toml
from rootgraph.remediate.proposal import Proposal

__all__ = ["Policy", "PolicyRule", "load_policy"]


@dataclass(frozen=True, slots=True)
class PolicyRule:
    action: str
    context: str
    min_confidence: float
    min_outcomes: int
    max_blast_share: float = 1.0


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    version: str
    rules: tuple[PolicyRule, ...]

    @property
    def ref(self) -> str:
        """``name@version``, as recorded on the steps the policy decides."""
        return f"{self.name}@{self.version}"

    def allows(self, p: Proposal) -> str:
        """Why ``p`` may run without a human ('' when it may not)."""
        if p.learned is None:
            return ""
        for r in self.rules:
            if (r.action == p.action and r.context == p.learned.context and p.learned.total >= r.min_outcomes
                    and p.confidence >= r.min_confidence and p.blast_share <= r.max_blast_share):
                return (f"{self.ref}: {r.action} on {r.context} with confidence {p.confidence:.2f} >= "
                        f"{r.min_confidence} over {p.learned.total} >= {r.min_outcomes} outcomes, blast radius "
                        f"{p.blast_share:.2f} <= {r.max_blast_share}")
        return ""


_CONTEXTS = {f"{g}/{d}" for g in ("service", "backend", "infra") for d in ("deploy", "no-deploy")}


def load_policy(path: str | Path) -> Policy:
    """Parse and validate a policy file; :class:`ConfigError` names the key at fault."""
    doc = read_toml(path, "policy_file")
    for key in ("name", "version"):
        if not isinstance(doc.get(key), str) or not doc[key] or "@" in doc[key]:
            raise ConfigError(f"policy.{key}: required, a non-empty string without '@'")
    unknown = sorted(set(doc) - {"name", "version", "allow"})
    if unknown:
        raise ConfigError(f"policy.{unknown[0]}: unknown key")
    rules = []
    for i, r in enumerate(doc.get("allow", [])):
        at = f"policy.allow[{i}]"
        if not isinstance(r, dict):
            raise ConfigError(f"{at}: must be a table")
        bad = sorted(set(r) - {"action", "context", "min_confidence", "min_outcomes", "max_blast_share"})
        if bad:
            raise ConfigError(f"{at}.{bad[0]}: unknown key")
        if r.get("action") not in EXECUTABLE_ACTIONS:
            raise ConfigError(f"{at}.action: one of {list(EXECUTABLE_ACTIONS)}, got {r.get('action')!r}")
        if r.get("context") not in _CONTEXTS:
            raise ConfigError(f"{at}.context: one of {sorted(_CONTEXTS)}, got {r.get('context')!r}")
        conf = r.get("min_confidence")
        if isinstance(conf, bool) or not isinstance(conf, (int, float)) or not (0 < conf <= 1):
            raise ConfigError(f"{at}.min_confidence: required, in (0, 1], got {conf!r}")
        n = r.get("min_outcomes")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"{at}.min_outcomes: required, an integer >= 1, got {n!r}")
        blast = r.get("max_blast_share", 1.0)
        if isinstance(blast, bool) or not isinstance(blast, (int, float)) or not (math.isfinite(blast) and 0 <= blast <= 1):
            raise ConfigError(f"{at}.max_blast_share: in [0, 1], got {blast!r}")
        rules.append(PolicyRule(r["action"], r["context"], float(conf), n, float(blast)))
    return Policy(doc["name"], doc["version"], tuple(rules))
