"""Suggested remediation for a ranked cause; suggestions only, never executed.

The rules are deliberately simple and explainable (issue 4, item 6): the client decides
and approves. Order matters: the first action is the one we would try first.

Every action must rest on evidence the cause itself shows (issue 13, finding 5): a
rollback bot reads ``suggested_actions`` of whatever cause it is handed, so "roll back"
on a P = 0.00 candidate, or "fail over" on a database nobody saw failing, is an
instruction to break something healthy.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

from rootgraph.graph.records import Deployment, EntityKind
from rootgraph.inference.evidence import INFRA_KINDS, VIRTUAL_KINDS, EntityEvidence, WindowEvidence
from rootgraph.inference.results import Action, ActionKind


def deployment_before_onset(entity: str, ev: WindowEvidence) -> Deployment | None:
    """The latest deployment of ``entity`` that can have caused the fault, if any.

    "Before onset" is judged against the same reference the explanation uses (the
    entity's own onset, else the window's, else the incident start), with one bucket
    of slack: onsets are bucket starts, so a deployment inside the onset bucket may
    well precede the first failing request. A deployment after that came too late to
    be the cause and earns no rollback.
    """
    e = ev.entities.get(entity)
    if e is None or not e.deployments:
        return None
    ref = e.onset_s if e.onset_s is not None else ev.onset_s
    ref = ev.window.incident.start_s if ref is None else ref
    limit_ms = (ref + ev.window.bucket_seconds) * 1000
    before = [d for d in e.deployments if d.at_ms < limit_ms]
    return before[-1] if before else None


def _shows_fault(e: EntityEvidence | None) -> bool:
    """The entity's own figures (or, uninstrumented, its callers' calls to it) are anomalous."""
    return e is not None and e.anomalous and bool(e.items)


def _infra_evidence(entity: str, ev: WindowEvidence) -> bool:
    """Some service running on ``entity`` shows slow self time or saturation."""
    for svc, infra in ev.window.runs_on.items():
        se = ev.entities.get(svc)
        if entity in infra and se is not None and (se.self_anomalous or se.saturation):
            return True
    return False


def suggest_actions(entity: str, kind: EntityKind, ev: WindowEvidence, *, plausible: bool) -> tuple[Action, ...]:
    """Actions for one cause; none for a cause that is not plausible.

    ``plausible`` is :func:`rootgraph.results.is_plausible` of the cause against the top
    one. For a plausible cause:

    * a deployment before onset (:func:`deployment_before_onset`) -> roll back to the
      version before it (or check the release when that version is unknown);
    * a database / queue / external backend whose calls fail or slow down -> fail over;
    * an infrastructure entity whose services' self time is up -> restart it and
      reschedule its workloads;
    * a service whose latency/self time is up without errors (saturation) -> scale,
      then restart;
    * and last, always: inspect its logs and traces -- a plausible cause is where the
      evidence points, so that is where a person looks when nothing above applies.
    """
    if not plausible:
        return ()
    e = ev.entities.get(entity)
    out: list[Action] = []
    d = deployment_before_onset(entity, ev)
    if d is not None:
        if d.previous_version:
            out.append(Action(ActionKind.ROLLBACK, entity, f"roll back {entity} from {d.version} to "
                              f"{d.previous_version} (deployed shortly before the incident)",
                              d.previous_version))
        else:
            out.append(Action(ActionKind.INVESTIGATE, entity,
                              f"{entity} deployed {d.version} shortly before the incident; previous "
                              f"version unknown, check the release and roll back if needed"))
    if kind in VIRTUAL_KINDS:
        if _shows_fault(e):
            out.append(Action(ActionKind.FAILOVER, entity, f"fail over {kind.value} {entity} to a replica "
                              f"or standby"))
    elif kind in INFRA_KINDS:
        if _infra_evidence(entity, ev):
            out.append(Action(ActionKind.RESTART, entity, f"restart or cordon {kind.value} {entity}"))
            out.append(Action(ActionKind.SCALE, entity, f"reschedule the services on {entity} onto healthy "
                              f"capacity"))
    elif e is not None and e.saturation:
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
