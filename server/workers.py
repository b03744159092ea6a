"""Ingest on all cores: worker processes decode, pair and aggregate; the front writes.

Why processes: pairing, aggregation and the Neo4j driver's encoding are Python and hold
the GIL, so one process used about one core however many it had (issue 16). Why sharded
by trace id (``ingest/shard.py``): a trace's CLIENT and SERVER halves must meet in one
pairing memory; each worker owns the traces ``crc32(trace_id) mod N`` sends it and keeps
their halves, so a trace's halves pair whichever requests and receivers they came in.

Shape (measured, ``bench/scaleout.py``; BENCHMARKS.md "Scale-out"): the ``serve``
process keeps the receivers and the API. It checks each trace request once (the same
upb parse a single process does; a malformed request is refused before any worker sees
it, so no part of it can commit) and cuts its protobuf bytes by owner
(``shard.split_request``, ~0.8 µs a span whatever N): worker ``k`` gets a request of
only its spans and decodes each of them once. Every worker is today's ingest stage
(``Ingestor`` + ``GroupCommitter``), pairing and aggregating its traces; its groups'
deltas go back over the pipe to the front's one Neo4j writer (:class:`_SharedWriter`),
which commits the groups of all workers together, so Neo4j sees one writer as before.
Logs and metrics need no pairing: the front ingests them itself, in its own groups
(``Ingestor`` + ``GroupCommitter`` over the same sink). Designs measured and dropped:

* broadcast: every worker parses the whole request and decodes only its traces: (N-1)
  extra parses per request, +35 % CPU per span at 2 workers (the previous branch);
* decode in the front and send each worker its ``Span`` objects: pickling them there
  and back costs more than decoding;
* a Neo4j driver per worker: N writers MERGE the same bucket rows (Neo4j CPU per span
  doubled);
* ``SO_REUSEPORT`` receivers in every worker, forwarding foreign traces: the same
  re-serialisation for (N-1)/N of every request, plus health, ``/metrics`` and a killed
  process's connections spread over N processes.

Acknowledgement: a request is answered only when every part has been committed by its
worker; if any part fails (Neo4j down, a worker killed, the deadline), the request fails
retryable and the client re-sends it all. Parts that had committed are recognised on the
retry by their batch ids (``ingest/shard.py``) and change nothing. A killed worker loses what
it held unacknowledged (nothing acknowledged) and its waiting halves (as a killed
single process does, ``tests/test_faults_kill.py``); it is restarted at once.

Back-pressure is the receivers' (``maximum_concurrent_rpcs``, deadlines): a part waits in
its worker's group queue exactly as a request did.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from google.protobuf.message import Message

from rootgraph.config import Settings
from rootgraph.graph.errors import StoreUnavailable
from rootgraph.graph.records import GraphDelta
from rootgraph.ingest.config import IngestConfig
from rootgraph.ingest.group import GroupCommitter
from rootgraph.ingest.pipeline import IngestResult, Ingestor
from rootgraph.ingest.shard import split_request
from rootgraph.ingest.sink import DeltaSink
from rootgraph.ingest.spans import PROTOBUF_TYPES, MalformedPayload, parse_traces
from rootgraph.ingest.templates import Templates
from rootgraph.server.wiring import ingest_config

__all__ = ["ShardedIngest"]

log = logging.getLogger("rootgraph.workers")

#: Parts a worker waits on at once (each a thread blocked in ``GroupCommitter``); the
#: receivers admit at most ``maximum_concurrent_rpcs`` requests, each a part per worker.
WORKER_THREADS = 128
#: Period of the workers' pairing expiry (as ``App``'s ``pairing-expiry`` thread).
TICK_S = 1.0
DEFAULT_TIMEOUT_S = 30.0
#: How long the shared writer waits for the other workers' groups (``_SharedWriter``).
GATHER_S = 0.005


class _Worker:
    """One worker process and the pipe to it; restarted when it dies."""

    def __init__(self, index: int, settings: Settings, group_max: int, ctx: Any,
                 writer: "_SharedWriter") -> None:
        self.index = index
        self._writer = writer
        self.restarts = 0
        self._settings = settings
        self._group_max = group_max
        self._ctx = ctx
        self._send_lock = threading.Lock()
        self._pending: dict[int, Future[Any]] = {}
        self._pending_lock = threading.Lock()
        self._next = 0
        self._closing = False
        self._spawn()

    def _spawn(self) -> None:
        ours, theirs = self._ctx.Pipe()
        proc = self._ctx.Process(target=worker_main, name=f"rootgraph-ingest-{self.index}", daemon=True,
                                 # the front's level: `serve` logs INFO, an embedding (the demo) less
                                 args=(theirs, self._settings, self.index, self._group_max,
                                       logging.getLogger().getEffectiveLevel()))
        proc.start()
        theirs.close()
        self.proc, self._conn = proc, ours
        self._reader = threading.Thread(target=self._read, args=(ours, proc),
                                        name=f"ingest-worker-{self.index}-replies", daemon=True)
        self._reader.start()

    def _send_on(self, conn: Any, message: tuple[Any, ...]) -> None:
        """Answer on the pipe of the process that asked: after a restart, an answer for
        the dead process must not reach its successor (whose ids start again at 1)."""
        try:
            with self._send_lock:
                conn.send(message)
        except (OSError, ValueError, EOFError):
            pass  # that process died: its reader thread fails what it had in flight

    def call(self, kind: str, *args: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        with self._pending_lock:
            self._next += 1
            rid = self._next
            self._pending[rid] = fut
        try:
            with self._send_lock:
                self._conn.send((kind, rid, *args))
        except (OSError, ValueError, EOFError):
            self._resolve(rid, ("unavailable", f"ingest worker {self.index} is restarting"), ok=False)
        return fut

    def _resolve(self, rid: int, value: Any, ok: bool) -> None:
        with self._pending_lock:
            fut = self._pending.pop(rid, None)
        if fut is None or fut.done():
            return
        if ok:
            fut.set_result(value)
        else:
            kind, message = value
            fut.set_exception(TimeoutError(message) if kind == "timeout" else
                              StoreUnavailable(message) if kind == "unavailable" else
                              MalformedPayload(message) if kind == "malformed" else RuntimeError(message))

    def _read(self, conn: Any, proc: Any) -> None:
        while True:
            try:
                rid, ok, value = conn.recv()
            except (EOFError, OSError):
                break
            if rid == "write":  # the worker's group, for the one Neo4j writer
                self._writer.submit(lambda msg, c=conn: self._send_on(c, msg), ok, value)
            else:
                self._resolve(rid, value, ok)
        proc.join()
        with self._pending_lock:  # everything in flight there: failed, retryable
            lost, self._pending = self._pending, {}
        for fut in lost.values():
            if not fut.done():
                fut.set_exception(StoreUnavailable(f"ingest worker {self.index} exited; retry"))
        if not self._closing:
            log.warning("ingest worker %d exited with %s; restarting", self.index, proc.exitcode)
            self.restarts += 1
            self._spawn()

    def close(self, timeout_s: float) -> int:
        """Drain, flush the waiting halves, exit; returns the fallback calls flushed."""
        self._closing = True
        fut = self.call("close")
        try:
            flushed = int(fut.result(timeout_s))
        except Exception as exc:  # noqa: BLE001 - Neo4j gone at shutdown: say so
            log.warning("ingest worker %d did not flush at shutdown: %s", self.index, type(exc).__name__)
            flushed = 0
        # An explicit "exit", not EOF: our reply reader is blocked in recv() on this
        # socket, and a socket a thread is reading is not released by close(), so the
        # worker would never see EOF and every shutdown waited out ``timeout_s``.
        self._send_on(self._conn, ("exit", 0))
        # The reply reader joins the process when the pipe ends: the one thread that waits
        # for it. (Joining here as well raced it for the exit status: whichever lost saw
        # no status yet, took the worker for alive and "killed" an exited process.)
        self._reader.join(timeout_s)
        if self._reader.is_alive():
            self.proc.kill()
            self._reader.join(timeout_s)
        self._conn.close()
        return flushed


class _SharedWriter:
    """The one Neo4j writer of all workers: their groups, merged into one transaction.

    Why not a driver per worker: each worker's traces touch the same services, so N
    writers MERGE the same bucket rows concurrently — lock waits and deadlock retries in
    Neo4j, and N small transactions where one would do (measured: Neo4j CPU per span
    doubled at 2 workers). The workers pair and aggregate (the CPU-heavy part); deltas
    are small (buckets, not spans), so sending them here is cheap.
    """

    def __init__(self, sink: DeltaSink, workers: int) -> None:
        self._sink = sink
        self._workers = workers
        self._queue: deque[tuple[Callable[[tuple[Any, ...]], None], int, list[GraphDelta]]] = deque()
        self._cv = threading.Condition()
        threading.Thread(target=self._run, name="ingest-shared-writer", daemon=True).start()

    def submit(self, answer: Callable[[tuple[Any, ...]], None], wid: int, deltas: list[GraphDelta]) -> None:
        with self._cv:
            self._queue.append((answer, wid, deltas))
            self._cv.notify()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue:
                    self._cv.wait()
                # Every worker gets a part of (nearly) every request, so their groups come
                # at the same cadence: wait a moment for all of them, or a transaction's
                # fixed cost (most rows are buckets per service, not per span) is paid per
                # worker. ``merge_deltas`` then sums the workers' rows into one set.
                deadline = time.monotonic() + GATHER_S
                while len(self._queue) < self._workers and (left := deadline - time.monotonic()) > 0:
                    self._cv.wait(left)
                group, self._queue = list(self._queue), deque()
            try:
                applied = self._sink.apply_deltas([d for _, _, deltas in group for d in deltas])
            except Exception as exc:  # noqa: BLE001 - every member's worker gets it
                err = ("unavailable" if getattr(exc, "retryable", False) else "internal",
                       str(exc) or type(exc).__name__)
                for answer, wid, _ in group:
                    answer(("written", wid, False, err))
                continue
            at = 0
            for answer, wid, deltas in group:
                answer(("written", wid, True, applied[at:at + len(deltas)]))
                at += len(deltas)


class _OneAtATime:
    """A sink that writes one group at a time, for the front's two writers (its log and
    metric groups, and ``_SharedWriter``'s span groups). Why: concurrent, both MERGE the
    same ``Entity`` rows (a service's spans and its logs), so they wait on each other's
    locks in Neo4j and can deadlock into driver retries; the single process has one group
    writer for both, and this keeps that."""

    def __init__(self, sink: DeltaSink) -> None:
        self._sink = sink
        self._lock = threading.Lock()

    def apply_deltas(self, deltas: list[GraphDelta]) -> list[bool]:
        with self._lock:
            return self._sink.apply_deltas(deltas)


class ShardedIngest:
    """The receivers' ``RequestIngest`` (``server/otlp.py``) over N worker processes.

    Also stands in for the ``Ingestor`` in ``App`` (``stats``, ``tick``, ``flush_all``,
    ``save_templates``).
    """

    def __init__(self, settings: Settings, workers: int, *, sink: DeltaSink, group_max: int,
                 available: Callable[[], bool] = lambda: True, templates: Templates | None = None) -> None:
        if workers < 2:
            raise ValueError("workers: the sharded path needs >= 2 (1 is the single-process path)")
        self._config = ingest_config(settings)
        self._available = available
        self._closed = False
        self._counters: Counter[str] = Counter()
        self._counter_lock = threading.Lock()
        # logs and metrics: ingested here, in groups of their own (no pairing to shard);
        # their writes and the workers' take turns, as in the single process's one writer
        sink = _OneAtATime(sink)
        self._front = Ingestor(sink, self._config, templates=templates)
        self._front_groups = GroupCommitter(self._front, max_requests=group_max, available=available)
        ctx = mp.get_context("spawn")  # no fork after gRPC is initialised
        writer = _SharedWriter(sink, workers)
        self._workers = [_Worker(i, settings, group_max, ctx, writer) for i in range(workers)]

    @property
    def config(self) -> IngestConfig:
        return self._config

    @property
    def templates(self) -> Templates:
        return self._front.templates

    def worker_pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers]

    def submit(self, payload: bytes | Message, content_type: str = "application/x-protobuf",
               timeout_s: float | None = None, signal: str = "traces") -> IngestResult:
        if signal != "traces":
            return self._front_groups.submit(payload, content_type, timeout_s, signal)
        try:
            body = _protobuf(payload, content_type)
            if self._closed:
                raise StoreUnavailable("ingest is shutting down")
            if not self._available():
                raise StoreUnavailable("storage unavailable")
            parts = split_request(body, len(self._workers))
        except MalformedPayload:
            self._count(requests=1, requests_malformed=1)
            raise
        self._count(requests=1)
        return self._ask(parts, timeout_s)

    def _ask(self, parts: list[bytes], timeout_s: float | None) -> IngestResult:
        timeout = DEFAULT_TIMEOUT_S if timeout_s is None else max(0.0, timeout_s)
        deadline = time.monotonic() + timeout
        futures = [w.call("request", part, timeout) for w, part in zip(self._workers, parts) if part]
        results: list[IngestResult] = []
        error: BaseException | None = None
        for fut in futures:  # wait for every part: an error is reported once all are settled
            try:
                results.append(fut.result(max(0.0, deadline - time.monotonic())))
            except FutureTimeout:
                error = error or TimeoutError("ingest did not commit before the deadline")
            except Exception as exc:  # noqa: BLE001 - the request fails with the first error
                error = error or exc
        if error is not None:
            raise error
        reasons: Counter[str] = Counter()
        for r in results:
            reasons.update(r.reasons)
        applied = [r for r in results if r.batch_id]
        return IngestResult(sum(r.accepted_spans for r in results), sum(r.rejected_spans for r in results),
                            dict(reasons), bool(applied) and all(r.duplicate for r in applied),
                            ";".join(r.batch_id for r in applied))

    def _count(self, **counts: int) -> None:
        with self._counter_lock:
            self._counters.update(counts)

    def tick(self) -> int:
        return 0  # each worker expires its own halves every TICK_S; the front pairs nothing

    def stats(self) -> dict[str, int]:
        out: dict[str, Any] = dict(self._front.stats())  # logs and metrics counters
        with self._counter_lock:
            out.update(self._counters)  # trace requests: counted here, once each
        for fut in [w.call("stats") for w in self._workers]:
            try:
                part = fut.result(5.0)
            except Exception:  # noqa: BLE001 - a restarting worker: counted below
                out["ingest_workers_unanswered"] = out.get("ingest_workers_unanswered", 0) + 1
                continue
            for key, value in part.items():
                out[key] = out.get(key, 0) + value
        out["ingest_workers"] = len(self._workers)
        out["ingest_worker_restarts"] = sum(w.restarts for w in self._workers)
        return out

    def close(self, timeout_s: float = 30.0) -> None:
        """Refuse new requests; the next ``flush_all`` drains and stops the workers
        (``App.stop`` calls ``committer.close()`` then ``ingestor.flush_all()``)."""
        self._closed = True
        self._front_groups.close(timeout_s)

    def flush_all(self, timeout_s: float = 30.0) -> int:
        """Degrade every waiting half now in every worker; after ``close``, also stop them."""
        if self._closed:
            return sum(w.close(timeout_s) for w in self._workers)
        return sum(int(fut.result(timeout_s)) for fut in [w.call("flush") for w in self._workers])

    def save_templates(self) -> bool:
        return self._front.save_templates()


# -- the worker process -------------------------------------------------------------

def _protobuf(payload: bytes | Message, content_type: str) -> bytes:
    """The request as protobuf bytes, checked: what is cut into parts. The check is the
    upb parse a single process does anyway; JSON is converted once here."""
    if isinstance(payload, Message):
        return payload.SerializeToString()
    request = parse_traces(payload, content_type)  # raises MalformedPayload
    media = content_type.split(";", 1)[0].strip().lower()
    return payload if not media or media in PROTOBUF_TYPES else request.SerializeToString()


def worker_main(conn: Any, settings: Settings, index: int, group_max: int, log_level: int) -> None:
    """One ingest shard: today's ``Ingestor`` + ``GroupCommitter``, writing through the
    front (``PipeSink``): no Neo4j driver, no inference stage imported here."""
    from rootgraph.server.gc_tuning import tune_gc

    # The parent decides when to stop (it drains and flushes us); a terminal's Ctrl-C
    # reaches the whole process group and must not kill us before that.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=log_level, format=f"%(asctime)s %(levelname)s worker-{index} %(name)s %(message)s")
    send_lock = threading.Lock()
    stop = threading.Event()
    writes: dict[int, Future[list[bool]]] = {}
    writes_lock = threading.Lock()

    class PipeSink:
        """Our groups' deltas, written by the front's one writer (``_SharedWriter``)."""

        next_id = 0

        def apply_deltas(self, deltas: list[GraphDelta]) -> list[bool]:
            fut: Future[list[bool]] = Future()
            with writes_lock:
                PipeSink.next_id += 1
                wid = PipeSink.next_id
                writes[wid] = fut
            with send_lock:
                conn.send(("write", wid, deltas))
            return fut.result()  # the group waits for the commit, as with a driver

    ingestor = Ingestor(PipeSink(), ingest_config(settings))
    committer = GroupCommitter(ingestor, max_requests=group_max)
    pool = ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="part")

    def reply(rid: int, ok: bool, value: Any) -> None:
        with send_lock:
            try:
                conn.send((rid, ok, value))
            except (OSError, ValueError):
                stop.set()  # the front is gone

    def part(rid: int, body: bytes, timeout_s: float) -> None:
        try:  # a request of our traces only (shard.split_request)
            reply(rid, True, committer.submit(body, timeout_s=timeout_s))
        except MalformedPayload as exc:
            reply(rid, False, ("malformed", str(exc)))
        except TimeoutError as exc:
            reply(rid, False, ("timeout", str(exc) or "deadline exceeded"))
        except Exception as exc:  # noqa: BLE001 - the front maps it to a status
            kind = "unavailable" if getattr(exc, "retryable", False) else "internal"
            reply(rid, False, (kind, str(exc) or type(exc).__name__))

    def expire() -> None:
        while not stop.wait(TICK_S):
            try:
                ingestor.tick()
            except Exception as exc:  # noqa: BLE001 - retried next round
                log.warning("pairing expiry failed: %s", type(exc).__name__)

    def flush(rid: int) -> None:
        try:
            reply(rid, True, ingestor.flush_all())
        except Exception as exc:  # noqa: BLE001
            reply(rid, False, ("unavailable" if getattr(exc, "retryable", False) else "internal",
                               str(exc) or type(exc).__name__))

    def close(rid: int) -> None:
        pool.shutdown(wait=True)
        committer.close()
        flush(rid)  # then the front closes the pipe: our loop ends on EOF

    def stats() -> dict[str, Any]:
        out: dict[str, Any] = dict(ingestor.stats())
        for key in ("requests", "requests_malformed"):
            out.pop(key, None)  # a request is a part in several workers: the front counts it
        return out

    tune_gc()
    threading.Thread(target=expire, name="pairing-expiry", daemon=True).start()
    try:
        while not stop.is_set():
            try:
                kind, rid, *args = conn.recv()
            except (EOFError, OSError):
                break  # the front exited without closing us: nothing to answer to
            if kind == "written":
                ok, value = args
                with writes_lock:
                    fut = writes.pop(rid, None)
                if fut is None:
                    continue
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(StoreUnavailable(value[1]) if value[0] == "unavailable"
                                      else RuntimeError(value[1]))
            # Everything else runs off this loop: it may wait for the ingestor's lock (stats,
            # flush) or a group (a part), and a group holds that lock until its "written"
            # answer, which only this loop reads. (Answering "stats" here hung the worker
            # on the first /metrics scrape during a write, and with it every request.)
            elif kind in ("request", "flush", "stats"):
                fn = part if kind == "request" else flush if kind == "flush" else \
                    (lambda rid: reply(rid, True, stats()))
                try:
                    pool.submit(fn, rid, *args)
                except RuntimeError:  # the pool is shut down: we are closing
                    reply(rid, False, ("unavailable", f"ingest worker {index} is shutting down"))
            elif kind == "exit":  # after "close" was answered: nothing left to do
                break
            elif kind == "close":  # drain + flush need this loop for their writes' answers
                threading.Thread(target=close, args=(rid,), name="close", daemon=True).start()
    finally:
        stop.set()
