"""Slack's interactivity callback: a click on Approve / Deny becomes a recorded decision.

Slack POSTs ``application/x-www-form-urlencoded`` with one field, ``payload``, holding
the ``block_actions`` JSON (https://docs.slack.dev/reference/interaction-payloads/block_actions-payload).
Every request is signed ("Verifying requests from Slack",
https://docs.slack.dev/authentication/verifying-requests-from-slack): the header
``X-Slack-Signature`` is ``v0=`` + hex HMAC-SHA256 over ``v0:{X-Slack-Request-Timestamp}:{raw
body}`` keyed with the app's signing secret. We refuse, before reading the payload:

* a missing or wrong signature (401) -- compared in constant time;
* a timestamp more than ``signature_window_s`` (Slack: five minutes) from our clock
  (401): an old request captured on the way cannot be replayed later;
* a signature seen before within that window (409): nor can it be replayed *now*.
  The set of seen signatures is pruned as they leave the window, so it stays small.

A valid click is handed to :func:`rootgraph.remediate.steps.decide` -- the same path as
``rootgraph remediate approve`` -- and answered 200 (Slack wants an answer within three
seconds; the decision is one RPC). The message is then updated through the payload's
``response_url``. The signing secret is never logged, nor put into an answer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from rootgraph.config import Secret
from rootgraph.remediate.chat import APPROVE_ACTION_ID, DENY_ACTION_ID, ChatError, parse_button_value, post_json
from rootgraph.remediate.steps import DecisionError, StepSink, decide

__all__ = ["CallbackServer", "ReplayGuard", "sign", "verify_signature"]

log = logging.getLogger("rootgraph.remediate.callback")

#: The callback reads at most this much (Slack's payloads are a few KiB).
MAX_BODY = 256 * 1024
PATH = "/slack/interactivity"


def sign(secret: Secret, timestamp: str, body: bytes) -> str:
    """Slack's signature of ``body`` sent at ``timestamp``: ``v0=`` + hex HMAC-SHA256."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.value.encode(), base, hashlib.sha256).hexdigest()


def verify_signature(secret: Secret, timestamp: str | None, body: bytes, signature: str | None, *,
                     now: float, window_s: float) -> str:
    """'' when the request is authentic and fresh, else why not (for the log, never the secret)."""
    if not timestamp or not signature:
        return "missing X-Slack-Request-Timestamp or X-Slack-Signature"
    try:
        ts = int(timestamp)
    except ValueError:
        return "X-Slack-Request-Timestamp is not an integer"
    if abs(now - ts) > window_s:
        return f"timestamp {ts} is more than {window_s:.0f}s from now"
    if not hmac.compare_digest(sign(secret, timestamp, body).encode(), signature.encode()):
        return "signature mismatch"
    return ""


class ReplayGuard:
    """Signatures seen within the freshness window; a second sighting is a replay."""

    def __init__(self, window_s: float) -> None:
        self._window = window_s
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_time(self, signature: str, now: float) -> bool:
        with self._lock:
            # Older than twice the window: its timestamp can no longer pass the check.
            for sig in [s for s, t in self._seen.items() if now - t > 2 * self._window]:
                del self._seen[sig]
            if signature in self._seen:
                return False
            self._seen[signature] = now
            return True


class CallbackServer:
    """The HTTP endpoint Slack's interactivity Request URL points at (loopback by default)."""

    def __init__(self, address: str, secret: Secret, client: StepSink, *, window_s: float = 300.0,
                 clock: Callable[[], float] = time.time, on_decision: Callable[[str, str, bool, str], None] | None = None,
                 post: Callable[[str, dict], None] = post_json) -> None:
        host, _, port = address.rpartition(":")
        self._secret, self._client, self._window, self._clock = secret, client, window_s, clock
        self._guard = ReplayGuard(window_s)
        self._on_decision, self._post = on_decision, post
        self._httpd = ThreadingHTTPServer((host.strip("[]"), int(port)), self._handler())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self._httpd.server_address[0]}:{self.port}{PATH}"

    def start(self) -> "CallbackServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="remediate-callback", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for serve_forever, which never ran otherwise
            self._httpd.shutdown()
            self._thread = None
        self._httpd.server_close()

    # -- the request -------------------------------------------------------------------

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
        """(status, JSON answer) for one POST; pure of HTTP so tests can call it too."""
        h = {k.lower(): v for k, v in headers.items()}
        sig = h.get("x-slack-signature")
        why = verify_signature(self._secret, h.get("x-slack-request-timestamp"), body, sig,
                               now=self._clock(), window_s=self._window)
        if why:
            log.warning("slack callback refused: %s", why)
            return 401, {"error": "invalid or stale request signature"}
        if not self._guard.first_time(sig or "", self._clock()):
            log.warning("slack callback refused: replayed signature")
            return 409, {"error": "replayed request"}
        try:
            form = urllib.parse.parse_qs(body.decode("utf-8"), strict_parsing=True)
            payload = json.loads(form["payload"][0])
            if payload.get("type") != "block_actions":
                return 400, {"error": f"type: expected block_actions, got {payload.get('type')!r}"}
            user = payload.get("user") or {}
            actor = "slack:" + str(user.get("username") or user.get("name") or user.get("id") or "unknown")
            ours = [a for a in payload.get("actions") or () if a.get("action_id") in (APPROVE_ACTION_ID, DENY_ACTION_ID)]
            if not ours:
                return 400, {"error": "actions: no rootgraph Approve / Deny action"}
            action = ours[0]
            incident_id, proposal_id = parse_button_value(str(action.get("value", "")))
        except (ValueError, KeyError, UnicodeDecodeError, AttributeError, TypeError) as exc:
            return 400, {"error": f"payload: {exc}"[:300]}
        approve = action["action_id"] == APPROVE_ACTION_ID
        try:
            decide(self._client, incident_id, approve=approve, actor=actor, proposal_id=proposal_id,
                   detail=json.dumps({"via": "slack", "team": (payload.get("team") or {}).get("id", "")}))
            text, status = f"{'Approved' if approve else 'Denied'} by {actor}.", 200
        except DecisionError as exc:
            # Already decided elsewhere (the CLI, the other button, the expiry): not an
            # error for Slack, whose user sees why in the updated message.
            text, status = str(exc), 200
        log.info("slack decision on %s/%s: %s", incident_id, proposal_id, text)
        if self._on_decision is not None:
            self._on_decision(incident_id, proposal_id, approve, actor)
        url = payload.get("response_url")
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            try:
                self._post(url, {"replace_original": False, "text": text})
            except ChatError as exc:
                log.warning("slack response_url: %s", exc)
        return status, {"text": text}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "rootgraph-remediate"

            def log_message(self, fmt: str, *args: object) -> None:  # no request lines with bodies
                log.debug("callback %s", fmt % args)

            def _answer(self, status: int, doc: dict) -> None:
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                self._answer(405 if self.path == PATH else 404, {"error": "POST only" if self.path == PATH
                                                                 else "not found"})

            def do_POST(self) -> None:  # noqa: N802
                if self.path != PATH:
                    return self._answer(404, {"error": "not found"})
                if not self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
                    return self._answer(415, {"error": "Content-Type: expected application/x-www-form-urlencoded"})
                try:
                    length = int(self.headers.get("Content-Length", ""))
                except ValueError:
                    return self._answer(411, {"error": "Content-Length required"})
                if not 0 <= length <= MAX_BODY:
                    return self._answer(413, {"error": f"body larger than {MAX_BODY} bytes"})
                body = self.rfile.read(length)
                try:
                    status, doc = outer.handle(dict(self.headers.items()), body)
                except Exception:  # noqa: BLE001 - an RPC failure must not kill the server
                    log.exception("slack callback failed")
                    status, doc = 503, {"error": "could not record the decision; try again or use the CLI"}
                self._answer(status, doc)

        return Handler
