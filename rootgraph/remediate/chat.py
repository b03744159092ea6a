"""Proposals as chat messages: Slack Block Kit with Approve / Deny, a Teams Adaptive Card.

Slack (incoming webhook, https://docs.slack.dev/messaging/creating-interactive-messages):
a ``header``, ``section`` blocks with ``mrkdwn`` fields and an ``actions`` block holding
two ``button`` elements. A click reaches the app's interactivity Request URL (our
callback, rootgraph/remediate/callback.py) as a signed ``block_actions`` payload carrying
the button's ``action_id`` and ``value`` -- the value names the incident and proposal.

Teams (incoming webhook): a ``message`` whose one attachment is an Adaptive Card
(``application/vnd.microsoft.card.adaptive``). An incoming webhook is one-way: Teams
cannot deliver ``Action.Submit``/``Action.Execute`` clicks back to us (that needs a bot
registration), so the card shows the two CLI commands that decide and, when configured,
an ``Action.OpenUrl`` to the incident's page. Approval from Teams users goes through
``rootgraph remediate approve`` (or Slack); a URL that approves on GET would be fired by
link previewers and is deliberately not offered.

The text is built from the proposal only (entity names, figures), and every piece of it
that came from the server is escaped for Slack's mrkdwn, so an entity name cannot smuggle
a ``<!channel>`` mention or a link into the message.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from rootgraph.remediate.proposal import Proposal

__all__ = ["APPROVE_ACTION_ID", "DENY_ACTION_ID", "ChatError", "button_value", "parse_button_value", "post_json",
           "slack_message", "slack_text", "teams_message", "teams_text"]

APPROVE_ACTION_ID = "rootgraph_remediation_approve"
DENY_ACTION_ID = "rootgraph_remediation_deny"


class ChatError(Exception):
    """Posting to a webhook failed (the proposal still stands; the CLI can decide it)."""


def _esc(text: str) -> str:
    """Slack's three control characters (https://docs.slack.dev/messaging/formatting-message-text)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def button_value(p: Proposal) -> str:
    """What a button carries back: incident and proposal (Slack allows 2000 characters)."""
    return json.dumps({"incident_id": p.incident_id, "proposal_id": p.proposal_id}, separators=(",", ":"))


def parse_button_value(value: str) -> tuple[str, str]:
    """(incident_id, proposal_id) from a button's value; ValueError naming what is wrong."""
    try:
        doc = json.loads(value)
        inc, pid = doc["incident_id"], doc["proposal_id"]
    except (ValueError, TypeError, KeyError):
        raise ValueError("actions[].value: not a rootgraph proposal reference") from None
    if not (isinstance(inc, str) and isinstance(pid, str) and inc and pid):
        raise ValueError("actions[].value: incident_id and proposal_id must be non-empty strings")
    return inc, pid


def _lines(p: Proposal) -> dict[str, str]:
    learned = (f"{p.confidence:.0%}: resolved {p.learned.resolved} of {p.learned.total} similar incidents "
               f"({p.learned.context})" if p.learned else "no outcomes recorded yet")
    impacts = ", ".join(f"{e} {q:.0%}" for e, q in p.blast_impacts) or "none"
    return {
        "Action": f"{p.action} {p.target}" + (f" to {p.to_version}" if p.to_version else ""),
        "Cause": f"{p.target} ({p.cause_kind}), P = {p.probability:.2f}",
        "Runner-up": f"{p.runner_up}, P = {p.runner_up_probability:.2f}" if p.runner_up else "none",
        "Blast radius": f"{p.blast_share:.0%} of entry traffic if the {p.fault_kind or 'fault'} goes on "
                        f"(most affected: {impacts})",
        "Learned confidence": learned,
        "Decide by": f"<!date^{int(p.deadline_s)}^{{date_short_pretty}} {{time}}|{int(p.deadline_s)}> "
                     f"(then it expires and nothing runs)",
    }


def slack_message(p: Proposal) -> dict:
    """The incoming-webhook body: Block Kit blocks plus a plain ``text`` fallback."""
    lines = _lines(p)
    fields = [{"type": "mrkdwn", "text": f"*{k}*\n{_esc(v) if k != 'Decide by' else v}"} for k, v in lines.items()]
    evidence = "\n".join(f"• {_esc(e)}" for e in p.evidence) or "(no evidence lines)"
    value = button_value(p)
    return {
        "text": _esc(f"rootgraph proposes: {p.summary()} (incident {p.incident_id})"),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": f"Remediation proposed: {p.action} "
                                        f"{p.target}"[:150]}},
            {"type": "section", "fields": fields[:10]},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Evidence*\n{evidence}"[:3000]}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _esc(
                f"incident {p.incident_id} · proposal {p.proposal_id} · model {p.model_version} · "
                f"or: rootgraph remediate approve {p.incident_id}")}]},
            {"type": "actions", "block_id": "rootgraph_remediation", "elements": [
                {"type": "button", "action_id": APPROVE_ACTION_ID, "style": "primary", "value": value,
                 "text": {"type": "plain_text", "text": "Approve"},
                 "confirm": {"title": {"type": "plain_text", "text": "Run it?"},
                             "text": {"type": "mrkdwn", "text": _esc(lines["Action"])},
                             "confirm": {"type": "plain_text", "text": "Approve"},
                             "deny": {"type": "plain_text", "text": "Cancel"}}},
                {"type": "button", "action_id": DENY_ACTION_ID, "style": "danger", "value": value,
                 "text": {"type": "plain_text", "text": "Deny"}},
            ]},
        ],
    }


def slack_text(text: str) -> dict:
    """A plain follow-up message (decided, executed, outcome)."""
    return {"text": _esc(text)}


def teams_message(p: Proposal, *, link_url: str = "") -> dict:
    """The Teams incoming-webhook body: one Adaptive Card attachment (see module doc)."""
    lines = _lines(p)
    lines["Decide by"] = f"{{{{DATE({_iso(p.deadline_s)})}}}} {{{{TIME({_iso(p.deadline_s)})}}}}"
    card: dict = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard", "version": "1.4",
        "body": [
            {"type": "TextBlock", "size": "Large", "weight": "Bolder", "wrap": True,
             "text": f"Remediation proposed: {p.action} {p.target}"},
            {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in lines.items()]},
            {"type": "TextBlock", "wrap": True, "text": "Evidence:\n\n" + "\n\n".join(f"- {e}" for e in p.evidence)},
            {"type": "TextBlock", "wrap": True, "isSubtle": True,
             "text": f"Decide from a shell: `rootgraph remediate approve {p.incident_id} --by YOUR_NAME` "
                     f"or `rootgraph remediate deny {p.incident_id} --by YOUR_NAME`."},
        ],
    }
    if link_url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open incident", "url": link_url}]
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}


def teams_text(text: str) -> dict:
    """A plain follow-up card for Teams (incoming webhooks take cards, not bare text)."""
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
         "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                     "version": "1.4", "body": [{"type": "TextBlock", "wrap": True, "text": text}]}}]}


def _iso(epoch_s: float) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))


def post_json(url: str, body: dict, *, timeout_s: float = 10.0) -> None:
    """POST ``body`` as JSON; :class:`ChatError` on anything but a 2xx (the URL is a secret
    of its own -- it is never put into the error message)."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as r:
            r.read()
    except urllib.error.HTTPError as exc:
        raise ChatError(f"webhook answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ChatError(f"webhook unreachable: {getattr(exc, 'reason', exc)}") from None
