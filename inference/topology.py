"""The call graph as inference walks it: callers, paths, entry traffic, link strength.

One implementation of each, used by ranking (``network.py``, ``explain.py``), learning
(``learning.py``) and what-if (``blast.py``). Each stage builds its caller map once per
window and passes it on; the stages differ only in *which* edges they hand in (the
ranking network's kept, acyclic edges; every synchronous edge for a what-if, loops
included -- see the ``blast.py`` module doc for why).

Entry points: whoever calls an entity from outside the system is an *entry caller*.
Ingest gives every root span the caller ``user`` (``ingest/pairing.py``), an entity of
kind :attr:`EntityKind.USER`; the services it calls are the entry points, and the calls
it makes are the system's entry traffic.
"""

from __future__ import annotations

from collections import deque
from typing import Iterable, Mapping, Sequence

from rootgraph.graph.records import Entity, EntityKind

__all__ = ["base_strength", "bfs_up", "callers_of", "entry_callers", "entry_shares", "path_to"]


def base_strength(share: float) -> float:
    """Propagation strength callee -> caller before any observation: ``0.3 + 0.65 * share``.

    ``share`` is the fraction of the caller's requests that call the callee
    (``EdgeEvidence.share``). Where the numbers come from: they were hand-set with the
    first inference stage (commit 40860a8) and no derivation was recorded there, in
    DESIGN.md or in a benchmark, so nobody knows why these two. What can be read off
    them: a caller whose every request uses the callee gets 0.95 (= the defaults of
    ``ModelParams.fault_strength`` and ``max_strength``), and even a rarely used callee
    keeps a link of 0.3. Learned strengths replace it (``ModelParams.learned_strengths``).
    """
    return 0.3 + 0.65 * share


def callers_of(edges: Iterable[tuple[str, str]],
               hosts_of: Mapping[str, Sequence[str]] | None = None) -> dict[str, list[str]]:
    """callee -> callers over ``edges`` (caller, callee), then infra -> services on it.

    Lists are in sorted order (edges first, then hosts), so walks over the map -- and
    the paths they report -- do not depend on dict or set iteration order.
    """
    up: dict[str, list[str]] = {}
    for caller, callee in sorted(edges):
        up.setdefault(callee, []).append(caller)
    for svc, hosts in sorted((hosts_of or {}).items()):
        for h in hosts:
            up.setdefault(h, []).append(svc)
    return up


def bfs_up(up: Mapping[str, Sequence[str]], start: str, allowed: set[str] | None = None) -> dict[str, str | None]:
    """Breadth-first predecessors from ``start`` in the caller direction (``start`` -> None).

    ``allowed``: only enter these entities (``start`` itself always counts).
    """
    prev: dict[str, str | None] = {start: None}
    q = deque([start])
    while q:
        x = q.popleft()
        for c in up.get(x, ()):
            if c not in prev and (allowed is None or c in allowed):
                prev[c] = x
                q.append(c)
    return prev


def path_to(prev: Mapping[str, str | None], target: str) -> tuple[str, ...]:
    """The path start -> ... -> ``target`` in a :func:`bfs_up` answer."""
    out = [target]
    while prev[out[-1]] is not None:
        out.append(prev[out[-1]])  # type: ignore[arg-type]
    return tuple(reversed(out))


def entry_callers(entities: Mapping[str, Entity]) -> frozenset[str]:
    """The entities that stand for the outside world (module doc): kind ``user``."""
    return frozenset(e for e, ent in entities.items() if ent.kind == EntityKind.USER)


def entry_shares(calls: Iterable[tuple[str, str, float]], entities: Mapping[str, Entity],
                 candidates: Mapping[str, object]) -> dict[str, float]:
    """Entry point -> its share of the entry traffic, over ``calls`` (caller, callee, requests).

    Only calls from an entry caller to a candidate count; empty when there are none.
    """
    outside = entry_callers(entities)
    entry: dict[str, float] = {}
    for caller, callee, n in calls:
        if caller in outside and callee in candidates:
            entry[callee] = entry.get(callee, 0.0) + n
    total = sum(entry.values())
    return {k: v / total for k, v in entry.items()} if total > 0 else {}
