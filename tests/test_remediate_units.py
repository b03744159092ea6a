"""Pure logic of ``rootgraph remediate`` (issue 17): no server, no Neo4j.

Signature checks against Slack's own worked example, the chat formats as Slack and Teams
document them, argv templates, settings and policy validation, proposal rules and the
outcome judge. Everything that talks to the server is in tests/test_remediate_loop.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from rootgraph.client import IncidentEvent
from rootgraph.config import ConfigError, Secret
from rootgraph.remediate.callback import ReplayGuard, sign, verify_signature
from rootgraph.remediate.chat import (APPROVE_ACTION_ID, DENY_ACTION_ID, parse_button_value, slack_message,
                                      teams_message)
from rootgraph.remediate.config import load_remediate_settings
from rootgraph.remediate.executor import Executor
from rootgraph.remediate.outcome import OutcomeJudge
from rootgraph.remediate.policy import load_policy
from rootgraph.remediate.proposal import Proposal, choose_action, learned_from, make_proposal, proposal_id
from rootgraph.results import Action, ActionKind, BlastRadius, Cause, EvidenceItem, FaultKind, Impact, Ranking

# docs.slack.dev/authentication/verifying-requests-from-slack, the worked example.
DOC_SECRET = Secret("8f742231b10e8888abcd99yyyzzz85a5")
DOC_TS = "1531420618"
DOC_BODY = (b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
            b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
            b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
            b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
DOC_SIG = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def test_signature_matches_slacks_worked_example() -> None:
    assert sign(DOC_SECRET, DOC_TS, DOC_BODY) == DOC_SIG
    assert verify_signature(DOC_SECRET, DOC_TS, DOC_BODY, DOC_SIG, now=1531420618 + 60, window_s=300) == ""


def test_signature_refuses_tampering_staleness_and_missing_headers() -> None:
    now = 1531420618
    assert verify_signature(DOC_SECRET, DOC_TS, DOC_BODY + b"x", DOC_SIG, now=now, window_s=300) == "signature mismatch"
    assert verify_signature(Secret("other"), DOC_TS, DOC_BODY, DOC_SIG, now=now, window_s=300) == "signature mismatch"
    assert "more than" in verify_signature(DOC_SECRET, DOC_TS, DOC_BODY, DOC_SIG, now=now + 301, window_s=300)
    assert "more than" in verify_signature(DOC_SECRET, DOC_TS, DOC_BODY, DOC_SIG, now=now - 301, window_s=300)
    assert verify_signature(DOC_SECRET, None, DOC_BODY, DOC_SIG, now=now, window_s=300).startswith("missing")
    assert verify_signature(DOC_SECRET, "soon", DOC_BODY, DOC_SIG, now=now, window_s=300).endswith("integer")


def test_replay_guard_refuses_a_signature_seen_within_the_window() -> None:
    g = ReplayGuard(300)
    assert g.first_time("v0=a", 1000) and not g.first_time("v0=a", 1100)
    assert g.first_time("v0=b", 1100)
    assert g.first_time("v0=a", 1000 + 601)  # long gone: the timestamp check refuses it anyway


def _ranking(*, no_clear: bool = False, top_p: float = 0.9, actions=None) -> Ranking:  # noqa: ANN001
    acts = actions if actions is not None else (
        Action(ActionKind.ROLLBACK, "shop/orders", "roll back shop/orders from v2 to v1 (deployed shortly before "
               "the incident); rollback resolved 9 of 10 past incidents where the cause was a service with a "
               "deployment within 10 minutes", "v1", 0.86),
        Action(ActionKind.INVESTIGATE, "shop/orders", "inspect shop/orders's logs"))
    top = Cause("shop/orders", "service", top_p, 1, "errors", (EvidenceItem("shop/orders", "error_rate", 0.4, 0.002,
                0.9, "error rate 40% vs 0.2% baseline <!channel>"),), suggested_actions=acts,
                fault_kind=FaultKind.ERRORS, fault_size=0.4)
    runner = Cause("shop/catalogue", "service", 0.2, 2, "deploy")
    return Ranking((top, runner), ("shop/frontend",), "builtin-1", no_clear, incident_id="inc-1")


def _proposal(**kw) -> Proposal:  # noqa: ANN003
    r = _ranking(**kw)
    cause, action = choose_action(r, ("rollback",))
    blast = BlastRadius("shop/orders", (Impact("shop/frontend", "service", 0.8, 1, ("shop/orders", "shop/frontend"),
                                               0.8),), 0.8)
    return make_proposal(r, cause, action, blast, committed_s=100.0, deadline_s=1000.0)


def test_no_proposal_on_no_clear_cause_an_implausible_top_or_no_allowed_action() -> None:
    assert choose_action(_ranking(no_clear=True), ("rollback",)) is None
    assert choose_action(_ranking(top_p=0.04), ("rollback",)) is None   # below PLAUSIBLE_FLOOR
    assert choose_action(_ranking(), ("restart",)) is None              # only rollback + investigate suggested
    assert choose_action(_ranking(actions=()), ("rollback",)) is None
    cause, action = choose_action(_ranking(), ("rollback", "restart"))
    assert (cause.entity, action.kind) == ("shop/orders", ActionKind.ROLLBACK)


def test_proposal_carries_runner_up_blast_radius_and_the_learned_history() -> None:
    p = _proposal()
    assert (p.runner_up, p.runner_up_probability, p.blast_share, p.to_version) == ("shop/catalogue", 0.2, 0.8, "v1")
    assert p.learned is not None and (p.learned.resolved, p.learned.total, p.learned.context) == (9, 10, "service/deploy")
    assert p.proposal_id == proposal_id("inc-1", _ranking().causes[0].suggested_actions[0])  # derived, stable
    assert (p.service, p.namespace) == ("orders", "shop")
    assert json.loads(p.to_json())["blast_share"] == 0.8
    assert learned_from(Action(ActionKind.ROLLBACK, "x", "roll back x")) is None


def test_slack_message_is_block_kit_with_approve_and_deny_buttons_and_escapes_server_text() -> None:
    msg = slack_message(_proposal())
    types = [b["type"] for b in msg["blocks"]]
    assert types[0] == "header" and types[-1] == "actions" and msg["text"]
    buttons = msg["blocks"][-1]["elements"]
    assert [(b["type"], b["action_id"]) for b in buttons] == [("button", APPROVE_ACTION_ID), ("button", DENY_ACTION_ID)]
    assert all(parse_button_value(b["value"]) == ("inc-1", _proposal().proposal_id) for b in buttons)
    assert all(len(b["value"]) <= 2000 for b in buttons)
    body = json.dumps(msg)
    assert "<!channel>" not in body and "&lt;!channel&gt;" in body  # an entity's text cannot ping a channel
    with pytest.raises(ValueError, match="value"):
        parse_button_value("{\"incident_id\": 3}")


def test_teams_message_is_an_adaptive_card_attachment_without_submit_actions() -> None:
    msg = teams_message(_proposal(), link_url="https://rootgraph.example/incidents/inc-1")
    assert msg["type"] == "message"
    (att,) = msg["attachments"]
    assert att["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = att["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] and card["body"][0]["type"] == "TextBlock"
    assert [a["type"] for a in card["actions"]] == ["Action.OpenUrl"]  # incoming webhooks cannot take a Submit
    assert "rootgraph remediate approve inc-1" in json.dumps(card)


def test_templates_are_formatted_argument_by_argument_and_never_through_a_shell(tmp_path: Path) -> None:
    ex = Executor({"rollback": ("kubectl", "argo", "rollouts", "undo", "{name}", "-n", "{namespace}",
                                "--to={to_version}")}, ("rollback",), dry_run=True)
    p = _proposal()
    assert ex.argv(p) == ("kubectl", "argo", "rollouts", "undo", "orders", "-n", "shop", "--to=v1")
    r = ex.run(p)
    assert r.dry_run and r.ok and r.output_tail.startswith("dry run: kubectl")
    # A hostile name stays one argument: the command sees it verbatim, no shell runs it.
    marker = tmp_path / "pwned"
    hostile = _replace(p, target=f"shop/x; touch {marker}")
    live = Executor({"rollback": (sys.executable, "-c", "import sys; print(sys.argv[1:])", "{target}")},
                    ("rollback",), dry_run=False)
    out = live.run(hostile)
    assert out.ok and f"['shop/x; touch {marker}']" in out.output_tail and not marker.exists()
    assert "not a safe command argument" in live.run(_replace(p, target="shop/--kubeconfig")).error
    assert "not in allowed_actions" in Executor({"rollback": ("true",)}, ()).run(p).error


def test_a_failing_a_missing_and_a_hanging_command_are_failures() -> None:
    p = _proposal()
    fail = Executor({"rollback": (sys.executable, "-c", "print('boom'); raise SystemExit(3)")}, ("rollback",),
                    dry_run=False).run(p)
    assert (fail.ok, fail.exit_status, fail.output_tail.strip(), fail.error) == (False, 3, "boom", "exited with status 3")
    missing = Executor({"rollback": ("/nonexistent/rollback-tool",)}, ("rollback",), dry_run=False).run(p)
    assert (missing.ok, missing.exit_status) == (False, -1) and missing.error.startswith("did not start")
    hang = Executor({"rollback": (sys.executable, "-c", "import time; time.sleep(30)")}, ("rollback",),
                    dry_run=False, timeout_s=0.5).run(p)
    assert (hang.ok, hang.exit_status, hang.error) == (False, -1, "killed after 0.5s")


def _replace(p: Proposal, **kw) -> Proposal:  # noqa: ANN003
    import dataclasses

    return dataclasses.replace(p, **kw)


def test_settings_errors_name_the_setting(tmp_path: Path) -> None:
    def load(text: str, **env: str):  # noqa: ANN202
        f = tmp_path / "r.toml"
        f.write_text(text)
        return load_remediate_settings(f, env=env)

    s = load('allowed_actions = ["rollback"]\n[executor]\nrollback = ["echo", "{service}"]\n')
    assert s.dry_run and s.executor["rollback"] == ("echo", "{service}") and s.callback_address.startswith("127.0.0.1")
    for text, name in (
        ('allowed_actions = ["rollback"]\n', "executor.rollback"),
        ('allowed_actions = ["investigate"]\n', "allowed_actions"),
        ('[executor]\nrollback = "kubectl undo {service}"\n', "executor.rollback"),
        ('[executor]\nrollback = ["echo", "{service.__class__}"]\n', "executor.rollback"),
        ('decision_timeout_s = -1\n', "decision_timeout_s"),
        ('dry_run = "no"\n', "dry_run"),
        ('max_concurrent = 0\n', "max_concurrent"),
        ('slack_webhook_url = "https://hooks.slack.com/services/x"\n', "slack_signing_secret_file"),
        ('slack_signing_secret = "oops"\n', "slack_signing_secret"),
        ('shell = true\n', "shell"),
    ):
        with pytest.raises(ConfigError, match=f"^{name.replace('.', '[.]')}"):
            load(text)
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    secret.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load(f'slack_webhook_url = "https://hooks.slack.com/services/x"\nslack_signing_secret_file = "{secret}"\n')
    secret.chmod(0o600)
    s = load(f'slack_webhook_url = "https://hooks.slack.com/services/x"\nslack_signing_secret_file = "{secret}"\n')
    assert s.slack_signing_secret.value == "s3cr3t" and "s3cr3t" not in repr(s)


def test_policy_allows_only_what_its_rules_say_and_is_named_with_its_version(tmp_path: Path) -> None:
    f = tmp_path / "policy.toml"
    f.write_text('name = "rollback-bad-deploys"\nversion = "2"\n[[allow]]\naction = "rollback"\n'
                 'context = "service/deploy"\nmin_confidence = 0.8\nmin_outcomes = 10\nmax_blast_share = 0.9\n')
    pol = load_policy(f)
    assert pol.ref == "rollback-bad-deploys@2"
    assert pol.allows(_proposal()).startswith("rollback-bad-deploys@2: rollback on service/deploy")
    assert pol.allows(_replace(_proposal(), confidence=0.7)) == ""           # confidence below the bound
    p = _proposal()
    assert pol.allows(_replace(p, learned=_replace_learned(p, total=9))) == ""  # too few outcomes
    assert pol.allows(_replace(p, blast_share=0.95)) == ""
    assert pol.allows(_replace(p, learned=None)) == ""                       # no history: a human decides
    for text, key in (('version = "1"\n', "policy.name"), ('name = "a"\nversion = "1"\n[[allow]]\naction = "rm"\n',
                                                           "policy.allow[0].action")):
        f.write_text(text)
        with pytest.raises(ConfigError, match=f"^{key.replace('.', '[.]').replace('[0]', '.0.')}"):
            load_policy(f)


def _replace_learned(p: Proposal, **kw):  # noqa: ANN003,ANN202
    import dataclasses

    return dataclasses.replace(p.learned, **kw)


def _event(kind: str, bucket: float, new: tuple[str, ...] = ()) -> IncidentEvent:
    ranking = Ranking((), (), "v", True)
    return IncidentEvent(1, kind, "inc-1", "open", ranking, (), new, bucket, 0.0, None, False, 0.0)


def test_outcome_is_judged_in_buckets_of_data_time() -> None:
    judge = OutcomeJudge("inc-1", reference_bucket_s=600, buckets=3, bucket_seconds=60)
    assert judge.observe(_event("updated", 660)) is None
    assert judge.observe(_event("resolved", 780)) == "resolved"
    assert judge.observe(_event("resolved", 841)) == "not_resolved"          # cleared, but too late
    assert judge.observe(_event("updated", 660, ("shop/cart",))) == "made_worse"
    assert judge.observe(_event("updated", 900)) == "not_resolved"           # K buckets passed, still open


def test_callback_answers_malformed_but_signed_requests_with_400_and_records_nothing() -> None:
    from rootgraph.remediate.callback import CallbackServer

    class NoSteps:  # an in-memory StepSink: nothing may reach it
        recorded: list = []

        def record_remediation_step(self, step) -> bool:  # noqa: ANN001
            self.recorded.append(step)
            return True

        def remediation_steps(self, incident_id: str) -> list:
            return []

    sink = NoSteps()
    cb = CallbackServer("127.0.0.1:0", DOC_SECRET, sink, clock=lambda: 1531420618.0)
    try:
        def post(body: bytes) -> int:
            return cb.handle({"X-Slack-Request-Timestamp": DOC_TS, "X-Slack-Signature": sign(DOC_SECRET, DOC_TS, body)},
                             body)[0]

        assert post(b"payload=not-json") == 400
        assert post(b"payload=" + json.dumps({"type": "view_submission"}).encode()) == 400
        assert post(b"payload=" + json.dumps({"type": "block_actions", "actions": [
            {"action_id": "someone_elses_button", "value": "x"}]}).encode()) == 400
        assert post(b"payload=" + json.dumps({"type": "block_actions", "actions": [
            {"action_id": APPROVE_ACTION_ID, "value": "{}"}]}).encode()) == 400
        assert cb.handle({}, b"payload=x")[0] == 401
        assert sink.recorded == []
    finally:
        cb.stop()
