"""Benchmark: OTLP protobuf decode + pairing + aggregation throughput, one core.

Builds a realistic corpus (default 200k spans from 50 services, exported per service
in 512-span batches, so the two halves of a call sit in different batches), then
measures in the same run, several repetitions each:

(a) ceiling: ``ParseFromString`` + a walk reading every span's fields and attributes;
(b) full:    ``Ingestor.ingest_request`` (decode → pair → self time → aggregate →
             ``InMemorySink``), a fresh Ingestor per repetition.

Prints medians in spans/s and (b)/(a). Target: (b) >= 100,000 spans/s.

    .venv/bin/python bench/ingest_decode.py            # full corpus
    .venv/bin/python bench/ingest_decode.py --quick    # smoke version
    .venv/bin/python bench/ingest_decode.py --profile  # cProfile of one (b) run
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import sys
import time
from collections import defaultdict

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from rootgraph.ingest.pipeline import Ingestor
from rootgraph.ingest.sink import InMemorySink

T0 = 1_700_000_040 * 1_000_000_000


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _resource(i: int) -> Resource:
    return Resource(attributes=[
        _kv("service.name", f"svc-{i:02d}"), _kv("service.namespace", "shop"),
        _kv("service.version", f"1.{i % 7}.0"), _kv("service.instance.id", f"inst-{i}"),
        _kv("telemetry.sdk.language", "python"), _kv("telemetry.sdk.name", "opentelemetry"),
        _kv("telemetry.sdk.version", "1.27.0"), _kv("host.name", f"host-{i % 10}"),
        _kv("k8s.pod.name", f"svc-{i:02d}-7d9f-abcde"), _kv("k8s.node.name", f"node-{i % 5}"),
        _kv("process.pid", 1000 + i),
    ])


def build_corpus(total_spans: int, services: int = 50, batch: int = 512, seed: int = 7) -> list[bytes]:
    """Traces over 50 services; each service exports its own spans in batches."""
    rng = random.Random(seed)
    buffers: dict[int, list[Span]] = defaultdict(list)
    out: list[bytes] = []
    resources = [_resource(i) for i in range(services)]
    span_counter = 0
    trace_no = 0

    def flush(svc: int) -> None:
        req = ExportTraceServiceRequest(resource_spans=[
            ResourceSpans(resource=resources[svc], scope_spans=[ScopeSpans(spans=buffers[svc])]),
        ])
        out.append(req.SerializeToString())
        buffers[svc] = []

    def emit(svc: int, sp: Span) -> None:
        nonlocal span_counter
        buffers[svc].append(sp)
        span_counter += 1
        if len(buffers[svc]) >= batch:
            flush(svc)

    def new_span(trace: bytes, parent: bytes, kind: int, start: int, dur: int, name: str) -> Span:
        sp = Span(trace_id=trace, span_id=rng.randbytes(8), parent_span_id=parent, kind=kind, name=name,
                  start_time_unix_nano=start, end_time_unix_nano=start + dur)
        return sp

    def handle(trace: bytes, svc: int, parent: bytes, start: int, depth: int) -> int:
        """SERVER span of `svc` with an INTERNAL child and some calls; returns its duration."""
        dur = rng.randint(2, 40) * 1_000_000
        server = new_span(trace, parent, 2, start, dur, "GET /api/items/{id}")
        server.attributes.extend([
            _kv("http.request.method", "GET"), _kv("url.path", "/api/items/42"),
            _kv("http.route", "/api/items/{id}"), _kv("http.response.status_code", 200),
            _kv("server.address", f"svc-{svc:02d}"), _kv("server.port", 8080),
            _kv("network.protocol.version", "1.1"), _kv("user_agent.original", "python-requests/2.32"),
        ])
        if rng.random() < 0.02:
            server.status.CopyFrom(Status(code=2))
        internal = new_span(trace, server.span_id, 1, start + 100_000, dur - 200_000, "handle")
        t = start + 200_000
        if depth < 3:
            for _ in range(rng.randint(0, 2)):
                callee = rng.randrange(services)
                if callee == svc:
                    continue
                cdur = rng.randint(1, max(1, dur // 2_000_000)) * 1_000_000
                client = new_span(trace, internal.span_id, 3, t, cdur, "GET")
                client.attributes.extend([
                    _kv("http.request.method", "GET"), _kv("server.address", f"svc-{callee:02d}"),
                    _kv("server.port", 8080), _kv("url.full", f"http://svc-{callee:02d}:8080/api/items/42"),
                    _kv("http.response.status_code", 200), _kv("network.protocol.version", "1.1"),
                ])
                handle(trace, callee, client.span_id, t + 100_000, depth + 1)
                emit(svc, client)
                t += cdur // 2
        if rng.random() < 0.5:
            db = new_span(trace, internal.span_id, 3, t, 1_000_000, "SELECT items")
            db.attributes.extend([
                _kv("db.system.name", "postgresql"), _kv("db.namespace", f"db{svc % 5}"),
                _kv("db.operation.name", "SELECT"), _kv("db.query.text", "SELECT * FROM items WHERE id = $1"),
                _kv("server.address", "pg.internal"), _kv("server.port", 5432),
            ])
            emit(svc, db)
        emit(svc, internal)
        emit(svc, server)
        return dur

    while span_counter < total_spans:
        trace_no += 1
        trace = rng.randbytes(16)
        handle(trace, rng.randrange(min(5, services)), b"", T0 + trace_no * 1_000_000, 0)
    for svc in list(buffers):
        if buffers[svc]:
            flush(svc)
    return out


def ceiling(batches: list[bytes]) -> int:
    """ParseFromString + read every field of every span; returns spans walked."""
    n = 0
    for data in batches:
        req = ExportTraceServiceRequest()
        req.ParseFromString(data)
        for rs in req.resource_spans:
            for kv in rs.resource.attributes:
                kv.key, kv.value.string_value
            for ss in rs.scope_spans:
                for sp in ss.spans:
                    sp.trace_id, sp.span_id, sp.parent_span_id, sp.kind, sp.name
                    sp.start_time_unix_nano, sp.end_time_unix_nano, sp.status.code
                    for kv in sp.attributes:
                        kv.key, kv.value.string_value
                    n += 1
    return n


def full(batches: list[bytes]) -> int:
    sink = InMemorySink()
    ingestor = Ingestor(sink)
    n = 0
    for data in batches:
        n += ingestor.ingest_request(data).accepted_spans
    ingestor.flush_all()
    return n


def _rate(fn, batches: list[bytes], reps: int) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    rates = []
    spans = 0
    for _ in range(reps):
        t = time.perf_counter()
        spans = fn(batches)
        rates.append(spans / (time.perf_counter() - t))
    return statistics.median(rates), spans


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20k spans, 2 repetitions")
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile one full run")
    args = parser.parse_args(argv)
    total, reps = (20_000, 2) if args.quick else (args.spans, args.reps)
    batches = build_corpus(total)
    size = sum(map(len, batches))
    sys.stdout.write(f"corpus: {len(batches)} batches, {size / 1e6:.1f} MB protobuf\n")
    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(full, batches)
        pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(20)
        return 0
    a, n = _rate(ceiling, batches, reps)
    b, m = _rate(full, batches, reps)
    sys.stdout.write(
        f"(a) parse+walk ceiling : {a:12,.0f} spans/s  ({n} spans, median of {reps})\n"
        f"(b) decode+pair+agg    : {b:12,.0f} spans/s  ({m} spans, median of {reps})\n"
        f"(b)/(a)                : {b / a:.2f}\n"
        f"target (b) >= 100,000  : {'met' if b >= 100_000 else 'NOT met'}\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
