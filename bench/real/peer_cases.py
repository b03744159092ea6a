"""The peers on the Nezha cases: the same windows and baselines rootgraph gets (``run.py``).

    .venv/bin/python bench/real/peer_cases.py            # write inputs, run bench/peers.py, score
    .venv/bin/python bench/real/peer_cases.py --report   # score the stored peer answers only

Per complete fault, ``run.build_cases`` gives the incident window and the baseline; this
writes the spans of both through ``common.write_peer_files`` (RCAEval's ``traces.csv``
layout, rootgraph's entity ids, the call graph in ``meta.json``: what ``bench/peers.py``
reads for the simulator's cases), then runs ``bench/peers.py`` in ``.venv-peers`` and
scores its answers with ``run.score`` next to rootgraph's (``results.json``).

Which spans: every span of each trace whose earliest span starts inside the baseline or
inside the window (traces never cross a stretch, so a trace is complete or absent; a
window cut through traces would read as a latency change at its edges). Kinds come from
``nezha.derive_kinds`` over the whole stretch, as rootgraph's input does (the peers'
metric frames use SERVER spans). ``inject_time`` for the peers = the window start:
RCAEval's methods treat everything ending before it as normal and the rest as the
incident, so the file holds nothing after the window. The data has no status codes
(``error`` = 0 everywhere) and no host placement (no ``runs_on``, so PyRCA gets no host
root nodes). Control windows are not run: the peers always name a cause, and have no
probability to hold against a threshold.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # bench/: common

import nezha  # noqa: E402
import run  # noqa: E402
from common import ROOT, write_peer_files  # noqa: E402

PEERS_PY = ROOT / ".venv-peers" / "bin" / "python"
PEER_METHODS = ("tracerca", "microrank", "pyrca_bn")
OUT = ROOT / "bench" / "out" / "real" / "peers"  # git-ignored: regenerated inputs
PEER_RESULTS = HERE / "peers.json"  # the peers' answers, kept beside results.json
#: The dataset README's published service-level AS@1/3/5 (all 56 faults, traces + logs +
#: metrics; the Nezha paper's Table 3), for the table only.
PUBLISHED = {"Nezha": (92.86, 96.43, 96.43), "PDiagnose": (41.07, 73.21, 82.14), "MicroRank": (41.07, 48.21, 62.50),
             "TraceAnomaly": (30.35, 33.92, 48.21), "MicroRCA": (16.07, 62.50, 92.75),
             "MicroScope": (12.50, 41.07, 55.35)}


def log(*a: object) -> None:
    print(*a, flush=True)


def fault_cases(days: list[str], b: int, incident_s: int) -> tuple[dict[str, list[nezha.Stretch]], list[run.Case]]:
    plan, cases = {}, []
    for day in days:
        st = nezha.stretches(day)
        cs = [c for c in run.build_cases(day, st, b, incident_s)[0] if c.kind != "control"]
        plan[day], cases = run.needed(st, cs), cases + cs
    return plan, cases


def write_inputs(plan: dict[str, list[nezha.Stretch]], cases: list[run.Case]) -> list[Path]:
    """One ``OUT/<case>/`` per fault (rewritten every run: cheap next to the peers)."""
    rows: dict[str, list[list]] = defaultdict(list)
    for stretches in plan.values():
        for st in stretches:
            span_rows = nezha.read_stretch(st)
            kinds = nezha.derive_kinds(span_rows, nezha.KindStats())
            first: dict[bytes, int] = {}
            for t, _s, _p, _pod, _op, start, _end in span_rows:
                if start < first.get(t, 1 << 63):
                    first[t] = start
            for c in cases:
                spans = [w for w in (c.baseline, (c.start_s, c.end_s)) if st.lo_s < w[1] and w[0] < st.hi_s]
                if not spans:
                    continue
                lo_hi = [(lo * 1_000_000_000, hi * 1_000_000_000) for lo, hi in spans]
                keep = {t for t, s0 in first.items() if any(lo <= s0 < hi for lo, hi in lo_hi)}
                for (t, s, p, pod, op, start, end), k in zip(span_rows, kinds):
                    if t in keep:
                        rows[c.name].append([t.hex(), s.hex(), p.hex(), nezha.entity_of(pod), op, op,
                                             start // 1000, max((end - start) // 1000, 1), 0, k, None])
    dirs = []
    for c in cases:
        d = write_peer_files(OUT / c.name, rows.pop(c.name, []), {}, case=c.name, inject_us=c.start_s * 1_000_000,
                             baseline_us=(c.baseline[0] * 1_000_000, c.baseline[1] * 1_000_000),
                             incident_us=(c.start_s * 1_000_000, c.end_s * 1_000_000))
        dirs.append(d)
    return dirs


def peer_results(cases: list[run.Case], answers: dict) -> dict[str, list[dict]]:
    """Per method, ``run.score``'s rows (a failed or timed-out method is a miss)."""
    out = {}
    for m in PEER_METHODS:
        rows = []
        for c in cases:
            a = answers.get(f"{c.name}::{m}", {})
            ranks = a.get("ranks", [])
            rows.append({"case": c.name, "kind": c.kind, "truth": c.truth, "canon": ranks, "probs": [],
                         "error": a.get("error") if "ranks" not in a else None})
        out[m] = rows
    return out


def table(rg: dict, peers: dict[str, dict], n_failed: dict[str, int]) -> str:
    """Per fault type: AC@1/3/5 and Avg@5 of rootgraph and each peer on the same cases."""
    methods = {"rootgraph": rg, **peers}
    L = ["| fault type | N | " + " | ".join(f"{m} AC@1/3/5 · Avg@5" for m in methods) + " |",
         "|---|---|" + "---|" * len(methods)]
    for t in (*nezha.FAULT_TYPES, "overall"):
        n = rg["faults"][t]["n"]
        cells = []
        for sc in methods.values():
            x = sc["faults"][t]
            cells.append("–" if not x["n"] else
                         f"{x['hits1']}/{x['n']} · {x['ac3']:.2f} · {x['ac5']:.2f} · {x['avg5']:.2f}")
        L.append(f"| {'**overall**' if t == 'overall' else t} | {n} | " + " | ".join(cells) + " |")
    failed = ", ".join(f"{m} {k}" for m, k in n_failed.items() if k)
    L.append("\nCells: AC@1 as hits/N · AC@3 · AC@5 · Avg@5." + (f" Failed or timed out (a miss): {failed}." if failed
                                                                 else " No peer failed or timed out."))
    L += ["\nOverall in %, next to the published service-level AS@1/3/5 (dataset README, the Nezha paper's "
          "Table 3: all 56 faults, the authors' windows and runs; Nezha itself on traces + logs + metrics). "
          "Ours: the 26 faults with complete traces, traces only, the windows above:\n",
          "| method | run | faults | AC@1 | AC@3 | AC@5 |", "|---|---|---|---|---|---|"]
    for m, sc in methods.items():
        x = sc["faults"]["overall"]
        pct = [100 * round(x[f"ac{k}"] * x["n"]) / x["n"] for k in (1, 3, 5)]
        L.append(f"| {m} | this benchmark | {x['n']} | " + " | ".join(f"{v:.2f}" for v in pct) + " |")
    for k, (a, b, c) in PUBLISHED.items():
        L.append(f"| {k} | published | 56 | {a:.2f} | {b:.2f} | {c:.2f} |")
    return "\n".join(L) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--days", default=",".join(nezha.DAYS))
    p.add_argument("--bucket-seconds", type=int, default=10)
    p.add_argument("--incident-s", type=int, default=60)
    p.add_argument("--timeout-s", type=float, default=300.0)
    p.add_argument("--methods", default=",".join(PEER_METHODS))
    p.add_argument("--rootgraph", type=Path, default=run.RESULTS, help="rootgraph's results.json to compare with")
    p.add_argument("--report", action="store_true", help="score the stored answers, run nothing")
    p.add_argument("--resume", action="store_true", help="keep every stored answer (failed ones too), run only cases not yet in peers.json")
    args = p.parse_args(argv)
    plan, cases = fault_cases(args.days.split(","), args.bucket_seconds, args.incident_s)
    if not args.report:
        if not PEERS_PY.exists():
            p.error(f"{PEERS_PY} missing: make bench-peers-setup")
        t = time.perf_counter()
        dirs = write_inputs(plan, cases)
        log(f"{len(dirs)} peer inputs in {time.perf_counter() - t:.0f} s under {OUT}")
        subprocess.run([str(PEERS_PY), str(ROOT / "bench" / "peers.py"), "--out", str(PEER_RESULTS),
                        "--timeout-s", str(args.timeout_s), "--methods", args.methods,
                        *([] if args.resume else ["--retry"]), *map(str, dirs)],
                       check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    answers = json.loads(PEER_RESULTS.read_text())
    rg = json.loads(args.rootgraph.read_text())
    by_name = {r["case"]: r for r in rg["cases"]}
    rg_rows = [by_name[c.name] for c in cases if c.name in by_name]
    if len(rg_rows) != len(cases):
        p.error(f"{args.rootgraph} has {len(rg_rows)} of the {len(cases)} fault cases: run run.py first")
    per = peer_results(cases, answers)
    scored = {m: run.score(rows) for m, rows in per.items()}
    print(table(run.score(rg_rows), scored, {m: sum(r["error"] is not None for r in rows) for m, rows in per.items()}))
    print(misses(rg_rows, per))
    return 0


def misses(rg_rows: list[dict], per: dict[str, list[dict]]) -> str:
    """rootgraph's top-1 misses, with what ranked first there and each peer's top 1."""
    short = lambda e: e.removeprefix(nezha.NAMESPACE + "/")  # noqa: E731
    L = ["| case | truth | rootgraph top 1 (P) | truth's rank (P) | " + " | ".join(per) + " |",
         "|---|---|---|---|" + "---|" * len(per)]
    for i, r in enumerate(rg_rows):
        if r["canon"][:1] == [r["truth"]]:
            continue
        top = f"{short(r['canon'][0])} ({r['probs'][0]:.2f})" if r["canon"] else "–"
        top += ", no_clear_cause" if r["no_clear_cause"] else ""
        k = r.get("truth_rank")
        rank = f"{k} ({r['probs'][k - 1]:.2f})" if k else "not ranked"
        peers = [("✓ " if rows[i]["canon"][:1] == [r["truth"]] else "") + (short(rows[i]["canon"][0]) if rows[i]["canon"]
                                                                         else "–") for rows in per.values()]
        L.append(f"| {r['case']} | {short(r['truth'])} | {top} | {rank} | " + " | ".join(peers) + " |")
    return "rootgraph's misses at top 1 (✓: the peer's top 1 is right):\n\n" + "\n".join(L) + "\n"


if __name__ == "__main__":
    sys.exit(main())
