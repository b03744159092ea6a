"""Base of the repositories: short-lived sessions, managed transactions, error mapping.

Every public method of a repository goes through :meth:`_read` / :meth:`_write`, so
driver errors become :class:`~rootgraph.graph.errors.StoreUnavailable` in exactly one
place and every transaction carries a timeout (a call's deadline, when it has one).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

from neo4j import Driver, unit_of_work
from neo4j import exceptions as neo4j_exc

from rootgraph.graph.errors import StoreUnavailable

__all__ = ["Repository"]

T = TypeVar("T")


class Repository:
    """Shared plumbing for the graph's repositories."""

    def __init__(self, driver: Driver, database: str = "neo4j", *, timeout_s: float = 30.0) -> None:
        self._driver = driver
        self._db = database
        self._timeout_s = timeout_s

    # -- plumbing -----------------------------------------------------------------

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except (neo4j_exc.ServiceUnavailable, neo4j_exc.SessionExpired,
                neo4j_exc.TransientError) as exc:
            raise StoreUnavailable(f"Neo4j unavailable: {type(exc).__name__}") from None
        except neo4j_exc.ClientError as exc:
            if "TransactionTimedOut" in (exc.code or "") or "Terminated" in (exc.code or ""):
                raise TimeoutError("Neo4j transaction exceeded its deadline") from None
            raise
        except OSError as exc:
            raise StoreUnavailable(f"Neo4j unavailable: {exc.strerror or exc}") from None

    def _write(self, fn: Callable[..., T], *args: Any, timeout_s: float | None = None) -> T:
        work = unit_of_work(timeout=timeout_s or self._timeout_s)(fn)
        with self._translate(), self._driver.session(database=self._db) as session:
            return session.execute_write(work, *args)

    def _read(self, fn: Callable[..., T], *args: Any, timeout_s: float | None = None) -> T:
        work = unit_of_work(timeout=timeout_s or self._timeout_s)(fn)
        with self._translate(), self._driver.session(database=self._db) as session:
            return session.execute_read(work, *args)

