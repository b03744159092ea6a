"""Ingest configuration: every default in one place, validated with the field's name.

The pairing wait (``pending_ttl_s``, ``rootgraph serve --pairing-wait`` /
``ROOTGRAPH_PAIRING_WAIT_SECONDS``) is 10 s, longer than the Collector's
``servicegraphconnector`` store (``store: ttl: 2s, max_items: 1000``), with a larger
100k-entry bound because we degrade instead of dropping. Why configurable: a Collector
that retries after an outage spreads its queue over tens of seconds (issue 13: ~37 s),
and a half whose partner arrives after the wait becomes a fallback edge (``user`` ->
service, or a virtual node) -- counted as ``late_after_expiry`` when the partner does
arrive. A longer wait holds more unmatched halves in memory (up to
``pending_max_entries``; beyond it the oldest degrade early, ``evicted_when_full``).
Statistics buckets are one minute (DESIGN.md "Neo4j is the system of record").
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["IngestConfig", "IngestConfigError"]


class IngestConfigError(ValueError):
    """An :class:`IngestConfig` field has an unusable value; the message names it."""

    retryable = False


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """Tuning of the ingest stage; call :meth:`validate` after building one."""

    #: width of statistics buckets, seconds; must divide a day so buckets align
    bucket_seconds: int = 60
    #: unpaired span halves kept waiting for their partner (clients + servers)
    pending_max_entries: int = 100_000
    #: how long (arrival clock, seconds) a half waits before it degrades (module doc)
    pending_ttl_s: float = 10.0
    #: how long the key of a degraded half is remembered, to count a partner arriving
    #: later (``late_after_expiry``); bounded by ``pending_max_entries`` keys as well
    expired_key_memory_s: float = 300.0
    #: parked outbound-call intervals awaiting their entry span (self time)
    self_time_max_entries: int = 100_000
    #: children arrive before long requests end, so this outlives ``pending_ttl_s``
    self_time_ttl_s: float = 60.0
    #: longer service.name / service.namespace values reject the resource's spans
    max_service_name_len: int = 256
    #: attribute values and span names are truncated to this many characters
    max_attribute_value_len: int = 1024
    #: batch ids whose pairing was committed, remembered to resolve duplicates
    committed_batch_memory: int = 4096
    #: which Collector connector's metrics give per-service statistics (the other one's
    #: would count every request twice): "servicegraph" or "spanmetrics"
    #: (``ingest/connectors.py``)
    connector_service_stats: str = "servicegraph"

    def validate(self) -> "IngestConfig":
        """Raise :class:`IngestConfigError` naming the first bad field; return self."""
        positive_ints = (
            "bucket_seconds", "pending_max_entries", "self_time_max_entries",
            "max_service_name_len", "max_attribute_value_len", "committed_batch_memory",
        )
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise IngestConfigError(f"{name} must be a positive integer, got {value!r}")
        for name in ("pending_ttl_s", "self_time_ttl_s", "expired_key_memory_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise IngestConfigError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.connector_service_stats not in ("servicegraph", "spanmetrics"):
            raise IngestConfigError(
                f"connector_service_stats must be 'servicegraph' or 'spanmetrics', got {self.connector_service_stats!r}"
            )
        if 86_400 % self.bucket_seconds:
            raise IngestConfigError(
                f"bucket_seconds must divide 86400 so buckets align across days, got {self.bucket_seconds}"
            )
        return self
