"""The ingest stage's public face: OTLP payloads in, one idempotent delta per batch out.

:class:`Ingestor` only wires the engine (STYLE.md #5): decode (``spans``) → pair against
the store in a transaction (``pairing``, ``store``) → self time (``selftime``) →
aggregate (``aggregate``) → ``sink.apply_deltas`` → commit the transaction.

Why commit last: if the sink raises, nothing is remembered, so the client's retry of the
same spans pairs and counts them exactly once. Why the batch id is a hash of the sorted
(trace_id, span_id) of the accepted spans: a re-sent batch gets the same id whatever its
byte order, and the store's dedup on ``batch_id`` makes it a no-op. On a duplicate the
transaction is discarded (the spans were paired when first applied) — unless this
process never committed that batch, i.e. the sink applied it but the acknowledgement was
lost; then the pairing is committed now so the store matches the graph.

Halves that expire as time passes are emitted in the next batch's delta, or by
:meth:`Ingestor.tick` (called periodically by the server) in a delta of their own whose
id derives from the expired spans. One lock serialises pairing and the sink write: the
store is not thread-safe, and batches must commit in order.

Group commit (:meth:`Ingestor.ingest_group`, driven by ``group.GroupCommitter``): a
Neo4j transaction costs about the same for one request's delta as for twenty, so
concurrent requests are decoded in their own threads (:meth:`Ingestor.prepare`), then
paired in one shared pairing transaction and written in one sink transaction; each is
acknowledged only after that commit.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from rootgraph.graph.records import GraphDelta
from rootgraph.ingest.aggregate import aggregate
from rootgraph.ingest.config import IngestConfig
from rootgraph.ingest.deployments import cicd_deployment
from rootgraph.ingest.logs import LogBatch, decode_logs
from rootgraph.ingest.metrics import CounterState, MetricBatch, decode_metrics
from rootgraph.ingest.pairing import Call, Pairer
from rootgraph.ingest.selftime import compute_self_time
from rootgraph.ingest.sink import DeltaSink
from rootgraph.ingest.spans import MalformedPayload, Span, decode
from rootgraph.ingest.store import PairingTxn, PendingStore
from rootgraph.ingest.templates import Templates

__all__ = ["IngestResult", "Ingestor", "PreparedBatch", "SIGNALS"]

#: The OTLP signals a request may carry (``Ingestor.prepare``'s ``signal``).
SIGNALS = ("traces", "logs", "metrics")

_PAIRING_COUNTERS = (
    "paired", "expired", "evicted_when_full", "unpaired_client", "unpaired_server", "virtual",
    "self_time_expired", "self_time_evicted", "late_after_expiry",
)


@dataclass(frozen=True, slots=True)
class IngestResult:
    """Outcome of one request: what was accepted/rejected, and whether it was a re-send.

    ``accepted_spans``/``rejected_spans`` count the request's items: spans, log records
    or metric data points, by the request's signal.
    """

    accepted_spans: int
    rejected_spans: int
    reasons: Mapping[str, int] = field(default_factory=dict)
    duplicate: bool = False
    batch_id: str = ""


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """One decoded request waiting to be paired and applied (see :meth:`Ingestor.prepare`).

    ``result`` is set when there is nothing to apply (every span rejected or none).
    ``signal`` holds a logs or metrics request's decoded evidence (``spans`` is empty):
    it needs no pairing, only the group's transaction.
    """

    batch_id: str
    spans: tuple[Span, ...]
    rejected: int
    reasons: Mapping[str, int]
    result: IngestResult | None = None
    signal: LogBatch | MetricBatch | None = None

    @property
    def size(self) -> int:
        """Items of the request (spans, log records or data points): the group bound."""
        return self.signal.accepted if self.signal is not None else len(self.spans)

    def outcome(self, duplicate: bool) -> IngestResult:
        return IngestResult(self.size, self.rejected, dict(self.reasons), duplicate, self.batch_id)


class Ingestor:
    """Turns OTLP trace requests into graph deltas for a :class:`DeltaSink`."""

    def __init__(
        self,
        sink: DeltaSink,
        config: IngestConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        templates: Templates | None = None,
    ) -> None:
        self._config = (config or IngestConfig()).validate()
        self._sink = sink
        #: log message templates (restored from the graph by the server at start-up)
        self.templates = templates or Templates()
        self._counter_state = CounterState()
        cfg = self._config
        self._store = PendingStore(
            cfg.pending_max_entries, cfg.pending_ttl_s,
            max_child_entries=cfg.self_time_max_entries, child_ttl_s=cfg.self_time_ttl_s,
            expired_key_memory_s=cfg.expired_key_memory_s, clock=clock,
        )
        self._pairer = Pairer()
        self._lock = threading.Lock()
        self._committed: OrderedDict[str, None] = OrderedDict()
        self._counters: Counter[str] = Counter()
        self._counter_lock = threading.Lock()  # decode counters, updated outside `_lock`

    @property
    def config(self) -> IngestConfig:
        return self._config

    def ingest_request(
        self, payload: bytes | ExportTraceServiceRequest, content_type: str = "application/x-protobuf"
    ) -> IngestResult:
        """Decode, pair, aggregate and apply one OTLP request.

        Raises ``MalformedPayload`` for undecodable input and re-raises the sink's
        (retryable) errors after discarding the batch's pairing.
        """
        prepared = self.prepare(payload, content_type)
        if prepared.result is not None:
            return prepared.result
        if prepared.signal is not None:
            return self.ingest_group([prepared])[0]
        with self._lock:
            txn = self._store.begin()
            delta = self._pair_and_aggregate(prepared, txn)
            applied = self._apply(delta, txn)
            self._counters["spans_accepted"] += len(prepared.spans)
            return prepared.outcome(not applied)

    def prepare(
        self, payload: bytes | ExportTraceServiceRequest, content_type: str = "application/x-protobuf",
        signal: str = "traces",
    ) -> PreparedBatch:
        """Decode one request (stateless; safe to run concurrently, outside the lock).

        Why separate: decoding is half the CPU of ingest and needs no pairing state, so
        request threads decode while the writer waits on Neo4j (group commit).
        ``signal`` says what ``payload`` is: an OTLP traces, logs or metrics request.
        """
        if signal != "traces":
            return self._prepare_signal(payload, content_type, signal)
        cfg = self._config
        try:
            decoded = decode(
                payload, content_type,
                max_name_len=cfg.max_service_name_len, max_value_len=cfg.max_attribute_value_len,
            )
        except MalformedPayload:
            with self._counter_lock:
                self._counters["requests"] += 1
                self._counters["requests_malformed"] += 1
            raise
        spans = decoded.spans
        with self._counter_lock:
            c = self._counters
            c["requests"] += 1
            c["spans_received"] += len(spans) + decoded.rejected
            c["spans_rejected"] += decoded.rejected
            c["spans_clamped"] += decoded.clamped
            for reason, count in decoded.reasons.items():
                c[f"rejected:{reason}"] += count
        reasons = dict(decoded.reasons)
        if not spans:
            return PreparedBatch("", (), decoded.rejected, reasons, IngestResult(0, decoded.rejected, reasons))
        batch_id = "spans:" + _digest(s.trace_id + s.span_id for s in spans)
        return PreparedBatch(batch_id, tuple(spans), decoded.rejected, reasons)

    def _prepare_signal(self, payload: object, content_type: str, signal: str) -> PreparedBatch:
        cfg = self._config
        limits = {"bucket_seconds": cfg.bucket_seconds, "max_name_len": cfg.max_service_name_len,
                  "max_value_len": cfg.max_attribute_value_len}
        item = "log_records" if signal == "logs" else "metric_points"
        try:
            if signal == "logs":
                decoded: LogBatch | MetricBatch = decode_logs(payload, content_type, self.templates,  # type: ignore[arg-type]
                                                              **limits)
            elif signal == "metrics":
                decoded = decode_metrics(payload, content_type, **limits,  # type: ignore[arg-type]
                                         connector_service_stats=cfg.connector_service_stats)
            else:
                raise ValueError(f"signal must be one of {SIGNALS}, got {signal!r}")
        except MalformedPayload:
            with self._counter_lock:
                self._counters[f"{signal}_requests"] += 1
                self._counters[f"{signal}_requests_malformed"] += 1
            raise
        with self._counter_lock:
            c = self._counters
            c[f"{signal}_requests"] += 1
            c[f"{item}_received"] += decoded.accepted + decoded.rejected
            c[f"{item}_rejected"] += decoded.rejected
            for reason, count in decoded.reasons.items():
                c[f"rejected:{reason}"] += count
            if isinstance(decoded, MetricBatch):
                c["metric_points_ignored"] += sum(decoded.ignored.values())
                for reason, count in decoded.ignored.items():
                    c[f"ignored:{reason}"] += count
        reasons = dict(decoded.reasons)
        if not decoded.accepted:
            return PreparedBatch("", (), decoded.rejected, reasons, IngestResult(0, decoded.rejected, reasons))
        return PreparedBatch(decoded.batch_id, (), decoded.rejected, reasons, signal=decoded)

    def _signal_delta(self, b: PreparedBatch, staged: dict, ignored: Counter[str], noted: Counter[str]) -> GraphDelta:
        if isinstance(b.signal, LogBatch):
            return b.signal.delta()
        assert isinstance(b.signal, MetricBatch)
        return self._counter_state.to_delta(b.signal, self._config.bucket_seconds, staged, ignored, noted)

    def ingest_group(self, batches: Sequence[PreparedBatch]) -> list[IngestResult]:
        """Pair and apply several prepared requests in ONE sink transaction (group commit).

        All members share one pairing transaction, in order, so the outcome equals
        applying them one after another — except that the group is atomic: if the sink
        fails, every member fails (retryable) and the pairing memory is unchanged. A
        member already committed by this process, or repeated within the group, is not
        paired again; the sink skips members whose ``batch_id`` it already holds.
        """
        with self._lock:
            txn = self._store.begin()
            deltas: list[GraphDelta] = []
            in_group: set[str] = set()
            staged: dict = {}  # cumulative metric series: committed with the group
            ignored: Counter[str] = Counter()
            noted: Counter[str] = Counter()  # cumulative series that reset (counted from zero)
            for b in batches:
                if b.batch_id in self._committed or b.batch_id in in_group:
                    continue
                in_group.add(b.batch_id)
                if b.signal is not None:
                    deltas.append(self._signal_delta(b, staged, ignored, noted))
                else:
                    deltas.append(self._pair_and_aggregate(b, txn))
            # The miner's snapshot rides in the same transaction as the counts it names.
            snapshot = self.templates.snapshot() if any(d.log_templates for d in deltas) else ""
            if snapshot:
                deltas[0].miner_state = snapshot
            c = self._counters
            try:
                applied = self._sink.apply_deltas(deltas) if deltas else []
            except Exception:
                c["batches_failed"] += len(batches)
                if snapshot:
                    self.templates.unsaved()
                raise
            self._counter_state.commit(staged)
            c["metric_points_ignored"] += sum(ignored.values())
            for reason, count in ignored.items():
                c[f"ignored:{reason}"] += count
            c.update(noted)
            c["sink_groups"] += 1
            new = {d.batch_id for d, ok in zip(deltas, applied) if ok}
            recovered = len(deltas) - len(new)  # in the sink, never committed here: lost ack
            c["batches_applied"] += len(new)
            c["batches_duplicate"] += len(batches) - len(new)
            c["duplicates_recovered"] += recovered
            c["deployments"] += sum(len(d.deployments) for d in deltas if d.batch_id in new)
            c["spans_accepted"] += sum(len(b.spans) for b in batches)
            for b in batches:
                if isinstance(b.signal, LogBatch):
                    c["log_records_accepted"] += b.signal.accepted
                elif isinstance(b.signal, MetricBatch):
                    c["metric_points_accepted"] += b.signal.accepted
            txn.commit()
            for d in deltas:
                self._remember(d.batch_id)
            return [b.outcome(b.batch_id not in new) for b in batches]

    def tick(self) -> int:
        """Emit halves whose TTL has passed; returns the number of fallback calls."""
        with self._lock:
            txn = self._store.begin()
            return self._emit(txn, self._pairer.expire(txn))

    def flush_all(self) -> int:
        """Graceful shutdown: degrade every waiting half now and apply the result."""
        with self._lock:
            txn = self._store.begin()
            return self._emit(txn, self._pairer.expire(txn, everything=True))

    def save_templates(self) -> bool:
        """Store the template miner's snapshot now if it changed (graceful shutdown), so
        a restarted process keeps every template id; False when there was nothing new."""
        with self._lock:
            state = self.templates.snapshot(force=True)
            if not state:
                return False
            try:
                self._sink.apply_deltas([GraphDelta(batch_id="templates:" + _digest([state.encode()]),
                                                    miner_state=state)])
            except Exception:
                self.templates.unsaved()
                raise
            return True

    def stats(self) -> dict[str, int]:
        """Counters (monotonic) and gauges (``pending_*``) for metrics export."""
        with self._lock, self._counter_lock:
            out = dict(self._counters)
            for name in _PAIRING_COUNTERS:
                out[name] = self._store.counters.get(name, 0)
            out.update(self._store.sizes())
            for name in ("requests", "requests_malformed", "spans_received", "spans_accepted", "spans_rejected",
                         "spans_clamped", "batches_applied", "batches_duplicate", "batches_failed",
                         "cicd_spans", "deployments", "log_records_received", "log_records_accepted",
                         "log_records_rejected", "metric_points_received", "metric_points_accepted",
                         "metric_points_rejected", "metric_points_ignored", "metric_series_resets"):
                out.setdefault(name, 0)
            return out

    # internals ----------------------------------------------------------------------

    def _emit(self, txn: PairingTxn, calls: list[Call]) -> int:
        if not calls:
            txn.commit()  # silent expiries (matched producers, parked self-time intervals)
            return 0
        batch_id = "expiry:" + _digest(c.origin for c in calls)
        delta = aggregate(batch_id, (), calls, bucket_seconds=self._config.bucket_seconds, span_count=0)
        self._apply(delta, txn)
        return len(calls)

    def _apply(self, delta: GraphDelta, txn: PairingTxn) -> bool:
        c = self._counters
        try:
            (applied,) = self._sink.apply_deltas([delta])
        except Exception:
            c["batches_failed"] += 1
            raise
        if applied:
            c["batches_applied"] += 1
            c["deployments"] += len(delta.deployments)
            self._commit(txn, delta.batch_id)
        elif delta.batch_id not in self._committed:
            # The sink has it but we never committed: the ack of a successful write was
            # lost. Commit so the pairing memory matches what the graph holds.
            c["batches_duplicate"] += 1
            c["duplicates_recovered"] += 1
            self._commit(txn, delta.batch_id)
        else:
            c["batches_duplicate"] += 1
        return applied

    def _pair_and_aggregate(self, b: PreparedBatch, txn: PairingTxn) -> GraphDelta:
        cfg = self._config
        spans = b.spans
        traffic = [s for s in spans if not s.cicd]
        cicd = [s for s in spans if s.cicd] if len(traffic) != len(spans) else []
        # pair before expiring, so a partner arriving just after the TTL still pairs
        calls = self._pairer.pair(txn, traffic)
        calls += self._pairer.expire(txn)
        compute_self_time(traffic, txn)
        deployments = [d for d in map(cicd_deployment, cicd) if d is not None]
        self._counters["cicd_spans"] += len(cicd)
        return aggregate(
            b.batch_id, traffic, calls, bucket_seconds=cfg.bucket_seconds,
            deployments=deployments, span_count=len(spans),
        )

    def _commit(self, txn: PairingTxn, batch_id: str) -> None:
        txn.commit()
        self._remember(batch_id)

    def _remember(self, batch_id: str) -> None:
        self._committed[batch_id] = None
        self._committed.move_to_end(batch_id)
        while len(self._committed) > self._config.committed_batch_memory:
            self._committed.popitem(last=False)


def _digest(ids: Iterable[bytes]) -> str:
    """sha256 over the sorted ids: independent of the order spans arrived in."""
    return hashlib.sha256(b"".join(sorted(ids))).hexdigest()
