"""First RankCauses after a start vs the ones after it (issue 13, finding 8).

    .venv/bin/python bench/first_call.py [--starts 5] [--services 200] [--calls 6]

Loads one generated incident (``inference.synthetic.generate_incident``, shifted so it
ends at the current minute: the recent past an on-call asks about) into the Neo4j that
``rootgraph serve`` would use (``ROOTGRAPH_NEO4J_*`` / ``NEO4J_URI``; the data is
cleared first, so point it at a scratch instance), then ``--starts`` times: starts
``rootgraph serve --role api`` as a fresh process, waits for gRPC health SERVING, and
times ``--calls`` RankCauses over the incident window at the client. Prints, as medians
over the starts: time from process start to SERVING, the first call, and the median of
the later calls.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from rootgraph.client import RootGraphClient
from rootgraph.config import load_settings
from rootgraph.graph.connect import open_driver
from rootgraph.graph.records import Window, WindowData, window_to_delta
from rootgraph.graph.admin import GraphAdmin
from rootgraph.graph.writer import GraphWriter
from rootgraph.inference.synthetic import generate_incident

ROOT = Path(__file__).resolve().parent.parent


def shifted(w: WindowData, by: int) -> WindowData:
    """``w`` moved ``by`` seconds later (a multiple of the bucket width)."""
    def rows(rs):  # noqa: ANN001,ANN202
        return tuple(dataclasses.replace(r, start_s=r.start_s + by) for r in rs)

    return dataclasses.replace(
        w, incident=Window(w.incident.start_s + by, w.incident.end_s + by),
        baseline=Window(w.baseline.start_s + by, w.baseline.end_s + by),
        service_buckets={e: rows(rs) for e, rs in w.service_buckets.items()},
        edges=tuple(dataclasses.replace(e, buckets=rows(e.buckets)) for e in w.edges),
        deployments=tuple(dataclasses.replace(d, at_ms=d.at_ms + by * 1000) for d in w.deployments),
        version="",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_serving(addr: str, deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    with grpc.insecure_channel(addr) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while time.monotonic() < end:
            try:
                if stub.Check(health_pb2.HealthCheckRequest(service="rootgraph.v1.RootCause"),
                              timeout=1.0).status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.05)
    raise TimeoutError(f"{addr}: not SERVING after {deadline_s} s")


def one_start(window: WindowData, calls: int) -> dict:
    port = free_port()
    addr = f"127.0.0.1:{port}"
    env = dict(os.environ, ROOTGRAPH_API_ADDRESS=addr)
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "rootgraph.cli", "serve", "--role", "api"], env=env,
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_serving(addr, 120.0)
        ready_s = time.monotonic() - t0
        times = []
        with RootGraphClient(addr, timeout_s=60) as rg:
            for _ in range(calls):
                t = time.perf_counter()
                rg.rank_causes(window.incident.start_s, window.incident.end_s, top_k=5)
                times.append((time.perf_counter() - t) * 1000)
        return {"ready_s": ready_s, "first_ms": times[0], "later_ms": statistics.median(times[1:])}
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--starts", type=int, default=5)
    ap.add_argument("--services", type=int, default=200)
    ap.add_argument("--calls", type=int, default=6)
    args = ap.parse_args()
    settings = load_settings()
    driver = open_driver(settings, log=lambda m: None)
    try:
        admin = GraphAdmin(driver, settings.neo4j_database)
        admin.ensure_schema()
        admin.clear()
        w, _cause = generate_incident(args.services, seed=3)
        now_minute = int(time.time()) // 60 * 60
        w = shifted(w, now_minute - w.incident.end_s)
        GraphWriter(driver, settings.neo4j_database).apply_deltas([window_to_delta(w)])
    finally:
        driver.close()
    runs = [one_start(w, args.calls) for _ in range(args.starts)]
    summary = {k: round(statistics.median(r[k] for r in runs), 3 if k == "ready_s" else 1)
               for k in ("ready_s", "first_ms", "later_ms")}
    print(json.dumps({"services": args.services, "starts": args.starts, "runs": runs, "median": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
