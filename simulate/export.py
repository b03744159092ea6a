"""Where simulated spans go: OTLP JSON lines files or a live OTLP endpoint.

File format (chosen to match what rootgraph ingests from the Collector): the
Collector ``file`` exporter's JSON lines, one ``ExportTraceServiceRequest`` per line as
``{"resourceSpans":[...]}``. Each line is produced by the SDK's own OTLP encoder
(``encode_spans``) and ``json_format.MessageToDict`` with integer enums, then trace and
span ids are rewritten from protobuf-JSON base64 to the hex strings the OTLP/JSON spec
requires (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding). So the
file is byte-for-byte what the OTLP protobuf says, not a hand-rolled approximation.

Spans reach an exporter through :class:`SyncBatchSpanProcessor` by default. The SDK's
``BatchSpanProcessor`` drops spans when its queue is full, and a simulator produces
spans far faster than wall clock, so the synchronous batcher (export on the caller's
thread every ``max_batch`` spans: backpressure instead of loss) is the safe default;
``"batch"`` and ``"simple"`` select the SDK processors.
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import queue
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO
from urllib.parse import urlparse

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

__all__ = [
    "OtlpJsonLinesExporter",
    "SyncBatchSpanProcessor",
    "live_exporter",
    "make_processor",
    "parse_otlp_json_line",
    "read_otlp_json_lines",
]

_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _ids(d: dict, convert) -> None:
    for rs in d.get("resourceSpans", ()):
        for ss in rs.get("scopeSpans", ()):
            for span in ss.get("spans", ()):
                for key in _ID_FIELDS:
                    if key in span:
                        span[key] = convert(span[key])
                for link in span.get("links", ()):
                    for key in ("traceId", "spanId"):
                        if key in link:
                            link[key] = convert(link[key])


def _b64_to_hex(v: str) -> str:
    return base64.b64decode(v).hex()


def _hex_to_b64(v: str) -> str:
    return base64.b64encode(bytes.fromhex(v)).decode("ascii")


def spans_to_otlp_json(spans: Sequence[ReadableSpan]) -> dict:
    """One OTLP/JSON ``ExportTraceServiceRequest`` dict (hex ids, integer enums)."""
    d = json_format.MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    _ids(d, _b64_to_hex)
    return d


def parse_otlp_json_line(line: str) -> ExportTraceServiceRequest:
    """Parse one OTLP JSON line back into the protobuf request (hex ids → bytes)."""
    d = json.loads(line)
    _ids(d, _hex_to_b64)
    return json_format.ParseDict(d, ExportTraceServiceRequest())


def read_otlp_json_lines(path: str | Path) -> Iterator[ExportTraceServiceRequest]:
    """Every request in an OTLP JSON lines file, in order (blank lines skipped)."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield parse_otlp_json_line(line)


def _line(request_bytes: bytes) -> str:
    req = ExportTraceServiceRequest.FromString(request_bytes)
    d = json_format.MessageToDict(req, use_integers_for_enums=True)
    _ids(d, _b64_to_hex)
    return json.dumps(d, separators=(",", ":")) + "\n"


def _writer_main(path: str, inbox) -> None:
    """Worker process: protobuf bytes in, JSON lines out, in arrival order."""
    with open(path, "w", encoding="utf-8") as f:
        while (item := inbox.get()) is not None:
            f.write(_line(item))


class OtlpJsonLinesExporter(SpanExporter):
    """Writes each exported batch as one OTLP JSON line (Collector file exporter format).

    With ``background=True`` (a path target only) the protobuf→JSON step, about half
    the simulator's cost, runs in one worker process fed serialized requests through a
    bounded queue; one worker keeps line order, so output stays byte-identical.
    """

    def __init__(self, target: str | Path | IO[str], background: bool = False) -> None:
        self._worker = None
        self._file: IO[str] | None = None
        self._owned = False
        if background and isinstance(target, (str, Path)):
            ctx = multiprocessing.get_context("spawn")  # fork is unsafe next to gRPC threads
            self._inbox = ctx.Queue(maxsize=16)
            self._worker = ctx.Process(target=_writer_main, args=(str(target), self._inbox),
                                       name="otlp-json-writer", daemon=True)
            self._worker.start()
        elif isinstance(target, (str, Path)):
            self._file, self._owned = open(target, "w", encoding="utf-8"), True
        else:
            self._file = target
        self._lock = threading.Lock()  # the SDK batch processor exports from its thread
        self.spans_written = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not spans:
            return SpanExportResult.SUCCESS
        if self._worker is not None:
            payload = encode_spans(spans).SerializeToString()
            while True:  # bounded queue: backpressure, but never hang on a dead worker
                if not self._worker.is_alive():
                    return SpanExportResult.FAILURE
                try:
                    self._inbox.put(payload, timeout=1.0)
                    break
                except queue.Full:
                    continue
            self.spans_written += len(spans)
            return SpanExportResult.SUCCESS
        line = json.dumps(spans_to_otlp_json(spans), separators=(",", ":"))
        with self._lock:
            self._file.write(line + "\n")
            self.spans_written += len(spans)
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        if self._file is not None:
            self._file.flush()
        return True

    def shutdown(self) -> None:
        if self._worker is not None:
            if self._worker.is_alive():
                self._inbox.put(None)
            self._worker.join()
            self._inbox.close()
            failed = self._worker.exitcode != 0
            self._worker = None
            if failed:
                raise RuntimeError("OTLP JSON writer process failed; the traces file is incomplete")
            return
        if self._file is not None:
            self._file.flush()
            if self._owned:
                self._file.close()


class SyncBatchSpanProcessor(SpanProcessor):
    """Batches ended spans and exports on the caller's thread; never drops a span.

    Not thread-safe by design: the simulator is single-threaded. ``failed`` counts
    spans in batches the exporter reported as failed (e.g. endpoint unreachable).
    """

    def __init__(self, exporter: SpanExporter, max_batch: int = 512) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self._exporter, self._max = exporter, max_batch
        self._buf: list[ReadableSpan] = []
        self.exported = 0
        self.failed = 0

    def on_start(self, span, parent_context=None) -> None:  # noqa: D102 - nothing to do
        return None

    def on_end(self, span: ReadableSpan) -> None:
        self._buf.append(span)
        if len(self._buf) >= self._max:
            self._flush()

    def _flush(self) -> None:
        batch, self._buf = self._buf, []
        if not batch:
            return
        if self._exporter.export(batch) is SpanExportResult.SUCCESS:
            self.exported += len(batch)
        else:
            self.failed += len(batch)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self._flush()
        return True

    def shutdown(self) -> None:
        self._flush()
        self._exporter.shutdown()


def make_processor(exporter: SpanExporter, kind: str = "sync", max_batch: int = 512) -> SpanProcessor:
    """``sync`` (default, lossless), ``batch`` (SDK, large queue) or ``simple`` (SDK)."""
    if kind == "sync":
        return SyncBatchSpanProcessor(exporter, max_batch)
    if kind == "batch":
        # A large queue so the background exporter rarely falls behind far enough to drop.
        return BatchSpanProcessor(exporter, max_queue_size=1 << 20, max_export_batch_size=max_batch)
    if kind == "simple":
        return SimpleSpanProcessor(exporter)
    raise ValueError(f"processor must be sync, batch or simple, not {kind!r}")


def live_exporter(endpoint: str, protocol: str = "", timeout_s: float = 10.0) -> SpanExporter:
    """The real OTLP exporter for ``endpoint``.

    ``protocol`` is ``grpc`` or ``http``; when empty it follows the OTLP port
    convention (4318 → http/protobuf, anything else → gRPC). HTTP endpoints get the
    ``/v1/traces`` path appended unless they already carry a path.
    """
    url = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
    protocol = protocol or ("http" if url.port == 4318 else "grpc")
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=f"{url.hostname}:{url.port or 4317}",
                                insecure=url.scheme != "https", timeout=timeout_s)
    if protocol == "http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        path = url.path if url.path not in ("", "/") else "/v1/traces"
        return HttpExporter(endpoint=f"{url.scheme}://{url.netloc}{path}", timeout=timeout_s)
    raise ValueError(f"protocol must be grpc or http, not {protocol!r}")
