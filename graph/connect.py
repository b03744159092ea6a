"""Open a Neo4j driver from settings (:class:`~rootgraph.graph.config.Neo4jTarget`): an existing server, or the local one.

With ``NEO4J_URI`` set, rootgraph uses that server with ``NEO4J_USER`` and
``NEO4J_PASSWORD``/``NEO4J_PASSWORD_FILE``. Without it, the project provisions and
starts its own local Neo4j (``graph.local``) and reads that server's generated
password from its 0600 file.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

from neo4j import Driver, GraphDatabase

from rootgraph.config import ConfigError
from rootgraph.graph.config import Neo4jTarget
from rootgraph.graph.local import LocalNeo4j

__all__ = ["open_driver", "transaction_retries"]


class _RetryCounter(logging.Filter):
    """Counts the driver's retried transient errors by Neo4j code, and logs each as
    one INFO line instead of its WARNING with the whole lock wait list.

    Why: a ``DeadlockDetected`` between two writers MERGEing the same entity (ingest and
    an incident write) is retried by the driver and then succeeds; as a warning it
    reached every demo user's terminal (via logging's last-resort handler) and looked
    like a failure. A retry that runs out still fails the call (``StoreUnavailable``).
    The count is in ``/metrics`` (``rootgraph_ingest_neo4j_transaction_retries``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if not (isinstance(record.msg, str) and record.msg.startswith("Transaction failed and will be retried")
                and len(record.args or ()) == 2):
            return True
        delay, error = record.args  # type: ignore[misc]
        code = str(getattr(error, "code", "") or type(error).__name__).rsplit(".", 1)[-1]
        with self._lock:
            self.counts[code] += 1
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.msg, record.args = "Neo4j transaction retried in %.1fs after %s", (float(delay), code)
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())


_RETRIES = _RetryCounter()
logging.getLogger("neo4j.session").addFilter(_RETRIES)


def transaction_retries() -> int:
    """Transactions the driver retried after a transient error, in this process."""
    return _RETRIES.total()


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
