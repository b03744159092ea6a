"""The inference stage's result types, re-exported from :mod:`rootgraph.results`.

They live there, outside this package, so the Python client can return them without
importing pgmpy, pandas and numpy (``rootgraph/results.py`` says why). This module
keeps ``rootgraph.inference.results`` importable for the stage's own modules; it
defines nothing.
"""

from rootgraph.results import Action, ActionKind, BlastRadius, Cause, EvidenceItem, Impact, Ranking

__all__ = ["Action", "ActionKind", "BlastRadius", "Cause", "EvidenceItem", "Impact", "Ranking"]
