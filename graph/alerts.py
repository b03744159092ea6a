"""Alerts received from Prometheus Alertmanager, stored so any detector replica sees them.

``(:Alert {fingerprint, status, entity, alertname, starts, ends, labels_json, updated})``,
one node per Alertmanager fingerprint: the same alert sent again (Alertmanager repeats
notifications every ``repeat_interval``, and several Alertmanager replicas each send)
updates that node -- idempotent. ``server/alerts.py`` maps labels to the entity; the
detector (``server/detector.py``) reads the alerts active in the bucket it judges.
"""

from __future__ import annotations

from dataclasses import dataclass

from neo4j import ManagedTransaction

from rootgraph.graph.repository import Repository

__all__ = ["AlertRecord", "AlertStore"]


@dataclass(frozen=True)
class AlertRecord:
    fingerprint: str
    #: 'firing' or 'resolved'
    status: str
    entity: str
    alertname: str
    starts_s: int
    #: None while firing with no end known
    ends_s: int | None
    labels_json: str


_UPSERT = """
UNWIND $alerts AS a
OPTIONAL MATCH (old:Alert {fingerprint: a.fingerprint})
WITH a, old IS NOT NULL AND old.status = a.status AND old.entity = a.entity AND old.starts = a.starts
        AS same
MERGE (x:Alert {fingerprint: a.fingerprint})
SET x.status = a.status, x.entity = a.entity, x.alertname = a.alertname, x.starts = a.starts,
    x.ends = a.ends, x.labels_json = a.labels, x.updated = timestamp()
RETURN sum(CASE WHEN same THEN 1 ELSE 0 END) AS duplicates
"""


class AlertStore(Repository):
    def upsert(self, alerts: list[AlertRecord]) -> int:
        """Store ``alerts`` by fingerprint; return how many repeated what was stored."""
        if not alerts:
            return 0
        rows = [{"fingerprint": a.fingerprint, "status": a.status, "entity": a.entity, "alertname": a.alertname,
                 "starts": a.starts_s, "ends": a.ends_s, "labels": a.labels_json} for a in alerts]

        def work(tx: ManagedTransaction) -> int:
            return int(tx.run(_UPSERT, alerts=rows).single()["duplicates"])
        return self._write(work)

    def active(self, start_s: int, end_s: int) -> list[tuple[str, str, str]]:
        """(entity, alertname, fingerprint) of alerts firing at some time in [start_s, end_s)."""
        return [(a, b, c) for a, b, c in self._read(lambda tx: tx.run(
            "MATCH (x:Alert) WHERE x.starts < $end AND (x.ends IS NULL OR x.ends > $start) "
            "AND (x.status = 'firing' OR x.ends IS NOT NULL) "
            "RETURN x.entity, x.alertname, x.fingerprint ORDER BY x.entity, x.fingerprint",
            start=start_s, end=end_s).values())]
