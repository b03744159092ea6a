"""Benchmark: ingest on 1 vs N worker processes — throughput and CPU cost per span.

Same set-up as ``bench/ingest.py`` (real SDK exporters replaying simulator traffic in
``--senders`` client processes → ``rootgraph serve`` child → a dedicated local Neo4j),
one phase per ``--workers`` value in one run, so the ratios compare like with like on
a shared machine. For each phase: committed spans/s (steady state), CPU seconds of the
server's processes (front, workers) and of Neo4j over the steady window divided by the
spans committed in it (µs of CPU per span), RSS of the server tree (first and last
10 s of the window, and the peak: bounded or growing), and the exact check that Neo4j
holds what was acknowledged (spans, entry spans).

RankCauses meanwhile: before each phase ``--rank-services`` services (500: the issue's
target size; ``bench/graph_growth.py``'s generated fleet) get 45 minutes of buckets up
to now, and one client calls RankCauses over the last 15 minutes every
``--rank-every`` seconds during the measured window: p50 / p95 at the client.

    ROOTGRAPH_BENCH_INSTANCE=scale-bench ROOTGRAPH_BENCH_BOLT_PORT=18815 ROOTGRAPH_BENCH_HTTP_PORT=18816 \\
        .venv/bin/python bench/scaleout.py --workers 1 2 --duration 60
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import statistics
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from graph_growth import BUCKET, SteadyFleet, fleet, write_minutes  # noqa: E402  (bench/graph_growth.py)
from ingest import bench_neo4j  # noqa: E402  (bench/ingest.py)

from rootgraph.client import RootGraphClient  # noqa: E402
from rootgraph.graph.writer import GraphWriter  # noqa: E402

from rootgraph.simulate.replay import ReplayDriver, build_template  # noqa: E402
from rootgraph.simulate.serverproc import ServerProcess  # noqa: E402

INSTANCE = os.environ.get("ROOTGRAPH_BENCH_INSTANCE", "bench")
BOLT_PORT = int(os.environ.get("ROOTGRAPH_BENCH_BOLT_PORT", "47687"))
HTTP_PORT = int(os.environ.get("ROOTGRAPH_BENCH_HTTP_PORT", "47474"))


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy_s() -> float:
    """CPU seconds every process of the machine spent busy (``/proc/stat``: all but
    idle and iowait), so a phase says how much of the 2 cores the bench left unused."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * len(xs)))], 1) if xs else float("nan")


def _rank_loop(api: str, every_s: float, stop: threading.Event, out: list[float], tops: list[str]) -> None:
    with RootGraphClient(api, timeout_s=60) as rg:
        while not stop.wait(every_s):
            now = time.time()
            t0 = time.perf_counter()
            answer = rg.rank_causes(now - 900, now, top_k=5)
            out.append((time.perf_counter() - t0) * 1e3)
            tops.append(answer.causes[0].entity if answer.causes else "")


def run_phase(workers: int, template, local, driver, admin, args, workdir: Path) -> dict:  # noqa: ANN001
    admin.clear()
    if args.rank_services:
        entities, edges = fleet(args.rank_services)
        end = (int(time.time()) // BUCKET + 1) * BUCKET
        # steady: 30 healthy minutes, then one service fails (the RankCauses windows end
        # "now", up to a minute past these buckets); noisy: everything anomalous. Not
        # written ahead of the clock: the detector would judge every future minute at once.
        steady = SteadyFleet(entities, edges, end - 15 * BUCKET) if args.rank_fleet == "steady" else None
        write_minutes(GraphWriter(driver, "neo4j"), entities, edges, end - 45 * BUCKET, 45, 1000, steady)
    seeded = admin.ingest_totals()  # the fleet's entry counts: not ingest's, subtracted below
    server = ServerProcess(local.bolt_uri, local.password_file, workdir / f"server-w{workers}.log",
                           workers=workers).start()
    neo4j_pid = local.status().pid
    drv = ReplayDriver(template, server.otlp_grpc, str(workdir), senders=args.senders,
                       threads=args.threads).start()
    time.sleep(args.warmup)
    # A server started on a graph with history first judges the buckets it has not (the
    # seeded fleet's 45 minutes, each a full 500-service judgement): measure after that.
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:  # a server busy judging may not answer /metrics within its 5 s timeout
            if server.metrics().get("rootgraph_ingest_detector_buckets_behind", 0) == 0:
                break
        except OSError:
            pass
        time.sleep(1.0)
    pids = server.tree_pids()
    front, rest = pids[0], pids[1:]
    a_spans, a_t = drv.totals()["acked_spans"], time.monotonic()
    a_front, a_rest, a_neo = _cpu_s(front), sum(map(_cpu_s, rest)), _cpu_s(neo4j_pid)
    a_send, a_busy = sum(map(_cpu_s, drv.pids())), _machine_busy_s()
    stop, ranks, tops = threading.Event(), [], []
    ranker = threading.Thread(target=_rank_loop, args=(server.api, args.rank_every, stop, ranks, tops),
                              daemon=True)
    if args.rank_services:
        ranker.start()
    rss: list[int] = []
    while time.monotonic() - a_t < args.duration:
        time.sleep(1.0)
        rss.append(server.tree_memory_kb())
    b_spans, b_t = drv.totals()["acked_spans"], time.monotonic()
    b_front, b_rest, b_neo = _cpu_s(front), sum(map(_cpu_s, rest)), _cpu_s(neo4j_pid)
    b_send, b_busy = sum(map(_cpu_s, drv.pids())), _machine_busy_s()
    stop.set()
    if args.rank_services:
        ranker.join(120)
    totals = drv.stop()
    server.stop()
    got = {k: v - seeded[k] for k, v in admin.ingest_totals().items()}
    spans = max(1, b_spans - a_spans)
    us = lambda s: round(s * 1e6 / spans, 1)  # noqa: E731
    return {
        "workers": workers, "spans_per_s": round(spans / (b_t - a_t)),
        "cpu_us_per_span_front": us(b_front - a_front), "cpu_us_per_span_workers": us(b_rest - a_rest),
        "cpu_us_per_span_server": us(b_front - a_front + b_rest - a_rest),
        "cpu_us_per_span_neo4j": us(b_neo - a_neo),
        "cpu_us_per_span_all": us(b_front - a_front + b_rest - a_rest + b_neo - a_neo),
        "cpu_us_per_span_senders": us(b_send - a_send),
        "machine_busy_cores": round((b_busy - a_busy) / (b_t - a_t), 2),
        "server_tree_peak_rss_mib": round(max(rss) / 1024, 1),
        "server_tree_rss_first_last_mib": [round(statistics.mean(rss[:10]) / 1024), round(statistics.mean(rss[-10:]) / 1024)],
        "rank_calls": len(ranks), "rank_p50_ms": _pct(ranks, 0.5), "rank_p95_ms": _pct(ranks, 0.95),
        "rank_top_is_culprit": (sum(t == steady.culprit for t in tops) if args.rank_services and steady
                                else None),
        "exact": (got["spans"], got["entries"]) == (totals["acked_spans"], totals["acked_entries"])
        and totals["gave_up_spans"] == 0,
    }


def run_replicas(replicas: int, template, local, admin, args, workdir: Path) -> dict:  # noqa: ANN001
    """``replicas`` ``serve --role ingest --workers 1`` processes, each fed by its own
    sender processes. Every trace of the template is sent whole by one sender, so
    pinning a driver to a replica routes by trace id as the Collector's ring would
    (``tests/test_ingest_replicas.py`` checks the ring itself); the ring's own cost is
    the Collector's, not ours. One sender per replica beyond the first (``--senders``
    for one replica, as in the worker phases)."""
    admin.clear()
    servers = [ServerProcess(local.bolt_uri, local.password_file, workdir / f"replica-{replicas}-{i}.log",
                             role="ingest", workers=1).start() for i in range(replicas)]
    neo4j_pid = local.status().pid
    senders = args.senders if replicas == 1 else 1
    drivers = []
    for i, s in enumerate(servers):
        d = workdir / f"replica-{replicas}-{i}"
        d.mkdir(exist_ok=True)
        drivers.append(ReplayDriver(template, s.otlp_grpc, str(d), senders=senders, threads=args.threads,
                                    first_sender=i * senders).start())

    def acked() -> int:
        return sum(d.totals()["acked_spans"] for d in drivers)

    def cpu() -> tuple[float, float]:
        return sum(_cpu_s(p) for s in servers for p in s.tree_pids()), _cpu_s(neo4j_pid)

    time.sleep(args.warmup)
    a_spans, a_t, (a_srv, a_neo) = acked(), time.monotonic(), cpu()
    rss: list[int] = []
    while time.monotonic() - a_t < args.duration:
        time.sleep(1.0)
        rss.append(sum(s.tree_memory_kb() for s in servers))
    b_spans, b_t, (b_srv, b_neo) = acked(), time.monotonic(), cpu()
    totals = [d.stop() for d in drivers]
    for s in servers:
        s.stop()
    got = admin.ingest_totals()
    spans = max(1, b_spans - a_spans)
    us = lambda x: round(x * 1e6 / spans, 1)  # noqa: E731
    return {
        "replicas": replicas, "spans_per_s": round(spans / (b_t - a_t)),
        "cpu_us_per_span_server": us(b_srv - a_srv), "cpu_us_per_span_neo4j": us(b_neo - a_neo),
        "cpu_us_per_span_all": us(b_srv - a_srv + b_neo - a_neo),
        "server_tree_peak_rss_mib": round(max(rss) / 1024, 1),
        "exact": (got["spans"], got["entries"]) == (sum(t["acked_spans"] for t in totals),
                                                    sum(t["acked_entries"] for t in totals))
        and all(t["gave_up_spans"] == 0 for t in totals),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    p.add_argument("--replicas", type=int, nargs="*", default=[], help="also: N ingest replicas (e.g. 1 2 3)")
    p.add_argument("--duration", type=float, default=60.0, help="measured seconds per phase")
    p.add_argument("--warmup", type=float, default=10.0, help="seconds before measuring")
    p.add_argument("--senders", type=int, default=2)
    p.add_argument("--threads", type=int, default=6)
    p.add_argument("--template-spans", type=int, default=60_000)
    p.add_argument("--rank-services", type=int, default=500, help="fleet RankCauses reads meanwhile (0: none)")
    p.add_argument("--rank-every", type=float, default=2.0, help="seconds between RankCauses calls")
    p.add_argument("--rank-fleet", choices=["steady", "noisy"], default="steady",
                   help="steady: one failing service in a healthy fleet (graph_growth.SteadyFleet); "
                        "noisy: every service anomalous every minute (the worst case)")
    args = p.parse_args(argv)
    local, driver, admin, started = bench_neo4j(INSTANCE, BOLT_PORT, HTTP_PORT)
    try:
        template = build_template(args.template_spans)
        with tempfile.TemporaryDirectory(prefix="rootgraph-scaleout-") as tmp:
            rows = [run_phase(w, template, local, driver, admin, args, Path(tmp)) for w in args.workers]
            reps = [run_replicas(n, template, local, admin, args, Path(tmp)) for n in args.replicas]
    finally:
        driver.close()
        if started:
            local.stop()
    print("| workers | spans/s | µs CPU/span front | workers | server total | Neo4j | all | "
          "senders | machine busy (cores) | RSS MiB first→last (peak) | RankCauses p50 / p95 ms | exact |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        first, last = r["server_tree_rss_first_last_mib"]
        print(f"| {r['workers']} | {r['spans_per_s']:,} | {r['cpu_us_per_span_front']} | "
              f"{r['cpu_us_per_span_workers']} | {r['cpu_us_per_span_server']} | {r['cpu_us_per_span_neo4j']} | "
              f"{r['cpu_us_per_span_all']} | {r['cpu_us_per_span_senders']} | {r['machine_busy_cores']} | "
              f"{first}→{last} ({r['server_tree_peak_rss_mib']}) | "
              f"{r['rank_p50_ms']} / {r['rank_p95_ms']} ({r['rank_calls']}"
              f"{'' if r['rank_top_is_culprit'] is None else ', top = culprit in %d' % r['rank_top_is_culprit']}) | "
              f"{r['exact']} |")
    if reps:
        print("\n| ingest replicas | spans/s | µs CPU/span rootgraph | Neo4j | all | peak RSS MiB (all replicas) | exact |")
        print("|---|---|---|---|---|---|---|")
        for r in reps:
            print(f"| {r['replicas']} | {r['spans_per_s']:,} | {r['cpu_us_per_span_server']} | "
                  f"{r['cpu_us_per_span_neo4j']} | {r['cpu_us_per_span_all']} | {r['server_tree_peak_rss_mib']} | "
                  f"{r['exact']} |")
    print(json.dumps(rows + reps))
    return 0 if all(r["exact"] for r in rows + reps) else 1


if __name__ == "__main__":
    sys.exit(main())
