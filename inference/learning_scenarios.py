"""Simulated incident sets for showing that learning works (issue 7 "done when").

* :func:`recurring_pattern` -- a database (``db:postgresql/orders``) that is repeatedly
  the real cause behind a noisy service (``shop/orders`` throws its *own* errors when
  its queries slow down, so its exclusive-error detector fires and the prior model
  blames it). Rates, onsets, slow-down and bystander traffic vary with the seed.
* :func:`other_incidents` -- the rest: generated call graphs with one propagating
  fault (``synthetic.generate_incident``) plus hand-built classics (a bad deployment,
  a failing host, a genuinely faulty service that has a healthy database, and
  ``shop/orders`` itself broken by a deployment), so a learned model that merely
  learned "always blame the database" would lose accuracy here.

Both return ``(window, true cause)`` pairs; tests and ``bench/learning.py`` share them.
"""

from __future__ import annotations

import numpy as np

from rootgraph.graph.records import WindowData
from rootgraph.inference.synthetic import Profile, WindowBuilder, generate_incident

__all__ = ["PATTERN_CAUSE", "hand_built", "other_incidents", "recurring_pattern"]

PATTERN_CAUSE = "db:postgresql/orders"


def _shop(wb: WindowBuilder, rng: np.random.Generator) -> None:
    """The healthy part of the shop: frontend -> catalogue -> its own database."""
    rpm = float(rng.uniform(40, 90))
    wb.serve("shop/catalogue", Profile(rpm=rpm))
    wb.call("shop/frontend", "shop/catalogue", Profile(rpm=rpm))
    wb.call("shop/catalogue", "db:postgresql/catalogue", Profile(rpm=rpm, latency_ms=4))


def recurring_pattern(seed: int, start_s: int = 1_700_000_000) -> tuple[WindowData, str]:
    """The orders database slows down; ``shop/orders`` reports the failures as its own.

    ``start_s`` places the window (45 minutes) in time, so several incidents can be
    stored in one graph without their buckets overlapping.
    """
    rng = np.random.default_rng(1000 + seed)
    wb = WindowBuilder(seed=1000 + seed, start_s=start_s)
    rpm = float(rng.uniform(60, 120))
    xr = float(rng.uniform(0.05, 0.15))
    slow = float(rng.uniform(1.6, 3.0))
    onset = int(rng.integers(0, 4))
    wb.serve("shop/frontend", Profile(rpm=rpm + 60),
             Profile(rpm=rpm + 60, error_rate=xr * 0.6, exclusive_rate=0.002), onset_minute=onset)
    wb.call("user", "shop/frontend", Profile(rpm=rpm + 60))
    wb.serve("shop/orders", Profile(rpm=rpm),
             Profile(rpm=rpm, error_rate=xr, exclusive_rate=xr, self_ms=6.0 * float(rng.uniform(1.0, 1.6))),
             onset_minute=onset)
    wb.call("shop/frontend", "shop/orders", Profile(rpm=rpm), Profile(rpm=rpm, error_rate=xr), onset_minute=onset)
    wb.call("shop/orders", PATTERN_CAUSE, Profile(rpm=rpm, latency_ms=5.0),
            Profile(rpm=rpm, latency_ms=5.0 * slow), onset_minute=onset)
    _shop(wb, rng)
    return wb.build(), PATTERN_CAUSE


def _bad_deploy(seed: int, start_s: int = 1_700_000_000) -> tuple[WindowData, str]:
    rng = np.random.default_rng(2000 + seed)
    wb = WindowBuilder(seed=2000 + seed, start_s=start_s)
    bad = Profile(rpm=80, error_rate=0.3)
    wb.serve("shop/frontend", Profile(rpm=140), Profile(rpm=140, error_rate=0.15, exclusive_rate=0.002))
    wb.call("user", "shop/frontend", Profile(rpm=140))
    wb.serve("shop/payment", Profile(rpm=80), bad)
    wb.call("shop/frontend", "shop/payment", Profile(rpm=80), Profile(rpm=80, error_rate=0.3))
    wb.call("shop/payment", "db:postgresql/payments", Profile(rpm=80, latency_ms=4))
    wb.deploy("shop/payment", "3.1.0", float(rng.uniform(1, 8)), previous="3.0.9")
    _shop(wb, rng)
    return wb.build(), "shop/payment"


def _noisy_but_guilty(seed: int, start_s: int = 1_700_000_000) -> tuple[WindowData, str]:
    """A service with exclusive errors and a healthy database really is the cause."""
    rng = np.random.default_rng(3000 + seed)
    wb = WindowBuilder(seed=3000 + seed, start_s=start_s)
    xr = float(rng.uniform(0.1, 0.3))
    wb.serve("shop/frontend", Profile(rpm=140), Profile(rpm=140, error_rate=xr * 0.5, exclusive_rate=0.002))
    wb.call("user", "shop/frontend", Profile(rpm=140))
    wb.serve("shop/cart", Profile(rpm=80), Profile(rpm=80, error_rate=xr, exclusive_rate=xr))
    wb.call("shop/frontend", "shop/cart", Profile(rpm=80), Profile(rpm=80, error_rate=xr))
    wb.call("shop/cart", "db:redis/cart", Profile(rpm=80, latency_ms=2))
    _shop(wb, rng)
    return wb.build(), "shop/cart"


def _orders_deploy(seed: int, start_s: int = 1_700_000_000) -> tuple[WindowData, str]:
    """``shop/orders`` itself broken by a release; its database is healthy."""
    rng = np.random.default_rng(4000 + seed)
    wb = WindowBuilder(seed=4000 + seed, start_s=start_s)
    wb.serve("shop/frontend", Profile(rpm=160), Profile(rpm=160, error_rate=0.12, exclusive_rate=0.002))
    wb.call("user", "shop/frontend", Profile(rpm=160))
    wb.serve("shop/orders", Profile(rpm=90), Profile(rpm=90, error_rate=0.25, exclusive_rate=0.25))
    wb.call("shop/frontend", "shop/orders", Profile(rpm=90), Profile(rpm=90, error_rate=0.25))
    wb.call("shop/orders", PATTERN_CAUSE, Profile(rpm=90, latency_ms=5.0))
    wb.deploy("shop/orders", "5.2.0", float(rng.uniform(1, 8)), previous="5.1.3")
    _shop(wb, rng)
    return wb.build(), "shop/orders"


def _host(seed: int, start_s: int = 1_700_000_000) -> tuple[WindowData, str]:
    rng = np.random.default_rng(5000 + seed)
    wb = WindowBuilder(seed=5000 + seed, start_s=start_s)
    broken = Profile(rpm=60, error_rate=0.3)
    wb.serve("shop/frontend", Profile(rpm=200), Profile(rpm=200, error_rate=0.1, exclusive_rate=0.002))
    wb.call("user", "shop/frontend", Profile(rpm=200))
    for s in ("shop/search", "shop/reviews"):
        wb.serve(s, Profile(rpm=60), broken)
        wb.call("shop/frontend", s, Profile(rpm=60), Profile(rpm=60, error_rate=0.3))
        wb.runs_on(s, "host:node-7")
    wb.runs_on("shop/frontend", "host:node-2")
    _shop(wb, rng)
    return wb.build(), "host:node-7"


HAND_BUILT = (_bad_deploy, _noisy_but_guilty, _orders_deploy, _host)


def other_incidents(n_generated: int = 12, per_kind: int = 2) -> list[tuple[WindowData, str]]:
    """The rest of the suite: generated incidents plus ``per_kind`` of each hand-built kind."""
    out = [generate_incident(30 + 5 * (i % 4), seed=i) for i in range(n_generated)]
    for make in HAND_BUILT:
        out.extend(make(i) for i in range(per_kind))
    return out


def hand_built(seed: int, start_s: int = 1_700_000_000) -> list[tuple[WindowData, str]]:
    """One of each hand-built kind (the ones that can be placed in time)."""
    return [make(seed, start_s + 3 * 3600 * i) for i, make in enumerate(HAND_BUILT)]
