"""``POST /v1/alerts``: the Prometheus Alertmanager webhook receiver (issue 15).

The body is Alertmanager's webhook JSON (``webhook_config``; payload ``version`` "4")::

    {"version": "4", "groupKey": "...", "truncatedAlerts": 0, "status": "firing",
     "receiver": "rootgraph", "groupLabels": {...}, "commonLabels": {...},
     "commonAnnotations": {...}, "externalURL": "...",
     "alerts": [{"status": "firing", "labels": {...}, "annotations": {...},
                 "startsAt": "2026-01-01T00:40:00Z", "endsAt": "0001-01-01T00:00:00Z",
                 "generatorURL": "...", "fingerprint": "1a30ba71cca2921f"}]}

Each alert becomes a symptom on the entity its labels name, the most specific that is
known, in this order (ids as ingest names them, ``ingest/spans.py``):

====================================  =================================================
label                                  entity
====================================  =================================================
``service``, ``service_name``, ``job``  the service: ``<namespace>/<name>`` when a
                                       ``namespace`` label is given and that id exists,
                                       else the bare name when it is unique
                                       (``WindowSource.resolve_service``)
``pod``                                ``pod:<pod>``
``node``                               ``node:<node>``
``instance``                           ``host:<host>`` (port stripped), else ``node:<host>``
====================================  =================================================

A label value naming no known entity is reported (``unresolved``), never guessed; an
alert with none of these labels too. Other labels (``alertname``, ``severity`` …) are
listed in ``ignored_labels``. ``fingerprint`` makes a repeat idempotent (one alert per
fingerprint, ``graph/alerts.py``); when absent, one is derived from the sorted labels as
Alertmanager does (a hash of the label set). ``resolved`` alerts clear their symptom
from their ``endsAt`` on. Times are the alert's own (``startsAt``/``endsAt``): the
detector judges buckets on the data's clock.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from rootgraph.graph.alerts import AlertRecord
from rootgraph.graph.errors import NotFound
from rootgraph.server.errors import InvalidRequest

__all__ = ["ENTITY_LABELS", "AlertReceiver", "parse_alerts"]

ENTITY_LABELS = ("service", "service_name", "job", "pod", "node", "instance")
_SERVICE_LABELS = ("service", "service_name", "job")
#: Labels that say where, used with a service label, not on their own.
_QUALIFIERS = {"namespace"}
#: Alertmanager's "no end" time (Go's zero time.Time).
_ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass
class AlertsOutcome:
    accepted: int = 0
    firing: int = 0
    resolved: int = 0
    duplicates: int = 0
    unresolved: list[dict[str, str]] = field(default_factory=list)
    ignored_labels: set[str] = field(default_factory=set)

    def to_json(self) -> bytes:
        return json.dumps({"accepted": self.accepted, "firing": self.firing, "resolved": self.resolved,
                           "duplicates": self.duplicates, "unresolved": self.unresolved,
                           "ignored_labels": sorted(self.ignored_labels)}).encode()


def _time(value: Any, where: str) -> int | None:
    if value in (None, "", _ZERO_TIME):
        return None
    if not isinstance(value, str):
        raise InvalidRequest(where, "must be an RFC 3339 time string")
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(where, f"not an RFC 3339 time: {value[:40]!r}") from None
    if t.year <= 1:
        return None
    if t.tzinfo is None:
        raise InvalidRequest(where, "needs a UTC offset (RFC 3339)")
    return int(t.timestamp())


def parse_alerts(body: bytes) -> tuple[str, list[dict[str, Any]]]:
    """Check the webhook shape; return (groupKey, alerts). Raises InvalidRequest naming the field."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("body", f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise InvalidRequest("body", "must be a JSON object (Alertmanager webhook payload)")
    if doc.get("version") != "4":
        raise InvalidRequest("version", f"webhook payload version must be \"4\", got {doc.get('version')!r}")
    alerts = doc.get("alerts")
    if not isinstance(alerts, list):
        raise InvalidRequest("alerts", "must be a list")
    for i, a in enumerate(alerts):
        if not isinstance(a, dict):
            raise InvalidRequest(f"alerts[{i}]", "must be an object")
        if a.get("status") not in ("firing", "resolved"):
            raise InvalidRequest(f"alerts[{i}].status", f"must be firing or resolved, got {a.get('status')!r}")
        labels = a.get("labels")
        if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                   for k, v in labels.items()):
            raise InvalidRequest(f"alerts[{i}].labels", "must be an object of strings")
        if _time(a.get("startsAt"), f"alerts[{i}].startsAt") is None:
            raise InvalidRequest(f"alerts[{i}].startsAt", "is required")
        _time(a.get("endsAt"), f"alerts[{i}].endsAt")
    return str(doc.get("groupKey", "")), alerts


class AlertReceiver:
    """Maps and stores one webhook payload (the ``/v1/alerts`` handler's work)."""

    def __init__(self, store: Any, resolve_service: Callable[[str], str],
                 entity_exists: Callable[[str], bool]) -> None:
        self._store = store
        self._resolve = resolve_service
        self._exists = entity_exists

    def _entity(self, labels: dict[str, str]) -> tuple[str | None, list[dict[str, str]]]:
        problems: list[dict[str, str]] = []
        ns = labels.get("namespace", "")
        for key in _SERVICE_LABELS:
            name = labels.get(key)
            if not name:
                continue
            if ns and self._exists(f"{ns}/{name}"):
                return f"{ns}/{name}", []
            try:
                return self._resolve(name), []
            except NotFound as exc:
                problems.append({"label": key, "value": name, "reason": str(exc).removeprefix("service: ")})
        for key, prefix in (("pod", "pod:"), ("node", "node:")):
            if labels.get(key):
                if self._exists(prefix + labels[key]):
                    return prefix + labels[key], []
                problems.append({"label": key, "value": labels[key], "reason": f"no entity {prefix + labels[key]!r}"})
        if labels.get("instance"):
            host = labels["instance"].rsplit(":", 1)[0] if ":" in labels["instance"] else labels["instance"]
            for cand in (f"host:{host}", f"node:{host}"):
                if self._exists(cand):
                    return cand, []
            problems.append({"label": "instance", "value": labels["instance"],
                             "reason": f"no entity host:{host} or node:{host}"})
        if not problems:
            problems.append({"label": "", "value": "", "reason": "no label naming an entity ("
                             + ", ".join(ENTITY_LABELS) + ")"})
        return None, problems

    def receive(self, body: bytes) -> AlertsOutcome:
        _, alerts = parse_alerts(body)
        out = AlertsOutcome()
        records: dict[str, AlertRecord] = {}
        repeats = 0  # the same fingerprint twice in one payload
        for a in alerts:
            labels: dict[str, str] = a["labels"]
            fp = a.get("fingerprint") or hashlib.sha256(
                json.dumps(sorted(labels.items())).encode()).hexdigest()[:16]
            out.ignored_labels |= set(labels) - set(ENTITY_LABELS) - _QUALIFIERS - {"alertname"}
            entity, problems = self._entity(labels)
            if entity is None:
                out.unresolved.extend({"fingerprint": str(fp), **p} for p in problems)
                continue
            starts = _time(a["startsAt"], "startsAt")
            ends = _time(a.get("endsAt"), "endsAt") if a["status"] == "resolved" else None
            if a["status"] == "resolved" and ends is None:
                ends = starts
            repeats += str(fp) in records
            records[str(fp)] = AlertRecord(str(fp), a["status"], entity, labels.get("alertname", ""),
                                           int(starts or 0), ends, json.dumps(labels, sort_keys=True))
        out.duplicates = self._store.upsert(list(records.values())) + repeats
        out.accepted = len(records)
        out.firing = sum(1 for r in records.values() if r.status == "firing")
        out.resolved = out.accepted - out.firing
        return out
