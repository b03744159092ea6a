"""Open a Neo4j driver from settings (:class:`~rootgraph.graph.config.Neo4jTarget`): an existing server, or the local one.

With ``NEO4J_URI`` set, rootgraph uses that server with ``NEO4J_USER`` and
``NEO4J_PASSWORD``/``NEO4J_PASSWORD_FILE``. Without it, the project provisions and
starts its own local Neo4j (``graph.local``) and reads that server's generated
password from its 0600 file.
"""

from __future__ import annotations

from neo4j import Driver, GraphDatabase

from rootgraph.config import ConfigError
from rootgraph.graph.config import Neo4jTarget
from rootgraph.graph.local import LocalNeo4j

__all__ = ["open_driver"]


def open_driver(settings: Neo4jTarget, *, start_local: bool = True, log=print) -> Driver:  # noqa: ANN001
    """Return a connected driver; start the local server first when it is the target."""
    if settings.uses_local_neo4j:
        local = LocalNeo4j(settings)
        if start_local:
            local.start(log=log)
        uri, user, password = local.bolt_uri, "neo4j", local.password().value
    else:
        if settings.neo4j_password is None:
            raise ConfigError("neo4j_password: NEO4J_URI is set but NEO4J_PASSWORD(_FILE) is not")
        uri, user, password = settings.neo4j_uri, settings.neo4j_user, settings.neo4j_password.value
    # Fail fast when Neo4j is down: the edge answers UNAVAILABLE and the client retries,
    # rather than every call hanging for the driver's 30 s default retry budget.
    driver = GraphDatabase.driver(
        uri, auth=(user, password), connection_timeout=5.0, connection_acquisition_timeout=10.0,
        max_transaction_retry_time=5.0, liveness_check_timeout=30.0,
        notifications_min_severity="OFF",
    )
    driver.verify_connectivity()
    return driver
