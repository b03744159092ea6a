"""Factories for the stages the CLI and the demo assemble: the one place they are built.

``server/`` is the only place that wires stages together (DESIGN.md); ``App`` wires the
running service, and these functions build the pieces the command line needs around it
-- the connected graph roles (:class:`Graph`) for the Neo4j-direct commands (``graph``,
``ingest``, ``model``), a file ``Ingestor`` over its writer, the model/incident stores, and an ``App`` on
ephemeral loopback ports for the demo -- so ``rootgraph/cli.py`` and
``rootgraph/demo.py`` only parse, call and render. Imports are deferred to the
functions: the CLI's client commands must not pay for the server's.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from rootgraph.config import ConfigError, Settings

if TYPE_CHECKING:
    from neo4j import Driver

    from rootgraph.graph.admin import GraphAdmin
    from rootgraph.graph.incidents import IncidentStore
    from rootgraph.graph.model_versions import ModelStore
    from rootgraph.graph.reader import WindowReader
    from rootgraph.graph.writer import GraphWriter
    from rootgraph.ingest.config import IngestConfig
    from rootgraph.ingest.pipeline import Ingestor
    from rootgraph.server.app import App, TlsFiles

__all__ = ["Graph", "build_app", "file_ingestor", "ingest_config", "model_stores", "open_graph", "tls_files"]

Log = Callable[[str], None]


@dataclass(frozen=True)
class Graph:
    """One driver and the three roles over it: schema/maintenance, reads, writes."""

    driver: "Driver"
    admin: "GraphAdmin"
    reader: "WindowReader"
    writer: "GraphWriter"


@contextmanager
def open_graph(settings: Settings, *, log: Log = print) -> Iterator[Graph]:
    """A driver (starting the local Neo4j when it is the target) and the graph roles over
    it, with the schema ensured; the driver is closed on exit."""
    from rootgraph.graph.admin import GraphAdmin
    from rootgraph.graph.connect import open_driver
    from rootgraph.graph.reader import WindowReader
    from rootgraph.graph.writer import GraphWriter

    driver = open_driver(settings, log=log)
    try:
        db = settings.neo4j_database
        admin = GraphAdmin(driver, db)
        admin.ensure_schema()
        yield Graph(driver, admin, WindowReader(driver, db), GraphWriter(driver, db))
    finally:
        driver.close()


def ingest_config(settings: Settings) -> "IngestConfig":
    """The ingest pipeline's configuration from the settings: one place for the server,
    its ingest workers (server/workers.py) and ``rootgraph ingest``."""
    from rootgraph.ingest.config import IngestConfig

    return IngestConfig(bucket_seconds=settings.bucket_seconds, pending_ttl_s=settings.pairing_wait_seconds,
                        connector_service_stats=settings.connector_service_stats)


def file_ingestor(settings: Settings, writer: "GraphWriter") -> "Ingestor":
    """The ingest pipeline over ``writer`` with the configured bucket width (``rootgraph ingest``)."""
    from rootgraph.ingest.pipeline import Ingestor

    return Ingestor(writer, ingest_config(settings))


def model_stores(settings: Settings, driver: "Driver") -> tuple["ModelStore", "IncidentStore"]:
    """The model versions and the incident audit trail (``rootgraph model``)."""
    from rootgraph.graph.incidents import IncidentStore
    from rootgraph.graph.model_versions import ModelStore

    return ModelStore(driver, settings.neo4j_database), IncidentStore(driver, settings.neo4j_database)


def tls_files(cert: str | None, key: str | None, client_ca: str | None) -> "TlsFiles | None":
    """``--tls-cert/--tls-key/--tls-client-ca`` as ``TlsFiles``; None for plaintext."""
    from rootgraph.server.app import TlsFiles

    if not (cert or key):
        if client_ca:
            raise ConfigError("tls_client_ca: --tls-client-ca needs --tls-cert and --tls-key")
        return None
    if not (cert and key):
        raise ConfigError("tls_cert: --tls-cert and --tls-key go together")
    return TlsFiles(Path(cert), Path(key), Path(client_ca) if client_ca else None)


def build_app(settings: Settings, driver: "Driver", *, tls: "TlsFiles | None" = None, role: str = "all",
              ephemeral_ports: bool = False) -> "App":
    """The service (not started). ``ephemeral_ports``: every listener on a free loopback
    port (the demo runs beside whatever already serves 50051/4317/4318)."""
    from rootgraph.server.app import App

    if ephemeral_ports:
        settings = replace(settings, api_address="127.0.0.1:0", otlp_grpc_address="127.0.0.1:0",
                           otlp_http_address="127.0.0.1:0")
    return App(settings, driver, tls=tls, role=role)
