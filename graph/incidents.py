"""Incidents (every RankCauses answer) and feedback, stored for audit and the Browser.

An incident is written once and never overwritten (``CREATE`` under a uniqueness
constraint): ``(:Incident)-[:SUSPECTS {rank, probability}]->(:Entity)`` for the
ranked causes, ``(:Incident)-[:AFFECTS {probability}]->(:Entity)`` for the symptoms, one
``(:Incident)-[:BLAMES {probability}]->(:Entity)`` to the top suspect unless the answer
is "no clear cause" (the Browser style draws it bold, since Browser styles cannot
scale an edge by a property),
the full answer as JSON and the inputs (compressed JSON, :func:`pack_inputs`) so an
answer can be explained and replayed later. Feedback is ``(:Feedback)-[:ABOUT]->(:Incident)`` and
``(:Feedback)-[:CONFIRMS]->(:Entity)``, idempotent on the caller's feedback id.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field

import zstandard
from neo4j import ManagedTransaction

from rootgraph.graph.errors import NotFound
from rootgraph.graph.repository import Repository

__all__ = ["IncidentRecord", "FeedbackRecord", "IncidentStore", "pack_inputs", "unpack_inputs"]

_GZIP_MAGIC = b"\x1f\x8b"
#: zstd level 3 (its default). Why not gzip, as records were before: a 500-service
#: window is ~13 MB of JSON, written with every RankCauses answer; gzip -1 took 76 ms
#: and 1.7 MB, zstd -3 26 ms and 0.9 MB (measured on bench/scaleout.py's steady fleet),
#: a third of that answer's time in a server busy with ingest.
_ZSTD_LEVEL = 3


def pack_inputs(doc_json: bytes) -> bytes:
    """An incident's inputs (``window_json``) as stored in ``inputs_gz``."""
    return zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(doc_json)


def unpack_inputs(blob: bytes) -> bytes:
    """The JSON of a stored ``inputs_gz``: zstd, or gzip for records written before
    2026-12 (the property keeps its old name so old and new records sit side by side)."""
    if blob[:2] == _GZIP_MAGIC:
        return gzip.decompress(blob)
    return zstandard.ZstdDecompressor().decompress(blob)


@dataclass(frozen=True)
class IncidentRecord:
    id: str
    created_ms: int
    start_s: int
    end_s: int
    baseline_start_s: int
    baseline_end_s: int
    model_version: str
    symptoms: tuple[str, ...]
    no_clear_cause: bool
    #: (entity, rank, probability) of the ranked causes
    suspects: tuple[tuple[str, int, float], ...]
    #: (entity, probability) of the affected (symptomatic) entities
    affects: tuple[tuple[str, float], ...]
    response_json: str
    #: the inputs, compressed (:func:`pack_inputs`; the name is from when it was gzip)
    inputs_gz: bytes = b""
    feedback: tuple["FeedbackRecord", ...] = field(default=())


@dataclass(frozen=True)
class FeedbackRecord:
    id: str
    incident_id: str
    confirmed_cause: str
    none_of_these: bool
    action: str
    outcome: str
    confirmed_by: str
    note: str
    at_ms: int


#: The ranked causes of an incident ``i`` as edges (``$suspects``, ``$blames``,
#: ``$affects``): shared by the audit record here and by detected incidents
#: (``graph/incident_events.py``), which replace theirs as they are re-ranked.
CAUSE_EDGES = """
CALL (i) {
  UNWIND $suspects AS s
  MATCH (e:Entity {id: s.entity})
  CREATE (i)-[:SUSPECTS {rank: s.rank, probability: s.p, label: s.label}]->(e)
}
CALL (i) {
  UNWIND $blames AS b
  MATCH (e:Entity {id: b.entity})
  CREATE (i)-[:BLAMES {probability: b.p, label: b.label}]->(e)
}
CALL (i) {
  UNWIND $affects AS a
  MATCH (e:Entity {id: a.entity})
  CREATE (i)-[:AFFECTS {probability: a.p}]->(e)
}
"""


def cause_edge_params(rec: "IncidentRecord") -> dict[str, list[dict[str, object]]]:
    """``$suspects``/``$blames``/``$affects`` of :data:`CAUSE_EDGES` for ``rec``. ``label``
    ("#1 97.3%") is what the Browser style shows on the edge; the top suspect, when the
    answer blames one, gets a bold BLAMES edge."""
    return {
        "suspects": [{"entity": e, "rank": r, "p": p, "label": f"#{r} {100 * p:.1f}%"} for e, r, p in rec.suspects],
        "affects": [{"entity": e, "p": p} for e, p in rec.affects],
        "blames": [] if rec.no_clear_cause or not rec.suspects
        else [{"entity": rec.suspects[0][0], "p": rec.suspects[0][2],
               "label": f"blames {100 * rec.suspects[0][2]:.1f}%"}],
    }


_CREATE_INCIDENT = """
CREATE (i:Incident {id: $id, created: $created, start: $start, end: $end,
                    baseline_start: $bstart, baseline_end: $bend, model_version: $model,
                    symptoms: $symptoms, no_clear_cause: $no_clear,
                    top_cause: $top, top_probability: $top_p,
                    response_json: $response, inputs_gz: $inputs})
WITH i
""" + CAUSE_EDGES + """RETURN i.id
"""

_MERGE_FEEDBACK = """
MATCH (i:Incident {id: $incident})
MERGE (f:Feedback {id: $id})
  ON CREATE SET f.incident = $incident, f.confirmed_cause = $cause, f.none_of_these = $none,
                f.action = $action, f.outcome = $outcome, f.confirmed_by = $by,
                f.note = $note, f.at = $at, f.created = true
  ON MATCH SET f.created = false
MERGE (f)-[:ABOUT]->(i)
WITH f, f.created AS created
REMOVE f.created
WITH f, created
OPTIONAL MATCH (e:Entity {id: $cause})
FOREACH (_ IN CASE WHEN e IS NULL THEN [] ELSE [1] END | MERGE (f)-[:CONFIRMS]->(e))
RETURN created, f.incident AS incident
"""


class IncidentStore(Repository):
    """Write-once incident records and idempotent feedback."""

    def save_incident(self, rec: IncidentRecord) -> None:
        top = rec.suspects[0] if rec.suspects else ("", 0, 0.0)
        params = dict(
            id=rec.id, created=rec.created_ms, start=rec.start_s, end=rec.end_s,
            bstart=rec.baseline_start_s, bend=rec.baseline_end_s, model=rec.model_version,
            symptoms=list(rec.symptoms), no_clear=rec.no_clear_cause, top=top[0], top_p=top[2],
            response=rec.response_json, inputs=rec.inputs_gz, **cause_edge_params(rec),
        )
        self._write(lambda tx: tx.run(_CREATE_INCIDENT, **params).consume())

    def get_incident(self, incident_id: str) -> IncidentRecord:
        def work(tx: ManagedTransaction):  # noqa: ANN202
            rec = tx.run(
                "MATCH (i:Incident {id: $id}) "
                "OPTIONAL MATCH (i)-[s:SUSPECTS]->(e:Entity) "
                "WITH i, s, e ORDER BY s.rank "
                "RETURN i, collect([e.id, s.rank, s.probability]) AS suspects, "
                "       [(i)-[a:AFFECTS]->(x:Entity) | [x.id, a.probability]] AS affects",
                id=incident_id,
            ).single()
            fb = tx.run(
                "MATCH (f:Feedback)-[:ABOUT]->(:Incident {id: $id}) RETURN f ORDER BY f.at", id=incident_id
            ).values()
            return rec, fb

        rec, fb = self._read(work)
        if rec is None:
            raise NotFound(f"incident_id: no incident {incident_id!r}")
        i = rec["i"]
        return IncidentRecord(
            id=i["id"], created_ms=i["created"], start_s=i["start"], end_s=i["end"],
            baseline_start_s=i["baseline_start"], baseline_end_s=i["baseline_end"],
            model_version=i["model_version"], symptoms=tuple(i["symptoms"]),
            no_clear_cause=i["no_clear_cause"],
            suspects=tuple((e, r, p) for e, r, p in rec["suspects"] if e is not None),
            affects=tuple((e, p) for e, p in rec["affects"]),
            response_json=i["response_json"], inputs_gz=bytes(i["inputs_gz"] or b""),
            feedback=tuple(_feedback(f[0]) for f in fb),
        )

    def submit_feedback(self, fb: FeedbackRecord) -> bool:
        """Store feedback; False when its id was stored before. NotFound for an unknown incident."""
        def work(tx: ManagedTransaction) -> bool | None:
            rec = tx.run(_MERGE_FEEDBACK, id=fb.id, incident=fb.incident_id, cause=fb.confirmed_cause,
                         none=fb.none_of_these, action=fb.action, outcome=fb.outcome,
                         by=fb.confirmed_by, note=fb.note, at=fb.at_ms).single()
            return None if rec is None else bool(rec["created"])

        created = self._write(work)
        if created is None:
            raise NotFound(f"incident_id: no incident {fb.incident_id!r}")
        return created

    def labelled_incidents(self, limit: int = 10_000) -> list[tuple[str, str, bytes, FeedbackRecord]]:
        """(incident id, model version, inputs_gz, latest feedback) of incidents with
        feedback, oldest first: the training and evaluation data of ``inference.learning``."""
        rows = self._read(lambda tx: tx.run(
            "MATCH (f:Feedback)-[:ABOUT]->(i:Incident) WITH i, f ORDER BY f.at DESC "
            "WITH i, collect(f)[0] AS f ORDER BY i.created, i.id LIMIT $n "
            "RETURN i.id, i.model_version, i.inputs_gz, f", n=limit).values())
        return [(i, v, bytes(gz or b""), _feedback(f)) for i, v, gz, f in rows]

    def recent_incidents(self, limit: int = 20) -> list[tuple[str, int, str, float]]:
        rows = self._read(lambda tx: tx.run(
            "MATCH (i:Incident) RETURN i.id, i.created, i.top_cause, i.top_probability "
            "ORDER BY i.created DESC LIMIT $n", n=limit).values())
        return [(a, b, c, d) for a, b, c, d in rows]


def _feedback(f) -> FeedbackRecord:  # noqa: ANN001 - a neo4j Node
    return FeedbackRecord(
        id=f["id"], incident_id=f["incident"], confirmed_cause=f["confirmed_cause"] or "",
        none_of_these=bool(f["none_of_these"]), action=f["action"] or "", outcome=f["outcome"] or "",
        confirmed_by=f["confirmed_by"] or "", note=f["note"] or "", at_ms=f["at"],
    )
