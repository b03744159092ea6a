"""Ingest configuration: every default in one place, validated with the field's name.

Defaults follow the Collector's ``servicegraphconnector`` store (10 s TTL; a larger
100k-entry bound because we degrade instead of dropping) and one-minute statistics
buckets (DESIGN.md "Neo4j is the system of record").
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
    #: how long (arrival clock, seconds) a half waits before it degrades
    pending_ttl_s: float = 10.0
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
        for name in ("pending_ttl_s", "self_time_ttl_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise IngestConfigError(f"{name} must be a positive number of seconds, got {value!r}")
        if 86_400 % self.bucket_seconds:
            raise IngestConfigError(
                f"bucket_seconds must divide 86400 so buckets align across days, got {self.bucket_seconds}"
            )
        return self
