"""Group commit: concurrent OTLP requests share one Neo4j transaction.

Why: one request's delta (≈500 spans) costs a Neo4j transaction of a dozen round trips
and a commit, ~40 ms on a quiet 2-core machine, and requests had to wait for each other
anyway (pairing is serial). Measured in ``bench/ingest.py``: without grouping the
server commits a few thousand spans/s; with it, an order of magnitude more.

How: a request thread decodes its payload (``Ingestor.prepare``, no lock), queues it
and waits. One writer thread takes everything queued (up to ``max_requests`` /
``max_spans`` items: spans, log records, metric points), and ``Ingestor.ingest_group`` pairs it in one pairing transaction and
writes it in one sink transaction. Each waiting request is answered only after that
commit — so "acknowledged ⇒ durable" holds per request — or gets the group's error
(retryable; nothing of the group is written and pairing memory is unchanged).

Fail fast: while ``available()`` says storage is unreachable (the server's health
probe), requests are refused at once with ``StoreUnavailable`` (→ UNAVAILABLE, retry)
instead of each group spending the driver's retry budget (~5 s) on a dead server and
the requests queued behind it running into their deadlines.

Deadlines: a request still queued when its deadline passes is withdrawn and fails
with ``TimeoutError`` (→ DEADLINE_EXCEEDED), nothing written. One already taken by
the writer also fails at its deadline, but its write may still commit; the client's
retry is then recognised by its batch id and not counted twice.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from rootgraph.ingest.pipeline import IngestResult, Ingestor, PreparedBatch
from rootgraph.graph.errors import StoreUnavailable

__all__ = ["GroupCommitter"]


@dataclass(eq=False)
class _Waiter:
    batch: PreparedBatch
    done: threading.Event = field(default_factory=threading.Event)
    result: IngestResult | None = None
    error: BaseException | None = None


class GroupCommitter:
    """Front of an :class:`Ingestor` for concurrent callers (the server's receivers)."""

    def __init__(self, ingestor: Ingestor, *, max_requests: int = 32, max_spans: int = 50_000,
                 default_timeout_s: float = 30.0, available: Callable[[], bool] = lambda: True) -> None:
        if max_requests < 1 or max_spans < 1:
            raise ValueError("max_requests and max_spans must be >= 1")
        self._ingestor = ingestor
        self._max_requests = max_requests
        self._max_spans = max_spans
        self._default_timeout_s = default_timeout_s
        self._available = available
        self._queue: deque[_Waiter] = deque()
        self._cv = threading.Condition()
        self._closed = False
        self._writer = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        self._writer.start()

    def submit(self, payload: bytes | ExportTraceServiceRequest,
               content_type: str = "application/x-protobuf", timeout_s: float | None = None,
               signal: str = "traces") -> IngestResult:
        """Ingest one request of ``signal`` (traces, logs, metrics); returns once it is
        committed (or raises). All signals share the groups: one transaction for all."""
        batch = self._ingestor.prepare(payload, content_type, signal)  # MalformedPayload propagates
        if batch.result is not None:
            return batch.result
        if not self._available():
            raise StoreUnavailable("storage unavailable")
        waiter = _Waiter(batch)
        with self._cv:
            if self._closed:
                raise StoreUnavailable("ingest is shutting down")
            self._queue.append(waiter)
            self._cv.notify()
        timeout = self._default_timeout_s if timeout_s is None else max(0.0, timeout_s)
        if not waiter.done.wait(timeout):
            with self._cv:
                try:
                    self._queue.remove(waiter)  # not taken yet: withdrawn, nothing written
                except ValueError:
                    pass
            raise TimeoutError("ingest did not commit before the deadline")
        if waiter.error is not None:
            raise waiter.error
        assert waiter.result is not None
        return waiter.result

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop accepting; the writer finishes what is queued, then exits."""
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._writer.join(timeout_s)

    def _take(self) -> list[_Waiter] | None:
        with self._cv:
            while not self._queue:
                if self._closed:
                    return None
                self._cv.wait()
            group, spans = [], 0
            while self._queue and len(group) < self._max_requests:
                n = self._queue[0].batch.size
                if group and spans + n > self._max_spans:
                    break
                group.append(self._queue.popleft())
                spans += n
            return group

    def _run(self) -> None:
        while (group := self._take()) is not None:
            try:
                if not self._available():
                    raise StoreUnavailable("storage unavailable")
                results = self._ingestor.ingest_group([w.batch for w in group])
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting caller
                for w in group:
                    w.error = exc
                    w.done.set()
                continue
            for w, r in zip(group, results):
                w.result = r
                w.done.set()
