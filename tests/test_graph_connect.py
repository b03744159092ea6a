"""The driver's transient-error retries: counted, and one INFO line, not a WARNING.

Pure logic: the filter on the driver's ``neo4j.session`` logger, fed the record the
driver's retry loop logs (``neo4j/_sync/work/session.py``: ``log.warning("Transaction
failed and will be retried in %ss (%s)", delay, error)``).
"""

from __future__ import annotations

import logging

import pytest

from rootgraph.graph.connect import transaction_retries


class _Deadlock(Exception):
    code = "Neo.TransientError.Transaction.DeadlockDetected"


def test_a_retried_deadlock_is_counted_and_logged_once_at_info(caplog: pytest.LogCaptureFixture) -> None:
    before = transaction_retries()
    log = logging.getLogger("neo4j.session")
    with caplog.at_level(logging.INFO, logger="neo4j.session"):
        log.warning("Transaction failed and will be retried in %ss (%s)", 0.93, _Deadlock("wait list: ..."))
        log.warning("something else the driver says")
    assert transaction_retries() == before + 1
    retried, other = caplog.records
    assert (retried.levelname, retried.getMessage()) == (
        "INFO", "Neo4j transaction retried in 0.9s after DeadlockDetected")
    assert (other.levelname, other.getMessage()) == ("WARNING", "something else the driver says")


def test_at_warning_level_the_retry_is_not_printed(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="neo4j.session"):
        logging.getLogger("neo4j.session").warning(
            "Transaction failed and will be retried in %ss (%s)", 1.2, _Deadlock())
    assert caplog.records == []
