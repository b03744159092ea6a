"""Load drill (issue 8, part 3): sustained OTLP ingest + concurrent RankCauses callers.

``rootgraph serve`` runs as a child process over the dedicated ``bench`` Neo4j (see
``bench/ingest.py``); client processes replay simulator traffic through the real SDK
exporter at full speed for ``--minutes``, while ``--rankers`` threads call RankCauses
through ``RootGraphClient`` over the traffic's window. Halfway, a burst of ``--burst``
simultaneous raw Export calls (more than the server's ``maximum_concurrent_rpcs``)
checks back-pressure: the excess must be refused (RESOURCE_EXHAUSTED/UNAVAILABLE) with
memory staying bounded, not queued without limit. Burst requests that failed are then
re-sent until acknowledged, so the final check stays exact.

Reports spans/s held, RankCauses p50/p95/errors under load, the server's RSS every
``--sample-s`` seconds and its peak, the burst's status codes, and Neo4j totals versus
what was acknowledged (nothing lost, nothing doubled). Loopback only; every loop is
bounded in count and time.

    .venv/bin/python bench/load.py                 # 10 minutes, one server process
    .venv/bin/python bench/load.py --split         # ingest and API in two processes
    .venv/bin/python bench/load.py --minutes 1     # a short check

``--split`` runs ``rootgraph serve --role ingest`` (the exporters' target) and
``rootgraph serve --role api`` (the RankCauses callers' target) as two processes sharing
only Neo4j, so queries and ingest do not share a GIL; both processes' RSS is reported.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import bench_neo4j  # noqa: E402  (bench/ingest.py)

from rootgraph.client import RootGraphClient  # noqa: E402
from rootgraph.simulate.replay import GrpcReplayExporter, ReplayDriver, ReplayTemplate, build_template  # noqa: E402
from rootgraph.simulate.serverproc import ServerProcess  # noqa: E402

BURST_SENDER = 60_000  # sender id of burst payloads: never used by the replay processes


def rankers(api: str, template: ReplayTemplate, stop: threading.Event, n: int,
            out: list[float], errors: collections.Counter) -> list[threading.Thread]:
    """``n`` threads calling RankCauses (10 s deadline) over the traffic's time window."""
    mid = (template.start_s + template.end_s) / 2

    def loop() -> None:
        with RootGraphClient(api, timeout_s=10.0) as rg:
            for _ in range(1_000_000):  # bounded; ends with `stop`
                if stop.is_set():
                    return
                t0 = time.perf_counter()
                try:
                    rg.rank_causes(mid, template.end_s + 1, top_k=3, baseline=(template.start_s, mid))
                    out.append((time.perf_counter() - t0) * 1000)
                except grpc.RpcError as err:
                    errors[err.code().name] += 1  # type: ignore[attr-defined]
                    stop.wait(0.5)

    threads = [threading.Thread(target=loop, name=f"ranker-{i}", daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    return threads


def burst(otlp: str, template: ReplayTemplate, n: int) -> tuple[dict[str, int], int, int, int]:
    """``n`` simultaneous Exports; failed ones re-sent via the SDK exporter until acked.

    Returns (status codes of the burst, requests, spans, entry spans) finally acknowledged.
    """
    idx = [i % len(template.payloads) for i in range(n)]
    payloads = [template.round_payload(i, BURST_SENDER, k // len(template.payloads)) for k, i in enumerate(idx)]
    channel = grpc.insecure_channel(otlp)
    stub = trace_service_pb2_grpc.TraceServiceStub(channel)

    def one(p: bytes) -> str:
        try:
            stub.Export(trace_service_pb2.ExportTraceServiceRequest.FromString(p), timeout=10.0)
            return "OK"
        except grpc.RpcError as err:
            return err.code().name  # type: ignore[attr-defined]

    with ThreadPoolExecutor(n) as pool:
        codes = list(pool.map(one, payloads))
    channel.close()
    exporter = GrpcReplayExporter(endpoint=otlp, insecure=True, timeout=30.0)
    for p, code in zip(payloads, codes):
        for _ in range(20):  # bounded re-sends
            if code == "OK" or exporter.export_bytes(p):
                break
        else:
            raise RuntimeError("a burst request was never acknowledged")
    exporter.shutdown()
    return (dict(collections.Counter(codes)), n, sum(template.spans_per_payload[i] for i in idx),
            sum(template.entries_per_payload[i] for i in idx))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--senders", type=int, default=2)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--rankers", type=int, default=2, help="concurrent RankCauses callers")
    p.add_argument("--burst", type=int, default=200, help="simultaneous Exports in the back-pressure probe")
    p.add_argument("--sample-s", type=float, default=10.0)
    p.add_argument("--split", action="store_true",
                   help="two server processes: `serve --role ingest` (OTLP) and `serve --role api` (RankCauses)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    duration = args.minutes * 60

    local, driver, admin, started = bench_neo4j()
    try:
        admin.clear()
        template = build_template(90_000)
        with tempfile.TemporaryDirectory(prefix="rootgraph-load-") as tmp:
            server = ServerProcess(local.bolt_uri, local.password_file, Path(tmp) / "server.log",
                                   role="ingest" if args.split else "all").start()
            api = server if not args.split else ServerProcess(
                local.bolt_uri, local.password_file, Path(tmp) / "api.log", role="api").start()
            drv = ReplayDriver(template, server.otlp_grpc, tmp, senders=args.senders, threads=args.threads).start()
            stop = threading.Event()
            lat: list[float] = []
            rank_errors: collections.Counter = collections.Counter()
            threads = rankers(api.api, template, stop, args.rankers, lat, rank_errors)
            t0 = time.monotonic()
            samples, rss, api_rss, burst_result, next_rss = [], [], [], None, 0.0
            while (now := time.monotonic() - t0) < duration:
                samples.append((now, drv.totals()["acked_spans"]))
                if now >= next_rss:
                    kb = server.tree_memory_kb()  # the server and its ingest workers
                    rss.append((round(now), round(kb / 1024, 1)))
                    if api is not server:
                        api_rss.append((round(now), round(api.memory_kb()["VmRSS"] / 1024, 1)))
                    print(f"  t={now:5.0f}s acked={samples[-1][1]:>10,} spans  RankCauses n={len(lat)}  "
                          f"server RSS {kb / 1024:6.1f} MiB"
                          + (f", api RSS {api_rss[-1][1]:6.1f} MiB" if api_rss else ""), flush=True)
                    next_rss += args.sample_s
                if burst_result is None and now >= duration / 2:
                    burst_result = burst(server.otlp_grpc, template, args.burst)
                    print(f"  burst of {args.burst}: {burst_result[0]}", flush=True)
                time.sleep(1.0)
            stop.set()
            for t in threads:
                t.join(15)
            sent = drv.stop()
            elapsed = time.monotonic() - t0
            peak = max(server.tree_memory_kb(), max((r[1] for r in rss), default=0) * 1024)
            api_peak = api.memory_kb()["VmHWM"] if api is not server else 0
            server.stop()
            if api is not server:
                api.stop()
        got = admin.ingest_totals()
    finally:
        driver.close()
        if started:
            local.stop()
    codes, b_req, b_spans, b_entries = burst_result or ({}, 0, 0, 0)
    warm = max(5.0, duration * 0.1)
    steady = [s for s in samples if s[0] >= warm]
    rate = (steady[-1][1] - steady[0][1]) / (steady[-1][0] - steady[0][0]) if len(steady) > 1 else 0.0
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [0.0] * 99
    expect = (sent["acked_requests"] + b_req, sent["acked_spans"] + b_spans, sent["acked_entries"] + b_entries)
    result = {
        "minutes": args.minutes, "spans_per_s_steady": round(rate),
        "spans_per_s_overall": round(sent["acked_spans"] / elapsed),
        "rank_causes": {"calls": len(lat), "p50_ms": round(q[49], 1), "p95_ms": round(q[94], 1),
                        "errors": dict(rank_errors)},
        "split": args.split, "burst_codes": codes, "server_rss_mib_samples": rss,
        "server_peak_rss_mib": round(peak / 1024, 1),
        "api_rss_mib_samples": api_rss, "api_peak_rss_mib": round(api_peak / 1024, 1),
        "acked": {"requests": expect[0], "spans": expect[1], "entries": expect[2],
                  "exporter_failed_attempts": sent["failed_attempts"], "gave_up_spans": sent["gave_up_spans"]},
        "neo4j": got,
    }
    # spans and entries exact; a request is one IngestBatch per ingest worker it touched
    workers = server.workers or 1  # serve's default: one ingest process
    result["ok"] = ((got["spans"], got["entries"]) == expect[1:] and expect[0] <= got["batches"] <= workers * expect[0]
                    and sent["gave_up_spans"] == 0)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"\nload {args.minutes} min: ingest held {result['spans_per_s_steady']:,} spans/s steady "
              f"({result['spans_per_s_overall']:,} overall)")
        print(f"  RankCauses under load: {result['rank_causes']}")
        print(f"  back-pressure burst of {args.burst}: {codes}")
        print(f"  server peak RSS {result['server_peak_rss_mib']} MiB; samples {rss}")
        if args.split:
            print(f"  api process peak RSS {result['api_peak_rss_mib']} MiB; samples {api_rss}")
        print(f"  acked {result['acked']}\n  Neo4j {got}  -> {'OK' if result['ok'] else 'MISMATCH'}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
