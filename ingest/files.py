"""Read OTLP trace files for ``rootgraph ingest FILE…``.

Formats, detected from the content (not the file name), after gunzip when the file
starts with the gzip magic:

* **OTLP/JSON lines** — the Collector ``file`` exporter's default: one
  ``{"resourceSpans": [...]}`` object per line; a bad line is reported as
  ``path:line`` and the rest of the file is still read;
* **one OTLP/JSON document** (pretty-printed or not);
* **length-prefixed protobuf** — the file exporter's ``format: proto``: every message is
  preceded by its size as a 4-byte big-endian unsigned integer
  (``exportMessageAsBuffer`` in ``exporter/fileexporter/file_writer.go``); a frame
  holding JSON is accepted too;
* **one serialized ExportTraceServiceRequest** (what ``curl --data-binary`` posts).

A serialized request starts with the tag of field 1 (``0x0a``) while a length prefix
of any frame under 160 MiB starts with a byte below ``0x0a``, which tells the two
apart. The exporter's per-frame zstd compression is not supported (no zstd codec in
our dependencies): such frames are reported, not silently skipped.

The reader yields payloads so the CLI can show progress; :func:`ingest_paths` feeds
them to an ingestor and reports every failure with its location.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rootgraph.ingest.pipeline import IngestResult
from rootgraph.ingest.spans import MalformedPayload

__all__ = ["FileError", "FileOutcome", "FilePayload", "RequestIngestor", "ingest_paths", "read_payloads"]

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True, slots=True)
class FilePayload:
    """One request's bytes and where they came from (``path:line`` or ``path#frame``)."""

    location: str
    data: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class FileError:
    """A part of a file that could not be turned into a payload, and why."""

    location: str
    reason: str


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What happened to one payload (or unreadable part) in :func:`ingest_paths`."""

    location: str
    accepted_spans: int = 0
    rejected_spans: int = 0
    duplicate: bool = False
    error: str = ""


def read_payloads(path: str | Path) -> Iterator[FilePayload | FileError]:
    """Yield every payload in ``path``, and a :class:`FileError` for each bad part."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        yield FileError(name, f"cannot read: {exc.strerror or exc}")
        return
    if raw.startswith(_GZIP_MAGIC):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            yield FileError(name, f"bad gzip data: {exc}")
            return
    body = raw.lstrip()
    if not body:
        return
    if body[:1] in (b"{", b"["):
        yield from _json(name, raw)
    elif raw[:1] == b"\x0a":
        yield FilePayload(name, raw, PROTOBUF)
    else:
        yield from _frames(name, raw)


def _json(name: str, raw: bytes) -> Iterator[FilePayload | FileError]:
    try:
        json.loads(raw)
    except ValueError:
        pass  # not one document: JSON lines
    except RecursionError:
        yield FileError(name, "JSON nested too deeply")
        return
    else:
        yield FilePayload(name, raw, JSON)
        return
    for number, line in enumerate(raw.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith(b"{"):
            yield FileError(f"{name}:{number}", "line is not a JSON object")
            continue
        yield FilePayload(f"{name}:{number}", stripped, JSON)


def _frames(name: str, raw: bytes) -> Iterator[FilePayload | FileError]:
    offset, frame, size = 0, 0, len(raw)
    while offset < size:
        frame += 1
        where = f"{name}#{frame}@{offset}"
        if size - offset < 4:
            yield FileError(where, f"truncated length prefix ({size - offset} bytes left)")
            return
        length = int.from_bytes(raw[offset:offset + 4], "big")
        start, end = offset + 4, offset + 4 + length
        if end > size:
            yield FileError(where, f"frame of {length} bytes runs past the end of the file ({size - start} left)")
            return
        data = raw[start:end]
        offset = end
        if data.startswith(_ZSTD_MAGIC):
            yield FileError(where, "zstd-compressed frame: not supported, export without compression or use gzip")
        elif data.lstrip()[:1] == b"{":
            yield FilePayload(where, data, JSON)
        else:
            yield FilePayload(where, data, PROTOBUF)


class RequestIngestor(Protocol):
    """What :func:`ingest_paths` needs of an ``Ingestor``."""

    def ingest_request(self, payload: bytes, content_type: str) -> IngestResult: ...


def ingest_paths(ingestor: RequestIngestor, paths: Iterable[str | Path]) -> Iterator[FileOutcome]:
    """Ingest every payload of every file, yielding one outcome per payload or error.

    Malformed payloads are reported and skipped; sink errors (storage down) propagate,
    because continuing would only fail the same way.
    """
    for path in paths:
        for item in read_payloads(path):
            if isinstance(item, FileError):
                yield FileOutcome(item.location, error=item.reason)
                continue
            try:
                result = ingestor.ingest_request(item.data, item.content_type)
            except MalformedPayload as exc:
                yield FileOutcome(item.location, error=str(exc))
                continue
            yield FileOutcome(
                item.location, result.accepted_spans, result.rejected_spans, result.duplicate,
            )
