"""Benchmark of learning from outcomes (issue 7 "done when").

    .venv/bin/python bench/learning.py            # 24 pattern incidents, 20 others
    .venv/bin/python bench/learning.py --quick    # smaller sets

Incidents from ``rootgraph.inference.learning_scenarios``: a recurring pattern (the
orders database is the real cause behind a noisy ``shop/orders`` that reports the
failures as its own errors) and "the rest" (generated call graphs with one propagating
fault, bad deployments, a failing host, a genuinely faulty service, ``shop/orders``
itself broken by a release). The first half of the pattern is the feedback stream,
the second half is held out. Two feedback regimes:

* **pattern only**: feedback on the first k pattern incidents;
* **pattern + rest**: the same plus feedback on every other "rest" incident; the rest
  is then scored on the incidents that got no feedback.

For each k: AC@1 / AC@3 on the held-out pattern and on the rest, the learned prior of
the database and of the noisy service, and the time to learn and to evaluate.
"""

from __future__ import annotations

import argparse
import time
import warnings

warnings.filterwarnings("ignore")

from rootgraph.inference import ModelParams  # noqa: E402
from rootgraph.inference.learning import LabelledIncident, evaluate, learn  # noqa: E402
from rootgraph.inference.learning_scenarios import PATTERN_CAUSE, other_incidents, recurring_pattern  # noqa: E402


def _ex(pairs, tag: str) -> list[LabelledIncident]:  # noqa: ANN001
    return [LabelledIncident(f"{tag}{i}", w, (), c, "failover", "resolved") for i, (w, c) in enumerate(pairs)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n_pattern, n_gen = (12, 6) if args.quick else (24, 12)
    t = time.perf_counter()
    pattern = _ex([recurring_pattern(s) for s in range(n_pattern)], "p")
    rest = _ex(other_incidents(n_generated=n_gen, per_kind=2), "r")
    print(f"built {len(pattern)} pattern + {len(rest)} other incidents in {time.perf_counter() - t:.1f} s")
    train, held = pattern[: n_pattern // 2], pattern[n_pattern // 2:]
    rest_fb, rest_held = rest[::2], rest[1::2]
    ks = sorted({0, 1, 2, 4, 8, len(train)})
    for regime, extra, rest_eval in (("pattern only", [], rest), ("pattern + rest", rest_fb, rest_held)):
        print(f"\n### feedback: {regime}  (held-out pattern n={len(held)}, rest n={len(rest_eval)})")
        print("| feedback incidents | held-out pattern AC@1 | AC@3 | rest AC@1 | AC@3 "
              "| prior(db) | prior(shop/orders) | learn ms | evaluate ms |")
        print("|---|---|---|---|---|---|---|---|---|")
        for k in ks:
            data = train[:k] + extra
            t0 = time.perf_counter()
            params, _ = learn(data, ModelParams(), f"k{k}")
            t1 = time.perf_counter()
            a, b = evaluate(params, held), evaluate(params, rest_eval)
            t2 = time.perf_counter()
            pri = dict(params.learned_priors)
            print(f"| {k} pattern + {len(extra)} other | {a.ac1:.2f} | {a.ac3:.2f} | {b.ac1:.2f} | {b.ac3:.2f} "
                  f"| {pri.get(PATTERN_CAUSE, params.base_prior):.4f} "
                  f"| {pri.get('shop/orders', params.base_prior):.4f} "
                  f"| {1e3 * (t1 - t0):.0f} | {1e3 * (t2 - t1):.0f} |")


if __name__ == "__main__":
    main()
