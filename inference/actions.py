"""Suggested remediation for a ranked cause; suggestions only, never executed.

The rules are deliberately simple and explainable (issue 4, item 6): the client decides
and approves. Order matters: the first action is the one we would try first.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

from rootgraph.graph.model import Deployment, EntityKind
from rootgraph.inference.evidence import INFRA_KINDS, VIRTUAL_KINDS, EntityEvidence
from rootgraph.inference.results import Action, ActionKind


def suggest_actions(entity: str, kind: EntityKind, ev: EntityEvidence | None,
                    deployments: tuple[Deployment, ...]) -> tuple[Action, ...]:
    """Actions for one cause.

    * a deployment in the lookback window -> roll back to the version before it;
    * a database / queue / external backend -> fail over;
    * an infrastructure entity -> restart it and scale its workloads elsewhere;
    * saturation (latency or self time up without errors) -> scale, then restart;
    * otherwise -> investigate (always the last resort, so the list is never empty).
    """
    out: list[Action] = []
    if deployments:
        d = deployments[-1]
        if d.previous_version:
            out.append(Action(ActionKind.ROLLBACK, entity, f"roll back {entity} from {d.version} to "
                              f"{d.previous_version} (deployed shortly before the incident)",
                              d.previous_version))
        else:
            out.append(Action(ActionKind.INVESTIGATE, entity,
                              f"{entity} deployed {d.version} shortly before the incident; previous "
                              f"version unknown, check the release and roll back if needed"))
    if kind in VIRTUAL_KINDS:
        out.append(Action(ActionKind.FAILOVER, entity, f"fail over {kind.value} {entity} to a replica "
                          f"or standby"))
    elif kind in INFRA_KINDS:
        out.append(Action(ActionKind.RESTART, entity, f"restart or cordon {kind.value} {entity}"))
        out.append(Action(ActionKind.SCALE, entity, f"reschedule the services on {entity} onto healthy "
                          f"capacity"))
    elif ev is not None and ev.saturation:
        out.append(Action(ActionKind.SCALE, entity, f"scale out {entity}: latency/self time up "
                          f"without errors (saturation)"))
        out.append(Action(ActionKind.RESTART, entity, f"restart {entity} if scaling does not help"))
    if not out or out[-1].kind != ActionKind.INVESTIGATE:
        out.append(Action(ActionKind.INVESTIGATE, entity, f"inspect {entity}'s logs and traces for the "
                          f"incident window"))
    return tuple(out)


#: "the top cause had a deployment within 10 minutes" (of the incident window's start)
DEPLOY_CONTEXT_S = 600


def action_context(kind: EntityKind, deployments: Iterable[Deployment], incident_start_s: int) -> str:
    """Which past incidents count as "similar" for an action's confidence.

    ``<group>/<deploy>``: group is service, backend (database/queue/external) or infra;
    deploy says whether the cause had a deployment within ``DEPLOY_CONTEXT_S`` before
    the incident started (or during it). Coarse on purpose: a handful of outcomes per
    context is all feedback will ever give.
    """
    group = "backend" if kind in VIRTUAL_KINDS else "infra" if kind in INFRA_KINDS else "service"
    recent = any(d.at_ms >= (incident_start_s - DEPLOY_CONTEXT_S) * 1000 for d in deployments)
    return f"{group}/{'deploy' if recent else 'no-deploy'}"


def describe_context(context: str) -> str:
    group, deploy = context.split("/", 1)
    what = {"service": "a service", "backend": "a database, queue or external",
            "infra": "an infrastructure entity"}.get(group, group)
    return f"the cause was {what}" + (" with a deployment within 10 minutes" if deploy == "deploy"
                                     else " without a recent deployment")


def with_confidence(actions: tuple[Action, ...], context: str,
                    stats: Iterable[tuple[str, str, int, int, float]]) -> tuple[Action, ...]:
    """Attach learned outcome rates to ``actions`` (unchanged where there is no history).

    ``stats`` rows are (action, context, resolved, total, confidence) from
    ``ModelParams.action_stats``; the detail says what the number rests on.
    """
    table = {(a, c): (r, n, conf) for a, c, r, n, conf in stats}
    out = []
    for act in actions:
        hit = table.get((act.kind.value, context))
        if hit is None or hit[1] <= 0:
            out.append(act)
            continue
        r, n, conf = hit
        out.append(dataclasses.replace(
            act, confidence=conf,
            detail=f"{act.detail}; {act.kind.value} resolved {r} of {n} past incidents where "
                   f"{describe_context(context)}"))
    return tuple(out)
