"""Accuracy benchmark (issue 6, part 3): the labelled suite through the full service.

    .venv/bin/python bench/accuracy.py                 # all 47 cases + peers
    .venv/bin/python bench/accuracy.py --quick         # CI smoke: 3 shortened cases, no peers
    .venv/bin/python bench/accuracy.py --cases sockshop-0 --no-peers
    make bench-peers-setup                             # once: .venv-peers for the peers

Per case of ``rootgraph.simulate.suite()``:

1. the case's OTLP JSON lines are simulated once with the real OpenTelemetry SDK
   (``bench/out/cases/<case>/``, reused while the spec is unchanged);
2. rootgraph's ``App`` runs in-process on loopback ports over the benchmark's own local
   Neo4j (instance ``accuracy``, Bolt 47787, HTTP 47774); the graph is cleared
   (``GraphAdmin.clear``) and the lines are replayed into ``POST /v1/traces`` as the
   OTLP/HTTP exporter sends them (protobuf, 4 requests in flight: several SDKs export
   at once); then ``Ingestor.flush_all`` lands the halves still waiting for a partner;
3. the label's deployments are recorded through ``RecordDeployment`` (gRPC): every
   simulated deployment (the bad one, the decoy, a rollback) is a rollout a CI/CD
   system performs and would report, so all are reported, at the rollout time. rootgraph
   also detects each from the ``service.version`` change in the spans; the two records
   differ in id/source and both name the same service, so nothing is double counted
   (a deployment only raises that service's prior). ``--deployments spans`` skips the API
   records (ablation: span detection alone);
4. ``RankCauses(start=incident start, end=incident end, top_k=5)`` (baseline: the
   30 minutes before, the API default) and, per root cause, ``BlastRadius(root,
   at=onset)`` three times: with the fault kind and size the root's entry in that answer
   shows (``Cause.fault_kind``/``fault_size``; none when the root is not listed), with
   the kind only, and with neither, all through gRPC with the typed client.

Scoring:

* AC@k = |top-k ∩ roots| / min(k, |roots|) (RCAEval's definition; one root: hit or
  miss); Avg@5 = mean of AC@1..AC@5.
* Entity ids are rootgraph's (the simulator labels with them). ``host:X`` and ``node:X``
  name the same machine in every shipped topology (``host.name`` = ``k8s.node.name``,
  as on Kubernetes), so a host fault is correct when a method names either.
* Decoys: a case fails its decoy check when a decoy service is ranked first.
* Calibration: Brier score of the top cause's probability against "top-1 was right".
* Blast radius (each of the three questions): predicted set = entities with ``P(impacted | do(fault)) >= 0.5`` (the
  what-if answer is "more likely affected than not"; the sweep over thresholds is in the
  report), the root itself excluded from both sides and ``user`` ignored; truth = the
  label's measured blast radius (``simulate/truth.py``). Micro-averaged precision and
  recall (TP/FP/FN summed over cases) and macro means over cases where defined.

Peers (TraceRCA and MicroRank from RCAEval, PyRCA's BayesianNetwork) run in
``.venv-peers`` via ``bench/peers.py`` on the same spans (``bench/common.py:peer_data``).
Results: ``bench/out/accuracy/`` (per-case JSON, report.md); ``--write`` replaces the
"Accuracy" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import replace
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    CASES, OUT, ROOT, Service, case_files, log, peer_data, post_otlp, rank_case, record_deployments, stop_neo4j,
)

from rootgraph.client import RootGraphClient  # noqa: E402
from rootgraph.simulate import Labels, ScenarioSpec, parse_otlp_json_line, suite  # noqa: E402

RESULTS = OUT / "accuracy"
PEERS_PY = ROOT / ".venv-peers" / "bin" / "python"
PEER_METHODS = ("tracerca", "microrank", "pyrca_bn")
#: CI smoke: three Sock Shop cases (service error, database error, bad deploy + decoy) on
#: 15 + 6 minutes of traffic instead of 30 + 12, so the whole run stays under 2 minutes.
QUICK = ("sockshop-01-error", "sockshop-03-backend_error", "sockshop-09-bad_deploy")
THRESHOLDS = (0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
BLAST_THRESHOLD = 0.5


def canon(entity: str) -> str:
    """One id per machine: ``node:X`` and ``host:X`` are the same host here."""
    return "host:" + entity[5:] if entity.startswith("node:") else entity


# -- rootgraph through the service -------------------------------------------------------


def _encode(line: str) -> bytes:
    return parse_otlp_json_line(line).SerializeToString()


def replay(svc: Service, traces: Path, workers: int = 4) -> tuple[int, float]:
    """POST every exported batch of ``traces``, in file order, to the OTLP/HTTP endpoint.

    Lines are decoded in parallel but sent one after the other, as the simulator's
    exporters sent them. Sending them concurrently reordered them, and a parent span
    processed before the earlier batch holding its children keeps their time as its own
    (``ingest/selftime.py``): self time -- and runner-up posteriors -- varied from run to
    run (a line mixes several services' spans, so no per-service split keeps the order).
    """
    t = time.perf_counter()
    n = 0
    with open(traces, encoding="utf-8") as f, ThreadPoolExecutor(workers) as pool:
        for body in pool.map(_encode, (line for line in f if line.strip())):  # results in file order
            post_otlp(svc.otlp_http, body)
            n += 1
    svc.app.ingestor.flush_all()
    return n, time.perf_counter() - t


def run_rootgraph(svc: Service, spec: ScenarioSpec, case_dir: Path, labels: Labels, deployments: str) -> dict:
    svc.reset()
    n, replay_s = replay(svc, case_dir / "traces.jsonl")
    out: dict = {"case": spec.name, "requests": n, "replay_s": round(replay_s, 2)}
    with RootGraphClient(svc.api, timeout_s=120) as rg:
        if deployments == "api":
            record_deployments(rg, spec, labels)
        ans = rank_case(rg, labels, out)
        out["no_clear_cause"] = ans.no_clear_cause
        out["notes"] = list(ans.notes)
        # What each ranked cause shows (Cause.fault_kind/fault_size), as a client reads it.
        shows = {canon(c.entity): (c.fault_kind, c.fault_size) for c in ans.causes}
        known = {e for e, _ in rg.service_graph().entities}
        answers: dict[str, dict[str, dict[str, float]]] = {key: {} for key, _ in BLAST_QUESTIONS}
        kinds: dict[str, list] = {}
        for root in labels.root_causes:
            target = root
            if root.startswith(("host:", "node:")) and root not in known:
                alt = ("node:" if root.startswith("host:") else "host:") + root.split(":", 1)[1]
                target = alt if alt in known else root
            # Three questions (BLAST_QUESTIONS): the blast radius of the fault the cause's
            # evidence shows, kind and size (the ChatOps flow: RankCauses, then BlastRadius
            # of a cause with its fault_kind and fault_size); of its kind only; of a fault
            # of unknown kind. Ground truth never picks them; a root RankCauses did not
            # list is asked without either.
            kind, size = shows.get(canon(root), ("", 0.0))
            kinds[root] = [kind, round(size, 4)]
            asks = {"blast_observed": (kind, size), "blast_kind": (kind, 0.0), "blast": ("", 0.0)}
            done: dict[tuple[str, float], dict[str, float]] = {}
            for key, _ in BLAST_QUESTIONS:
                ask = asks[key]
                if ask not in done:
                    try:
                        br = rg.blast_radius(target, fault_kind=ask[0], fault_size=ask[1], at=labels.onset_s)
                        done[ask] = {i.entity: round(i.probability, 4) for i in br.impacts}
                    except Exception as exc:  # noqa: BLE001 - NOT_FOUND for an entity rootgraph never saw
                        done[ask] = {"__error__": str(getattr(exc, "details", lambda: exc)())[:200]}
                answers[key][root] = done[ask]
        out.update(answers)
        out["blast_kinds"] = kinds
    return out


# -- scoring -----------------------------------------------------------------------------


def ac_at(ranks: list[str], roots: tuple[str, ...], k: int) -> float:
    want = {canon(r) for r in roots}
    got = {canon(r) for r in ranks[:k]}
    return len(want & got) / min(k, len(want))


def score_ranks(ranks: list[str], labels: Labels) -> dict:
    acs = [ac_at(ranks, labels.root_causes, k) for k in range(1, 6)]
    decoy_first = bool(ranks) and ranks[0] in labels.decoys
    return {"ac1": acs[0], "ac3": acs[2], "avg5": sum(acs) / 5, "decoy_first": decoy_first}


#: (result key, what was asked): BlastRadius questions per root, the first is the headline
BLAST_QUESTIONS = (("blast_observed", "the cause's `fault_kind` + `fault_size`"),
                   ("blast_kind", "the cause's `fault_kind` only"), ("blast", "none (unknown kind and size)"))


def blast_answer(res: dict, labels: Labels, key: str = "blast") -> tuple[dict[str, float], set[str]] | None:
    """One question's (``BLAST_QUESTIONS``) answer: entity -> P(impacted), the highest over
    the roots asked, and the true impacted set; roots and ``user`` left out of both. None
    when a root's question failed."""
    if key not in res or any("__error__" in b for b in res[key].values()):
        return None
    left_out = {canon(r) for r in labels.root_causes} | {"user"}
    p: dict[str, float] = {}
    for b in res[key].values():
        for e, v in b.items():
            if canon(e) not in left_out:
                p[canon(e)] = max(p.get(canon(e), 0.0), v)
    return p, {canon(e) for e in labels.blast_radius} - left_out


def blast_sets(res: dict, labels: Labels, threshold: float,
               key: str = "blast") -> tuple[set[str], set[str]] | None:
    """(predicted, true) impacted sets of one question: predicted = P >= ``threshold``."""
    answer = blast_answer(res, labels, key)
    if answer is None:
        return None
    p, truth = answer
    return {e for e, v in p.items() if v >= threshold}, truth


def _asked(k: list) -> str:
    """``errors 0.41`` / ``latency 230`` / ``–``: what a root's blast radius was asked with."""
    kind, size = k
    return f"{kind} {size:.3g}" if kind and size else (kind or "–")


def blast_brier(results: list[tuple[dict, Labels]], key: str) -> float:
    """Brier score of P(impacted) over every entity answered or truly impacted (an entity
    the answer does not list has P = 0): threshold-free."""
    se: list[float] = []
    for res, labels in results:
        answer = blast_answer(res, labels, key)
        if answer is not None:
            p, truth = answer
            se.extend((p.get(e, 0.0) - (e in truth)) ** 2 for e in set(p) | truth)
    return statistics.mean(se) if se else float("nan")


def blast_scores(results: list[tuple[dict, Labels]], threshold: float, key: str = "blast") -> dict:
    tp = fp = fn = 0
    precs, recs, missing = [], [], 0
    for res, labels in results:
        s = blast_sets(res, labels, threshold, key)
        if s is None:
            missing += 1
            continue
        pred, truth = s
        a, b, c = len(pred & truth), len(pred - truth), len(truth - pred)
        tp, fp, fn = tp + a, fp + b, fn + c
        if pred:
            precs.append(a / len(pred))
        if truth:
            recs.append(a / len(truth))
    return {"precision": tp / (tp + fp) if tp + fp else 1.0, "recall": tp / (tp + fn) if tp + fn else 1.0,
            "macro_precision": statistics.mean(precs) if precs else float("nan"),
            "macro_recall": statistics.mean(recs) if recs else float("nan"), "unanswered": missing,
            "tp": tp, "fp": fp, "fn": fn}


# -- peers -------------------------------------------------------------------------------


def run_peers(cases: list[tuple[ScenarioSpec, Path, Labels]], timeout_s: float) -> dict:
    if not PEERS_PY.exists():
        log(f"peers skipped: {PEERS_PY} missing (make bench-peers-setup)")
        return {}
    dirs = []
    for spec, d, labels in cases:
        dirs.append(str(peer_data(d, labels)))
    out = RESULTS / "peers.json"
    log(f"peers: {len(dirs)} cases in {PEERS_PY.parent.parent.name}")
    subprocess.run([str(PEERS_PY), str(ROOT / "bench" / "peers.py"), "--out", str(out),
                    "--timeout-s", str(timeout_s), *dirs], check=True,
                   env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return json.loads(out.read_text())


# -- report ------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return "–" if x != x else f"{x:.2f}"


def report(rows: list[tuple[ScenarioSpec, Labels, dict]], peers: dict, deployments: str, wall_s: float) -> str:
    methods = ["rootgraph"] + [m for m in PEER_METHODS if any(k.endswith("::" + m) for k in peers)]

    def ranks_of(method: str, case: str, res: dict) -> list[str] | None:
        if method == "rootgraph":
            return res["ranks"]
        r = peers.get(f"{case}::{method}", {})
        return r.get("ranks") if "ranks" in r else None

    all_rows = list(rows)
    scored: dict[str, dict[str, dict]] = defaultdict(dict)
    for spec, labels, res in rows:
        for m in methods:
            ranks = ranks_of(m, spec.name, res)
            scored[m][spec.name] = score_ranks(ranks or [], labels) | {"failed": ranks is None}

    def agg(m: str, names: list[str]) -> dict:
        xs = [scored[m][n] for n in names]
        nan = float("nan")  # e.g. "without host cases" of a host-only subset
        return {k: statistics.mean(x[k] for x in xs) if xs else nan for k in ("ac1", "ac3", "avg5")} | {
            "n": len(xs), "failed": sum(x["failed"] for x in xs)}

    all_names = [s.name for s, _, _ in rows]
    # Peers are compared on the cases every peer was run on (attempted: a timeout or a
    # crash counts as a miss); rootgraph's own line over all cases comes first.
    names = [n for n in all_names if all(f"{n}::{m}" in peers for m in methods[1:])]
    rows = [r for r in rows if r[0].name in set(names)]
    groups_topo: dict[str, list[str]] = defaultdict(list)
    groups_kind: dict[str, list[str]] = defaultdict(list)
    for spec, labels, _ in rows:
        topo = spec.topology if not spec.topology.startswith("generated") else spec.topology.rsplit("-", 1)[0]
        groups_topo[topo].append(spec.name)
        groups_kind[labels.fault_kind if len(labels.root_causes) == 1 else "multi"].append(spec.name)
    decoy_cases = [s.name for s, l, _ in rows if l.decoys]
    non_host = [s.name for s, l, _ in rows if l.fault_kind != "host"]

    L = []
    L.append(f"{len(all_rows)} cases (peers run on {len(names)}), deployments recorded via {'RecordDeployment + span detection' if deployments == 'api' else 'span detection only'}"
             + (f"; wall time {wall_s / 60:.1f} min" if wall_s >= 1 else "") + ".\n")
    L.append("| method | cases | AC@1 | AC@3 | Avg@5 | AC@1 w/o host cases | decoy ranked first | failed/timeout |")
    L.append("|---|---|---|---|---|---|---|---|")
    if len(names) < len(all_names):
        a = agg("rootgraph", all_names)
        nh = [n for n in all_names if scored["rootgraph"][n] is not None and n in {s.name for s, l, _ in all_rows if l.fault_kind != "host"}]
        b = agg("rootgraph", nh)
        dc = [s.name for s, l, _ in all_rows if l.decoys]
        dec = sum(scored["rootgraph"][n]["decoy_first"] for n in dc)
        L.append(f"| rootgraph (all cases) | {len(all_names)} | {a['ac1']:.2f} | {a['ac3']:.2f} | {a['avg5']:.2f} | "
                 f"{b['ac1']:.2f} | {dec}/{len(dc)} | {a['failed']} |")
    for m in methods:
        a, b = agg(m, names), agg(m, non_host)
        dec = sum(scored[m][n]["decoy_first"] for n in decoy_cases)
        L.append(f"| {m}{' (peer cases)' if len(names) < len(all_names) else ''} | {len(names)} | "
                 f"{a['ac1']:.2f} | {a['ac3']:.2f} | {a['avg5']:.2f} | {b['ac1']:.2f} | "
                 f"{dec}/{len(decoy_cases)} | {a['failed']} |")
    for title, groups in (("topology", groups_topo), ("fault kind", groups_kind)):
        L.append(f"\nAC@1 / AC@3 per {title}:\n")
        L.append(f"| {title} | n | " + " | ".join(methods) + " |")
        L.append("|---|---|" + "---|" * len(methods))
        for g, ns in sorted(groups.items()):
            cells = [f"{agg(m, ns)['ac1']:.2f} / {agg(m, ns)['ac3']:.2f}" for m in methods]
            L.append(f"| {g} | {len(ns)} | " + " | ".join(cells) + " |")
    losses = []
    for title, groups in (("all", {"all cases": names}), ("topology", groups_topo), ("fault kind", groups_kind)):
        for g, ns in sorted(groups.items()):
            mine = agg("rootgraph", ns)
            for m in methods[1:]:
                theirs = agg(m, ns)
                for key, label in (("ac1", "AC@1"), ("ac3", "AC@3")):
                    if theirs[key] > mine[key] + 1e-9:
                        losses.append(f"{m} beats rootgraph on {label} for {g} ({theirs[key]:.2f} vs {mine[key]:.2f})")
    L.append("\nWhere rootgraph loses to a peer: " + ("; ".join(losses) if losses else "nowhere in this run") + ".\n")
    dec_rows = [(s, l, r) for s, l, r in all_rows if l.decoys]
    L.append("\nDecoy cases (an innocent deployment 2 minutes before onset; must not be ranked first):\n")
    L.append("| case | truth | decoy | rootgraph top-1 | " + " | ".join(methods[1:]) + " |")
    L.append("|---|---|---|---|" + "---|" * (len(methods) - 1))
    for s, l, r in dec_rows:
        peer_top = [("(not run)" if f"{s.name}::{m}" not in peers
                     else ((ranks_of(m, s.name, r) or ["(failed)"]) or ["–"])[0]) for m in methods[1:]]
        L.append(f"| {s.name} | {', '.join(l.root_causes)} | {', '.join(l.decoys)} | {r['ranks'][0] if r['ranks'] else '–'} | "
                 + " | ".join(peer_top) + " |")
    # calibration
    briers, conf = [], []
    for s, l, r in all_rows:
        p = r["probs"][0] if r["probs"] else 0.0
        hit = bool(r["ranks"]) and canon(r["ranks"][0]) in {canon(x) for x in l.root_causes}
        briers.append((p - float(hit)) ** 2)
        conf.append((p, hit))
    L.append(f"\nCalibration (rootgraph): Brier score of the top cause's probability vs top-1 correct = "
             f"**{statistics.mean(briers):.3f}** (0 is perfect; always answering 0.5 scores 0.25); "
             f"mean top probability {statistics.mean(p for p, _ in conf):.2f} vs top-1 hit rate "
             f"{statistics.mean(h for _, h in conf):.2f}.\n")
    bins = [(0.0, 0.5), (0.5, 0.8), (0.8, 0.95), (0.95, 1.01)]
    L.append("| top probability | cases | top-1 correct |")
    L.append("|---|---|---|")
    for lo, hi in bins:
        xs = [h for p, h in conf if lo <= p < hi]
        L.append(f"| [{lo:.2f}, {min(hi, 1):.2f}) | {len(xs)} | {(sum(xs) / len(xs)) if xs else float('nan'):.2f} |")
    # blast radius
    pairs = [(r, l) for _, l, r in all_rows]
    asked = Counter(k[0] or "(none)" for r, _ in pairs for k in r.get("blast_kinds", {}).values())
    L.append(f"\nBlast radius (rootgraph ``BlastRadius(root)`` vs the measured truth, root excluded), "
             f"predicted = P ≥ {BLAST_THRESHOLD}. Three questions: the fault the root's own evidence shows "
             f"in the RankCauses answer, kind and size (``Cause.fault_kind``/``fault_size``, how a client asks "
             f"next; kinds: " + ", ".join(f"{k} {n}" for k, n in sorted(asked.items())) + "), its kind only, "
             "and nothing (an even error/latency mix of any size):\n")
    L.append("| asked with | precision (micro) | recall (micro) | precision (macro) | recall (macro) | TP | FP | FN "
             "| unanswered | Brier of P(impacted) |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for key, name in BLAST_QUESTIONS:
        b = blast_scores(pairs, BLAST_THRESHOLD, key)
        L.append(f"| {name} | **{b['precision']:.3f}** | **{b['recall']:.3f}** | {_fmt(b['macro_precision'])} | "
                 f"{_fmt(b['macro_recall'])} | {b['tp']} | {b['fp']} | {b['fn']} | {b['unanswered']} | "
                 f"{blast_brier(pairs, key):.3f} |")
    L.append("\nThreshold sweep (precision / recall, micro):\n")
    L.append("| threshold | " + " | ".join(name for _, name in BLAST_QUESTIONS) + " |")
    L.append("|---|" + "---|" * len(BLAST_QUESTIONS))
    for th in THRESHOLDS:
        cells = []
        for key, _ in BLAST_QUESTIONS:
            b = blast_scores(pairs, th, key)
            cells.append(f"{b['precision']:.2f} / {b['recall']:.2f}")
        mark = " **(reported)**" if th == BLAST_THRESHOLD else ""
        L.append(f"| {th}{mark} | " + " | ".join(cells) + " |")
    # per-case table
    L.append("\nPer case (rootgraph top-3 with probabilities; ✗ = top-1 wrong):\n")
    L.append("| case | truth | rootgraph top-3 | blast P/R (kind, size asked); P/R asked nothing | " + " | ".join(f"{m} top-1" for m in methods[1:]) + " |")
    L.append("|---|---|---|---|" + "---|" * (len(methods) - 1))
    for s, l, r in all_rows:
        ok = scored["rootgraph"][s.name]["ac1"] >= 1.0
        top3 = ", ".join(f"{e} {p:.2f}" for e, p in zip(r["ranks"][:3], r["probs"][:3])) or "(none)"
        bprs = []
        for key in ("blast_observed", "blast"):  # the headline question, and none
            bs = blast_sets(r, l, BLAST_THRESHOLD, key)
            if bs is None:
                bprs.append("n/a")
            else:
                pred, truth = bs
                tp = len(pred & truth)
                bprs.append(f"{tp}/{len(pred)} · {tp}/{len(truth)}")
        kinds = "/".join(_asked(k) for k in r.get("blast_kinds", {}).values())
        bpr = f"{bprs[0]} ({kinds}); {bprs[1]}"
        peer_top = []
        for m in methods[1:]:
            rk = ranks_of(m, s.name, r)
            if f"{s.name}::{m}" not in peers:
                peer_top.append("(not run)")
            elif rk is None:
                peer_top.append("(failed)")
            else:
                hit = bool(rk) and canon(rk[0]) in {canon(x) for x in l.root_causes}
                peer_top.append(("" if hit else "✗ ") + (rk[0] if rk else "–"))
        L.append(f"| {s.name} | {', '.join(l.root_causes)} | {'' if ok else '✗ '}{top3} | {bpr} | "
                 + " | ".join(peer_top) + " |")
    return "\n".join(L) + "\n"


PREAMBLE = """\
How it runs: every case of `rootgraph.simulate.suite()` (47: Sock Shop, Online Boutique,
a Train-Ticket subset, two generated graphs of 60 and 200 services) is simulated once with
the real OpenTelemetry SDK (30 min baseline + 12 min incident, 3 user requests/s), then
replayed into an in-process `App` (OTLP/HTTP `POST /v1/traces`, protobuf, as the OTLP/HTTP
exporter sends it) over the benchmark's own Neo4j (graph cleared between cases),
deployments recorded through `RecordDeployment`, halves flushed (`Ingestor.flush_all`),
then `RankCauses(incident start, incident end, top_k=5)` and `BlastRadius(root)` through
gRPC, the latter three times: with the fault kind and size the root's own evidence shows in
that RankCauses answer (`Cause.fault_kind`/`fault_size`, the ChatOps flow), with the kind
only, and with neither. Decisions:

* **Deployments**: every simulated deployment (bad, decoy, rollback) is a rollout a CI/CD
  system performs, so all are reported via `RecordDeployment` at the rollout time; rootgraph
  also detects each from the `service.version` change in the spans (both records name the
  same service; a deployment only raises that service's prior, so nothing is counted twice).
  `--deployments spans` runs the span-detection-only ablation.
* **Ids**: labels use rootgraph ids. `host:X` and `node:X` are the same machine in every
  shipped topology (`host.name` = `k8s.node.name`), so a host fault is correct when a method
  names either. Queue faults are labelled `queue:<system>/<destination>`, rootgraph's id.
* **AC@k** = |top-k ∩ roots| / min(k, |roots|) (RCAEval's definition); Avg@5 = mean AC@1..5.
* **Blast radius**: predicted = entities with what-if `P(visibly impacted | do(fault)) ≥ 0.5`
  ("more likely affected than not"; the sweep shows other thresholds), root excluded from
  both sides, `user` ignored; truth = the label's measured blast radius (an entity is in it
  when the fault caused ≥ 1 % of its spans to fail, at least 5, or added ≥ 20 % to its
  mean duration; `simulate/truth.py`).
* **Calibration**: Brier score of the top cause's probability vs "top-1 was right".

Peers, same cases, same spans (`bench/peers.py`, own virtualenv `.venv-peers`:
`make bench-peers-setup`): one row per span in RCAEval's `traces.csv` columns, with
rootgraph's ids; a client span to an uninstrumented database/queue/external API gets a
child row named as rootgraph's virtual node, so peers *can* name backends.

* **TraceRCA** (`RCAEval.e2e.tracerca`, RCAEval 1.8.1) and **MicroRank**
  (`RCAEval.e2e.microrank`): unchanged; MicroRank gets the last 10 min of baseline (its
  trace-kind step is O(traces²) in pure Python). Both detect anomalies from span
  *durations* only, so error-only faults are mostly invisible to them -- that is the
  method, not the feed.
* **PyRCA BayesianNetwork** (`sfr-pyrca` 1.0.1): PyRCA's documented flow -- per-entity
  10 s series (mean duration, error rate), `StatsDetector` on the baseline picks the
  anomalous metrics, network = the call graph seen in the spans (callee → caller per
  metric, cycles cut at the weakest edge), a root node per entity and per shared host.
  `BayesianNetwork.train` asserts both states of every variable, which a healthy baseline
  never has, so it is trained on baseline + incident; never-anomalous metrics are dropped.
* Each peer gets at most 120 s per case (`--peer-timeout-s`); a timeout counts as a miss
  (listed under failed/timeout). rootgraph answers every case in ~0.1-2.5 s.
* **PDiagnose**: not run. RCAEval 1.8.1 ships it only as a `main()` with hard-coded
  dataset paths (`./data/mm-ob/...`) that also needs metrics and logs; there is no
  callable method to feed traces to.
* **Install**: `pip install sfr-pyrca` fails on Python 3.11: its dependency `javabridge`
  1.0.19 does not compile (`_javabridge.c: fatal error: longintrepr.h: No such file or
  directory`; Python 3.11 moved that header). javabridge is only used by PyRCA's
  Tetrad/pycausal wrappers, so sfr-pyrca is installed with `--no-deps` plus its other
  dependencies. sfr-pyrca pins `scikit-learn<1.2` (so `numpy<2`), which conflicts with
  rootgraph's runtime (pgmpy on scikit-learn 1.9 / numpy 2): hence the separate virtualenv.
  The `bench` extra in pyproject.toml names both packages for reference.

"""


def write_section(path: Path, title: str, body: str) -> None:
    """Replace (or append) the ``## title`` section of BENCHMARKS.md, leaving the rest."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\nEvery number we quote, with the command that produced it.\n"
    head = f"## {title}\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, x in enumerate(lines) if x == head), None)
    if start is None:
        text = text.rstrip("\n") + "\n\n" + head + "\n" + body
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        text = "".join(lines[:start]) + head + "\n" + body + ("\n" if end < len(lines) else "") + "".join(lines[end:])
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help=f"CI smoke: {len(QUICK)} cases, no peers")
    p.add_argument("--cases", default="", help="comma-separated substrings of case names")
    p.add_argument("--no-peers", action="store_true")
    p.add_argument("--peers-only", action="store_true", help="reuse bench/out/accuracy/rootgraph.json")
    p.add_argument("--deployments", choices=["api", "spans"], default="api")
    p.add_argument("--peer-timeout-s", type=float, default=120.0)
    p.add_argument("--regenerate", action="store_true", help="simulate the cases again")
    p.add_argument("--generate-only", action="store_true", help="only simulate the case files")
    p.add_argument("--reverse", action="store_true", help="with --generate-only: from the last case")
    p.add_argument("--keep-neo4j", action="store_true", help="leave the benchmark Neo4j running")
    p.add_argument("--write", action="store_true", help="replace the Accuracy section of BENCHMARKS.md")
    p.add_argument("--stored-peers", action="store_true",
                   help="report the peer results stored in bench/out/accuracy/peers*.json, run none")
    p.add_argument("--resume", action="store_true", help="skip cases already in this run's results file")
    p.add_argument("--tag", default="", help="suffix of this run's results file (parallel runs on "
                   "other Neo4j instances: ROOTGRAPH_BENCH_INSTANCE/_BOLT_PORT/_HTTP_PORT)")
    args = p.parse_args(argv)

    t_start = time.perf_counter()
    specs = suite()
    if args.quick:
        specs = [replace(s, name=s.name + "-quick", baseline_s=900.0, incident_s=360.0)
                 for s in specs if s.name in QUICK]
    if args.cases:
        keys = args.cases.split(",")
        specs = [s for s in specs if any(k in s.name for k in keys)]
    RESULTS.mkdir(parents=True, exist_ok=True)
    log(f"{len(specs)} cases")
    if args.generate_only:  # e.g. a second process simulating from the end of the suite
        for spec in (reversed(specs) if args.reverse else specs):
            case_files(spec, CASES, args.regenerate)
        return 0
    cases = []

    stem = "rootgraph" if args.deployments == "api" else "rootgraph-spans"
    rg_file = RESULTS / (f"{stem}-{args.tag}.json" if args.tag else f"{stem}.json")
    done: dict[str, dict] = {}
    if args.peers_only:  # merge the answers of every (possibly parallel, --tag) run
        for f in sorted(RESULTS.glob(f"{stem}*.json"), key=lambda f: f.stat().st_mtime):  # newest wins
            if args.deployments == "api" and f.name.startswith("rootgraph-spans"):
                continue
            done.update(json.loads(f.read_text()))
    if args.resume and rg_file.exists():
        done = json.loads(rg_file.read_text())
    ran = 0  # cases answered by this invocation (not read back with --resume)
    if not args.peers_only:
        # RankCauses is what this measures: no detector judging and ranking beside it
        # (bench/detection.py measures the detector).
        svc = Service(detector_interval_seconds=0)
        try:
            for spec in specs:
                if spec.name in done:
                    cases.append((spec, *case_files(spec, CASES)))
                    continue
                d, labels = case_files(spec, CASES, args.regenerate)  # simulated when missing
                cases.append((spec, d, labels))
                r = run_rootgraph(svc, spec, d, labels, args.deployments)
                ran += 1
                done[spec.name] = r
                hit = "ok " if r["ranks"] and canon(r["ranks"][0]) in {canon(x) for x in labels.root_causes} else "MISS"
                log(f"  {hit} {spec.name:38s} replay {r['replay_s']:5.1f} s  rank {r['rank_ms']:6.0f} ms  "
                    f"top {r['ranks'][:3]} {r['probs'][:3]}")
                if not args.quick:
                    rg_file.write_text(json.dumps(done, indent=1))
        finally:
            svc.close()
            if not args.keep_neo4j:
                stop_neo4j()
    if args.peers_only:  # the peers need the case files (simulated here when missing)
        cases = [(spec, *case_files(spec, CASES)) for spec in specs]
    if args.stored_peers:  # what earlier (possibly parallel) peer runs stored, nothing run now
        peers = {}
        for f in sorted(RESULTS.glob("peers*.json"), key=lambda f: f.stat().st_mtime):
            peers.update(json.loads(f.read_text()))
    else:
        peers = {} if (args.no_peers or args.quick) else run_peers(cases, args.peer_timeout_s)
    rows = [(s, l, done[s.name]) for s, _, l in cases if s.name in done]
    # No wall time when every answer was read back: it would time nothing.
    text = report(rows, peers, args.deployments, time.perf_counter() - t_start if ran else 0.0)
    (RESULTS / "report.md").write_text(text)
    print(text)
    if args.write:
        nf = ROOT / "bench" / "accuracy-notes.md"  # the analysis of the last full run, by hand
        notes = (nf.read_text() + "\n") if nf.exists() and not args.quick else ""
        cmd = ".venv/bin/python bench/accuracy.py --write" + ("" if args.deployments == "api" else " --deployments spans")
        write_section(ROOT / "BENCHMARKS.md", "Accuracy",
                      f"Command: `make bench-accuracy`, i.e. `make bench-peers-setup` then `{cmd}` "
                      f"(CI smoke: `.venv/bin/python bench/accuracy.py --quick`).\n\n" + PREAMBLE + notes + text)
    if args.quick:  # smoke: the pipeline answers, and answers these easy cases right
        bad = [s.name for s, l, r in rows
               if not r["ranks"] or canon(r["ranks"][0]) not in {canon(x) for x in l.root_causes}]
        if bad:
            print(f"smoke FAILED: wrong or no top cause for {bad}")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
