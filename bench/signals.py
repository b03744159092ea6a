"""Benchmark: OTLP logs and metrics end to end — HTTP client processes → ``rootgraph serve`` → Neo4j.

Client processes post OTLP/HTTP protobuf requests (``--logs-per-request`` log records
over 20 services and 40 message shapes, or ``--points-per-request`` metric points: pod
CPU gauges and cumulative network counters over 200 pods) over keep-alive connections
into a real ``rootgraph serve`` child process, which commits them to a local Neo4j. A
request counts once it was answered 200, which the server only does after the commit.
Every request is distinct (fresh timestamps), so nothing is deduplicated away.

Reports log records/s and metric points/s committed: the median of per-``--sample-s``
rates over the steady state (first sample dropped), and checks that Neo4j holds what was
acknowledged (Σ LogBucket.n == log records acked). Targets (issue 14): >= 50,000 log
records/s, >= 100,000 metric points/s.

    .venv/bin/python bench/signals.py --instance signals --bolt 18671 --http 18672
    .venv/bin/python bench/signals.py --signal metrics --duration 30
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import bench_neo4j  # noqa: E402  (bench/ingest.py: the dedicated Neo4j)

from rootgraph.simulate.serverproc import ServerProcess  # noqa: E402

TARGETS = {"logs": 50_000, "metrics": 100_000}
_SHAPES = [f"request {{}} to backend-{i} failed with status {{}}" if i % 4 == 0 else
           f"handled request {{}} for user {{}} in {i} ms" for i in range(40)]


def _kv(key: str, value: str) -> dict:
    return {"key": key, "value": {"string_value": value}}


def _logs_request(n: int, seq: int) -> bytes:
    from google.protobuf import json_format
    now = time.time_ns()
    per = max(1, n // 20)
    doc = {"resource_logs": [{
        "resource": {"attributes": [_kv("service.name", f"svc-{s}"), _kv("service.namespace", "bench")]},
        "scope_logs": [{"log_records": [{
            "time_unix_nano": now + seq * 1000 + i, "severity_number": 17 if i % 10 == 0 else 9,
            "body": {"string_value": _SHAPES[(s + i) % 40].format(seq * per + i, i % 97)},
            "trace_id": (seq * 1_000_003 + i + 1).to_bytes(16, "big").hex(),
            "span_id": (s * 100_000 + i + 1).to_bytes(8, "big").hex(),
        } for i in range(per)]}]} for s in range(20)]}
    for rl in doc["resource_logs"]:  # json_format wants base64 for bytes
        for rec in rl["scope_logs"][0]["log_records"]:
            import base64
            rec["trace_id"] = base64.b64encode(bytes.fromhex(rec["trace_id"])).decode()
            rec["span_id"] = base64.b64encode(bytes.fromhex(rec["span_id"])).decode()
    return json_format.ParseDict(doc, ExportLogsServiceRequest()).SerializeToString()


_GAUGES = ("k8s.pod.cpu.usage", "k8s.pod.memory.working_set", "k8s.pod.memory_limit_utilization",
           "container.cpu.usage")
_COUNTERS = (("k8s.pod.network.io", "receive"), ("k8s.pod.network.io", "transmit"),
             ("k8s.pod.network.errors", "receive"), ("k8s.pod.cpu.time", ""))


def _metrics_request(n: int, seq: int, start_ns: int) -> bytes:
    """n points as a kubeletstats receiver sends them: one resource per pod, 8 points
    each (4 gauges, 4 cumulative sums)."""
    from google.protobuf import json_format
    now = time.time_ns() + seq
    pods = max(1, n // 8)
    doc = {"resource_metrics": [{
        "resource": {"attributes": [_kv("k8s.pod.name", f"pod-{p}"), _kv("k8s.node.name", f"n{p % 5}")]},
        "scope_metrics": [{"metrics": [
            {"name": g, "gauge": {"data_points": [{"time_unix_nano": now, "as_double": (p % 10) / 10}]}}
            for g in _GAUGES] + [
            {"name": c, "sum": {"aggregation_temporality": 2, "is_monotonic": True, "data_points": [{
                "start_time_unix_nano": start_ns, "time_unix_nano": now, "as_int": seq * 1000 + p,
                "attributes": [_kv("direction", d)] if d else []}]}}
            for c, d in _COUNTERS]}]} for p in range(pods)]}
    return json_format.ParseDict(doc, ExportMetricsServiceRequest()).SerializeToString()


def _sender(endpoint: str, signal: str, size: int, stop_at: float, worker: int, out: "mp.Queue",
            unique: bool) -> None:
    host, _, port = endpoint.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    path = f"/v1/{signal}"
    seq = worker * 1_000_000
    start_ns = time.time_ns()
    # Built once, then only the times change: the client must not be the bottleneck.
    msg = (ExportLogsServiceRequest if signal == "logs" else ExportMetricsServiceRequest).FromString(
        _logs_request(size, seq) if signal == "logs" else _metrics_request(size, seq, start_ns))
    while time.time() < stop_at:
        seq += 1
        now = time.time_ns()
        if signal == "logs":
            for s_, rl in enumerate(msg.resource_logs):
                for i, rec in enumerate(rl.scope_logs[0].log_records):
                    rec.time_unix_nano = now + i
                    if unique:  # fresh variable parts: every message goes through drain3
                        rec.body.string_value = _SHAPES[(s_ + i) % 40].format(seq * 7 + i, seq % 97)
        else:
            for rm in msg.resource_metrics:
                for m in rm.scope_metrics[0].metrics:
                    dp = (m.gauge if m.HasField("gauge") else m.sum).data_points[0]
                    dp.time_unix_nano = now
                    if m.HasField("sum"):
                        dp.as_int += 1000
        body = msg.SerializeToString()
        conn.request("POST", path, body, {"Content-Type": "application/x-protobuf"})
        resp = conn.getresponse()
        resp.read()
        if resp.status == 200:
            out.put((time.time(), size))
        else:
            out.put((time.time(), 0))
    out.put(None)


def run(signal: str, args: argparse.Namespace, server: ServerProcess) -> dict:
    size = args.logs_per_request if signal == "logs" else args.points_per_request
    stop_at = time.time() + args.duration
    q: mp.Queue = mp.Queue()
    procs = [mp.Process(target=_sender, args=(server.otlp_http, signal, size, stop_at, w, q, args.unique_messages), daemon=True)
             for w in range(args.senders)]
    t0 = time.time()
    for p in procs:
        p.start()
    acks: list[tuple[float, int]] = []
    done = 0
    while done < len(procs):
        item = q.get()
        if item is None:
            done += 1
        else:
            acks.append(item)
    for p in procs:
        p.join()
    rates: list[float] = []
    edge = t0 + args.sample_s
    while edge <= stop_at:
        n = sum(k for t, k in acks if edge - args.sample_s <= t < edge)
        rates.append(n / args.sample_s)
        edge += args.sample_s
    steady = rates[1:] or rates
    return {"signal": signal, "acked": sum(k for _, k in acks), "failed_requests": sum(1 for _, k in acks if not k),
            "median_per_s": round(statistics.median(steady)) if steady else 0,
            "whole_run_per_s": round(sum(k for _, k in acks) / (max(t for t, _ in acks) - t0)) if acks else 0,
            "samples": [round(r) for r in rates]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--signal", choices=("logs", "metrics", "both"), default="both")
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--sample-s", type=float, default=5.0)
    ap.add_argument("--senders", type=int, default=3)
    ap.add_argument("--logs-per-request", type=int, default=2000)
    ap.add_argument("--points-per-request", type=int, default=4000)
    ap.add_argument("--unique-messages", action="store_true",
                    help="new numbers in every log message (no exact repeats: drain3 on every record)")
    ap.add_argument("--instance", default="bench")
    ap.add_argument("--bolt", type=int, default=47687)
    ap.add_argument("--http", type=int, default=47474)
    args = ap.parse_args()
    local, driver, admin, started = bench_neo4j(args.instance, args.bolt, args.http)
    if started:
        local.start()
    results = []
    with tempfile.TemporaryDirectory() as work:
        for signal in (("logs", "metrics") if args.signal == "both" else (args.signal,)):
            admin.clear()
            server = ServerProcess(local.bolt_uri, local.password_file, Path(work) / f"server-{signal}.log").start()
            try:
                r = run(signal, args, server)
            finally:
                server.stop()
            with driver.session() as s:
                q = ("MATCH (b:LogBucket) RETURN coalesce(sum(b.n), 0)" if signal == "logs" else
                     "MATCH (b:IngestBatch) WHERE b.id STARTS WITH 'metrics:' RETURN coalesce(sum(b.records), 0)")
                r["stored"] = s.run(q).single()[0]
            r["target_per_s"] = TARGETS[signal]
            results.append(r)
            print(r, flush=True)
    driver.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
