"""Shared fixtures: a REAL Neo4j for everything that claims to store or query the graph.

The session fixture starts (or reuses) the project's own local Neo4j in a separate
``test`` instance on its own ports, so a developer's demo data is never touched, and
stops it at the end if this session started it. Set ``NEO4J_URI`` (+ credentials) to
run against an existing server instead. Each test that asks for ``store`` (the
``GraphAdmin``), ``writer`` or ``reader`` gets an empty database with the schema in place.
"""

from __future__ import annotations

import os
from typing import Iterator

import pytest

from rootgraph.config import Settings, load_settings
from rootgraph.graph.connect import open_driver
from rootgraph.graph.local import LocalNeo4j
from rootgraph.graph.admin import GraphAdmin
from rootgraph.graph.reader import WindowReader
from rootgraph.graph.writer import GraphWriter


@pytest.fixture(scope="session")
def neo4j_settings() -> Settings:
    return load_settings(
        # Separate instances let several test runs share a machine without clearing
        # each other's data (CI uses the defaults).
        local_instance=os.environ.get("ROOTGRAPH_TEST_INSTANCE", "test"),
        local_bolt_port=int(os.environ.get("ROOTGRAPH_TEST_BOLT_PORT", "17687")),
        local_http_port=int(os.environ.get("ROOTGRAPH_TEST_HTTP_PORT", "17474")),
        local_heap="768m",
        local_pagecache="256m",
        # A promote from another process must show within this bound (test_learning_versions).
        model_check_seconds=0.2,
        # Tests that ingest faults must not get incidents they did not ask for; the
        # detector's own tests turn it on (tests/test_detector_server.py).
        detector_interval_seconds=0,
        # One ingest process, whatever the default becomes: the sharded path has its own
        # tests (test_ingest_workers.py) that ask for workers explicitly.
        # ROOTGRAPH_TEST_INGEST_WORKERS=2 runs the in-process servers sharded instead (a
        # soak of that path; tests counting one IngestBatch per request then differ).
        ingest_workers=int(os.environ.get("ROOTGRAPH_TEST_INGEST_WORKERS", "1")),
    )


@pytest.fixture(scope="session")
def neo4j_driver(neo4j_settings: Settings) -> Iterator[object]:
    local = LocalNeo4j(neo4j_settings)
    started_here = neo4j_settings.uses_local_neo4j and not local.status().running
    driver = open_driver(neo4j_settings, log=lambda msg: None)
    GraphAdmin(driver, neo4j_settings.neo4j_database).ensure_schema()
    yield driver
    driver.close()
    if started_here and not os.environ.get("ROOTGRAPH_TEST_KEEP_NEO4J"):
        local.stop()


@pytest.fixture()
def store(neo4j_driver, neo4j_settings: Settings) -> GraphAdmin:  # noqa: ANN001
    s = GraphAdmin(neo4j_driver, neo4j_settings.neo4j_database)
    s.clear()
    return s


@pytest.fixture()
def writer(store: GraphAdmin) -> GraphWriter:
    return GraphWriter(store._driver, store._db)  # noqa: SLF001


@pytest.fixture()
def reader(store: GraphAdmin) -> WindowReader:
    return WindowReader(store._driver, store._db)  # noqa: SLF001


@pytest.fixture()
def app(neo4j_driver, neo4j_settings: Settings, store: GraphAdmin):  # noqa: ANN001,ANN201
    """A real rootgraph server on loopback (ephemeral ports) over the real test Neo4j."""
    from dataclasses import replace

    from rootgraph.server.app import App

    settings = replace(neo4j_settings, api_address="127.0.0.1:0", otlp_grpc_address="127.0.0.1:0",
                       otlp_http_address="127.0.0.1:0")
    server = App(settings, neo4j_driver).start()
    yield server
    server.stop(grace_s=1.0)


@pytest.fixture(scope="session")
def faults_neo4j() -> Iterator[tuple[LocalNeo4j, Settings]]:
    """A dedicated local Neo4j that fault tests may stop and start (never the shared one).

    Own instance and ports (``ROOTGRAPH_FAULTS_BOLT_PORT``/``_HTTP_PORT``, default
    29687/29474, below the ephemeral range), so stopping it cannot disturb other test runs on the machine.
    """
    settings = load_settings(
        local_instance=os.environ.get("ROOTGRAPH_FAULTS_INSTANCE", "faults"),
        local_bolt_port=int(os.environ.get("ROOTGRAPH_FAULTS_BOLT_PORT", "29687")),
        local_http_port=int(os.environ.get("ROOTGRAPH_FAULTS_HTTP_PORT", "29474")),
        local_heap="512m",
        local_pagecache="128m",
    )
    local = LocalNeo4j(settings)
    local.start(log=lambda msg: None)
    driver = open_driver(settings, start_local=False, log=lambda msg: None)
    GraphAdmin(driver, settings.neo4j_database).clear()
    driver.close()
    yield local, settings
    if not os.environ.get("ROOTGRAPH_TEST_KEEP_NEO4J"):
        local.stop()
