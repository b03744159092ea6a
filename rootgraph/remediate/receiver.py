"""A local stand-in for Slack and Teams: receives webhook posts, and clicks buttons as Slack does.

For the demo, the benchmark and the tests (STYLE.md #9: the fake ships next to the
interface). It listens on loopback and records every JSON body posted to ``/slack``,
``/teams`` or ``/response`` (a ``response_url``). :meth:`LocalChat.click` sends what
Slack sends when a user clicks a button of a received message: a ``block_actions``
payload, form-encoded, signed with the signing secret exactly as
rootgraph/remediate/callback.py verifies it. With ``auto`` set, every proposal is
clicked as soon as it arrives (the benchmark's "auto-approving receiver").
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from rootgraph.config import Secret
from rootgraph.remediate.callback import sign
from rootgraph.remediate.chat import APPROVE_ACTION_ID, DENY_ACTION_ID

__all__ = ["LocalChat", "Posted", "SignedRequest"]


@dataclass(frozen=True)
class Posted:
    path: str
    body: dict
    at_s: float

    @property
    def buttons(self) -> dict[str, str]:
        """action_id -> value of a Slack message's buttons (empty for anything else)."""
        return {e["action_id"]: e["value"] for b in self.body.get("blocks", ()) if b.get("type") == "actions"
                for e in b.get("elements", ()) if e.get("type") == "button"}


@dataclass(frozen=True)
class SignedRequest:
    """One request as sent to the callback (kept, so a test can replay it byte for byte)."""

    url: str
    body: bytes
    headers: dict[str, str]


class LocalChat:
    """Webhook receiver on ``127.0.0.1``; ``slack_url`` / ``teams_url`` are what to configure."""

    def __init__(self, *, secret: Secret | None = None, callback_url: str = "", auto: str = "",
                 user: str = "alice") -> None:
        self.posts: list[Posted] = []
        self._cond = threading.Condition()
        self.secret, self.callback_url, self.auto, self.user = secret, callback_url, auto, user
        self.clicks: list[tuple[int, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")  # what Slack's incoming webhooks answer
                outer._received(Posted(self.path, body, time.time()))

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, name="local-chat", daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def slack_url(self) -> str:
        return self.base + "/slack"

    @property
    def teams_url(self) -> str:
        return self.base + "/teams"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _received(self, p: Posted) -> None:
        with self._cond:
            self.posts.append(p)
            self._cond.notify_all()
        if self.auto and p.path == "/slack" and p.buttons:
            # In its own thread, as Slack's click arrives on a connection of its own.
            threading.Thread(target=lambda: self.clicks.append(self.click(p, approve=self.auto == "approve")),
                             daemon=True).start()

    def wait_for(self, pred: Callable[[Posted], bool], timeout_s: float = 60.0) -> Posted:
        """The first post matching ``pred``, waiting up to ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                hit = next((p for p in self.posts if pred(p)), None)
                if hit is not None:
                    return hit
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no matching webhook post within {timeout_s:g}s "
                                       f"({len(self.posts)} posts: {[p.path for p in self.posts]})")
                self._cond.wait(left)

    def proposal(self, timeout_s: float = 60.0) -> Posted:
        return self.wait_for(lambda p: p.path == "/slack" and bool(p.buttons), timeout_s)

    def signed(self, message: Posted, *, approve: bool, user: str | None = None, secret: Secret | None = None,
               timestamp: int | None = None) -> SignedRequest:
        """The request Slack would send for a click on ``message`` (signed with ``secret``)."""
        action_id = APPROVE_ACTION_ID if approve else DENY_ACTION_ID
        payload = {
            "type": "block_actions", "team": {"id": "T0LOCAL", "domain": "local"},
            "user": {"id": "U0LOCAL", "username": user or self.user, "name": user or self.user},
            "api_app_id": "A0LOCAL", "container": {"type": "message"}, "trigger_id": "1.2.3",
            "response_url": self.base + "/response",
            "actions": [{"type": "button", "action_id": action_id, "block_id": "rootgraph_remediation",
                         "value": message.buttons[action_id], "action_ts": f"{time.time():.6f}"}],
        }
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        ts = str(int(time.time()) if timestamp is None else timestamp)
        key = secret or self.secret
        assert key is not None, "LocalChat needs the signing secret to click"
        return SignedRequest(self.callback_url, body, {
            "Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": sign(key, ts, body)})

    @staticmethod
    def send(req: SignedRequest) -> tuple[int, dict]:
        """POST a signed request; (status, JSON answer)."""
        r = urllib.request.Request(req.url, data=req.body, headers=req.headers, method="POST")
        try:
            with urllib.request.urlopen(r, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def click(self, message: Posted, *, approve: bool, user: str | None = None) -> tuple[int, dict]:
        return self.send(self.signed(message, approve=approve, user=user))
