"""Statistics buckets held in memory, validated against stamps stored with them.

Why: a RankCauses call reads ~45 minutes of per-minute statistics for every series
(service and edge) in the graph, and a BlastRadius call an hour. Decoding those rows
from Neo4j was most of both calls' latency (bench/latency.py), yet almost all of them
are rows of past minutes that no longer change, read again by the next call.

How it stays correct (Neo4j remains the system of record):

* every ingest transaction that adds to the buckets of time ``t`` also sets
  ``(:BucketStamp {t}).v`` to a fresh random token, in the same transaction
  (``graph/writer.py``);
* a read first fetches the stamps of its range, then re-reads from Neo4j only the
  times whose stamp differs from the cached block's (or that are not cached). Stamps
  are read *before* rows, so a block can only ever be newer than its stamp, never
  older: a concurrent write just causes one more re-read on the next call;
* no stamp means no rows (``GraphAdmin.clear``/``prune`` delete both), so a time without
  a stamp is empty and its cached block, if any, is dropped.

This works across processes (an API process separate from the ingest process) because
the stamps live in Neo4j. Memory is bounded by ``max_blocks`` (least recently used
blocks are evicted); ``max_blocks=0`` disables caching.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from rootgraph.graph.records import BucketRow, LogRow, MetricRow

__all__ = ["Block", "BucketCache", "STAMP_BUCKETS"]

#: The one statement that stamps bucket times (``$ts``) with a fresh token (``$v``); run
#: by every transaction that changes their rows (``GraphWriter``, ``GraphAdmin.prune``).
STAMP_BUCKETS = """
UNWIND $ts AS t
MERGE (s:BucketStamp {t: t})
SET s.v = $v
"""


@dataclass(frozen=True, slots=True)
class Block:
    """Every statistics row of one bucket time, as read while its stamp was ``stamp``."""

    stamp: str
    #: (entity id, row) of every ServiceBucket with this ``t``
    services: tuple[tuple[str, BucketRow], ...]
    #: (caller id, callee id, row) of every EdgeBucket with this ``t``
    edges: tuple[tuple[str, str, BucketRow], ...]
    #: (entity id, row) of every LogBucket with this ``t``
    logs: tuple[tuple[str, LogRow], ...] = ()
    #: (entity id, canonical metric, row) of every MetricBucket with this ``t``
    metrics: tuple[tuple[str, str, MetricRow], ...] = ()


class BucketCache:
    """LRU map ``t -> Block``; thread-safe (gRPC worker threads share one reader)."""

    def __init__(self, max_blocks: int = 150) -> None:
        if max_blocks < 0:
            raise ValueError(f"max_blocks must be >= 0, got {max_blocks}")
        self.max_blocks = max_blocks
        self._blocks: OrderedDict[int, Block] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, t: int, stamp: str) -> Block | None:
        """The cached block of ``t`` if it was read under ``stamp``, else None."""
        with self._lock:
            block = self._blocks.get(t)
            if block is not None and block.stamp == stamp:
                self._blocks.move_to_end(t)
                self.hits += 1
                return block
            self.misses += 1
            return None

    def put(self, t: int, block: Block) -> None:
        if self.max_blocks == 0:
            return
        with self._lock:
            self._blocks[t] = block
            self._blocks.move_to_end(t)
            while len(self._blocks) > self.max_blocks:
                self._blocks.popitem(last=False)

    def discard_missing(self, lo: int, hi: int, stamped: set[int]) -> None:
        """Drop cached blocks in ``[lo, hi)`` whose stamp no longer exists."""
        with self._lock:
            for t in [t for t in self._blocks if lo <= t < hi and t not in stamped]:
                del self._blocks[t]

    def clear(self) -> None:
        with self._lock:
            self._blocks.clear()

    def __len__(self) -> int:
        return len(self._blocks)
