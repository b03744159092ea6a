"""Ingest stage: OTLP traces → one idempotent :class:`~rootgraph.graph.records.GraphDelta` per batch.

A file per role: ``spans`` (decode), ``store`` (transactional memory of unpaired
halves), ``pairing`` (service-graph rules, virtual nodes), ``selftime``, ``aggregate``,
``deployments`` (CI/CD spans), ``sink`` (the interface to the graph store and its
fake), ``config``, ``pipeline`` (the public :class:`Ingestor`) and ``files`` (OTLP files
for the CLI).
"""

from rootgraph.ingest.config import IngestConfig, IngestConfigError
from rootgraph.ingest.pipeline import IngestResult, Ingestor
from rootgraph.ingest.sink import DeltaSink, InMemorySink
from rootgraph.ingest.spans import MalformedPayload

__all__ = [
    "DeltaSink", "InMemorySink", "IngestConfig", "IngestConfigError", "IngestResult", "Ingestor",
    "MalformedPayload",
]
