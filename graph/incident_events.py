"""Detected incidents' lifecycle, their event log (the watch cursor) and the detector lease.

An incident the detector opens is an ``(:Incident)`` like a RankCauses answer, with
``source: 'detector'`` and a lifecycle: ``state`` ('open' / 'resolved'), ``opened``,
``resolved``, its symptoms (``symptom_signals`` beside ``symptoms``). While open it is
re-ranked as buckets arrive, so its suspects and answer are *replaced* (RankCauses
answers stay write-once); the history of rankings is the event log.

Events: ``(:IncidentEvent {seq, incident, kind, at, payload})``. ``seq`` comes from one
``(:IncidentEventSequence)`` counter incremented in the transaction that writes the
event, under the counter's write lock (taken before it is read: Neo4j is read-committed,
a plain read-then-write can lose an increment). So events commit in ``seq`` order and a
reader that saw ``seq`` n has seen every event before it: a client resuming after n
misses none and repeats none.

Lease: ``(:DetectorLease {name, holder, expires, position})``. Taken or renewed with a
conditional write in one transaction (free, expired, or already ours), expiry on
Neo4j's clock (``timestamp()``) so replicas' clocks do not matter. Every incident write
is fenced by the lease in the same transaction: a detector that lost its lease (paused,
partitioned) cannot write after the new holder began.
"""

from __future__ import annotations

from dataclasses import dataclass

from neo4j import ManagedTransaction

from rootgraph.graph.incidents import CAUSE_EDGES, IncidentRecord, cause_edge_params

__all__ = ["APPEND_EVENT", "DetectorLease", "IncidentEvent", "IncidentEventLog", "IncidentState", "LeaseLost", "LEASE_NAME"]

LEASE_NAME = "detector"

_LOCK_LEASE = """
MERGE (l:DetectorLease {name: $name})
SET l._lock = true
REMOVE l._lock
"""

_TAKE = """
MATCH (l:DetectorLease {name: $name})
WITH l, (l.holder IS NULL OR l.holder = $holder OR l.expires < timestamp()) AS free
SET l.holder = CASE WHEN free THEN $holder ELSE l.holder END,
    l.expires = CASE WHEN free THEN timestamp() + $ttl_ms ELSE l.expires END
RETURN free, l.holder AS holder, l.position AS position
"""

_FENCE = """
MATCH (l:DetectorLease {name: $name})
WHERE l.holder = $holder AND l.expires >= timestamp()
SET l._lock = true
REMOVE l._lock
RETURN count(l) AS held
"""

_UPSERT = """
MERGE (i:Incident {id: $id})
SET i += $props
WITH i
CALL (i) {
  OPTIONAL MATCH (i)-[r:SUSPECTS|BLAMES|AFFECTS]->()
  DELETE r
}
""" + CAUSE_EDGES + """RETURN i.id
"""

#: Append one event under the next seq of the one counter (module doc). Shared by the
#: detector's incident writes and the remediation steps (``graph/remediation.py``).
APPEND_EVENT = """
MERGE (c:IncidentEventSequence {name: 'incidents'})
SET c._lock = true
REMOVE c._lock
WITH c
SET c.seq = coalesce(c.seq, 0) + 1
CREATE (e:IncidentEvent {seq: c.seq, incident: $incident, kind: $kind, at: timestamp(), payload: $payload})
RETURN e.seq AS seq
"""


class LeaseLost(Exception):
    """The detector lease is held by another replica (or expired): do not write. Retryable."""

    def is_retryable(self) -> bool:
        return True


@dataclass(frozen=True)
class IncidentEvent:
    seq: int
    incident_id: str
    kind: str
    at_ms: int
    #: the serialized ``rootgraph.v1.IncidentEvent`` (seq left 0; set from ``seq``)
    payload: bytes


@dataclass(frozen=True)
class IncidentState:
    """What the detector needs to continue an open incident after a takeover."""

    id: str
    opened_s: int
    start_s: int
    #: (entity, signal) of its symptoms
    symptoms: tuple[tuple[str, str], ...]
    clear_buckets: int
    top_cause: str


class DetectorLease:
    """The lease that makes one detector act at a time (module doc)."""

    def __init__(self, repo: "IncidentEventLog", holder: str, ttl_s: float, name: str = LEASE_NAME) -> None:
        self._repo = repo
        self.holder = holder
        self.name = name
        self.ttl_ms = int(ttl_s * 1000)

    def acquire(self) -> tuple[bool, int | None]:
        """Take or renew the lease: (held by us now, stored position)."""
        def work(tx: ManagedTransaction) -> tuple[bool, int | None]:
            tx.run(_LOCK_LEASE, name=self.name).consume()
            rec = tx.run(_TAKE, name=self.name, holder=self.holder, ttl_ms=self.ttl_ms).single()
            return bool(rec["free"]), rec["position"]
        return self._repo._write(work)  # noqa: SLF001 - one repository, two roles

    def release(self) -> None:
        """Give the lease up now (a clean stop): another replica takes it at once."""
        self._repo._write(lambda tx: tx.run(  # noqa: SLF001
            "MATCH (l:DetectorLease {name: $name}) WHERE l.holder = $holder SET l.expires = 0",
            name=self.name, holder=self.holder).consume())

    def holder_now(self) -> str | None:
        """Who holds the unexpired lease (None: nobody)."""
        rec = self._repo._read(lambda tx: tx.run(  # noqa: SLF001
            "MATCH (l:DetectorLease {name: $name}) WHERE l.expires >= timestamp() RETURN l.holder AS h",
            name=self.name).single())
        return None if rec is None else rec["h"]


class IncidentEventLog:
    """Detected incidents, their events and the lease, over one Neo4j database."""

    def __init__(self, driver, database: str = "neo4j") -> None:  # noqa: ANN001
        from rootgraph.graph.repository import Repository

        self._repo = Repository(driver, database)
        self._write = self._repo._write  # noqa: SLF001
        self._read = self._repo._read  # noqa: SLF001

    def lease(self, holder: str, ttl_s: float) -> DetectorLease:
        return DetectorLease(self, holder, ttl_s)

    def record(self, lease: DetectorLease, rec: IncidentRecord, *, state: str, opened_s: int, start_s: int,
               signals: tuple[str, ...], clear_buckets: int, resolved_s: int | None,
               position: int, event: tuple[str, bytes] | None) -> int | None:
        """Write the incident's current state (and ``event`` = (kind, payload), if any) in
        one transaction fenced by ``lease``; return the event's seq. Raises
        :class:`LeaseLost` when the lease is not ours any more (nothing written)."""
        top = rec.suspects[0] if rec.suspects else ("", 0, 0.0)
        props = dict(
            created=rec.created_ms, start=rec.start_s, end=rec.end_s, baseline_start=rec.baseline_start_s,
            baseline_end=rec.baseline_end_s, model_version=rec.model_version, symptoms=list(rec.symptoms),
            symptom_signals=list(signals), no_clear_cause=rec.no_clear_cause, top_cause=top[0],
            top_probability=top[2], response_json=rec.response_json, inputs_gz=rec.inputs_gz,
            source="detector", state=state, opened=opened_s, detected_start=start_s,
            clear_buckets=clear_buckets, resolved=resolved_s,
        )
        edges = cause_edge_params(rec)

        def work(tx: ManagedTransaction) -> int | None:
            if not tx.run(_FENCE, name=lease.name, holder=lease.holder).single()["held"]:
                raise LeaseLost(f"detector lease {lease.name!r} is not held by {lease.holder!r}")
            tx.run(_UPSERT, id=rec.id, props=props, **edges).consume()
            tx.run("MATCH (l:DetectorLease {name: $name}) SET l.position = $p", name=lease.name, p=position).consume()
            if event is None:
                return None
            return tx.run(APPEND_EVENT, incident=rec.id, kind=event[0], payload=event[1]).single()["seq"]

        return self._write(work)

    def advance(self, lease: DetectorLease, position: int) -> None:
        """Store the last judged bucket and renew the lease (fenced): a replica taking
        over continues from it."""
        def work(tx: ManagedTransaction) -> None:
            # Renews too: a long catch-up (a replay) must not outlive its own lease.
            rec = tx.run("MATCH (l:DetectorLease {name: $name}) WHERE l.holder = $holder "
                         "AND l.expires >= timestamp() SET l.position = $p, l.expires = timestamp() + $ttl "
                         "RETURN count(l) AS n",
                         name=lease.name, holder=lease.holder, p=position, ttl=lease.ttl_ms).single()
            if not rec["n"]:
                raise LeaseLost(f"detector lease {lease.name!r} is not held by {lease.holder!r}")
        self._write(work)

    def open_incidents(self) -> list[IncidentState]:
        rows = self._read(lambda tx: tx.run(
            "MATCH (i:Incident {source: 'detector', state: 'open'}) "
            "RETURN i.id, i.opened, i.detected_start, i.symptoms, i.symptom_signals, i.clear_buckets, "
            "i.top_cause ORDER BY i.opened, i.id").values())
        return [IncidentState(a, b, c, tuple(zip(d, e)), f or 0, g or "") for a, b, c, d, e, f, g in rows]

    def events_after(self, seq: int, limit: int = 500) -> list[IncidentEvent]:
        rows = self._read(lambda tx: tx.run(
            "MATCH (e:IncidentEvent) WHERE e.seq > $seq RETURN e.seq, e.incident, e.kind, e.at, e.payload "
            "ORDER BY e.seq LIMIT $n", seq=seq, n=limit).values())
        return [IncidentEvent(a, b, c, d, bytes(p)) for a, b, c, d, p in rows]

    def last_seq(self) -> int:
        rec = self._read(lambda tx: tx.run(
            "MATCH (c:IncidentEventSequence {name: 'incidents'}) RETURN c.seq AS s").single())
        return int(rec["s"]) if rec is not None and rec["s"] is not None else 0

    def list_incidents(self, state: str = "", since_ms: int = 0, until_ms: int | None = None,
                       limit: int = 100) -> list[tuple[str, str, int, int | None, str, float, tuple[str, ...], str]]:
        """(id, state, opened/created s, resolved s, top cause, its probability, symptoms,
        response JSON), newest first. ``state``: 'open', 'resolved', 'answered' (a RankCauses
        answer) or '' for all; times (ms) filter on when it was opened -- a detected incident's
        opening bucket (the data's clock), a RankCauses answer's creation."""
        rows = self._read(lambda tx: tx.run(
            "MATCH (i:Incident) WITH i, coalesce(i.state, 'answered') AS st, "
            "     coalesce(i.opened * 1000, i.created) AS at "
            "WHERE ($state = '' OR st = $state) AND at >= $since AND ($until IS NULL OR at < $until) "
            "RETURN i.id, st, at / 1000, i.resolved, i.top_cause, i.top_probability, "
            "i.symptoms, i.response_json ORDER BY at DESC, i.id LIMIT $n",
            state=state, since=since_ms, until=until_ms, n=limit).values())
        return [(a, b, int(c), e if e is None else int(e), f or "", float(g or 0.0), tuple(h or ()), j or "")
                for a, b, c, e, f, g, h, j in rows]
