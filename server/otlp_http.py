"""OTLP/HTTP receiver: ``POST /v1/traces``, ``/v1/logs``, ``/v1/metrics`` (protobuf or
JSON; gzip, zstd, deflate). Every signal path behaves as described below for traces.

Follows the OTLP specification's HTTP transport:

* ``application/x-protobuf`` and ``application/json`` request bodies; the response
  uses the request's encoding; ``Content-Encoding`` ``gzip``, ``zstd`` and ``deflate``
  (zlib-wrapped per RFC 9110, or raw as many clients send it) are accepted, as is
  ``identity`` (a Collector's ``otlphttp`` exporter may use any of them);
* 200 with ``ExportTraceServiceResponse`` (``partial_success`` naming why spans were
  rejected); 400 with a ``google.rpc.Status`` body for undecodable payloads; 413 for
  bodies over the limit (checked before and *during* decompression, so a gzip or zstd
  bomb costs at most about the limit); 415 for other media types and for other content
  codings (naming the coding; a 4xx, so exporters do not retry it); 503 +
  ``Retry-After`` when Neo4j is down (retryable, nothing half-written);
* with a bearer token configured (``ROOTGRAPH_TOKEN``), ``POST /v1/traces`` needs
  ``Authorization: Bearer <token>`` like the gRPC ``Export``; otherwise 401, nothing written;
* ``POST /v1/alerts`` takes Alertmanager's webhook JSON (``server/alerts.py``), behind the
  same token;
* ``GET /metrics`` renders the ingest counters in Prometheus text format, and
  ``GET /healthz`` answers 200/503 by storage reachability.

The stdlib ``ThreadingHTTPServer`` is enough here: OTLP/HTTP clients send few, large
requests, the work is CPU-bound decoding under one ingest lock, and it avoids an ASGI
stack as a dependency. Keep-alive is on (HTTP/1.1).
"""

from __future__ import annotations

import logging
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Protocol

import zstandard
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from rootgraph.server.auth import token_ok
from rootgraph.server.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType, classify

__all__ = ["CODINGS", "OtlpHttpServer", "TraceConsumer", "content_codings", "decompress_bounded"]

log = logging.getLogger("rootgraph.otlp_http")

#: request path -> signal (``IngestConsumer.export``); the OTLP/HTTP default paths
PATHS = {"/v1/traces": "traces", "/v1/logs": "logs", "/v1/metrics": "metrics"}
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
#: Content codings accepted on POST (besides ``identity``).
CODINGS = ("gzip", "zstd", "deflate")
#: "x-gzip": RFC 9110 §8.4.1.3. "zlib": what a Collector sends with ``compression: zlib``
#: (the zlib format, i.e. RFC 9110's "deflate"; the Collector's own receiver takes it).
_ALIASES = {"x-gzip": "gzip", "zlib": "deflate"}
#: Most output one zstd input byte can yield: a 4-byte RLE block expands to at most
#: Block_Maximum_Size = 128 KiB (RFC 8878 §3.1.1.2.4). Bounds each decompress call.
ZSTD_MAX_RATIO = 32 * 1024
#: Smallest input slice fed per call: overshoot past the limit <= 64 x 32 KiB = 2 MiB.
ZSTD_MIN_SLICE = 64
#: Windows up to 8 MiB are what every zstd decoder must accept (RFC 8878 §3.1.1.1.2);
#: beyond that only up to the body limit: a frame's window is memory we allocate.
ZSTD_MIN_WINDOW = 8 * 1024 * 1024


class TraceConsumer(Protocol):
    """What the receiver needs of ingest: one call per request, raising domain errors."""

    def export(self, payload: bytes | trace_service_pb2.ExportTraceServiceRequest,
               content_type: str, timeout_s: float | None = None, signal: str = "traces"
               ) -> trace_service_pb2.ExportTraceServiceResponse:
        """Ingest one request of ``signal``; return its OTLP response (partial_success filled)."""


def content_codings(header: str | None) -> list[str]:
    """The ``Content-Encoding`` codings to undo, in the order they must be undone.

    RFC 9110 §8.4 lists codings in the order they were applied; ``identity`` (and an
    empty header) means none. Any coding we cannot decode is refused (415) by name.
    """
    names = [c.strip().lower() for c in (header or "").split(",")]
    names = [_ALIASES.get(c, c) for c in names if c not in ("", "identity")]
    for name in names:
        if name not in CODINGS:
            raise UnsupportedMediaType("Content-Encoding", f"{name[:40]!r} is not supported; "
                                                           f"use {', '.join(CODINGS)} or identity")
    return names[::-1]


def decompress_bounded(body: bytes, limit: int, encoding: str = "gzip") -> bytes:
    """Undo one content coding of ``body`` but never produce more than ``limit`` bytes.

    Every coding streams with a bound on its output, so a bomb costs at most about the
    limit in memory (then 413), whatever it declares about its own size.
    """
    if encoding == "zstd":
        return _unzstd(body, limit)
    if encoding == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        # RFC 9110 §8.4.1.2: "deflate" is the zlib format; many clients send raw
        # deflate instead, which never starts with a valid zlib header.
        wbits = zlib.MAX_WBITS if _zlib_header(body) else -zlib.MAX_WBITS
    else:
        raise UnsupportedMediaType("Content-Encoding", f"{encoding[:40]!r} is not supported")
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidRequest("Content-Encoding", f"invalid {encoding} body: {exc}") from None
    if len(out) > limit or d.unconsumed_tail:
        raise PayloadTooLarge(f"decompressed body exceeds the {limit}-byte limit")
    if not d.eof:
        raise InvalidRequest("Content-Encoding", f"invalid {encoding} body: truncated")
    return out


def _zlib_header(body: bytes) -> bool:
    """RFC 1950 §2.2: CM = 8 (deflate) and the 16-bit CMF·FLG a multiple of 31."""
    return len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0


def _unzstd(body: bytes, limit: int) -> bytes:
    """Decode every zstd frame of ``body``, feeding input in slices small enough that no
    call can overshoot the limit by more than ``ZSTD_MAX_RATIO * ZSTD_MIN_SLICE`` bytes.

    (``zstandard``'s one-shot ``decompress`` would allocate whatever size a frame header
    declares, and its ``decompressobj`` takes no output bound, hence the slicing.)
    """
    dctx = zstandard.ZstdDecompressor(max_window_size=max(limit, ZSTD_MIN_WINDOW))
    chunks: list[bytes] = []  # joined once at the end: a growing buffer would copy
    size = 0
    rest = memoryview(body)
    try:
        while True:  # one frame per round; a body may hold several (RFC 8878 §3.1)
            d = dctx.decompressobj()
            pos = 0
            while not d.eof:
                if pos >= len(rest):
                    raise InvalidRequest("Content-Encoding", "invalid zstd body: truncated")
                step = max(ZSTD_MIN_SLICE, (limit - size) // ZSTD_MAX_RATIO + 1)
                chunk = d.decompress(rest[pos:pos + step])
                pos += step
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"decompressed body exceeds the {limit}-byte limit")
                chunks.append(chunk)
            rest = memoryview(d.unused_data + rest[pos:])
            if not rest:
                return b"".join(chunks)
    except zstandard.ZstdError as exc:
        raise InvalidRequest("Content-Encoding", f"invalid zstd body: {exc}") from None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, fmt: str, *args: object) -> None:  # route to logging, not stderr
        log.debug("%s " + fmt, self.address_string(), *args)

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _status(self, http: int, code: int, message: str, as_json: bool,
                extra: dict[str, str] | None = None) -> None:
        st = status_pb2.Status(code=code, message=message)
        if as_json:
            self._send(http, json_format.MessageToJson(st).encode(), JSON, extra)
        else:
            self._send(http, st.SerializeToString(), PROTOBUF, extra)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path == "/metrics":
            self._send(200, self.server.metrics().encode(), "text/plain; version=0.0.4")
        elif self.path == "/healthz":
            ok = self.server.healthy()
            self._send(200 if ok else 503, b"ok\n" if ok else b"storage unavailable\n", "text/plain")
        else:
            self._send(404, b"not found\n", "text/plain")

    def do_POST(self) -> None:  # noqa: N802
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        as_json = ctype == JSON
        length_header = self.headers.get("Content-Length")
        path = self.path.split("?", 1)[0]
        if path == "/v1/alerts" and self.server.alerts is not None:
            self._post_alerts(length_header)
            return
        signal = PATHS.get(path)
        if signal is None:
            self._drain(length_header)
            self._send(404, b"not found\n", "text/plain")
            return
        if not self._authorized(length_header, as_json):
            return
        if ctype not in (PROTOBUF, JSON):
            self._drain(length_header)
            self._send(415, f"unsupported Content-Type {ctype!r}; use {PROTOBUF} or {JSON}\n".encode(),
                       "text/plain")
            return
        body = self._read_body(length_header, as_json)
        if body is None:
            return
        try:
            response = self.server.consumer.export(self._decoded(body), ctype, signal=signal)
        except Exception as exc:  # noqa: BLE001 - mapped to a status
            self._fail(exc, as_json)
            return
        if as_json:
            self._send(200, json_format.MessageToJson(response).encode(), JSON)
        else:
            self._send(200, response.SerializeToString(), PROTOBUF)

    def _post_alerts(self, length_header: str | None) -> None:
        """Alertmanager's webhook (server/alerts.py): JSON in, JSON out, same token and limit."""
        if not self._authorized(length_header, True):
            return
        body = self._read_body(length_header, True)
        if body is None:
            return
        try:
            answer = self.server.alerts(self._decoded(body))  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001 - mapped to a status
            self._fail(exc, True)
            return
        self._send(200, answer, JSON)

    def _fail(self, exc: BaseException, as_json: bool) -> None:
        """Answer ``exc`` with its status (``classify``); retryable ones say when to retry."""
        c = classify(exc)
        self._status(c.http, c.code.value[0], c.message, as_json, {"Retry-After": "2"} if c.retryable else None)

    def _authorized(self, length_header: str | None, as_json: bool) -> bool:
        """Whether the bearer token (when one is configured) is right; answers 401 if not."""
        if self.server.token is None or token_ok(self.headers.get("Authorization"), self.server.token):
            return True
        self._drain(length_header)
        self._status(401, 16, "missing or invalid bearer token for a mutating call", as_json,
                     {"WWW-Authenticate": "Bearer"})
        return False

    def _read_body(self, length_header: str | None, as_json: bool) -> bytes | None:
        """The body as sent, within the size limit; None once 411/413 is answered."""
        limit = self.server.max_bytes
        try:
            length = int(length_header or "")
        except ValueError:
            self._status(411, 3, "Content-Length is required", as_json)
            return None
        if length > limit:
            self.close_connection = True
            self._status(413, 8, f"body of {length} bytes exceeds the {limit}-byte limit", as_json)
            return None
        return self.rfile.read(length)

    def _decoded(self, body: bytes) -> bytes:
        """``body`` with its Content-Encoding undone, bounded by the size limit (raises
        ``PayloadTooLarge`` / ``UnsupportedMediaType`` / ``MalformedPayload``, mapped by
        the caller through ``classify``)."""
        for coding in content_codings(self.headers.get("Content-Encoding")):
            body = decompress_bounded(body, self.server.max_bytes, coding)
        return body

    def _drain(self, length_header: str | None) -> None:
        try:
            n = int(length_header or "0")
        except ValueError:
            n = 0
        if 0 < n <= self.server.max_bytes:
            self.rfile.read(n)
        else:
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], consumer: TraceConsumer, max_bytes: int,
                 metrics: Callable[[], str], healthy: Callable[[], bool], token: str | None = None,
                 alerts: Callable[[bytes], bytes] | None = None) -> None:
        super().__init__(address, _Handler)
        self.alerts = alerts
        self.token = token
        self.consumer = consumer
        self.max_bytes = max_bytes
        self.metrics = metrics
        self.healthy = healthy


class OtlpHttpServer:
    """Owns the HTTP server thread; ``start`` binds, ``stop`` drains and closes."""

    def __init__(self, address: str, consumer: TraceConsumer, *, max_bytes: int,
                 metrics: Callable[[], str] = lambda: "", healthy: Callable[[], bool] = lambda: True,
                 token: str | None = None, alerts: Callable[[bytes], bytes] | None = None) -> None:
        host, _, port = address.rpartition(":")
        self._server = _Server((host.strip("[]"), int(port)), consumer, max_bytes, metrics, healthy, token, alerts)
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-http", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

