"""Replay pre-encoded simulator traffic through the real OTLP exporters, many times over.

Why: a benchmark or load drill must push tens of thousands of spans per second from a
2-core machine that also runs the server and Neo4j. Creating spans through the SDK and
encoding them in Python costs more than the server's whole ingest path, so the client
would be the bottleneck. Instead the simulator runs *once* (real SDK spans, realistic
topology), its batches are encoded to OTLP protobuf once, and every round re-sends them
with fresh trace ids through the real ``OTLPSpanExporter`` (gRPC: channel, deadline,
retry with back-off on UNAVAILABLE/RESOURCE_EXHAUSTED; HTTP: its transport client).

Fresh trace ids per round make every round a distinct batch for the server's
idempotency (batch id = hash of trace and span ids) and distinct halves for pairing.
The template's trace ids all start with :data:`MARKER`, so a round is one C-speed
``bytes.replace`` of ``tag 0x0a, length 16, MARKER`` by ``tag, length, round tag``;
the number of replacements is checked when the template is built.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

__all__ = ["MARKER", "ReplayTemplate", "GrpcReplayExporter", "HttpReplayExporter", "build_template"]

#: First 4 bytes of every template trace id (replaced per round).
MARKER = b"\xfe\xed\xfa\xce"
_PATTERN = b"\x0a\x10" + MARKER  # Span.trace_id / Link.trace_id: field 1, length 16
_SPAN_KINDS_ENTRY = (2, 5)  # SERVER, CONSUMER


@dataclass(frozen=True)
class ReplayTemplate:
    """Encoded requests plus what one round of them contributes."""

    payloads: tuple[bytes, ...]
    spans_per_payload: tuple[int, ...]
    #: entry spans (SERVER/CONSUMER or root) per payload = ServiceBucket.n contributions
    entries_per_payload: tuple[int, ...]
    #: span start times covered, epoch seconds (for RankCauses windows over the traffic)
    start_s: float = 0.0
    end_s: float = 0.0

    @property
    def spans(self) -> int:
        return sum(self.spans_per_payload)

    @property
    def entries(self) -> int:
        return sum(self.entries_per_payload)

    def round_payload(self, index: int, sender: int, round_no: int) -> bytes:
        """Payload ``index`` with trace ids unique to ``(sender, round_no)``."""
        if not (0 <= sender < 0xFFFF and 0 <= round_no < 0xFFFF):
            raise ValueError("sender and round_no must be in 0..65534")
        tag = b"\x0a\x10" + struct.pack(">HH", sender + 1, round_no + 1)  # never MARKER
        return self.payloads[index].replace(_PATTERN, tag)


class _Capture(SpanExporter):
    def __init__(self) -> None:
        self.batches: list[list[ReadableSpan]] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.batches.append(list(spans))
        return SpanExportResult.SUCCESS


def build_template(min_spans: int = 50_000, topology: str = "boutique", seed: int = 1,
                   rate_rps: float = 50.0) -> ReplayTemplate:
    """Run the simulator until ``min_spans`` spans exist; encode its 512-span batches.

    Traffic is timestamped from ten minutes ago, like live traffic: statistics land in
    current buckets, which the server's retention pruning keeps.
    """
    import time

    from .scenario import ScenarioSpec, run

    cap = _Capture()
    seconds = 60.0
    while True:
        cap.batches.clear()
        spec = ScenarioSpec("replay", topology, (), seed=seed, baseline_s=seconds, incident_s=1.0,
                            rate_rps=rate_rps, start_epoch_s=int(time.time()) // 60 * 60 - 600)
        run(spec, cap)
        if sum(map(len, cap.batches)) >= min_spans:
            break
        seconds *= 2
    trace_map: dict[bytes, bytes] = {}

    def fresh(tid: bytes) -> bytes:
        new = trace_map.get(tid)
        if new is None:
            new = trace_map[tid] = MARKER + len(trace_map).to_bytes(12, "big")
        return new

    payloads, spans_n, entries_n = [], [], []
    lo, hi = min(sp.start_time for b in cap.batches for sp in b), max(sp.start_time for b in cap.batches for sp in b)
    for batch in cap.batches:
        req = encode_spans(batch)
        ids, entries = 0, 0
        for rs in req.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    span.trace_id = fresh(span.trace_id)
                    ids += 1
                    for link in span.links:
                        link.trace_id = fresh(link.trace_id)
                        ids += 1
                    entries += span.kind in _SPAN_KINDS_ENTRY or not span.parent_span_id
        data = req.SerializeToString()
        if data.count(_PATTERN) != ids:
            raise RuntimeError("template trace ids are not uniquely replaceable")
        payloads.append(data)
        spans_n.append(len(batch))
        entries_n.append(entries)
    return ReplayTemplate(tuple(payloads), tuple(spans_n), tuple(entries_n), lo / 1e9, hi / 1e9)


class GrpcReplayExporter(OTLPSpanExporter):
    """The SDK's gRPC ``OTLPSpanExporter``; ``export`` takes encoded request bytes.

    Only ``_translate_data`` differs (bytes → request message instead of SDK spans →
    request), so channel handling, deadline, retries and back-off are the SDK's own.
    """

    def _translate_data(self, data) -> ExportTraceServiceRequest:  # noqa: ANN001
        return ExportTraceServiceRequest.FromString(data)

    def _count_data(self, data) -> int:  # noqa: ANN001
        return 1

    def export_bytes(self, payload: bytes) -> bool:
        return self._export(payload) is SpanExportResult.SUCCESS  # type: ignore[arg-type]


class HttpReplayExporter:
    """The SDK's OTLP/HTTP exporter transport (with its retries) for encoded bytes."""

    def __init__(self, endpoint: str, timeout_s: float = 10.0) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

        self._exporter = Http(endpoint=endpoint, timeout=timeout_s)

    def export_bytes(self, payload: bytes) -> bool:
        return bool(self._exporter._client.export(payload).success)  # noqa: SLF001

    def shutdown(self) -> None:
        self._exporter.shutdown()


#: Slots of the shared counter array a sender process updates.
ACKED_REQUESTS, ACKED_SPANS, ACKED_ENTRIES, FAILED_ATTEMPTS, GAVE_UP = range(5)


def sender_main(template_file: str, sender: int, threads: int, endpoint: str, protocol: str,
                stop, counters, hard_deadline_epoch: float, timeout_s: float = 30.0) -> None:  # noqa: ANN001
    """One client process: ``threads`` exporters replaying rounds until ``stop`` is set.

    Like a Collector with a persistent queue, a batch whose export fails (the exporter
    gave up after its own retries) is exported again, so every batch is eventually
    acknowledged — or counted in ``GAVE_UP`` if ``hard_deadline_epoch`` passes first.
    ``counters`` is a shared ``multiprocessing.Array('q', 5)``.
    """
    import pickle
    import threading
    import time

    with open(template_file, "rb") as fh:
        template: ReplayTemplate = pickle.load(fh)

    def bump(slot: int, n: int) -> None:
        with counters.get_lock():
            counters[slot] += n

    def worker(t: int) -> None:
        if protocol == "grpc":
            exp: GrpcReplayExporter | HttpReplayExporter = GrpcReplayExporter(
                endpoint=endpoint, insecure=True, timeout=timeout_s)
        else:
            exp = HttpReplayExporter(f"http://{endpoint}/v1/traces", timeout_s)
        try:
            round_no = 0
            while not stop.is_set():
                for i in range(t, len(template.payloads), threads):
                    payload = template.round_payload(i, sender, round_no)
                    while not exp.export_bytes(payload):
                        bump(FAILED_ATTEMPTS, 1)
                        if time.time() > hard_deadline_epoch:
                            bump(GAVE_UP, template.spans_per_payload[i])
                            return
                    with counters.get_lock():
                        counters[ACKED_REQUESTS] += 1
                        counters[ACKED_SPANS] += template.spans_per_payload[i]
                        counters[ACKED_ENTRIES] += template.entries_per_payload[i]
                    if stop.is_set():
                        return
                round_no += 1
        finally:
            exp.shutdown()

    pool = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()


class ReplayDriver:
    """``senders`` client processes × ``threads`` exporters each, replaying a template."""

    def __init__(self, template: ReplayTemplate, endpoint: str, workdir: str, *, protocol: str = "grpc",
                 senders: int = 2, threads: int = 4, timeout_s: float = 30.0,
                 give_up_after_s: float = 600.0, first_sender: int = 0) -> None:
        import multiprocessing as mp
        import os
        import pickle

        self._ctx = mp.get_context("spawn")  # no fork after gRPC is initialised
        self._file = os.path.join(workdir, "replay-template.pkl")
        with open(self._file, "wb") as fh:
            pickle.dump(template, fh)
        self._args = (endpoint, protocol, threads, timeout_s, give_up_after_s)
        self._senders = senders
        #: sender numbers start here: several drivers at once (one per ingest replica,
        #: bench/scaleout.py) must not send the same trace ids
        self._first_sender = first_sender
        self._stop = self._ctx.Event()
        self._counters = [self._ctx.Array("q", 5) for _ in range(senders)]
        self._procs: list = []  # type: ignore[type-arg]

    def start(self) -> "ReplayDriver":
        import time

        endpoint, protocol, threads, timeout_s, give_up = self._args
        for k in range(self._senders):
            p = self._ctx.Process(
                target=sender_main, name=f"replay-{k}", daemon=True,
                args=(self._file, self._first_sender + k, threads, endpoint, protocol, self._stop, self._counters[k],
                      time.time() + give_up, timeout_s))
            p.start()
            self._procs.append(p)
        return self

    def pids(self) -> list[int]:
        """The sender processes (benchmarks count their CPU: on one machine it is the
        senders' share of the cores that the server does not get)."""
        return [p.pid for p in self._procs if p.pid is not None]

    def totals(self) -> dict[str, int]:
        names = ("acked_requests", "acked_spans", "acked_entries", "failed_attempts", "gave_up_spans")
        return {n: sum(c[i] for c in self._counters) for i, n in enumerate(names)}

    def stop(self, timeout_s: float = 120.0) -> dict[str, int]:
        """Ask the senders to finish their in-flight batch (until acknowledged) and exit."""
        import time

        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for p in self._procs:
            p.join(max(0.1, deadline - time.monotonic()))
            if p.is_alive():
                p.terminate()
                p.join()
        return self.totals()
