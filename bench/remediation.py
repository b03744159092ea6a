"""Remediation-loop benchmark (issue 17 targets).

    ROOTGRAPH_BENCH_INSTANCE=... ROOTGRAPH_BENCH_BOLT_PORT=... ROOTGRAPH_BENCH_HTTP_PORT=... \
        .venv/bin/python bench/remediation.py --cases sockshop-01-error,...   # or all
    ... bench/remediation.py --learn 10                                       # outcomes -> confidence

``--cases``: suite cases (``rootgraph.simulate.suite()``) with a ``--lead``-minute healthy
lead-in (the detector needs 31 buckets before it judges one) and ``--incident`` minutes
of fault, each replayed over OTLP/HTTP into a fresh server (``common.Service``, the
detector on at its defaults) while ``rootgraph remediate`` runs against it: every
executable action kind allowed (dry run: the command is reported, not run), posting to
a :class:`rootgraph.remediate.receiver.LocalChat` that clicks Approve on every proposal
with a signed Slack request. Per case: was an action proposed, does it target the true
root cause, does it target a decoy (a service with an innocent deployment), and the
time from the incident's OPENED event commit to the proposal's webhook post.

``--learn N``: N bad-deployment incidents of the demo's Sock Shop in one graph, one after
the other; each is proposed (rollback), approved after its replay, "executed" by
``echo`` with dry run off, and followed by a tail: healthy traffic (the rollback worked
-> resolved) or the fault going on with a second service failing (-> made worse). After
each outcome the model is re-learned from all feedback (``rootgraph model train`` +
``promote``) and the rollback's learned confidence for its context is printed: it must
rise after a resolved outcome and fall after a made-worse one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Service, case_files, lead_in_specs, post_otlp  # noqa: E402

from rootgraph.client import RootGraphClient  # noqa: E402
from rootgraph.config import Secret  # noqa: E402
from rootgraph.remediate.callback import CallbackServer  # noqa: E402
from rootgraph.remediate.config import EXECUTABLE_ACTIONS, RemediateSettings  # noqa: E402
from rootgraph.remediate.daemon import Remediator  # noqa: E402
from rootgraph.remediate.receiver import LocalChat  # noqa: E402

SECRET = Secret("bench-remediation-signing-secret")


class Loop:
    def __init__(self, api: str, *, auto: str, dry_run: bool, outcome_buckets: int = 15) -> None:
        self.chat = LocalChat(secret=SECRET, auto=auto, user="bench")
        settings = RemediateSettings(
            server=api, slack_webhook_url=self.chat.slack_url, slack_signing_secret=SECRET,
            callback_address="127.0.0.1:0", decision_timeout_s=600.0, outcome_buckets=outcome_buckets,
            allowed_actions=EXECUTABLE_ACTIONS,
            executor={k: ("echo", k, "{target}", "{to_version}") for k in EXECUTABLE_ACTIONS},
            dry_run=dry_run).validate()
        self.daemon = Remediator(settings, lambda: RootGraphClient(api))
        self.callback = CallbackServer(settings.callback_address, SECRET, self.daemon.client).start()
        self.chat.callback_url = self.callback.url
        self.daemon.start(after_seq=0)

    def close(self) -> None:
        self.callback.stop()
        self.daemon.stop()
        self.chat.close()


def canon(entity: str) -> str:
    return "host:" + entity[5:] if entity.startswith("node:") else entity


def _wait_judged(svc: Service, timeout_s: float = 300.0) -> bool:
    b = svc.settings.bucket_seconds
    _, newest = svc.app.reader.bucket_range()
    end = time.monotonic() + timeout_s
    while (svc.app.detector._position or 0) < newest - b and time.monotonic() < end:  # noqa: SLF001
        time.sleep(0.2)
    return (svc.app.detector._position or 0) >= newest - b  # noqa: SLF001


def run_case(spec, case_dir: Path, labels) -> dict:  # noqa: ANN001
    from rootgraph.simulate import parse_otlp_json_line

    svc = Service(detector_interval_seconds=0)  # no detector while the previous case is cleared
    svc.reset()
    svc.close()
    svc = Service()
    loop = Loop(svc.api, auto="approve", dry_run=True)
    out: dict = {"case": spec.name, "truth": list(labels.root_causes), "decoys": list(labels.decoys)}
    try:
        for line in (case_dir / "traces.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                post_otlp(svc.otlp_http, parse_otlp_json_line(line).SerializeToString())
        svc.app.ingestor.flush_all()
        out["judged_to_end"] = _wait_judged(svc)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(r.execution for r in loop.daemon.records):
            time.sleep(0.2)  # the last proposal's approval and dry run
    finally:
        loop.close()
        svc.close()
    recs = loop.daemon.records
    truth = {canon(r) for r in labels.root_causes}
    out["proposals"] = [{"action": r.proposal.action, "target": r.proposal.target, "p": round(r.proposal.probability, 3),
                         "posted_after_s": round(r.posted_after_s, 3), "decision": r.decision,
                         "dry_run": bool(r.execution and r.execution.dry_run),
                         "true": canon(r.proposal.target) in truth,
                         "decoy": r.proposal.target in labels.decoys} for r in recs]
    return out


def cases(names: list[str], lead_min: int, incident_min: int) -> None:
    rows = []
    for spec in lead_in_specs(names, lead_min, incident_min):
        d, labels = case_files(spec)
        r = run_case(spec, d, labels)
        print(json.dumps(r), flush=True)
        rows.append(r)
    props = [p for r in rows for p in r["proposals"]]
    first = [r["proposals"][0] for r in rows if r["proposals"]]
    true = sum(p["true"] for p in props)
    decoy = sum(p["decoy"] for p in props)
    lat = [p["posted_after_s"] for p in props]
    print()
    print(f"Command: `bench/remediation.py --cases {','.join(names)} --lead {lead_min} --incident {incident_min}`")
    print()
    print("| measure | result | target |")
    print("|---|---|---|")
    print(f"| cases with a proposal | {len(first)}/{len(rows)} (the rest: no executable action suggested) | - |")
    print(f"| proposals whose action targets the true cause | {true}/{len(props)} "
          f"({100 * true / max(len(props), 1):.0f} %) | >= 90 % |")
    print(f"| proposals targeting a decoy deployment | {decoy} | 0 |")
    print(f"| actions proposed | {', '.join(sorted({p['action'] for p in props}))} | - |")
    print(f"| approved by the receiver's signed click, dry run reported | "
          f"{sum(p['decision'] == 'approved' and p['dry_run'] for p in props)}/{len(props)} | all |")
    if lat:
        print(f"| OPENED event commit -> proposal posted | median {statistics.median(lat):.2f} s, "
              f"max {max(lat):.2f} s (n={len(lat)}) | <= 2 s |")


# -- learning from outcomes ----------------------------------------------------------------

def learn(n: int, pattern: str) -> None:
    from rootgraph.modelops import ModelOps
    from rootgraph.server.wiring import model_stores
    from rootgraph.simulate import Fault, FaultKind, ScenarioSpec, run_live

    svc = Service(detector_interval_seconds=0)
    svc.reset()
    svc.close()
    svc = Service()
    loop = Loop(svc.api, auto="", dry_run=False)
    ops = ModelOps(*model_stores(svc.settings, svc.driver))
    otlp = f"http://127.0.0.1:{svc.app.ports['otlp_grpc']}"
    base = 1_767_225_600  # 2026-01-01T00:00:00Z
    period = 3600
    rows = []
    print("| # | outcome wanted | proposal | outcome judged | rollback resolved / total | learned confidence |")
    print("|---|---|---|---|---|---|")
    try:
        for i in range(n):
            want = "resolved" if pattern[i % len(pattern)] == "R" else "made_worse"
            start = base + i * period
            spec = ScenarioSpec(name=f"learn-{i}", topology="sockshop",
                                # a new version each time: ingest takes a re-deploy of the same
                                # version seen in spans for the first deployment again
                                faults=(Fault("sock-shop/orders", FaultKind.BAD_DEPLOY, onset_s=60.0,
                                              version=f"0.9.{i}"),),
                                decoys=("sock-shop/catalogue",), seed=500 + i, baseline_s=1800.0, incident_s=600.0,
                                rate_rps=3.0, start_epoch_s=start)
            seen = len(loop.daemon.records)
            run_live(spec, otlp, protocol="grpc")
            svc.app.ingestor.flush_all()
            _wait_judged(svc)
            deadline = time.monotonic() + 60
            rec = None
            while rec is None and time.monotonic() < deadline:
                rec = next(iter(loop.daemon.records[seen:]), None)
                time.sleep(0.2)
            if rec is None:
                rows.append({"i": i, "proposal": None})
                print(f"| {i + 1} | {want} | none | - | - | - |", flush=True)
                continue
            status, _ = loop.chat.click(loop.chat.wait_for(
                lambda p, pid=rec.proposal.proposal_id: p.path == "/slack" and pid in json.dumps(p.body)), approve=True)
            end_s = start + 1800 + 600
            tail_faults = () if want == "resolved" else (
                Fault("sock-shop/orders", FaultKind.ERROR, onset_s=0.0),
                Fault("sock-shop/catalogue", FaultKind.ERROR, onset_s=120.0))
            while rec.execution is None and not rec.done.is_set():
                time.sleep(0.1)
            run_live(ScenarioSpec(name=f"learn-{i}-tail", topology="sockshop", faults=tail_faults, seed=900 + i,
                                  baseline_s=420.0 if not tail_faults else 60.0,
                                  incident_s=60.0 if not tail_faults else 480.0,
                                  rate_rps=3.0, start_epoch_s=end_s), otlp, protocol="grpc")
            svc.app.ingestor.flush_all()
            rec.done.wait(180)
            version, _ = ops.train()
            ops.promote(version.version)
            stats = {(a, c): (r, t, p) for a, c, r, t, p in ops.params(version.version).action_stats}
            r_, t_, p_ = stats.get(("rollback", "service/deploy"), (0, 0, 0.0))
            rows.append({"i": i, "want": want, "outcome": rec.outcome, "target": rec.proposal.target,
                         "resolved": r_, "total": t_, "confidence": round(p_, 3), "click": status})
            print(f"| {i + 1} | {want} | rollback {rec.proposal.target} to {rec.proposal.to_version} | "
                  f"{rec.outcome or 'none'} | {r_} / {t_} | {p_:.3f} |", flush=True)
            # the last bucket of the tail must be judged before the next incident's data
            _wait_judged(svc)
    finally:
        loop.close()
        svc.close()
    conf = [r["confidence"] for r in rows if "confidence" in r]
    moves = [(rows[k]["outcome"], conf[k] - conf[k - 1]) for k in range(1, len(conf))]
    right = sum(1 for o, d in moves if (o == "resolved" and d > 0) or (o != "resolved" and d < 0))
    print()
    print(f"Command: `bench/remediation.py --learn {n} --pattern {pattern}`; the confidence moved the way "
          f"the outcome said in {right}/{len(moves)} steps")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--cases", default="", help="comma-separated suite case names, or all")
    p.add_argument("--lead", type=int, default=60)
    p.add_argument("--incident", type=int, default=6)
    p.add_argument("--learn", type=int, default=0, help="outcomes to learn from")
    p.add_argument("--pattern", default="RRRWRRRRWR", help="R = resolved, W = made worse, cycled")
    args = p.parse_args()
    if args.cases:
        cases(args.cases.split(","), args.lead, args.incident)
    if args.learn:
        learn(args.learn, args.pattern)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
