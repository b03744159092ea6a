"""BlastRadius's what-if networks, built once per (stored data, model version).

Why: every BlastRadius call at the same time over the same stored statistics needs the
same evidence-free network; only the clamped entity differs. A ChatOps flow asks for
the blast radius of each of the top causes in a row, so building the network once
(``inference.blast.whatif_model``) and sampling it per entity is most of the saving.
The key is the window's ``version`` (``GraphStore.read_window``: changes whenever a
statistics row, entity, host link or deployment in the window changes) and the model
parameters, so a cached network is never stale. Windows without a version (built by
hand) are never cached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable

from rootgraph.graph.model import WindowData
from rootgraph.inference.blast import blast_radius, whatif_model
from rootgraph.inference.model import CausalModel, ModelParams
from rootgraph.inference.results import BlastRadius

__all__ = ["WhatIf"]


class WhatIf:
    """``(window, entity, fault_kind) -> BlastRadius`` with an LRU of what-if networks."""

    def __init__(self, params: Callable[[], ModelParams], max_models: int = 8) -> None:
        self._params = params
        self._max = max_models
        self._models: OrderedDict[tuple[str, ModelParams], CausalModel] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.builds = 0

    def model(self, window: WindowData, params: ModelParams) -> CausalModel:
        key = (window.version, params)
        if window.version:
            with self._lock:
                hit = self._models.get(key)
                if hit is not None:
                    self._models.move_to_end(key)
                    self.hits += 1
                    return hit
        built = whatif_model(window, params)
        with self._lock:
            self.builds += 1
            if window.version and self._max > 0:
                self._models[key] = built
                while len(self._models) > self._max:
                    self._models.popitem(last=False)
        return built

    def clear(self) -> None:
        with self._lock:
            self._models.clear()

    def __call__(self, window: WindowData, entity: str, fault_kind: str | None) -> BlastRadius:
        params = self._params()
        return blast_radius(self.model(window, params), entity, fault_kind, params=params)
