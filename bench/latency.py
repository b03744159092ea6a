"""Latency benchmark (issue 6, part 4): RankCauses and BlastRadius through gRPC.

    .venv/bin/python bench/latency.py              # 50, 200, 500, 2,000 services
    .venv/bin/python bench/latency.py --quick      # CI smoke: 50 and 200, ~3,000 requests, 5 repeats
    .venv/bin/python bench/latency.py --profile    # + cProfile of one RankCauses per size

For every size n: the generated topology ``generated-<n>-7`` (``simulate.topologies``:
hubs, shared databases, hosts), ~10,000 user requests of real OpenTelemetry SDK traffic
(20 min baseline + 5 min incident) with an error fault on the busiest hub from the
incident start, replayed into the service's OTLP/HTTP endpoint (as in
``bench/accuracy.py``: in-process ``App`` over the benchmark Neo4j). Then, timed at the
client (so gRPC, Neo4j reads, inference and the incident audit write are all included):

* RankCauses over the incident window, three ways, because the read cache
  (``graph/window_cache.py``) makes them differ:
  - *repeat*: ``--repeats`` calls in a row on unchanged data (every row cached);
  - *live*: before each call the window's newest minute is written to (as under live
    ingest: that minute is re-read and the window re-assembled) -- the production case
    for an incident in the recent past, which the API's warmer keeps cached;
  - *cold*: every cache emptied before the call (a window nobody read before, e.g. a
    post-mortem of last week);
* BlastRadius for up to ``--repeats`` entities (hubs first, then others) at one time, in
  a row (the first builds the what-if model, the others reuse it): p50 / p95; *live*:
  the same, asked half-way through a minute that is written to before each call (as at
  "now" under ingest; BlastRadius reads complete minutes only, so the model is reused);
  and *cold* (caches emptied before each call);
* a per-phase split of one RankCauses, measured in-process on the same graph with the
  same code the servicer runs: Neo4j read (``WindowReader.read_window``), evidence scoring
  (``score_window``), model build, posteriors (pgmpy), explanations (the rest of
  ``RootCauseRanker.rank``) and the audit write (``IncidentStore.save_incident``, via
  the servicer's own path: total gRPC time minus the other phases);
* PyRCA's ``BayesianNetwork`` (``bench/peers.py pyrca_bn`` in ``.venv-peers``) on the same
  spans, train + detect + inference, once, with a time cap.

Timings are wall-clock medians on a shared 2-core machine: compare within one run.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from accuracy import PEERS_PY, replay, write_section  # noqa: E402
from common import CASES, OUT, ROOT, Service, case_files, log, peer_data, stop_neo4j  # noqa: E402

from rootgraph.client import RootGraphClient  # noqa: E402
from rootgraph.graph.records import GraphDelta, StatsBucket, Window  # noqa: E402
from rootgraph.inference.evidence import score_window  # noqa: E402
from rootgraph.inference.network import build_model  # noqa: E402
from rootgraph.inference.posterior import compute_posteriors  # noqa: E402
from rootgraph.simulate.suite import _generated_cases  # noqa: E402

RESULTS = OUT / "latency"
TARGETS = {("rank", 500): 300.0, ("rank", 2000): 2000.0, ("blast", 500): 100.0}


def pct(xs: list[float], q: float) -> float:
    ys = sorted(xs)
    return ys[min(len(ys) - 1, max(0, int(round(q * (len(ys) - 1)))))]


def spec_for(n: int, seed: int = 7, quick: bool = False):
    base = _generated_cases(f"generated-{n}-{seed}", 4000 + n)[0]  # error on the busiest hub
    if quick:  # CI smoke: ~3,000 requests
        return replace(base, name=f"latency-{n}-quick", baseline_s=600.0, incident_s=180.0, rate_rps=4.0,
                       tags=("latency",))
    return replace(base, name=f"latency-{n}", baseline_s=1200.0, incident_s=300.0, rate_rps=6.7,
                   tags=("latency",))


def phases(svc: Service, labels, bucket: int) -> dict[str, float]:
    """One RankCauses split into its phases, in-process on the same graph."""
    inc = Window(int(labels.incident[0]) // bucket * bucket, -(-int(labels.incident[1]) // bucket) * bucket)
    base = Window(inc.start_s - 1800, inc.start_s)
    svc.app.reader.drop_caches()
    tc = time.perf_counter()
    svc.app.reader.read_window(inc, base, bucket)
    t0 = time.perf_counter()
    data = svc.app.reader.read_window(inc, base, bucket)
    t1 = time.perf_counter()
    ev = score_window(data)
    t2 = time.perf_counter()
    model = build_model(ev, svc.app.ranker.params)
    t3 = time.perf_counter()
    compute_posteriors(model)
    t4 = time.perf_counter()
    svc.app.ranker.rank(data, (), 5)
    t5 = time.perf_counter()
    return {"read_cold_ms": (t0 - tc) * 1e3, "read_ms": (t1 - t0) * 1e3, "evidence_ms": (t2 - t1) * 1e3, "model_ms": (t3 - t2) * 1e3,
            "posteriors_ms": (t4 - t3) * 1e3, "rank_total_ms": (t5 - t4) * 1e3,
            "entities": len(data.entities), "edges": len(data.edges), "model_nodes": len(model.nodes)}


def profile_rank(svc: Service, labels) -> str:
    """cProfile of the servicer's read + rank path, in this thread (the gRPC worker
    threads are invisible to a client-side profile)."""
    bucket = svc.settings.bucket_seconds
    inc = Window(int(labels.incident[0]) // bucket * bucket, -(-int(labels.incident[1]) // bucket) * bucket)
    base = Window(inc.start_s - 1800, inc.start_s)
    pr = cProfile.Profile()
    pr.enable()
    data = svc.app.reader.read_window(inc, base, bucket)
    svc.app.ranker.rank(data, (), 5)
    pr.disable()
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("cumulative").print_stats(30)
    return s.getvalue()


def run_size(svc: Service, n: int, repeats: int, peers: bool, peer_cap_s: float, profile: bool,
             quick: bool = False) -> dict:
    spec = spec_for(n, quick=quick)
    d, labels = case_files(spec, CASES)
    svc.reset()
    reqs, replay_s = replay(svc, d / "traces.jsonl")
    out: dict = {"n": n, "spans": labels.spans, "replay_s": round(replay_s, 1)}
    def cold() -> None:  # forget every cached read and what-if network (a first call)
        svc.app.reader.drop_caches()
        svc.app.whatif.clear()

    with RootGraphClient(svc.api, timeout_s=120) as rg:
        rank_cold = []
        for _ in range(max(3, repeats // 4)):
            cold()
            t = time.perf_counter()
            rg.rank_causes(labels.incident[0], labels.incident[1], top_k=5)
            rank_cold.append((time.perf_counter() - t) * 1e3)
        rank = []
        for _ in range(repeats):
            t = time.perf_counter()
            ans = rg.rank_causes(labels.incident[0], labels.incident[1], top_k=5)
            rank.append((time.perf_counter() - t) * 1e3)
        # Live: as under ingest, the newest minute of the window was written since the
        # previous call, so its rows are re-read and the window re-assembled each time.
        b = svc.settings.bucket_seconds
        last = -(-int(labels.incident[1]) // b) * b - b  # the window's last bucket
        rank_live = []
        for i in range(repeats):
            svc.app.writer.apply_deltas([GraphDelta(batch_id=f"touch-{n}-{i}-{time.time_ns()}", service_buckets={
                ("bench/touch", last): StatsBucket()})])
            t = time.perf_counter()
            rg.rank_causes(labels.incident[0], labels.incident[1], top_k=5)
            rank_live.append((time.perf_counter() - t) * 1e3)
        out["top"] = [ans.causes[0].entity, round(ans.causes[0].probability, 3)] if ans.causes else None
        out["truth"] = list(labels.root_causes)
        graph = rg.service_graph()
        ents, calls = graph.entities, graph.edges
        callers: dict[str, int] = {}
        for a, b, *_ in calls:
            callers[b] = callers.get(b, 0) + 1
        order = sorted((e for e, k in ents if k not in ("user",) and not e.startswith(("host:", "node:", "pod:"))),
                       key=lambda e: (-callers.get(e, 0), e))
        targets = order[: max(1, repeats // 2)] + order[max(1, repeats // 2)::max(1, len(order) // repeats)]
        targets = list(dict.fromkeys(targets))[:repeats]
        # BlastRadius: first a cold call per entity (no cached rows, no cached network),
        # then the same entities in a row at one time, as a ChatOps flow asks them.
        blast_cold = []
        for e in targets[: max(3, repeats // 4)]:
            cold()
            t = time.perf_counter()
            rg.blast_radius(e, at=labels.onset_s)
            blast_cold.append((time.perf_counter() - t) * 1e3)
        cold()
        blast = []
        for e in targets:
            t = time.perf_counter()
            rg.blast_radius(e, at=labels.onset_s)
            blast.append((time.perf_counter() - t) * 1e3)
        # Live: "now" is half-way through the minute being written.
        cold()
        bucket = svc.settings.bucket_seconds
        minute = int(labels.onset_s) // bucket * bucket
        blast_live = []
        builds = svc.app.whatif.builds
        for i, e in enumerate(targets):
            svc.app.writer.apply_deltas([GraphDelta(batch_id=f"touch-blast-{n}-{i}-{time.time_ns()}", service_buckets={
                ("bench/touch", minute): StatsBucket()})])
            t = time.perf_counter()
            rg.blast_radius(e, at=minute + bucket / 2)
            blast_live.append((time.perf_counter() - t) * 1e3)
        out["blast_live_builds"] = svc.app.whatif.builds - builds  # 1: the minute written was never read
        out["graph_entities"] = len(ents)
    out["rank_ms"], out["rank_cold_ms"], out["rank_live_ms"] = rank, rank_cold, rank_live
    out["rank_live_p50"], out["rank_live_p95"] = statistics.median(rank_live), pct(rank_live, 0.95)
    out["blast_ms"], out["blast_cold_ms"], out["blast_live_ms"] = blast, blast_cold, blast_live
    out["blast_live_p50"], out["blast_live_p95"] = statistics.median(blast_live), pct(blast_live, 0.95)
    out["rank_p50"], out["rank_p95"] = statistics.median(rank), pct(rank, 0.95)
    out["blast_p50"], out["blast_p95"] = statistics.median(blast), pct(blast, 0.95)
    out["rank_cold_p50"], out["rank_cold_max"] = statistics.median(rank_cold), max(rank_cold)
    out["blast_cold_p50"], out["blast_cold_max"] = statistics.median(blast_cold), max(blast_cold)
    ph = [phases(svc, labels, svc.settings.bucket_seconds) for _ in range(3)]
    out["phases"] = {k: statistics.median(p[k] for p in ph) for k in ph[0]}
    if profile:
        out["profile"] = profile_rank(svc, labels)
    if peers and PEERS_PY.exists():
        pd = peer_data(d, labels)
        res_file = RESULTS / f"pyrca-{n}.json"
        res_file.unlink(missing_ok=True)
        t = time.perf_counter()
        subprocess.run([str(PEERS_PY), str(ROOT / "bench" / "peers.py"), "--methods", "pyrca_bn",
                        "--timeout-s", str(peer_cap_s), "--out", str(res_file), str(pd)], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        r = json.loads(res_file.read_text()).get(f"{spec.name}::pyrca_bn", {}) if res_file.exists() else {}
        out["pyrca"] = {"seconds": r.get("seconds", time.perf_counter() - t), "error": r.get("error"),
                        "top": (r.get("ranks") or [None])[0]}
    elif peers:
        out["pyrca"] = {"error": "not installed (make bench-peers-setup)"}
    log(f"  n={n}: entities {out['graph_entities']}, RankCauses p50 {out['rank_p50']:.0f} / p95 "
        f"{out['rank_p95']:.0f} ms (live p50 {out['rank_live_p50']:.0f} / p95 {out['rank_live_p95']:.0f}; "
        f"cold p50 {out['rank_cold_p50']:.0f} / max {out['rank_cold_max']:.0f}), "
        f"BlastRadius p50 {out['blast_p50']:.0f} / p95 {out['blast_p95']:.0f} ms (live p50 "
        f"{out['blast_live_p50']:.0f} / p95 {out['blast_live_p95']:.0f}, {out['blast_live_builds']} model build(s); cold p50 "
        f"{out['blast_cold_p50']:.0f} / max {out['blast_cold_max']:.0f}), "
        f"phases {json.dumps({k: round(v, 1) for k, v in out['phases'].items()})}, pyrca {out.get('pyrca')}")
    return out


def report(rows: list[dict], repeats: int) -> str:
    L = ["| services (entities with traffic) | spans | RankCauses repeat p50 / p95 | live p50 / p95 | target (p95) | "
         "cold p50 / max | BlastRadius p50 / p95 | live p50 / p95 | target (p95) | cold p50 / max | "
         "PyRCA BayesianNetwork (train + detect + infer) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        n = r["n"]
        t_rank = TARGETS.get(("rank", n))
        t_blast = TARGETS.get(("blast", n))

        def mark(v: float, t: float | None) -> str:
            return "–" if t is None else (f"≤ {t:.0f} ms ✓" if v <= t else f"≤ {t:.0f} ms **✗**")
        py = r.get("pyrca", {})
        pys = "–" if not py else (f"{py['seconds']:.1f} s" if not py.get("error") else f"{py['error']}")
        worst = max(r["rank_p95"], r["rank_live_p95"])
        L.append(f"| {n} ({r['graph_entities']}) | {r['spans']:,} | {r['rank_p50']:.0f} / {r['rank_p95']:.0f} ms | "
                 f"{r['rank_live_p50']:.0f} / {r['rank_live_p95']:.0f} ms | {mark(worst, t_rank)} | "
                 f"{r['rank_cold_p50']:.0f} / {r['rank_cold_max']:.0f} ms | "
                 f"{r['blast_p50']:.0f} / {r['blast_p95']:.0f} ms | "
                 + (f"{r['blast_live_p50']:.0f} / {r['blast_live_p95']:.0f} ms" if "blast_live_p50" in r else "–")
                 + f" | {mark(max(r['blast_p95'], r.get('blast_live_p95', 0.0)), t_blast)} | "
                 f"{r['blast_cold_p50']:.0f} / {r['blast_cold_max']:.0f} ms | {pys} |")
    L.append(f"\n{repeats} RankCauses calls and up to {repeats} BlastRadius entities per size, timed at the client.\n")
    L.append("Where one RankCauses spends its time (median of 3, in-process, same graph and code):\n")
    L.append("| services | model nodes | Neo4j read cold / cached | evidence | model build | posteriors (pgmpy) | "
             "explanations | audit write + gRPC (rest of repeat p50) |")
    L.append("|---|---|---|---|---|---|---|---|")
    for r in rows:
        p = r["phases"]
        expl = max(0.0, p["rank_total_ms"] - p["evidence_ms"] - p["model_ms"] - p["posteriors_ms"])
        rest = max(0.0, r["rank_p50"] - p["read_ms"] - p["rank_total_ms"])
        L.append(f"| {r['n']} | {p['model_nodes']:.0f} | {p.get('read_cold_ms', 0):.0f} / {p['read_ms']:.0f} ms | "
                 f"{p['evidence_ms']:.0f} ms | "
                 f"{p['model_ms']:.0f} ms | {p['posteriors_ms']:.0f} ms | {expl:.0f} ms | {rest:.0f} ms |")
    return "\n".join(L) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="CI smoke: 50 and 200 services, 5 repeats, no peers")
    p.add_argument("--sizes", default="50,200,500,2000")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--no-peers", action="store_true")
    p.add_argument("--peer-cap-s", type=float, default=300.0)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--keep-neo4j", action="store_true")
    p.add_argument("--resume", action="store_true", help="keep the sizes already in results.json")
    p.add_argument("--report-only", action="store_true", help="write the report of results.json, run nothing")
    p.add_argument("--write", action="store_true", help="replace the Latency section of BENCHMARKS.md")
    args = p.parse_args(argv)
    sizes = [50, 200] if args.quick else [int(x) for x in args.sizes.split(",")]
    repeats = 5 if args.quick else args.repeats
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = RESULTS / ("results-quick.json" if args.quick else "results.json")  # a smoke run keeps the real one
    rows = []
    if args.report_only:
        rows = json.loads(results.read_text())
        sizes = []
    elif args.resume and results.exists():
        rows = [r for r in json.loads(results.read_text()) if r["n"] in sizes]
    svc = Service() if sizes else None
    try:
        for n in sizes:
            if any(r["n"] == n for r in rows):
                continue
            rows.append(run_size(svc, n, repeats, not (args.no_peers or args.quick), args.peer_cap_s, args.profile,
                                 args.quick))
            rows.sort(key=lambda r: r["n"])
            results.write_text(json.dumps(rows, indent=1))
    finally:
        if svc is not None:
            svc.close()
            if not args.keep_neo4j:
                stop_neo4j()
    text = report(rows, repeats)
    for r in rows:
        if "profile" in r:
            (RESULTS / f"profile-{r['n']}.txt").write_text(r["profile"])
    (RESULTS / "report.md").write_text(text)
    print(text)
    if args.write:
        nf = ROOT / "bench" / "latency-notes.md"  # the analysis of the last full run, by hand
        notes = (nf.read_text() + "\n") if nf.exists() and not args.quick else ""
        write_section(ROOT / "BENCHMARKS.md", "Latency",
                      "Command: `make bench-latency`, i.e. `make bench-peers-setup` then "
                      "`.venv/bin/python bench/latency.py --write` (CI smoke: `.venv/bin/python bench/latency.py "
                      "--quick`).\n\n" + (__doc__.split("\n\n", 2)[2].strip() + "\n\n") + notes + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
