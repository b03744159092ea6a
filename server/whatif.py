"""BlastRadius's what-if models, built once per version of the stored data.

Why: every BlastRadius call at the same time over the same stored statistics reads the
same traffic totals; only the faulty entity differs. A ChatOps flow asks for the blast
radius of each of the top causes in a row, so building the model once
(``inference.blast.whatif_model``: one pass over an hour of rows) and propagating per
entity is most of the saving. The key is the window's ``version``
(``WindowReader.read_window``: changes whenever a statistics row, entity, host link or
deployment in the window changes), so a cached model is never stale. Windows without a
version (built by hand) are never cached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from rootgraph.graph.records import WindowData
from rootgraph.inference.blast import WhatIfModel, blast_radius, whatif_model
from rootgraph.results import BlastRadius, FaultKind

__all__ = ["WhatIf"]


class WhatIf:
    """``(window, entity, fault_kind, fault_size) -> BlastRadius`` with an LRU of what-if models."""

    def __init__(self, max_models: int = 8) -> None:
        self._max = max_models
        self._models: OrderedDict[str, WhatIfModel] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.builds = 0

    def model(self, window: WindowData) -> WhatIfModel:
        key = window.version
        if key:
            with self._lock:
                hit = self._models.get(key)
                if hit is not None:
                    self._models.move_to_end(key)
                    self.hits += 1
                    return hit
        built = whatif_model(window)
        with self._lock:
            self.builds += 1
            if key and self._max > 0:
                self._models[key] = built
                while len(self._models) > self._max:
                    self._models.popitem(last=False)
        return built

    def clear(self) -> None:
        with self._lock:
            self._models.clear()

    def __call__(self, window: WindowData, entity: str, fault_kind: FaultKind | None,
                 fault_size: float = 0.0) -> BlastRadius:
        return blast_radius(self.model(window), entity, fault_kind, fault_size=fault_size)
