"""``ModelRegistry``: which model version answers, looked up per request.

The servicer's ``Ranker``: a ``rank`` asks Neo4j which ``(:ModelVersion)`` is current
at most every ``check_interval_s`` (``ROOTGRAPH_MODEL_CHECK_SECONDS``, default 5 s; one
indexed read) and uses a ranker built from that version's ``params_json``, cached by
version. So a ``rootgraph model promote`` or ``rollback`` run from another process
takes effect within that interval without a restart, while the RankCauses between
checks cost no Neo4j round trip for it, and every answer names the version that produced it. At start the
built-in parameters are stored as version ``prior-v1`` (current if nothing else is),
so a rollback can always get back to them. While Neo4j cannot say, the last known
version keeps answering.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Sequence

from rootgraph.graph.errors import StoreUnavailable
from rootgraph.graph.records import WindowData
from rootgraph.graph.model_versions import ModelStore
from rootgraph.inference.network import DEFAULT_PARAMS, ModelParams
from rootgraph.inference.rank import RootCauseRanker
from rootgraph.results import Ranking
from rootgraph.inference.serialize import params_from_json, params_to_json

__all__ = ["ModelRegistry"]


class ModelRegistry:
    def __init__(self, store: ModelStore, *, check_interval_s: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self.check_interval_s = check_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._rankers: dict[str, RootCauseRanker] = {}
        store.ensure_default(DEFAULT_PARAMS.version, params_to_json(DEFAULT_PARAMS))
        self._current = self.ranker(store.current_version() or DEFAULT_PARAMS.version)
        self._checked = self._clock()

    def ranker(self, version: str) -> RootCauseRanker:
        """The ranker of any stored version (NotFound if there is none)."""
        with self._lock:
            hit = self._rankers.get(version)
        if hit is not None:
            return hit
        if version == DEFAULT_PARAMS.version:
            try:
                params = params_from_json(self._store.get(version).params_json)
            except StoreUnavailable:
                params = DEFAULT_PARAMS
        else:
            params = params_from_json(self._store.get(version).params_json)
        made = RootCauseRanker(params)
        with self._lock:
            return self._rankers.setdefault(version, made)

    def current(self) -> RootCauseRanker:
        now = self._clock()
        if now - self._checked >= self.check_interval_s:
            try:
                version = self._store.current_version()
            except StoreUnavailable:
                version = None  # keep answering with the last known version
            self._checked = now
            if version is not None and version != self._current.model_version:
                self._current = self.ranker(version)
        return self._current

    # -- the servicer's Ranker protocol --------------------------------------------

    @property
    def model_version(self) -> str:
        return self.current().model_version

    @property
    def params(self) -> ModelParams:
        return self.current().params

    def rank(self, window: WindowData, symptoms: Sequence[str] = (), top_k: int = 5) -> Ranking:
        return self.current().rank(window, symptoms, top_k)
