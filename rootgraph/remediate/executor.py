"""Carrying out an approved action: a command per action kind, never a shell line.

The operator configures one argv template per action kind
(``rollback = ["kubectl", "argo", "rollouts", "undo", "{name}", "-n", "{namespace}"]``).
Each element is formatted on its own with the proposal's fields and the list goes to
``subprocess.run`` as is (no shell), so an entity name with spaces, quotes or ``;`` stays
one argument. Values that would read as an option (a leading ``-``) or carry control
characters are refused: names come from telemetry, and telemetry is input.

Guardrails, in order: the kind must be in the allow-list and have a template; dry run is
the default (the argv is reported, nothing runs); at most ``max_concurrent`` commands run
at once (others wait for a slot); a command running past the timeout is killed. A
command that does not start, exits non-zero or is killed is a *failure* and is reported
as one (exit status, or -1), with the tail of its output.
"""

from __future__ import annotations

import subprocess
import threading
from dataclasses import dataclass
from typing import Mapping

from rootgraph.remediate.proposal import Proposal

__all__ = ["ExecutionError", "ExecutionResult", "Executor"]


class ExecutionError(Exception):
    """The action may not run at all (not allowed, no template, unsafe value); says which."""


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    argv: tuple[str, ...]
    #: The command's exit status; -1: it did not start or was killed (the proto's convention).
    exit_status: int
    output_tail: str
    dry_run: bool
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.dry_run or (self.exit_status == 0 and not self.error)


class Executor:
    """Runs approved proposals through their kind's command template."""

    def __init__(self, templates: Mapping[str, tuple[str, ...]], allowed: tuple[str, ...], *, dry_run: bool = True,
                 max_concurrent: int = 1, timeout_s: float = 300.0, tail_bytes: int = 4096) -> None:
        self._templates, self._allowed = dict(templates), allowed
        self.dry_run, self._timeout, self._tail = dry_run, timeout_s, tail_bytes
        self._slots = threading.BoundedSemaphore(max_concurrent)

    def argv(self, p: Proposal) -> tuple[str, ...]:
        """The command for ``p``; :class:`ExecutionError` when it may not run."""
        if p.action not in self._allowed:
            raise ExecutionError(f"action {p.action!r} is not in allowed_actions {list(self._allowed)}")
        template = self._templates.get(p.action)
        if not template:
            raise ExecutionError(f"executor.{p.action}: no command template")
        values = {"target": p.target, "service": p.service, "name": p.service, "namespace": p.namespace,
                  "to_version": p.to_version, "incident_id": p.incident_id, "action": p.action}
        for field, value in values.items():
            if value.startswith("-") or any(ord(c) < 32 or c == "\x7f" for c in value):
                raise ExecutionError(f"{field}: {value!r} is not a safe command argument")
        try:
            return tuple(arg.format_map(values) for arg in template)
        except (KeyError, ValueError, AttributeError, IndexError) as exc:
            raise ExecutionError(f"executor.{p.action}: cannot fill the template: {exc}") from None

    def run(self, p: Proposal) -> ExecutionResult:
        """Run (or, in dry run, only show) the command of an approved proposal."""
        try:
            argv = self.argv(p)
        except ExecutionError as exc:
            return ExecutionResult((), -1, "", self.dry_run, str(exc))
        if self.dry_run:
            return ExecutionResult(argv, 0, "dry run: " + " ".join(argv), True)
        with self._slots:
            try:
                proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, timeout=self._timeout, check=False)
            except subprocess.TimeoutExpired as exc:
                return ExecutionResult(argv, -1, self._tail_of(exc.stdout or b""), False,
                                       f"killed after {self._timeout:g}s")
            except OSError as exc:
                return ExecutionResult(argv, -1, "", False, f"did not start: {exc.strerror or exc}")
        return ExecutionResult(argv, proc.returncode, self._tail_of(proc.stdout or b""), False,
                               "" if proc.returncode == 0 else f"exited with status {proc.returncode}")

    def _tail_of(self, out: bytes | str) -> str:
        data = out.encode() if isinstance(out, str) else out
        return data[-self._tail:].decode("utf-8", errors="replace")
