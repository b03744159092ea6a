"""The detector loop: judge every complete bucket, correlate, rank, record, publish (issue 15).

Runs in the API role (``App`` steps it every ``detector_interval_seconds``, 0 = off, and at
once when ingest in the same process commits a newer bucket -- the write that may complete
one -- so an opened event follows the data that opened it by a judgement, not a poll).
One step:

1. take or renew the lease (``graph/incident_events.py``); a replica without it only
   waits. On taking it over, the open incidents and the last judged bucket are read
   back from Neo4j, so the new holder continues where the old one stopped;
2. the watermark is the newest bucket time seen in the data minus
   ``detector_lateness_seconds``; every bucket that ends at or before it and was not
   judged yet is judged, oldest first -- the data's own clock, so a replay from files is
   judged bucket by bucket exactly like live traffic, only faster;
3. per bucket: symptoms (``inference/detector.py``: SLO burn where an SLO is configured,
   else the learned baseline via ``score_window`` and the bucket-level tests at the day's
   false-alarm budget; plus firing Alertmanager alerts),
   the tracker's incident changes, then every open incident re-ranked with the ranker
   RankCauses uses over [its first symptomatic bucket, now) against the 30 minutes
   before it, and written with its event in one transaction fenced by the lease.

SLO file (``slo_file``, JSON)::

    {"slos": [
      {"entity": "sock-shop/orders", "objective": 0.999},
      {"entity": "sock-shop/front-end", "objective": 0.99, "latency_ms": 500,
       "windows": [{"long_s": 3600, "short_s": 300, "factor": 14.4}]}
    ]}

``objective`` in (0, 1): the good fraction; ``latency_ms`` > 0 makes it a latency SLO
(a request slower than that is bad); ``windows`` default to the workbook's page pairs
(1 h / 5 min at 14.4x, 6 h / 30 min at 6x). An entity with an SLO is judged by it only.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Callable, Protocol, Sequence

from google.protobuf import json_format

from rootgraph.config import ConfigError, Settings
from rootgraph.graph.incident_events import DetectorLease, IncidentEventLog, LeaseLost
from rootgraph.graph.incidents import IncidentRecord, pack_inputs
from rootgraph.graph.records import Window, WindowData, window_json
from rootgraph.inference.detector import (
    BurnWindow, DetectorConfig, IncidentChange, IncidentTracker, OpenIncident, Slo, Symptom, Topology,
    baseline_symptoms, slo_symptoms,
)
from rootgraph.server.convert import RankQuery, ranking_to_proto, ts
from rootgraph.server.rootcause import Ranker
from rootgraph.v1 import rootgraph_pb2 as pb

__all__ = ["Detector", "detector_config", "load_slos"]

log = logging.getLogger("rootgraph.detector")

#: Ranking windows: at most this much of the incident, against this much before it
#: (RankCauses' defaults: 15 and 30 minutes).
RANK_INCIDENT_S = 900
RANK_BASELINE_S = 1800
#: On a first start, judge at most this far back from the newest bucket.
MAX_CATCH_UP_S = 24 * 3600
TOP_K = 5

_KIND = {"opened": pb.INCIDENT_EVENT_KIND_OPENED, "updated": pb.INCIDENT_EVENT_KIND_UPDATED,
         "resolved": pb.INCIDENT_EVENT_KIND_RESOLVED}


class DetectorSource(Protocol):
    """What the detector reads of the graph (``graph.reader.WindowReader``)."""

    def read_window(self, incident: Window, baseline: Window, bucket_seconds: int,
                    *, timeout_s: float | None = None) -> WindowData: ...

    def bucket_range(self) -> tuple[int, int] | None: ...


class ActiveAlerts(Protocol):
    """Alerts firing in a time range (``graph.alerts.AlertStore``)."""

    def active(self, start_s: int, end_s: int) -> list[tuple[str, str, str]]: ...


def load_slos(path: str) -> tuple[Slo, ...]:
    """Parse the SLO file (module doc); ConfigError naming the field."""
    if not path:
        return ()
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"slo_file: cannot read {path!r} as JSON ({exc})") from None
    items = doc.get("slos") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise ConfigError("slo_file: expected {\"slos\": [...]}")
    out = []
    for i, s in enumerate(items):
        where = f"slo_file: slos[{i}]"
        if not isinstance(s, dict) or not isinstance(s.get("entity"), str) or not s["entity"]:
            raise ConfigError(f"{where}.entity: required string")
        obj = s.get("objective")
        if not isinstance(obj, (int, float)) or not 0 < obj < 1:
            raise ConfigError(f"{where}.objective: must be in (0, 1), got {obj!r}")
        lat = s.get("latency_ms", 0)
        if not isinstance(lat, (int, float)) or lat < 0:
            raise ConfigError(f"{where}.latency_ms: must be >= 0, got {lat!r}")
        windows = []
        for j, w in enumerate(s.get("windows") or ()):
            try:
                bw = BurnWindow(int(w["long_s"]), int(w["short_s"]), float(w["factor"]))
            except (KeyError, TypeError, ValueError):
                raise ConfigError(f"{where}.windows[{j}]: needs long_s, short_s, factor") from None
            if not 0 < bw.short_s < bw.long_s or bw.factor <= 0:
                raise ConfigError(f"{where}.windows[{j}]: needs 0 < short_s < long_s and factor > 0")
            windows.append(bw)
        out.append(Slo(s["entity"], float(obj), float(lat), *((tuple(windows),) if windows else ())))
    return tuple(out)


def detector_config(settings: Settings) -> DetectorConfig:
    return DetectorConfig(incident_buckets=settings.detector_incident_buckets,
                          baseline_buckets=settings.detector_baseline_buckets,
                          confirm_buckets=settings.detector_confirm_buckets,
                          resolve_buckets=settings.detector_resolve_buckets,
                          false_alarms_per_day=settings.detector_false_alarms_per_day)


class Detector:
    """One detector replica (module doc). ``step()`` is called by the server's loop."""

    def __init__(self, source: DetectorSource, ranker: Ranker, events: IncidentEventLog,
                 alerts: ActiveAlerts | None, config: DetectorConfig, *, bucket_seconds: int,
                 lateness_s: int, lease_s: float, slos: Sequence[Slo] = (), holder: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._source = source
        self._ranker = ranker
        self._events = events
        self._alerts = alerts
        self._cfg = config
        self._b = bucket_seconds
        self._lateness = lateness_s
        self._slos = tuple(slos)
        self._clock = clock
        self.holder = holder or f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease: DetectorLease = events.lease(self.holder, lease_s)
        self._held = False
        self._tracker: IncidentTracker | None = None
        self._position: int | None = None
        self._top: dict[str, str] = {}
        self._created: dict[str, int] = {}
        #: wall seconds the last judged bucket took, and buckets judged (bench, metrics)
        self.last_bucket_s = 0.0
        self.judged = 0
        #: Complete buckets not judged yet after the last step (catch-up after a start on
        #: an existing graph, or a detector slower than the data): ``/metrics``.
        self.behind_buckets = 0

    # -- the loop ---------------------------------------------------------------------

    def step(self, max_buckets: int = 10_000) -> int:
        """Renew the lease and judge the complete buckets not judged yet; return how many."""
        held, position = self.lease.acquire()
        if not held:
            self._held = False
            return 0
        if not self._held:  # newly taken (first start or takeover): continue from storage
            self._restore(position)
            self._held = True
        rng = self._source.bucket_range()
        if rng is None:
            return 0
        first, newest = rng
        watermark = newest - self._lateness
        need = (self._cfg.incident_buckets - 1 + self._cfg.baseline_buckets) * self._b
        t = (self._position + self._b) if self._position is not None \
            else max(first + need, newest - MAX_CATCH_UP_S)
        done = 0
        try:
            while t + self._b <= watermark and done < max_buckets:
                self.behind_buckets = (watermark - t) // self._b
                t0 = time.perf_counter()
                self._judge(t)
                self._events.advance(self.lease, t)
                self._position = t
                self.last_bucket_s = time.perf_counter() - t0
                self.judged += 1
                done += 1
                t += self._b
        except LeaseLost:
            log.warning("detector lease lost to another replica; standing by")
            self._held = False
        self.behind_buckets = max(0, (watermark - t) // self._b)
        return done

    def stop(self) -> None:
        if self._held:
            try:
                self.lease.release()
            except Exception as exc:  # noqa: BLE001 - best effort: the lease expires anyway
                log.warning("could not release the detector lease: %s", type(exc).__name__)
            self._held = False

    def _restore(self, position: int | None) -> None:
        opened = []
        for st in self._events.open_incidents():
            inc = OpenIncident(st.id, st.opened_s, st.start_s,
                               {e: Symptom(e, sig) for e, sig in st.symptoms}, st.clear_buckets)
            opened.append(inc)
            self._top[st.id] = st.top_cause
        self._tracker = IncidentTracker(self._cfg, self._new_id, opened)
        self._position = position

    def _new_id(self, bucket_s: int) -> str:
        return f"inc-{time.strftime('%Y%m%d-%H%M', time.gmtime(bucket_s))}-{uuid.uuid4().hex[:8]}"

    # -- one bucket -------------------------------------------------------------------

    def symptoms(self, t: int) -> tuple[list[Symptom], WindowData]:
        """The symptoms of the bucket starting at ``t``, and the window they were judged on."""
        b, cfg = self._b, self._cfg
        inc = Window(t - (cfg.incident_buckets - 1) * b, t + b)
        data = self._source.read_window(inc, Window(inc.start_s - cfg.baseline_buckets * b, inc.start_s), b)
        slo_entities = {s.entity for s in self._slos}
        syms = baseline_symptoms(data, slo_entities, cfg.evidence,
                                 false_alarms_per_day=cfg.false_alarms_per_day) if data.service_buckets else []
        syms += self._still_anomalous(inc, syms, slo_entities)
        if self._slos:
            longest = max(w.long_s for s in self._slos for w in s.windows)
            lo = t + b - longest
            slo_data = self._source.read_window(Window(lo, t + b), Window(lo - b, lo), b)
            syms += slo_symptoms(slo_data, self._slos, t + b)
        if self._alerts is not None:
            # A firing alert is conclusive: it confirms the entity's own baseline
            # symptom at once (else the alert's incident would miss the very entity
            # that links its other alerted entities, until the symptom confirmed).
            seen = {s.entity: i for i, s in enumerate(syms)}
            for entity, name, fp in self._alerts.active(t, t + b):
                if entity in seen:
                    syms[seen[entity]] = replace(syms[seen[entity]], confirmed=True)
                    continue
                seen[entity] = len(syms)
                syms.append(Symptom(entity, "alert", f"alert {name} ({fp})", confirmed=True))
        return syms, data

    def _still_anomalous(self, inc: Window, syms: list[Symptom], skip: set[str]) -> list[Symptom]:
        """Symptoms of open incidents judged against the baseline *before* the incident.

        The sliding baseline (the ``baseline_buckets`` before the window) fills with the
        fault's own buckets as an incident goes on, until the fault looks normal and the
        incident "resolves" mid-fault (a 70-minute fault resolved after 18 buckets) --
        and a remediation client would learn that its action worked. So an open
        incident's entities are also judged against the baseline that ended where the
        incident started (anomaly detectors' "don't learn from anomalies"): they stay
        symptoms while the fault lasts, and clear when their buckets look like before."""
        if self._tracker is None or not self._tracker.open:
            return []
        b, cfg = self._b, self._cfg
        seen = {s.entity for s in syms}
        out: list[Symptom] = []
        for start in sorted({i.start_s for i in self._tracker.open.values()}):
            if start >= inc.start_s:
                continue  # no bucket of the incident is in the sliding baseline yet
            entities = {e for i in self._tracker.open.values() if i.start_s == start for e in i.symptoms}
            frozen = self._source.read_window(inc, Window(start - cfg.baseline_buckets * b, start), b)
            for s in baseline_symptoms(frozen, skip, cfg.evidence, false_alarms_per_day=cfg.false_alarms_per_day):
                if s.entity in entities and s.entity not in seen:
                    seen.add(s.entity)
                    out.append(s)
        return out

    def _judge(self, t: int) -> None:
        assert self._tracker is not None
        syms, data = self.symptoms(t)
        changes = self._tracker.step(t, syms, Topology(data))
        by_id: dict[str, IncidentChange] = {c.incident.id: c for c in changes}
        for inc in list(self._tracker.open.values()) + [c.incident for c in changes if c.kind == "resolved"]:
            change = by_id.get(inc.id)
            if inc.clear_buckets > 0 and change is None:
                continue  # symptoms clear this bucket: nothing new to rank (nor to write)
            self._rank_and_record(inc, change, t)

    def _rank_and_record(self, inc: OpenIncident, change: IncidentChange | None, t: int) -> None:
        b = self._b
        # Ranked up to the last bucket its symptoms showed in: a resolved incident keeps
        # the answer of its fault, not one of the healthy buckets that resolved it.
        end = (t - (inc.clear_buckets - 1) * b) if inc.clear_buckets > 0 else t + b
        win = Window(max(inc.start_s, end - RANK_INCIDENT_S), max(end, inc.start_s + b))
        base = Window(inc.start_s - RANK_BASELINE_S, inc.start_s)
        data = self._source.read_window(win, base, b)
        named = tuple(e for e in inc.symptoms if e in data.entities)
        ranking = self._ranker.rank(data, named, TOP_K)
        query = RankQuery(win, base, TOP_K, named)
        response = ranking_to_proto(ranking, inc.id, query)
        top = ranking.causes[0].entity if ranking.causes and not ranking.no_clear_cause else ""
        kind = change.kind if change is not None else None
        changed = top != self._top.get(inc.id, top if kind != "opened" else None)
        if kind is None and changed:
            kind = "updated"
        self._top[inc.id] = top
        now_ms = int(self._clock() * 1000)
        created = self._created.setdefault(inc.id, now_ms)
        resolved = kind == "resolved"
        rec = IncidentRecord(
            id=inc.id, created_ms=created, start_s=win.start_s, end_s=win.end_s,
            baseline_start_s=base.start_s, baseline_end_s=base.end_s, model_version=ranking.model_version,
            symptoms=tuple(inc.symptoms), no_clear_cause=ranking.no_clear_cause,
            suspects=tuple((c.entity, c.rank, c.probability) for c in ranking.causes),
            affects=tuple((s, 1.0) for s in inc.symptoms if s in data.entities),
            response_json=json_format.MessageToJson(response),
            inputs_gz=pack_inputs(window_json({"window": data, "symptoms": list(named), "top_k": TOP_K})),
        )
        event = None
        if kind is not None:
            ev = pb.IncidentEvent(
                kind=_KIND[kind], incident_id=inc.id,
                state=pb.INCIDENT_STATE_RESOLVED if resolved else pb.INCIDENT_STATE_OPEN,
                ranking=response, new_symptoms=list(change.added) if change is not None else [],
                symptoms=[pb.Symptom(entity=s.entity, signal=s.signal, detail=s.detail) for s in inc.symptoms.values()],
                bucket=ts(t), opened=ts(inc.opened_s), top_cause_changed=bool(changed and kind != "opened"),
            )
            if resolved:
                ev.resolved.CopyFrom(ts(t + b))
            event = (kind, ev.SerializeToString())
        self._events.record(self.lease, rec, state="resolved" if resolved else "open", opened_s=inc.opened_s,
                            start_s=inc.start_s, signals=tuple(s.signal for s in inc.symptoms.values()),
                            clear_buckets=inc.clear_buckets, resolved_s=t + b if resolved else None,
                            position=t, event=event)
        if resolved:
            self._top.pop(inc.id, None)
            self._created.pop(inc.id, None)
