"""Minute-by-minute statistics of a small shop, written as the ingest stage writes them.

``user -> shop/frontend -> shop/orders -> db:postgresql/orders`` and
``shop/frontend -> shop/catalogue``; each service on its pod, all pods on ``node:n1``.
Counts and latencies vary from minute to minute (seeded), so the detector sees a noisy
but healthy baseline; ``fault`` = (first minute, last minute) makes the database fail
half its calls, which its callers see and pass on.
"""

from __future__ import annotations

import math
import random

from rootgraph.graph.records import HISTOGRAM_BUCKETS, Entity, EntityKind, GraphDelta, StatsBucket

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z, a bucket boundary
DB = "db:postgresql/orders"
SERVICES = ("shop/frontend", "shop/orders", "shop/catalogue")
EDGES = (("user", "shop/frontend"), ("shop/frontend", "shop/orders"), ("shop/frontend", "shop/catalogue"),
         ("shop/orders", DB))


def _bin(ms: float) -> int:
    return min(HISTOGRAM_BUCKETS - 1, max(0, math.ceil(2 * math.log2(ms / 0.1))))


def _bucket(rng: random.Random, n: int, err_rate: float, lat: float) -> StatsBucket:
    b = StatsBucket()
    b.requests = n
    b.errors = sum(1 for _ in range(n) if rng.random() < err_rate)
    for _ in range(n):
        ms = lat * rng.lognormvariate(0, 0.25)
        b.duration_ms_sum += ms
        b.histogram[_bin(ms)] += 1
    b.self_ms_sum = b.duration_ms_sum * 0.3
    b.exclusive_errors = 0
    return b


def entities() -> dict[str, Entity]:
    out = {"user": Entity("user", "user", EntityKind.USER), DB: Entity(DB, "orders", EntityKind.DATABASE),
           "node:n1": Entity("node:n1", "n1", EntityKind.NODE)}
    for s in SERVICES:
        ns, name = s.split("/")
        out[s] = Entity(s, name, EntityKind.SERVICE, ns)
        out[f"pod:{name}-0"] = Entity(f"pod:{name}-0", f"{name}-0", EntityKind.POD)
    return out


def minutes(first: int, last: int, fault: tuple[int, int] | None = None, seed: int = 7) -> list[GraphDelta]:
    """One delta per minute ``first..last-1`` after ``T0``."""
    rng = random.Random(seed * 100_003 + first)
    out = []
    ents = entities()
    for m in range(first, last):
        t = T0 + 60 * m
        bad = fault is not None and fault[0] <= m < fault[1]
        n = 120 + rng.randint(-15, 15)
        d = GraphDelta(batch_id=f"shop-{seed}-{m}", entities=dict(ents) if m == first else
                       {k: v for k, v in ents.items()})
        db_err = 0.5 if bad else 0.002
        d.edge_buckets[("shop/orders", DB, t)] = _bucket(rng, n, db_err, 4.0)
        orders_err = d.edge_buckets[("shop/orders", DB, t)].errors / n + 0.002
        d.service_buckets[("shop/orders", t)] = _bucket(rng, n, orders_err, 12.0)
        d.edge_buckets[("shop/frontend", "shop/orders", t)] = _bucket(rng, n, orders_err, 13.0)
        d.service_buckets[("shop/catalogue", t)] = _bucket(rng, n, 0.002, 6.0)
        d.edge_buckets[("shop/frontend", "shop/catalogue", t)] = _bucket(rng, n, 0.002, 7.0)
        d.service_buckets[("shop/frontend", t)] = _bucket(rng, n, orders_err, 25.0)
        d.edge_buckets[("user", "shop/frontend", t)] = _bucket(rng, n, orders_err, 26.0)
        for (a, b) in EDGES:
            d.edges[(a, b)] = d.edge_buckets[(a, b, t)].copy()
        for s in SERVICES:
            name = s.split("/")[1]
            d.runs_on |= {(s, f"pod:{name}-0"), (s, "node:n1")}
        out.append(d)
    return out
