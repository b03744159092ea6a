"""The remediation client's settings: one typed object, every default here, one rule each.

Resolution as in :mod:`rootgraph.config` (STYLE.md #3): an explicit argument → a TOML
file (``rootgraph remediate run --config remediate.toml``) → environment variables for the
secrets and the server address → the defaults below. :meth:`RemediateSettings.validate`
names the setting in every message, so a typo in a file is one line to fix.

The TOML file has the settings as top-level keys and one table, ``[executor]``, mapping
an action kind to its argv template (a list of strings, each formatted on its own)::

    server = "127.0.0.1:50051"
    slack_webhook_url = "https://hooks.slack.com/services/T000/B000/XXXX"
    slack_signing_secret_file = "/etc/rootgraph/slack-signing-secret"   # chmod 600
    allowed_actions = ["rollback"]
    dry_run = false

    [executor]
    rollback = ["kubectl", "argo", "rollouts", "undo", "{name}", "-n", "{namespace}"]

Secrets (the Slack signing secret) never sit in the file itself: only the name of a
file readable by its owner only, or ``ROOTGRAPH_SLACK_SIGNING_SECRET``. They are held in
:class:`rootgraph.config.Secret`, whose ``repr`` never shows the value.
"""

from __future__ import annotations

import math
import os
import string
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from rootgraph.config import ConfigError, Secret, read_secret_file
from rootgraph.results import ActionKind

__all__ = ["EXECUTABLE_ACTIONS", "TEMPLATE_FIELDS", "RemediateSettings", "load_remediate_settings"]

#: Action kinds a command can carry out. ``investigate`` is advice for a person, never a
#: command, so it cannot be allowed or templated.
EXECUTABLE_ACTIONS = tuple(k.value for k in ActionKind if k is not ActionKind.INVESTIGATE)

#: The placeholders an argv template may use (rootgraph/remediate/executor.py fills them).
TEMPLATE_FIELDS = ("target", "service", "name", "namespace", "to_version", "incident_id", "action")


@dataclass(frozen=True)
class RemediateSettings:
    """Everything ``rootgraph remediate`` needs. Build with :func:`load_remediate_settings`."""

    #: The rootgraph API (``ROOTGRAPH_SERVER``); the bearer token comes from ``ROOTGRAPH_TOKEN``.
    server: str = "127.0.0.1:50051"
    api_token: Secret | None = None
    #: Chat: a Slack incoming webhook and/or a Teams incoming webhook; neither = CLI approval only.
    slack_webhook_url: str = ""
    teams_webhook_url: str = ""
    #: Slack's signing secret, from the file named here (mode 0600) or the environment.
    slack_signing_secret_file: str = ""
    slack_signing_secret: Secret | None = None
    #: Where Slack's interactivity requests arrive (loopback unless told otherwise; put a
    #: TLS-terminating proxy in front, Slack only calls https URLs). Port 0: any free port.
    callback_address: str = "127.0.0.1:8787"
    #: Slack refuses requests older than this; so do we (replays outside the window).
    signature_window_s: float = 300.0
    #: How long a proposal waits for a human decision before it expires (nothing runs).
    decision_timeout_s: float = 900.0
    #: Buckets after the execution within which the incident must resolve to count as
    #: resolved, and the server's bucket width that turns them into a wall-clock deadline.
    outcome_buckets: int = 5
    bucket_seconds: int = 60
    #: Only these action kinds are ever proposed or run; each needs an executor template.
    #: Empty (the default): ``rootgraph remediate run`` refuses to start, it would do nothing.
    allowed_actions: tuple[str, ...] = ()
    #: Action kind -> argv template; every element is formatted on its own, never a shell.
    executor: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: Print the command instead of running it (the default: a new install acts on nothing).
    dry_run: bool = True
    #: At most this many commands run at once; more wait for a slot.
    max_concurrent: int = 1
    #: A command still running after this is killed and reported as failed.
    command_timeout_s: float = 300.0
    #: Bytes of a command's output kept in the EXECUTED step (its tail).
    output_tail_bytes: int = 4096
    #: Auto-execution policy file (TOML, rootgraph/remediate/policy.py); empty = every
    #: action waits for a human (the default).
    policy_file: str = ""
    #: The name written on steps the daemon takes itself (the executor, expiry, outcome).
    actor: str = "rootgraph-remediate"

    def validate(self) -> "RemediateSettings":
        """Raise :class:`ConfigError` naming the first invalid setting; return self."""
        for name in ("server", "callback_address"):
            host, _, port = getattr(self, name).rpartition(":")
            if not host or not port.isdigit() or int(port) > 65535:
                raise ConfigError(f"{name}: expected HOST:PORT, got {getattr(self, name)!r}")
        for name in ("slack_webhook_url", "teams_webhook_url"):
            url = getattr(self, name)
            if url and not url.startswith(("https://", "http://")):
                raise ConfigError(f"{name}: expected an http(s) URL, got {url!r}")
        if self.slack_webhook_url and self.slack_signing_secret is None:
            raise ConfigError("slack_signing_secret_file: a Slack webhook needs the app's signing secret "
                              "(a 0600 file, or ROOTGRAPH_SLACK_SIGNING_SECRET) to verify its callbacks")
        for name, low, high in (("signature_window_s", 1, 3600), ("decision_timeout_s", 0.1, 7 * 86400),
                                ("command_timeout_s", 0.1, 86400)):
            value = getattr(self, name)
            if not (math.isfinite(value) and low <= value <= high):
                raise ConfigError(f"{name}: must be in {low}..{high} seconds, got {value}")
        if not 1 <= self.outcome_buckets <= 1440:
            raise ConfigError(f"outcome_buckets: must be in 1..1440, got {self.outcome_buckets}")
        if self.bucket_seconds < 1 or 3600 % self.bucket_seconds:
            raise ConfigError(f"bucket_seconds: must divide an hour evenly, got {self.bucket_seconds}")
        if not 1 <= self.max_concurrent <= 64:
            raise ConfigError(f"max_concurrent: must be in 1..64, got {self.max_concurrent}")
        if not 256 <= self.output_tail_bytes <= 12 * 1024:  # the step's detail holds at most 16 KiB
            raise ConfigError(f"output_tail_bytes: must be in 256..12288, got {self.output_tail_bytes}")
        for kind in self.allowed_actions:
            if kind not in EXECUTABLE_ACTIONS:
                raise ConfigError(f"allowed_actions: {kind!r} is not one of {list(EXECUTABLE_ACTIONS)}")
            if kind not in self.executor:
                raise ConfigError(f"executor.{kind}: allowed_actions has {kind!r} but it has no command template")
        for kind, argv in self.executor.items():
            _check_template(kind, argv)
        if self.policy_file and not Path(self.policy_file).is_file():
            raise ConfigError(f"policy_file: no such file {self.policy_file!r}")
        if not self.actor or len(self.actor) > 200:
            raise ConfigError("actor: must be 1..200 characters")
        return self

    @property
    def outcome_wait_s(self) -> float:
        """Wall-clock bound on waiting for the outcome: K buckets plus one for lateness."""
        return float((self.outcome_buckets + 1) * self.bucket_seconds)


def _check_template(kind: str, argv: object) -> None:
    if kind not in EXECUTABLE_ACTIONS:
        raise ConfigError(f"executor.{kind}: not an action kind; one of {list(EXECUTABLE_ACTIONS)}")
    if (not isinstance(argv, (list, tuple)) or not argv or not all(isinstance(a, str) for a in argv)):
        raise ConfigError(f"executor.{kind}: must be a non-empty list of strings (argv, not a shell line)")
    for arg in argv:
        try:
            names = [f for _, f, _, _ in string.Formatter().parse(arg) if f is not None]
        except ValueError as exc:
            raise ConfigError(f"executor.{kind}: {arg!r}: {exc}") from None
        for name in names:
            if name not in TEMPLATE_FIELDS:
                raise ConfigError(f"executor.{kind}: {{{name}}} is not a placeholder; use one of "
                                  f"{', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}")


def read_toml(path: str | Path, setting: str) -> dict[str, Any]:
    """The TOML file at ``path``; :class:`ConfigError` naming ``setting`` when it cannot be
    read or parsed (the daemon's config file and its policy file are read the same way)."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{setting}: {path}: {exc}") from None


#: Settings that may come from the environment (secrets and the server address only:
#: behaviour is configured in the file, where it is reviewed).
_ENV = {"server": "ROOTGRAPH_SERVER", "slack_signing_secret_file": "ROOTGRAPH_SLACK_SIGNING_SECRET_FILE"}


def load_remediate_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None,
                            **overrides: Any) -> RemediateSettings:
    """Validated settings: ``overrides`` → the TOML file at ``path`` → ``env`` → defaults."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {name: env[var] for name, var in _ENV.items() if env.get(var)}
    if path is not None:
        values.update(read_toml(path, "config"))
    values.update({k: v for k, v in overrides.items() if v is not None})
    types = {f.name: f.type for f in fields(RemediateSettings)}
    for secret in ("slack_signing_secret", "api_token"):
        if secret in values and not isinstance(values[secret], Secret):
            raise ConfigError(f"{secret}: never in a file; name a 0600 file in {secret}_file or use the environment")
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown setting")
    if "executor" in values:
        if not isinstance(values["executor"], Mapping):
            raise ConfigError("executor: must be a table of action kind = [argv ...]")
        for kind, argv in values["executor"].items():
            _check_template(kind, argv)
        values["executor"] = {k: tuple(v) for k, v in values["executor"].items()}
    if "allowed_actions" in values:
        if isinstance(values["allowed_actions"], str) or not isinstance(values["allowed_actions"], (list, tuple)):
            raise ConfigError("allowed_actions: must be a list of action kinds")
        values["allowed_actions"] = tuple(values["allowed_actions"])
    for name, kind in types.items():
        if name not in values or name in ("executor", "allowed_actions"):
            continue
        v = values[name]
        expect = {"str": str, "bool": bool, "int": int, "float": (int, float)}.get(str(kind))
        if expect is not None and (not isinstance(v, expect) or (expect is not bool and isinstance(v, bool))):
            raise ConfigError(f"{name}: expected {kind}, got {v!r}")
        if kind == "float":
            values[name] = float(v)
    if "slack_signing_secret" not in values:
        if env.get("ROOTGRAPH_SLACK_SIGNING_SECRET"):
            values["slack_signing_secret"] = Secret(env["ROOTGRAPH_SLACK_SIGNING_SECRET"])
        elif values.get("slack_signing_secret_file"):
            p = Path(values["slack_signing_secret_file"]).expanduser()
            try:
                values["slack_signing_secret"] = Secret(read_secret_file(p))
            except OSError as exc:
                raise ConfigError(f"slack_signing_secret_file: cannot read {p}: {exc.strerror}") from None
    if "api_token" not in values and env.get("ROOTGRAPH_TOKEN"):
        values["api_token"] = Secret(env["ROOTGRAPH_TOKEN"])
    return replace(RemediateSettings(), **values).validate()
