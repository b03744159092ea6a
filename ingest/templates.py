"""Log message templates, mined with drain3 (issue 14): ``"user 42 not found"`` → ``"user <*> not found"``.

Why drain3: the maintained streaming implementation of Drain (He et al., ICWS 2017),
fixed-depth prefix tree, one pass per message, bounded by ``max_clusters`` (LRU).

Template ids are drain3 cluster ids (as strings), global to the process; the text of a
template is stored per (entity, id) by the writer. Persistence: the miner's own
snapshot format (``jsonpickle`` + zlib + base64, what ``TemplateMiner.save_state``
produces) is stored in Neo4j (``(:LogMinerState {id: "drain3"})``) in the *same
transaction* as the counts of a group commit, at most every ``SNAPSHOT_EVERY_S`` while
templates change; at start-up it is loaded back (``TemplateMiner.load_state``), and
the id counter is raised past every stored template id, so templates created after the
last snapshot and before a crash get *new* ids after the restart rather than reusing
ids whose stored text is different.

Determinism: a retried batch is matched against the templates its first attempt
created, so it gets the same ids; the counts are not applied twice anyway (batch ids).
Exact repeats of a message (most log lines) skip drain through a bounded cache.
"""

from __future__ import annotations

import threading
import time

from drain3 import TemplateMiner
from drain3.persistence_handler import PersistenceHandler
from drain3.template_miner_config import TemplateMinerConfig

__all__ = ["TemplateMiner", "Templates"]

#: drain3 clusters kept (LRU beyond): bounds memory and the snapshot (~100 B a template).
MAX_TEMPLATES = 5000
#: Most frequent minimum interval between two stored snapshots while templates change.
SNAPSHOT_EVERY_S = 10.0
#: Exact messages remembered with their template (cleared when full).
MESSAGE_CACHE = 50_000


class _Snapshot(PersistenceHandler):
    """drain3's persistence interface over one in-memory value (we store it ourselves)."""

    def __init__(self, state: bytes | None = None) -> None:
        self.state = state

    def save_state(self, state: bytes) -> None:
        self.state = state

    def load_state(self) -> bytes | None:
        return self.state


class Templates:
    """Thread-safe template lookup: ``mine(message) -> (id, text)``."""

    def __init__(self, state: str = "", max_stored_id: int = 0, *,
                 clock: "callable[[], float]" = time.monotonic) -> None:  # type: ignore[valid-type]
        config = TemplateMinerConfig()
        config.drain_max_clusters = MAX_TEMPLATES
        config.snapshot_interval_minutes = 10**9  # we decide when to snapshot
        handler = _Snapshot(state.encode("ascii") if state else None)
        self._miner = TemplateMiner(handler, config)  # loads the snapshot, if any
        self._miner.persistence_handler = None  # no snapshot per new cluster (quadratic)
        drain = self._miner.drain
        drain.clusters_counter = max(drain.clusters_counter, max_stored_id)
        self._handler = handler
        self._lock = threading.Lock()
        self._cache: dict[str, object] = {}
        self._dirty = False
        self._saved_at = -1e18
        self._clock = clock

    def mine(self, message: str) -> tuple[str, str]:
        with self._lock:
            cluster = self._cache.get(message)
            if cluster is None:
                result = self._miner.add_log_message(message)
                if result["change_type"] != "none":
                    self._dirty = True
                    self._cache.clear()  # a changed template may now cover cached messages
                cluster = self._miner.drain.id_to_cluster.get(result["cluster_id"]) or _Fixed(
                    result["cluster_id"], result["template_mined"])
                if len(self._cache) >= MESSAGE_CACHE:
                    self._cache.clear()
                self._cache[message] = cluster
            return str(cluster.cluster_id), cluster.get_template()  # type: ignore[attr-defined]

    def snapshot(self, force: bool = False) -> str:
        """The miner's state if it changed and the last snapshot is old enough, else ""."""
        with self._lock:
            now = self._clock()
            if not self._dirty or (not force and now - self._saved_at < SNAPSHOT_EVERY_S):
                return ""
            self._miner.persistence_handler = self._handler
            try:
                self._miner.save_state("rootgraph")
            finally:
                self._miner.persistence_handler = None
            self._dirty = False
            self._saved_at = now
            state = self._handler.state or b""
            return state.decode("ascii") if isinstance(state, bytes) else str(state)

    def unsaved(self) -> None:
        """The write carrying the last snapshot failed: it must be taken again."""
        with self._lock:
            self._dirty = True
            self._saved_at = -1e18


class _Fixed:
    """A template evicted between mining and lookup: its id and text as mined."""

    def __init__(self, cluster_id: int, text: str) -> None:
        self.cluster_id = cluster_id
        self._text = text

    def get_template(self) -> str:
        return self._text
