"""``rootgraph remediate``: the reference remediation client (issue 17).

detect → correlate → recommend → a human approves in chat → the client executes → the
outcome teaches the model. rootgraph itself never executes anything; this client does,
as any rollback bot or ChatOps flow would, through the public API only: it imports
:mod:`rootgraph.client`, :mod:`rootgraph.results`, :mod:`rootgraph.config` (settings
types) and the generated stubs -- never ``server/``, ``graph/`` or ``inference/``
(``tests/test_remediate_light.py`` guards that), so it runs next to kubectl on a
machine without the inference stack.

One file per role: ``config`` (settings), ``proposal`` (what to propose), ``chat``
(Slack / Teams formats), ``callback`` (Slack's signed interactivity requests),
``steps`` (recording steps and decisions on the server), ``executor`` (the command),
``outcome`` (what it achieved, and the feedback), ``policy`` (auto-execution, off by
default), ``daemon`` (the loop that wires them).
"""

from rootgraph.remediate.config import RemediateSettings, load_remediate_settings

__all__ = ["RemediateSettings", "load_remediate_settings"]
