"""Benchmark: Neo4j as the graph grows (issue 16, part 4) — 500 → 10,000 services.

Where does one Neo4j server become the limit? Two costs grow with the fleet:

* **writing**: every minute, ingest MERGEs one ``ServiceBucket`` per active entity and
  one ``EdgeBucket`` per active edge (``graph/writer.py``). Measured as ms of Neo4j
  transaction per 1,000 entity-bucket rows, writing ``--minutes`` minutes of buckets for
  every service and edge through ``GraphWriter.apply_deltas`` in groups of
  ``--group-services`` services (their edges included), as group commit does;
* **reading**: a RankCauses window (15 min incident + 30 min baseline) through
  ``WindowReader.read_window`` — cold (every cache dropped: a window nobody read, a
  post-mortem) and live (cached rows, one minute re-read as under live ingest); then
  the rest of a RankCauses on that window, in-process (``RootCauseRanker.rank``:
  evidence, model, posteriors; median of ``--reads`` calls), so the table says whether
  Neo4j or inference limits.

Topologies: ``simulate.topologies.generate`` (hubs, shared databases) — up to 2,000
services per generated application; larger fleets are several generated applications
side by side (``copy-<k>/`` prefixes), as big organisations are.

    ROOTGRAPH_BENCH_INSTANCE=scale-bench ROOTGRAPH_BENCH_BOLT_PORT=18815 ROOTGRAPH_BENCH_HTTP_PORT=18816 \\
        .venv/bin/python bench/graph_growth.py --sizes 500 2000 5000 10000
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import bench_neo4j  # noqa: E402  (bench/ingest.py)

from rootgraph.graph.reader import WindowReader  # noqa: E402
from rootgraph.graph.records import Entity, EntityKind, GraphDelta, StatsBucket, Window  # noqa: E402
from rootgraph.graph.writer import GraphWriter  # noqa: E402
from rootgraph.inference.rank import RootCauseRanker  # noqa: E402
from rootgraph.simulate.topologies import generate  # noqa: E402

INSTANCE = os.environ.get("ROOTGRAPH_BENCH_INSTANCE", "bench")
BOLT_PORT = int(os.environ.get("ROOTGRAPH_BENCH_BOLT_PORT", "47687"))
HTTP_PORT = int(os.environ.get("ROOTGRAPH_BENCH_HTTP_PORT", "47474"))
BUCKET = 60


def fleet(n: int) -> tuple[dict[str, Entity], list[tuple[str, str]]]:
    """``n`` services (+ their databases) and call edges, from generated topologies."""
    entities: dict[str, Entity] = {"user": Entity("user", "user", EntityKind.USER)}
    edges: list[tuple[str, str]] = []
    copies = -(-n // 2000)
    for k in range(copies):
        topo = generate(n // copies, seed=k)
        prefix = f"copy-{k}/" if copies > 1 else ""
        for sid, svc in topo.services.items():
            entities[prefix + sid] = Entity(prefix + sid, svc.name, EntityKind.SERVICE, svc.namespace)
            for op in svc.operations:
                for call in op.calls:
                    target = prefix + call.target
                    if call.target in topo.backends and target not in entities:
                        entities[target] = Entity(target, call.target, EntityKind.DATABASE)
                    edges.append((prefix + sid, target))
        for entry in topo.entries:
            edges.append(("user", prefix + entry.service))
    return entities, sorted(set(edges))


def _bucket(rng: random.Random, requests: int) -> StatsBucket:
    b = StatsBucket(requests=requests, errors=rng.randrange(3), duration_ms_sum=requests * rng.uniform(2, 50))
    b.histogram[rng.randrange(len(b.histogram))] = requests
    return b


class SteadyFleet:
    """Buckets of a fleet that behaves like one: each service and edge keeps its own
    request rate (Poisson around a per-entity mean), latency (one histogram bin, a
    neighbour now and then) and a 0.2 % error rate; from ``fault_from`` on, one mid-tier
    service ``culprit`` fails 30 % of its requests and its callers see those errors.

    Why beside the noisy fleet (``_bucket``): there every service's latency jumps to a
    random bin every minute, so everything is anomalous — the worst case for the window
    read and the model, but no incident looks like it. This is what RankCauses serves:
    one fault, its propagation, a healthy rest (issue 16's "p95 at 500 services" target).
    """

    def __init__(self, entities: dict[str, Entity], edges: list[tuple[str, str]], fault_from: int) -> None:
        rng = random.Random(7)
        self.rate = {k: rng.randrange(20, 200) for k in [*entities, *edges]}
        self.bin = {k: rng.randrange(10, 25) for k in [*entities, *edges]}
        callers: dict[str, list[str]] = {}
        for a, b in edges:
            callers.setdefault(b, []).append(a)
        mid = sorted(e for e, cs in callers.items() if entities[e].kind is EntityKind.SERVICE
                     and any(c != "user" for c in cs))
        self.culprit = mid[len(mid) // 2]
        self.fault_from = fault_from
        self.rng = random.Random(11)

    def bucket(self, key: str | tuple[str, str], t: int, failing: bool) -> StatsBucket:
        n = max(1, round(self.rng.gauss(self.rate[key], self.rate[key] ** 0.5)))
        p = 0.3 if failing and t >= self.fault_from else 0.002
        errors = sum(self.rng.random() < p for _ in range(n))
        b = StatsBucket(requests=n, errors=errors, duration_ms_sum=n * 0.1 * 2.0 ** (self.bin[key] / 2.0),
                        exclusive_errors=errors if key == self.culprit else 0)
        b.self_ms_sum = b.duration_ms_sum / 2
        shift = 1 if self.rng.random() < 0.1 else 0
        b.histogram[self.bin[key] + shift] = n
        return b


def write_minutes(writer: GraphWriter, entities: dict[str, Entity], edges: list[tuple[str, str]],
                  start: int, minutes: int, group: int, steady: SteadyFleet | None = None) -> tuple[float, int]:
    """Write ``minutes`` of buckets for everything (``steady``: that fleet's buckets,
    else the noisy fleet's); returns (seconds in Neo4j, rows)."""
    rng = random.Random(1)
    services = [e for e in entities.values() if e.kind is not EntityKind.USER]
    out_edges: dict[str, list[tuple[str, str]]] = {}
    for a, b in edges:
        out_edges.setdefault(b, []).append((a, b))  # an edge's bucket is written with its callee
    spent, rows = 0.0, 0
    for m in range(minutes):
        t = start + m * BUCKET
        calls = {ab: steady.bucket(ab, t, ab[1] == steady.culprit) for ab in edges} if steady else {}
        for i in range(0, len(services), group):
            chunk = services[i:i + group]
            d = GraphDelta(batch_id=f"growth:{t}:{i}")
            for e in chunk:
                d.entities[e.id] = e
                for a, b in out_edges.get(e.id, ()):
                    d.entities.setdefault(a, entities[a])
                    d.edge_buckets[(a, b, t)] = calls[(a, b)] if steady else _bucket(rng, rng.randrange(1, 100))
                    d.edges[(a, b)] = StatsBucket(requests=1)
                if steady is None:
                    d.service_buckets[(e.id, t)] = _bucket(rng, rng.randrange(1, 200))
                else:  # the culprit fails; its callers pass on the errors of their calls to it
                    sb = steady.bucket(e.id, t, e.id == steady.culprit)
                    sb.errors = min(sb.requests, sb.errors + calls.get((e.id, steady.culprit), StatsBucket()).errors)
                    d.service_buckets[(e.id, t)] = sb
            t0 = time.perf_counter()
            writer.apply_deltas([d])
            spent += time.perf_counter() - t0
            rows += len(d.service_buckets) + len(d.edge_buckets)
    return spent, rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 5000, 10000])
    p.add_argument("--minutes", type=int, default=45, help="bucket minutes written (the RankCauses window)")
    p.add_argument("--group-services", type=int, default=1000, help="services per write transaction")
    p.add_argument("--reads", type=int, default=3)
    p.add_argument("--no-rank", action="store_true", help="skip the in-process RankCauses inference timing")
    p.add_argument("--fleet", choices=["noisy", "steady"], default="noisy",
                   help="noisy: every service anomalous every minute (the write/read worst case); "
                        "steady: one failing service in a healthy fleet (SteadyFleet)")
    args = p.parse_args(argv)
    local, driver, admin, started = bench_neo4j(INSTANCE, BOLT_PORT, HTTP_PORT)
    rows_out = []
    try:
        writer = GraphWriter(driver, "neo4j")
        end = (int(time.time()) // 3600) * 3600
        start = end - args.minutes * BUCKET
        inc, base = Window(end - 900, end), Window(end - 2700, end - 900)
        for n in args.sizes:
            admin.clear()
            entities, edges = fleet(n)
            steady = SteadyFleet(entities, edges, end - 15 * BUCKET) if args.fleet == "steady" else None
            spent, rows = write_minutes(writer, entities, edges, start, args.minutes, args.group_services, steady)
            reader = WindowReader(driver, "neo4j", cache_buckets=150)
            cold, warm = [], []
            for _ in range(args.reads):
                reader.drop_caches()
                t0 = time.perf_counter()
                data = reader.read_window(inc, base, BUCKET, timeout_s=300)
                cold.append((time.perf_counter() - t0) * 1e3)
            for i in range(args.reads):  # live: the newest minute was written since the last read
                writer.apply_deltas([GraphDelta(batch_id=f"touch:{n}:{i}:{time.time_ns()}",
                                                service_buckets={("bench/touch", end - BUCKET): StatsBucket()})])
                t0 = time.perf_counter()
                reader.read_window(inc, base, BUCKET, timeout_s=300)
                warm.append((time.perf_counter() - t0) * 1e3)
            rank_ms = float("nan")
            if not args.no_rank:  # median of --reads calls: the machine is shared and noisy
                ranks = []
                for _ in range(args.reads):
                    t0 = time.perf_counter()
                    ranking = RootCauseRanker().rank(data, (), 5)
                    ranks.append((time.perf_counter() - t0) * 1e3)
                rank_ms = statistics.median(ranks)
                if steady:  # the answer, not only its time: is the failing service on top?
                    print(f"steady fleet: failing {steady.culprit}, ranked first "
                          f"{ranking.causes[0].entity if ranking.causes else None}", flush=True)
            r = {"services": n, "entities": len(entities), "edges": len(edges), "bucket_rows": rows,
                 "write_ms_per_1k_rows": round(spent * 1e6 / rows, 1),
                 "write_rows_per_s": round(rows / spent),
                 "read_cold_ms": round(statistics.median(cold)), "read_live_ms": round(statistics.median(warm)),
                 "rank_inference_ms": round(rank_ms),
                 "window_entities": len(data.entities), "window_edges": len(data.edges)}
            print(r, flush=True)
            rows_out.append(r)
    finally:
        driver.close()
        if started:
            local.stop()
    print("| services | entities | edges | bucket rows written | ms Neo4j / 1k rows | rows/s | "
          "window read cold ms | live ms | RankCauses inference ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows_out:
        print(f"| {r['services']:,} | {r['entities']:,} | {r['edges']:,} | {r['bucket_rows']:,} | "
              f"{r['write_ms_per_1k_rows']} | {r['write_rows_per_s']:,} | {r['read_cold_ms']:,} | "
              f"{r['read_live_ms']:,} | {r['rank_inference_ms']:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
