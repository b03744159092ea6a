"""The whole remediation loop (issue 17 targets): the real server and detector over the real
Neo4j, the daemon watching through a real gRPC channel, a real HTTP webhook receiver on
loopback standing in for Slack and Teams, and Slack's signed interactivity requests sent
to the real callback server.

The incident: ``db:postgresql/orders`` fails half its calls from minute 40
(tests/detection_support.py); the ranker suggests failing it over. The executor runs
a harmless Python command in its place. Data arrives in two parts so that the incident
is still open when the action runs, and the second part clears it (or not).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace

import pytest
from detection_support import DB, minutes

from rootgraph.client import RootGraphClient
from rootgraph.config import Secret
from rootgraph.remediate.callback import CallbackServer
from rootgraph.remediate.config import RemediateSettings
from rootgraph.remediate.daemon import Remediator
from rootgraph.remediate.outcome import submit_outcome
from rootgraph.remediate.receiver import LocalChat
from rootgraph.server.app import App

SECRET = Secret("loop-test-signing-secret")
OK_COMMAND = (sys.executable, "-c", "import sys; print('failing over', sys.argv[1])", "{target}")


class Loop:
    """App + local chat + callback + daemon, stopped in reverse order."""

    def __init__(self, neo4j_settings, writer, **overrides) -> None:  # noqa: ANN001,ANN003
        self.writer = writer
        self.app = App(replace(neo4j_settings, api_address="127.0.0.1:0", otlp_grpc_address="127.0.0.1:0",
                               otlp_http_address="127.0.0.1:0", detector_interval_seconds=0.2,
                               detector_resolve_buckets=3), neo4j_settings_driver(writer)).start()
        self.addr = f"127.0.0.1:{self.app.ports['api']}"
        self.chat = LocalChat(secret=SECRET)
        settings = RemediateSettings(**{
            "server": self.addr, "slack_webhook_url": self.chat.slack_url, "teams_webhook_url": self.chat.teams_url,
            "slack_signing_secret": SECRET, "callback_address": "127.0.0.1:0", "decision_timeout_s": 60.0,
            "outcome_buckets": 10, "allowed_actions": ("failover",), "executor": {"failover": OK_COMMAND},
            "dry_run": False, **overrides}).validate()
        self.daemon = Remediator(settings, lambda: RootGraphClient(self.addr))
        self.callback = CallbackServer(settings.callback_address, SECRET, self.daemon.client).start()
        self.chat.callback_url = self.callback.url
        self.daemon.start(after_seq=0)
        self.client = RootGraphClient(self.addr)

    def close(self) -> None:
        self.client.close()
        self.callback.stop()
        self.daemon.stop()
        self.chat.close()
        self.app.stop(grace_s=1.0)

    def incident(self):  # noqa: ANN201 - the first part of the data: the fault begins, still open
        self.writer.apply_deltas(minutes(0, 44, fault=(40, 60)))
        return self.chat.proposal()

    def record(self, timeout_s: float = 60.0):  # noqa: ANN201
        deadline = time.monotonic() + timeout_s
        while not self.daemon.records:
            assert time.monotonic() < deadline, "no proposal recorded"
            time.sleep(0.05)
        rec = self.daemon.records[0]
        assert rec.done.wait(timeout_s), "the proposal's lifecycle did not finish"
        return rec

    def kinds(self, incident_id: str) -> list[str]:
        return [s.kind for s in self.client.remediation_steps(incident_id)]


def neo4j_settings_driver(writer):  # noqa: ANN001,ANN201
    return writer._driver  # noqa: SLF001 - the test Neo4j's driver, as the writer fixture holds it


@pytest.fixture()
def make_loop(neo4j_settings, writer):  # noqa: ANN001,ANN201
    loops = []

    def make(**overrides):  # noqa: ANN003,ANN202
        loop = Loop(neo4j_settings, writer, **overrides)
        loops.append(loop)
        return loop

    yield make
    for loop in loops:
        loop.close()


def test_approved_in_slack_executed_resolved_and_fed_back_exactly_once(make_loop) -> None:  # noqa: ANN001
    loop = make_loop()
    msg = loop.incident()
    teams = loop.chat.wait_for(lambda p: p.path == "/teams")
    card = teams.body["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive" and DB in json.dumps(card)
    assert DB in msg.body["blocks"][0]["text"]["text"]  # "Remediation proposed: failover db:..."
    # A forged click (wrong secret) and a stale one are refused and decide nothing.
    forged = loop.chat.signed(msg, approve=True, secret=Secret("not-the-secret"))
    assert loop.chat.send(forged)[0] == 401
    stale = loop.chat.signed(msg, approve=True, timestamp=int(time.time()) - 301)
    assert loop.chat.send(stale)[0] == 401
    rec_incident = loop.daemon.records[0].proposal.incident_id
    assert loop.kinds(rec_incident) == ["proposed"]
    good = loop.chat.signed(msg, approve=True, user="alice")
    status, answer = loop.chat.send(good)
    assert status == 200 and answer["text"] == "Approved by slack:alice."
    assert loop.chat.send(good)[0] == 409  # the same request replayed: refused
    loop.chat.wait_for(lambda p: p.path == "/response" and "Approved by slack:alice" in p.body["text"])
    loop.chat.wait_for(lambda p: p.path == "/slack" and "executed, exit status 0" in p.body.get("text", ""))
    loop.writer.apply_deltas(minutes(44, 60, fault=(40, 46)))  # the failover "worked": symptoms clear
    rec = loop.record()
    assert (rec.decision, rec.decided_by, rec.outcome, rec.feedback_created) == ("approved", "slack:alice",
                                                                                 "resolved", True)
    steps = loop.client.remediation_steps(rec.proposal.incident_id)
    assert [s.kind for s in steps] == ["proposed", "approved", "executed", "outcome"]
    executed = steps[2]
    assert (executed.exit_status, executed.dry_run, executed.target) == (0, False, DB)
    assert f"failing over {DB}" in json.loads(executed.detail)["output_tail"]
    assert steps[3].outcome == "resolved" and steps[1].actor == "slack:alice"
    proposed = json.loads(steps[0].detail)
    assert proposed["probability"] > 0.5 and 0 <= proposed["blast_share"] <= 1 and proposed["evidence"]
    # Feedback exactly once: a repeated report (a restart, a retry) is the same feedback.
    assert submit_outcome(loop.client, rec.proposal, "resolved", approved_by="slack:alice") is False
    fb = loop.client.get_incident(rec.proposal.incident_id).feedback
    assert [(f.feedback_id, f.confirmed_cause) for f in fb] == [(rec.proposal.proposal_id + ".feedback", DB)]
    assert fb[0].confirmed_by == "slack:alice"


def test_denied_in_slack_nothing_runs(make_loop) -> None:  # noqa: ANN001
    loop = make_loop()
    msg = loop.incident()
    status, answer = loop.chat.click(msg, approve=False, user="bob")
    assert status == 200 and answer["text"] == "Denied by slack:bob."
    rec = loop.record()
    assert (rec.decision, rec.decided_by, rec.execution) == ("denied", "slack:bob", None)
    assert loop.kinds(rec.proposal.incident_id) == ["proposed", "denied"]
    # A late Approve on the decided proposal changes nothing; Slack's user is told why.
    status, answer = loop.chat.click(msg, approve=True, user="carol")
    assert status == 200 and "already denied by slack:bob" in answer["text"]
    assert loop.kinds(rec.proposal.incident_id) == ["proposed", "denied"]
    assert not loop.client.get_incident(rec.proposal.incident_id).feedback


def test_no_decision_before_the_timeout_expires_and_nothing_runs(make_loop) -> None:  # noqa: ANN001
    loop = make_loop(decision_timeout_s=1.5)
    loop.incident()
    rec = loop.record()
    assert (rec.decision, rec.decided_by, rec.execution) == ("expired", "rootgraph-remediate", None)
    assert loop.kinds(rec.proposal.incident_id) == ["proposed", "expired"]
    loop.chat.wait_for(lambda p: p.path == "/slack" and "nothing ran" in p.body.get("text", ""))
    # ... and the CLI cannot approve it afterwards.
    out = subprocess.run([sys.executable, "-m", "rootgraph.cli", "remediate", "--server", loop.addr, "approve",
                          rec.proposal.incident_id, "--by", "dave"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "no proposal is waiting" in out.stderr


def test_approved_from_the_cli_and_the_command_failing_is_reported_as_a_failure(make_loop) -> None:  # noqa: ANN001
    loop = make_loop(executor={"failover": (sys.executable, "-c", "print('no such rollout'); raise SystemExit(4)")})
    msg = loop.incident()
    incident_id = json.loads(msg.buttons["rootgraph_remediation_approve"])["incident_id"]
    out = subprocess.run([sys.executable, "-m", "rootgraph.cli", "remediate", "--server", loop.addr, "approve",
                          incident_id, "--by", "erin", "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["decision"] == "approved"
    rec = loop.record()
    assert (rec.decision, rec.decided_by) == ("approved", "erin")
    assert rec.execution is not None and not rec.execution.ok and rec.execution.exit_status == 4
    steps = loop.client.remediation_steps(incident_id)
    assert [s.kind for s in steps] == ["proposed", "approved", "executed"]  # no outcome for a failed action
    assert steps[2].exit_status == 4 and "no such rollout" in json.loads(steps[2].detail)["output_tail"]
    assert json.loads(steps[2].detail)["error"] == "exited with status 4"
    loop.chat.wait_for(lambda p: p.path == "/slack" and "FAILED: exited with status 4" in p.body.get("text", ""))
    assert not loop.client.get_incident(incident_id).feedback


def test_a_policy_approves_once_outcomes_back_it_and_its_version_is_on_every_step(make_loop, neo4j_settings,  # noqa: ANN001
                                                                                  tmp_path) -> None:
    from rootgraph.modelops import ModelOps
    from rootgraph.server.wiring import model_stores

    policy = tmp_path / "policy.toml"
    policy.write_text('name = "failover-backends"\nversion = "3"\n[[allow]]\naction = "failover"\n'
                      'context = "backend/no-deploy"\nmin_confidence = 0.6\nmin_outcomes = 1\n')
    loop = make_loop(policy_file=str(policy))
    # First incident: no history yet, so the policy does not act; a person approves.
    msg = loop.incident()
    assert loop.chat.click(msg, approve=True, user="alice")[0] == 200
    loop.chat.wait_for(lambda p: p.path == "/slack" and "executed, exit status 0" in p.body.get("text", ""))
    loop.writer.apply_deltas(minutes(44, 60, fault=(40, 46)))
    first = loop.record()
    assert (first.decided_by, first.policy_version, first.outcome) == ("slack:alice", "", "resolved")
    # Learn from that outcome (rootgraph model train + promote) ...
    ops = ModelOps(*model_stores(neo4j_settings, neo4j_settings_driver(loop.writer)))
    version, _ = ops.train()
    ops.promote(version.version)
    # ... and the next such incident carries the confidence, which the policy accepts.
    loop.writer.apply_deltas(minutes(60, 104, fault=(100, 120)))
    deadline = time.monotonic() + 60
    while len(loop.daemon.records) < 2:
        assert time.monotonic() < deadline, "no second proposal"
        time.sleep(0.05)
    second = loop.daemon.records[1]
    assert second.proposal.learned is not None and second.proposal.learned.context == "backend/no-deploy"
    assert (second.proposal.learned.resolved, second.proposal.learned.total) == (1, 1)
    loop.chat.wait_for(lambda p: p.path == "/slack" and "executed, exit status 0" in p.body.get("text", "")
                       and second.proposal.incident_id in p.body.get("text", ""))
    loop.writer.apply_deltas(minutes(104, 120, fault=(100, 106)))
    assert second.done.wait(60)
    steps = loop.client.remediation_steps(second.proposal.incident_id)
    assert [s.kind for s in steps] == ["proposed", "approved", "executed", "outcome"]
    assert steps[1].actor == "policy:failover-backends@3"
    assert [s.policy_version for s in steps[1:]] == ["failover-backends@3"] * 3
    assert steps[0].policy_version == "" and second.outcome == "resolved"
