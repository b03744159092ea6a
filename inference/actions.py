"""Suggested remediation for a ranked cause; suggestions only, never executed.

The rules are deliberately simple and explainable (issue 4, item 6): the client decides
and approves. Order matters: the first action is the one we would try first.
"""

from __future__ import annotations

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
