"""Benchmark: end to end ingest — real OTLP exporter → ``rootgraph serve`` → Neo4j.

Client and server are separate processes as in production: ``--senders`` client
processes × ``--threads`` SDK exporters replay simulator traffic (``simulate.replay``:
encoded once, fresh trace ids per round) into ``rootgraph serve`` (a child process)
over loopback, which commits to a dedicated local Neo4j (instance ``bench``, ports
47687/47474). A batch counts once the exporter saw success, which the server only
answers after the Neo4j commit.

Reports spans/s committed (whole run and steady state), Neo4j write latency (server
metrics), the server's RSS every ``--sample-s`` seconds and its peak (VmHWM), and checks
at the end that Neo4j holds exactly what was acknowledged: Σ IngestBatch.spans ==
spans acked, Σ ServiceBucket.n == entry spans acked. Target: >= 30,000 spans/s.

    .venv/bin/python bench/ingest.py                    # 60 s
    .venv/bin/python bench/ingest.py --duration 600     # the 10-minute RSS-flatness run
    .venv/bin/python bench/ingest.py --compare          # group commit off vs on, same run
    .venv/bin/python bench/ingest.py --quick            # CI smoke (~40 s incl. set-up)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rootgraph.config import load_settings
from rootgraph.graph.connect import open_driver
from rootgraph.graph.local import LocalNeo4j
from rootgraph.graph.admin import GraphAdmin
from rootgraph.simulate.replay import ReplayDriver, ReplayTemplate, build_template
from rootgraph.simulate.serverproc import ServerProcess

TARGET = 30_000


def bench_neo4j(instance: str = "bench", bolt: int = 47687, http: int = 47474):  # noqa: ANN201
    """Start (or reuse) the dedicated local Neo4j; return (LocalNeo4j, driver, admin, started)."""
    settings = load_settings(local_instance=instance, local_bolt_port=bolt, local_http_port=http,
                             local_heap="1g", local_pagecache="512m")
    local = LocalNeo4j(settings)
    started = not local.status().running
    driver = open_driver(settings, log=lambda m: None)
    admin = GraphAdmin(driver, settings.neo4j_database)
    return local, driver, admin, started


def run_phase(name: str, template: ReplayTemplate, local: LocalNeo4j, driver, admin: GraphAdmin,  # noqa: ANN001
              args: argparse.Namespace, workdir: Path, env: dict[str, str]) -> dict:
    admin.clear()
    server = ServerProcess(local.bolt_uri, local.password_file, workdir / f"server-{name}.log", env).start()
    endpoint = server.otlp_grpc if args.protocol == "grpc" else server.otlp_http
    drv = ReplayDriver(template, endpoint, str(workdir), protocol=args.protocol,
                       senders=args.senders, threads=args.threads).start()
    t0 = time.monotonic()
    samples: list[tuple[float, int]] = []
    rss: list[tuple[int, int]] = []
    next_rss = 0.0
    while (now := time.monotonic() - t0) < args.duration:
        samples.append((now, drv.totals()["acked_spans"]))
        if now >= next_rss:
            mem = server.memory_kb()
            rss.append((round(now), mem["VmRSS"]))
            print(f"  [{name}] t={now:5.0f}s acked={samples[-1][1]:>9,} spans  server RSS "
                  f"{mem['VmRSS'] / 1024:6.1f} MiB", flush=True)
            next_rss += args.sample_s
        time.sleep(1.0)
    elapsed = time.monotonic() - t0
    totals = drv.stop()
    elapsed_all = time.monotonic() - t0
    metrics = server.metrics()
    workers = int(metrics.get("rootgraph_ingest_ingest_workers", 1))  # absent: the single-process path
    peak = server.memory_kb()["VmHWM"]
    server.stop()  # graceful: drains and flushes waiting halves before the count
    got = admin.ingest_totals()
    warm = max(5.0, args.duration * 0.1)
    steady = [(t, n) for t, n in samples if t >= warm]
    steady_rate = ((steady[-1][1] - steady[0][1]) / (steady[-1][0] - steady[0][0])
                   if len(steady) > 1 and steady[-1][0] > steady[0][0] else 0.0)
    per_s = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(steady, steady[1:]) if b[0] > a[0]]
    writes = metrics.get("rootgraph_ingest_neo4j_writes", 0) or 1
    result = {
        "phase": name, "protocol": args.protocol, "senders": args.senders, "threads": args.threads,
        "duration_s": round(elapsed, 1), "acked": totals,
        "spans_per_s_overall": round(totals["acked_spans"] / elapsed_all),
        "spans_per_s_steady": round(steady_rate),
        "spans_per_s_median_1s": round(statistics.median(per_s)) if per_s else 0,
        "neo4j_writes": int(metrics.get("rootgraph_ingest_neo4j_writes", 0)),
        "neo4j_write_ms_mean": round(metrics.get("rootgraph_ingest_neo4j_write_ms_total", 0) / writes, 1),
        "neo4j_write_ms_max": metrics.get("rootgraph_ingest_neo4j_write_ms_max", 0),
        "server_rss_mib_samples": [(t, round(kb / 1024, 1)) for t, kb in rss],
        "server_peak_rss_mib": round(peak / 1024, 1),
        "neo4j": got,
        "ingest_workers": workers,
        "lost_or_double": {
            "spans": got["spans"] - totals["acked_spans"],
            "entries": got["entries"] - totals["acked_entries"],
            # a request is one IngestBatch per ingest worker it touched (server/workers.py)
            "batches": 0 if totals["acked_requests"] <= got["batches"] <= workers * totals["acked_requests"]
            else got["batches"] - totals["acked_requests"],
        },
    }
    result["ok"] = (not any(result["lost_or_double"].values()) and totals["gave_up_spans"] == 0)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load per phase")
    p.add_argument("--quick", action="store_true", help="CI smoke: 15 s, small template")
    p.add_argument("--senders", type=int, default=2, help="client processes")
    p.add_argument("--threads", type=int, default=6, help="exporters per client process")
    p.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    p.add_argument("--sample-s", type=float, default=10.0, help="RSS sampling period")
    p.add_argument("--template-spans", type=int, default=90_000)
    p.add_argument("--compare", action="store_true",
                   help="two phases in one run: group commit off (ROOTGRAPH_INGEST_GROUP_MAX=1), then on")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.template_spans, args.sample_s = 15.0, 20_000, 5.0

    local, driver, admin, started = bench_neo4j()
    try:
        t = time.monotonic()
        template = build_template(args.template_spans)
        print(f"template: {len(template.payloads)} requests, {template.spans:,} spans, "
              f"{template.entries:,} entry spans ({time.monotonic() - t:.0f}s to build)", flush=True)
        phases = [("no-group", {"ROOTGRAPH_INGEST_GROUP_MAX": "1"}), ("group", {})] if args.compare \
            else [("default", {})]
        results = []
        with tempfile.TemporaryDirectory(prefix="rootgraph-bench-") as tmp:
            for name, env in phases:
                results.append(run_phase(name, template, local, driver, admin, args, Path(tmp), env))
    finally:
        driver.close()
        if started:
            local.stop()
    for r in results:
        if args.json:
            print(json.dumps(r))
            continue
        verdict = "OK" if r["ok"] else "MISMATCH"
        print(f"\n[{r['phase']}] {r['protocol']} {r['senders']}x{r['threads']} exporters, {r['duration_s']} s")
        print(f"  committed spans/s: steady {r['spans_per_s_steady']:,}  (median of 1 s samples "
              f"{r['spans_per_s_median_1s']:,}, overall {r['spans_per_s_overall']:,}; target {TARGET:,})")
        print(f"  Neo4j writes {r['neo4j_writes']:,}: mean {r['neo4j_write_ms_mean']} ms, "
              f"max {r['neo4j_write_ms_max']} ms")
        print(f"  server peak RSS {r['server_peak_rss_mib']} MiB; samples {r['server_rss_mib_samples']}")
        print(f"  acked {r['acked']}")
        print(f"  Neo4j {r['neo4j']}  diff {r['lost_or_double']}  -> {verdict}")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
