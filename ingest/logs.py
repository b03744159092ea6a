"""Decode OTLP log requests into per-(entity, bucket) evidence (issue 14).

What is kept of a log record (nothing else is stored):

* its **severity class** (:data:`~rootgraph.graph.records.SEVERITIES`): SeverityNumber
  1-4 TRACE, 5-8 DEBUG, 9-12 INFO, 13-16 WARN, 17-20 ERROR, 21-24 FATAL (OTLP logs data
  model); with SeverityNumber 0 (unset) the ``severity_text``, case-insensitively
  (:data:`SEVERITY_TEXT`, common synonyms included); otherwise "unspecified";
* for ERROR/FATAL records with a valid span id, the (trace_id, span_id) as a 64-bit key:
  the bucket counts *distinct error-logged spans*, so the ranker can treat a span whose
  own service logged an error as failing even when its status is unset;
* the **template** of a string body (``ingest/templates.py``), counted per bucket,
  at most ``LOG_TEMPLATES_PER_BUCKET`` ids per entity-bucket, by descending count.

Entity: the resource's service id as spans get it (``spans.resource_identity``); a
resource without ``service.name`` (a Collector's filelog + k8sattributes) goes to its
pod, else node, else host. Bucket: ``time_unix_nano``, else ``observed_time_unix_nano``.

Rejected records (``partial_success.rejected_log_records``, with the reason): resource
with neither service.name nor an infra attribute (``missing service.name``); both
times 0 (``missing time``); ``service.name too long``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from rootgraph.graph.records import LOG_TEMPLATES_PER_BUCKET, SEVERITY_ERROR, GraphDelta, LogCounts
from rootgraph.ingest.spans import hex_field, items, parse_request, request_digest, resource_identity
from rootgraph.ingest.templates import Templates

__all__ = ["LogBatch", "SEVERITY_TEXT", "decode_logs", "severity_class"]

#: severity_text (lower case) -> index in SEVERITIES, for records with SeverityNumber 0
SEVERITY_TEXT = {
    "trace": 1, "debug": 2, "info": 3, "information": 3, "notice": 3, "warn": 4, "warning": 4,
    "error": 5, "err": 5, "fatal": 6, "critical": 6, "crit": 6, "alert": 6, "emergency": 6, "emerg": 6,
    "panic": 6,
}
_ZERO16, _ZERO8 = bytes(16), bytes(8)


def severity_class(number: int, text: str) -> int:
    """Index in ``SEVERITIES`` of a record's SeverityNumber, or of its text when 0."""
    if 1 <= number <= 24:
        return (number - 1) // 4 + 1
    if number == 0 and text:
        return SEVERITY_TEXT.get(text.strip().lower(), 0)
    return 0


@dataclass(slots=True)
class LogBatch:
    """One decoded request: its evidence, ready to be a delta."""

    batch_id: str
    buckets: dict[tuple[str, int], LogCounts]
    templates: dict[tuple[str, str], str]
    accepted: int
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def delta(self, miner_state: str = "") -> GraphDelta:
        return GraphDelta(batch_id=self.batch_id, log_buckets=self.buckets, log_templates=self.templates,
                          miner_state=miner_state, records=self.accepted)


def _fix_ids(doc: dict[str, Any]) -> None:
    for rl in items(doc, "resourceLogs", "resource_logs"):
        for sl in items(rl, "scopeLogs", "scope_logs"):
            for rec in items(sl, "logRecords", "log_records"):
                if isinstance(rec, dict):
                    hex_field(rec, ("traceId", "trace_id"), 16)
                    hex_field(rec, ("spanId", "span_id"), 8)


def decode_logs(payload: bytes | ExportLogsServiceRequest, content_type: str, templates: Templates, *,
                bucket_seconds: int, max_name_len: int = 256, max_value_len: int = 1024) -> LogBatch:
    """Decode and aggregate one OTLP logs request; raises ``MalformedPayload``."""
    request = payload if isinstance(payload, ExportLogsServiceRequest) else parse_request(
        payload, content_type, ExportLogsServiceRequest(), _fix_ids, "resourceLogs")
    batch_id = "logs:" + request_digest(payload, request)
    width_ns = bucket_seconds * 1_000_000_000
    per: dict[tuple[str, int], tuple[LogCounts, Counter[str]]] = {}
    texts: dict[tuple[str, str], str] = {}
    reasons: Counter[str] = Counter()
    accepted = 0
    for rl in request.resource_logs:
        res = resource_identity(rl.resource, max_name_len, max_value_len, require_service=False)
        if isinstance(res, str):
            lost = sum(len(sl.log_records) for sl in rl.scope_logs)
            if lost:
                reasons[res] += lost
            continue
        service, infra = res[0], res[4]
        entity = service or _first_infra(infra)
        for sl in rl.scope_logs:
            for rec in sl.log_records:
                t = rec.time_unix_nano or rec.observed_time_unix_nano
                if not t:
                    reasons["missing time"] += 1
                    continue
                key = (entity, t // width_ns * bucket_seconds)
                slot = per.get(key)
                if slot is None:
                    slot = per[key] = (LogCounts(), Counter())
                counts, tpl = slot
                counts.records += 1
                sev = severity_class(rec.severity_number, rec.severity_text)
                counts.severity[sev] += 1
                if sev >= SEVERITY_ERROR:
                    span_id, trace_id = rec.span_id, rec.trace_id
                    if len(span_id) == 8 and span_id != _ZERO8 and len(trace_id) == 16 and trace_id != _ZERO16:
                        counts.error_spans.add(int.from_bytes(
                            hashlib.blake2b(trace_id + span_id, digest_size=8).digest(), "big", signed=True))
                body = rec.body.string_value if rec.body.WhichOneof("value") == "string_value" else ""
                if body:
                    tid, text = templates.mine(body[:max_value_len])
                    tpl[tid] += 1
                    texts[(entity, tid)] = text
                else:
                    counts.other_templates += 1
                accepted += 1
    buckets: dict[tuple[str, int], LogCounts] = {}
    for key, (counts, tpl) in per.items():
        ranked = sorted(tpl.items(), key=lambda kv: (-kv[1], kv[0]))
        counts.templates = dict(ranked[:LOG_TEMPLATES_PER_BUCKET])
        counts.other_templates += sum(n for _, n in ranked[LOG_TEMPLATES_PER_BUCKET:])
        buckets[key] = counts
    kept = {(e, tid) for (e, _), c in buckets.items() for tid in c.templates}
    return LogBatch(batch_id, buckets, {k: v for k, v in texts.items() if k in kept}, accepted,
                    sum(reasons.values()), reasons)


def _first_infra(infra: tuple[str, ...]) -> str:
    """The most specific infra id of a resource without a service: pod, node, host."""
    for prefix in ("pod:", "node:", "host:"):
        for i in infra:
            if i.startswith(prefix):
                return i
    return infra[0]
