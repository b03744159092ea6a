"""The fixed suite of labelled incidents the accuracy benchmark runs.

Hand-picked cases on the shipped topologies cover every fault kind and the hard
situations named in issue 6: decoy deployments shortly before onset, fallbacks that
hide a callee's errors, call cycles, retries, shared databases, host saturation,
asynchronous queues, and two simultaneous faults. Cases on generated graphs pick their
targets by rule (the busiest hub, the most shared database, the most crowded host), so
they stay meaningful if the generator changes; seeds are fixed, so the suite is
deterministic.
"""

from __future__ import annotations

from collections import Counter

from .faults import Fault, FaultKind
from .scenario import ScenarioSpec
from .topologies import get
from .topology import Topology

__all__ = ["expected_visits", "healthy_day", "suite"]

K = FaultKind


def expected_visits(topo: Topology) -> dict[str, float]:
    """Expected spans per user request at each service/backend id (depth-bounded).

    Used to aim generated cases at entities that actually see traffic.
    """
    total = sum(e.weight for e in topo.entries)
    level: dict[tuple[str, str], float] = {}
    for e in topo.entries:
        level[(e.service, e.operation)] = level.get((e.service, e.operation), 0.0) + e.weight / total
    visits: dict[str, float] = {}
    for _ in range(topo.max_depth):
        nxt: dict[tuple[str, str], float] = {}
        for (sid, op), x in level.items():
            visits[sid] = visits.get(sid, 0.0) + x
            for c in topo.services[sid].operation(op).calls:
                y = x * c.probability * c.fanout
                if c.target in topo.services:
                    nxt[(c.target, c.operation)] = nxt.get((c.target, c.operation), 0.0) + y
                else:
                    b = topo.backends[c.target]
                    visits[b.id] = visits.get(b.id, 0.0) + y
                    for cs, cop in b.consumers:
                        nxt[(cs, cop)] = nxt.get((cs, cop), 0.0) + y
        level = {k: v for k, v in nxt.items() if v > 1e-6}
        if not level:
            break
    return visits


def _generated_cases(name: str, seed: int) -> list[ScenarioSpec]:
    topo = get(name)
    visits = expected_visits(topo)
    entry_ids = {e.service for e in topo.entries}
    callers: Counter[str] = Counter()
    db_callers: Counter[str] = Counter()
    for s in topo.services.values():
        targets = {c.target for op in s.operations for c in op.calls}
        for t in targets:
            if t in topo.services:
                callers[t] += 1
            elif topo.backends[t].kind.value == "database":
                db_callers[topo.backends[t].id] += 1
    busy = [sid for sid in topo.services if visits.get(sid, 0) >= 0.05 and sid not in entry_ids]
    hub = max(busy, key=lambda sid: (callers[sid], visits[sid], sid))
    mid = sorted(busy, key=lambda sid: (-visits[sid], sid))
    other = next(s for s in mid if s != hub)
    decoy = next(s for s in reversed(mid) if s not in (hub, other))
    db = max(db_callers, key=lambda d: (db_callers[d], visits.get(d, 0), d))
    hosts = Counter(h for s in topo.services.values() for h in s.infra_ids()[:1]
                    if visits.get(s.id, 0) >= 0.05)
    host = max(hosts, key=lambda h: (hosts[h], h))
    tag = ("generated",)
    return [
        ScenarioSpec(f"{name}-hub-error", name, (Fault(hub, K.ERROR),), seed=seed, tags=tag + ("hub",)),
        ScenarioSpec(f"{name}-hub-latency", name, (Fault(hub, K.LATENCY),), seed=seed + 1,
                     tags=tag + ("hub",)),
        ScenarioSpec(f"{name}-shared-db-error", name, (Fault(db, K.BACKEND_ERROR),), seed=seed + 2,
                     tags=tag + ("shared-db",)),
        ScenarioSpec(f"{name}-host", name, (Fault(host, K.HOST),), seed=seed + 3, tags=tag + ("host",)),
        ScenarioSpec(f"{name}-bad-deploy-decoy", name, (Fault(other, K.BAD_DEPLOY),), decoys=(decoy,),
                     seed=seed + 4, tags=tag + ("decoy",)),
    ]


def suite() -> list[ScenarioSpec]:
    """At least 40 deterministic, labelled cases across topologies and fault kinds."""
    ss = "sock-shop/"

    def case(n: int, topo: str, faults, decoys=(), tags=()) -> ScenarioSpec:
        faults = tuple(faults) if isinstance(faults, (list, tuple)) else (faults,)
        name = f"{topo}-{n:02d}-{faults[0].kind.value}"
        return ScenarioSpec(name, topo, faults, tuple(decoys), seed=1000 + n, tags=tuple(tags))

    F = Fault
    cases = [
        # Sock Shop
        case(1, "sockshop", F(ss + "catalogue", K.ERROR)),
        case(2, "sockshop", F(ss + "carts", K.LATENCY)),
        case(3, "sockshop", F("db:mongodb/orders", K.BACKEND_ERROR)),
        case(4, "sockshop", F("db:mysql/socksdb", K.BACKEND_LATENCY)),
        case(5, "sockshop", F(ss + "payment", K.BAD_DEPLOY), tags=["retry"]),
        case(6, "sockshop", F("host:node-2", K.HOST), tags=["host"]),
        case(7, "sockshop", F("queue:rabbitmq/shipping-task", K.BACKEND_ERROR), tags=["queue"]),
        case(8, "sockshop", F(ss + "user", K.ERROR), [ss + "catalogue"], ["decoy", "fallback"]),
        case(9, "sockshop", F(ss + "orders", K.BAD_DEPLOY), [ss + "carts"], ["decoy"]),
        case(10, "sockshop", F(ss + "payment", K.LATENCY), [ss + "user"], ["decoy"]),
        case(11, "sockshop", [F("db:mongodb/carts", K.BACKEND_LATENCY), F(ss + "payment", K.ERROR)],
             tags=["multi"]),
        # Online Boutique
        case(12, "boutique", F("adservice", K.ERROR), tags=["fallback"]),
        case(13, "boutique", F("emailservice", K.ERROR), tags=["fallback"]),
        case(14, "boutique", F("recommendationservice", K.LATENCY), tags=["fallback"]),
        case(15, "boutique", F("productcatalogservice", K.LATENCY)),
        case(16, "boutique", F("currencyservice", K.ERROR)),
        case(17, "boutique", F("db:redis/cart", K.BACKEND_ERROR)),
        case(18, "boutique", F("db:redis/cart", K.BACKEND_LATENCY)),
        case(19, "boutique", F("ext:api.stripe.com", K.BACKEND_ERROR), tags=["retry", "external"]),
        case(20, "boutique", F("checkoutservice", K.BAD_DEPLOY), ["adservice"], ["decoy"]),
        case(21, "boutique", F("cartservice", K.BAD_DEPLOY), ["currencyservice"], ["decoy"]),
        case(22, "boutique", F("host:gke-pool-a-2", K.HOST), tags=["host"]),
        case(23, "boutique", F("shippingservice", K.LATENCY), ["paymentservice"], ["decoy"]),
        # Train-Ticket
        case(24, "trainticket", F("ts-seat-service", K.ERROR), tags=["cycle"]),
        case(25, "trainticket", F("ts-travel-service", K.LATENCY), tags=["cycle"]),
        case(26, "trainticket", F("db:mysql/ts-order", K.BACKEND_ERROR)),
        case(27, "trainticket", F("db:mysql/ts", K.BACKEND_LATENCY), tags=["shared-db"]),
        case(28, "trainticket", F("db:mongodb/ts-food", K.BACKEND_ERROR), tags=["shared-db", "fallback"]),
        case(29, "trainticket", F("ts-assurance-service", K.ERROR), tags=["fallback"]),
        case(30, "trainticket", F("ts-payment-service", K.BAD_DEPLOY), ["ts-user-service"],
             ["retry", "decoy"]),
        case(31, "trainticket", F("ts-security-service", K.ERROR), tags=["retry"]),
        case(32, "trainticket", F("host:tt-node-3", K.HOST), tags=["host"]),
        case(33, "trainticket", F("queue:rabbitmq/email", K.BACKEND_ERROR), tags=["queue"]),
        case(34, "trainticket", F("ts-basic-service", K.LATENCY), ["ts-route-service"], ["decoy"]),
        case(35, "trainticket", F("ts-station-service", K.BAD_DEPLOY), ["ts-config-service"], ["decoy"]),
        case(36, "trainticket", F("ts-auth-service", K.ERROR)),
        case(37, "trainticket", F("ext:api.mailgun.net", K.BACKEND_LATENCY), tags=["queue", "external"]),
    ]
    cases += _generated_cases("generated-60-1", 2000)
    cases += _generated_cases("generated-200-2", 3000)
    return cases


def healthy_day(seed: int = 15, hours: float = 24.0, peak_rps: float = 2.0) -> ScenarioSpec:
    """A simulated healthy day on ``boutique-day`` (issue 15's false-incident target).

    No fault. ``hours`` of traffic from 00:00 UTC of the fixed epoch:

    * diurnal load with a **1:4 trough:peak** ratio (peak ``peak_rps`` at 20:00, trough at
      08:00: a single-region consumer shop whose night is a quarter of its evening; the
      mean is 0.625 x peak). Why 1:4: deep enough that the 30-minute baseline the
      detector compares against is never the load of the bucket judged (the load moves up
      to 0.16 % of peak a minute, ~5 % over a baseline), yet the trough keeps the
      low-traffic services at about a call a minute rather than none;
    * 8 bursts of 2-6 minutes at 2-4x the load of their moment (a campaign e-mail, a
      crawler), at seeded random times;
    * 8 innocent rollouts (version bumps with no effect) at seeded random times, on the
      busy, the noisy and the low-traffic services alike;
    * the noisy services' minute-to-minute wander (log-spread 0.5 for errors, 0.25 for
      latency: a minute at twice the usual error rate is a ~1-in-10 minute) and the
      low-traffic services of the topology (``topologies.boutique_day``).
    """
    import random

    from .ambient import Burst, Load, Noise

    total_s = hours * 3600.0
    rng = random.Random(f"healthy-day:{seed}")
    bursts = tuple(sorted((Burst(round(rng.uniform(0.05, 0.95) * total_s), 60.0 * rng.randint(2, 6),
                                 round(rng.uniform(2.0, 4.0), 1)) for _ in range(8)), key=lambda b: b.at_s))
    services = ["frontend", "cartservice", "productcatalogservice", "checkoutservice", "currencyservice",
                "recommendationservice", "adservice", "reportservice", "webhookservice", "paymentservice"]
    rollouts = tuple(sorted(((rng.choice(services), float(round(rng.uniform(0.05, 0.95) * total_s)))
                             for _ in range(8)), key=lambda r: r[1]))
    warm = min(1800.0, total_s / 2)  # the detector's first judged bucket needs 31 minutes of data
    return ScenarioSpec(
        f"healthy-day-{hours:g}h-{seed}", "boutique-day", (), seed=seed, baseline_s=warm,
        incident_s=total_s - warm, rate_rps=peak_rps, tags=("healthy-day",),
        load=Load(trough=0.25, peak_s=20 * 3600.0, bursts=bursts),
        noise=(Noise("recommendationservice", 0.5), Noise("adservice", 0.5)), rollouts=rollouts)
