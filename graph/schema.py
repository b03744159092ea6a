"""Constraints and indexes, created idempotently at start-up.

Every statement uses ``IF NOT EXISTS`` so start-up can run them on every boot and
several replicas can race without failing. Composite uniqueness constraints on the
bucket nodes make ``MERGE`` on ``(entity, t)`` both safe under concurrency and fast.
"""

from __future__ import annotations

from neo4j import Driver

__all__ = ["SCHEMA_STATEMENTS", "ensure_schema"]

SCHEMA_STATEMENTS: tuple[str, ...] = (
    "CREATE CONSTRAINT entity_id IF NOT EXISTS FOR (e:Entity) REQUIRE e.id IS UNIQUE",
    "CREATE CONSTRAINT deployment_id IF NOT EXISTS FOR (d:Deployment) REQUIRE d.id IS UNIQUE",
    "CREATE CONSTRAINT incident_id IF NOT EXISTS FOR (i:Incident) REQUIRE i.id IS UNIQUE",
    "CREATE CONSTRAINT feedback_id IF NOT EXISTS FOR (f:Feedback) REQUIRE f.id IS UNIQUE",
    "CREATE CONSTRAINT remediation_step_id IF NOT EXISTS FOR (s:RemediationStep) REQUIRE s.id IS UNIQUE",
    "CREATE INDEX remediation_step_proposal IF NOT EXISTS FOR (s:RemediationStep) ON (s.proposal)",
    "CREATE CONSTRAINT batch_id IF NOT EXISTS FOR (b:IngestBatch) REQUIRE b.id IS UNIQUE",
    "CREATE CONSTRAINT model_version IF NOT EXISTS FOR (m:ModelVersion) REQUIRE m.version IS UNIQUE",
    "CREATE CONSTRAINT service_bucket IF NOT EXISTS "
    "FOR (b:ServiceBucket) REQUIRE (b.entity, b.t) IS UNIQUE",
    "CREATE CONSTRAINT edge_bucket IF NOT EXISTS "
    "FOR (b:EdgeBucket) REQUIRE (b.src, b.dst, b.t) IS UNIQUE",
    "CREATE CONSTRAINT log_bucket IF NOT EXISTS FOR (b:LogBucket) REQUIRE (b.entity, b.t) IS UNIQUE",
    "CREATE CONSTRAINT metric_bucket IF NOT EXISTS "
    "FOR (b:MetricBucket) REQUIRE (b.entity, b.t, b.metric) IS UNIQUE",
    "CREATE CONSTRAINT log_template IF NOT EXISTS FOR (x:LogTemplate) REQUIRE (x.entity, x.id) IS UNIQUE",
    "CREATE CONSTRAINT log_miner_state IF NOT EXISTS FOR (s:LogMinerState) REQUIRE s.id IS UNIQUE",
    "CREATE INDEX log_bucket_t IF NOT EXISTS FOR (b:LogBucket) ON (b.t)",
    "CREATE INDEX metric_bucket_t IF NOT EXISTS FOR (b:MetricBucket) ON (b.t)",
    "CREATE INDEX log_template_last IF NOT EXISTS FOR (x:LogTemplate) ON (x.last)",
    "CREATE CONSTRAINT bucket_stamp IF NOT EXISTS FOR (s:BucketStamp) REQUIRE s.t IS UNIQUE",
    "CREATE CONSTRAINT incident_event_seq IF NOT EXISTS FOR (e:IncidentEvent) REQUIRE e.seq IS UNIQUE",
    "CREATE CONSTRAINT detector_lease IF NOT EXISTS FOR (l:DetectorLease) REQUIRE l.name IS UNIQUE",
    "CREATE CONSTRAINT alert_fingerprint IF NOT EXISTS FOR (a:Alert) REQUIRE a.fingerprint IS UNIQUE",
    "CREATE INDEX incident_state IF NOT EXISTS FOR (i:Incident) ON (i.state)",
    "CREATE INDEX alert_status IF NOT EXISTS FOR (a:Alert) ON (a.status)",
    "CREATE INDEX service_bucket_t IF NOT EXISTS FOR (b:ServiceBucket) ON (b.t)",
    "CREATE INDEX edge_bucket_t IF NOT EXISTS FOR (b:EdgeBucket) ON (b.t)",
    "CREATE INDEX deployment_at IF NOT EXISTS FOR (d:Deployment) ON (d.at)",
    "CREATE INDEX deployment_service_version IF NOT EXISTS FOR (d:Deployment) ON (d.service, d.version)",
    "CREATE INDEX batch_at IF NOT EXISTS FOR (b:IngestBatch) ON (b.at)",
    "CREATE INDEX incident_created IF NOT EXISTS FOR (i:Incident) ON (i.created)",
    "CREATE INDEX entity_kind IF NOT EXISTS FOR (e:Entity) ON (e.kind)",
)


def ensure_schema(driver: Driver, database: str) -> None:
    """Create every constraint and index that does not exist yet, then wait for them."""
    with driver.session(database=database) as session:
        for statement in SCHEMA_STATEMENTS:
            session.run(statement).consume()
        session.run("CALL db.awaitIndexes(60)").consume()
