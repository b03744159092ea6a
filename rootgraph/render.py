"""How the CLI and the demo show answers: tables for a person on call, JSON for tools.

Shared by ``rootgraph/cli.py`` and ``rootgraph/demo.py`` (which used to import each
other for it). The default layout is for a terminal or a pipe at 80 columns (rich
takes the width from the terminal, else ``COLUMNS``, else 80): only plausible causes
(:func:`rootgraph.results.is_plausible`), the rest summarised in one line, each
suggestion as a short label in the table with its full text under the cause's
explanation. ``wide`` shows every candidate and every suggestion in full on long
lines; ``as_json`` prints everything, implausible candidates included.
"""

from __future__ import annotations

import json
from typing import Iterable, Sequence

from rich import box
from rich.console import Console
from rich.table import Table

from rootgraph.results import PLAUSIBLE_FLOOR, Action, ActionKind, BlastRadius, Cause, FaultKind, Ranking, fault_kind_name

__all__ = ["render_blast", "render_graph", "render_ranking", "shows"]

#: ``wide`` output is not fitted to the terminal: a table as wide as its content.
WIDE_COLUMNS = 1000


def _wide(console: Console) -> Console:
    return Console(file=console.file, width=WIDE_COLUMNS, no_color=console.no_color,
                   force_terminal=console.is_terminal)


def shows(kind: FaultKind | None, size: float) -> str:
    """``errors +41 pp`` / ``latency +230 ms`` / ``saturation 3.1x``: a cause's observed fault."""
    if kind is None:
        return "-"
    if not size:
        return kind
    return {"errors": f"errors +{100 * size:.0f} pp", "latency": f"latency +{size:.0f} ms",
            "saturation": f"saturation {size:.1f}x"}.get(kind, kind)


def _label(a: Action) -> str:
    """A suggestion in a few words for the table; its ``detail`` is printed below it."""
    if a.kind == ActionKind.ROLLBACK and a.to_version:
        return f"roll back to {a.to_version}"
    return {ActionKind.ROLLBACK: "roll back", ActionKind.RESTART: "restart", ActionKind.SCALE: "scale out",
            ActionKind.FAILOVER: "fail over", ActionKind.INVESTIGATE: "investigate"}[a.kind]


def _p_bound(causes: Sequence[Cause]) -> str:
    top = max(c.probability for c in causes)
    return f"P < {0.01:.2f}" if round(top, 2) == 0 else f"P \u2264 {top:.2f}"


def others_line(hidden: Sequence[Cause]) -> str:
    """``+ 7 other candidates with P ≤ 0.03``: the implausible rest in one line."""
    n = len(hidden)
    return (f"+ {n} other candidate{'s' if n != 1 else ''} with {_p_bound(hidden)} "
            f"(all of them: --wide or --json)")


def ranking_json(answer: Ranking) -> dict:
    """Everything a tool needs, every candidate the server returned included."""
    plausible = {c.entity for c in answer.plausible_causes()}
    return {
        "incident_id": answer.incident_id, "model_version": answer.model_version,
        "no_clear_cause": answer.no_clear_cause, "symptoms": list(answer.symptoms),
        "notes": list(answer.notes), "start": answer.start_s, "end": answer.end_s,
        "causes": [{
            "rank": c.rank, "entity": c.entity, "kind": c.kind, "probability": c.probability,
            "plausible": c.entity in plausible,
            "fault_kind": fault_kind_name(c.fault_kind), "fault_size": c.fault_size,
            "explanation": c.explanation, "evidence": [e.text for e in c.evidence],
            "paths": [list(p) for p in c.paths],
            "deployments": [{"id": d.id, "version": d.version, "previous_version": d.previous_version,
                             "at": d.at_ms / 1000} for d in c.deployments],
            "suggested_actions": [{"kind": a.kind.value, "target": a.target, "detail": a.detail,
                                   "to_version": a.to_version, "confidence": a.confidence}
                                  for a in c.suggested_actions],
        } for c in answer.causes],
    }


def render_ranking(answer: Ranking, console: Console, *, as_json: bool = False, wide: bool = False) -> None:
    if as_json:
        print(json.dumps(ranking_json(answer)), file=console.file)
        return
    out = _wide(console) if wide else console
    out.print(f"[bold]Incident {answer.incident_id}[/bold]  model {answer.model_version}")
    out.print(f"Symptoms: {', '.join(answer.symptoms) or 'none observed'}")
    if answer.no_clear_cause:
        out.print("[yellow]No clear cause: no candidate is probable enough to blame.[/yellow]")
    shown = answer.causes if wide else answer.plausible_causes()
    hidden = [c for c in answer.causes if c not in shown]
    if shown:
        table = Table(title="Probable root causes", box=box.SIMPLE_HEAD, show_edge=False,
                      title_justify="left")
        for col in ("#", "entity", "kind", "shows", "P"):
            table.add_column(col, overflow="fold", justify="right" if col in ("#", "P") else "left")
        table.add_column("suggested (never executed)" if wide else "suggested", overflow="fold")
        for c in shown:
            colour = "red" if c.probability >= 0.5 else "yellow" if c.probability >= 0.2 else "white"
            todo = ("; ".join(a.detail for a in c.suggested_actions) if wide
                    else _label(c.suggested_actions[0]) if c.suggested_actions else "")
            table.add_row(str(c.rank), f"[{colour}]{c.entity}[/{colour}]", c.kind,
                          shows(c.fault_kind, c.fault_size), f"{c.probability:.2f}", todo or "-")
        out.print(table)
    if hidden:
        out.print(others_line(hidden))
    for c in shown if wide else shown[:3]:
        out.print(f"[bold]#{c.rank} {c.entity}[/bold]: {c.explanation}")
        if c.suggested_actions and not wide:
            out.print(f"  suggested (never executed): {c.suggested_actions[0].detail}")
    for note in answer.notes:
        out.print(f"[dim]\u2022 {note}[/dim]")


def render_blast(result: BlastRadius, console: Console, *, as_json: bool = False,
                 fault_kind: FaultKind | str | None = None, fault_size: float = 0.0, wide: bool = False) -> None:
    """What-if impacts; at 80 columns without paths and with the unlikely ones in one line
    (impacts below :data:`~rootgraph.results.PLAUSIBLE_FLOOR`). ``fault_kind`` is what was
    asked: a :class:`FaultKind`, its wire name (the CLI's ``--fault-kind``) or unknown."""
    fault_kind = str(fault_kind or "")
    if as_json:
        print(json.dumps({"entity": result.entity, "fault_kind": fault_kind, "fault_size": fault_size,
                          "entry_traffic_share_affected": result.entry_traffic_share_affected,
                          "impacts": [{"entity": i.entity, "kind": i.kind, "probability": i.probability,
                                       "hops": i.hops, "path": list(i.path),
                                       "traffic_share": i.traffic_share} for i in result.impacts]}),
              file=console.file)
        return
    out = _wide(console) if wide else console
    how = {"errors": "keeps failing requests", "latency": "keeps slowing down",
           "saturation": "stays saturated", "down": "goes down"}.get(fault_kind, "fails")
    shown = result.impacts if wide else tuple(i for i in result.impacts if i.probability >= PLAUSIBLE_FLOOR)
    table = Table(title=f"What breaks if {result.entity} {how}", box=box.SIMPLE_HEAD, show_edge=False,
                      title_justify="left")
    cols = ("entity", "kind", "P(impacted)", "hops") + (("path",) if wide else ()) + ("entry traffic",)
    for col in cols:
        table.add_column(col, overflow="fold", justify="left" if col in ("entity", "kind", "path") else "right")
    for i in shown:
        row = [i.entity, i.kind, f"{i.probability:.2f}", str(i.hops)] + ([" \u2192 ".join(i.path)] if wide else [])
        table.add_row(*row, f"{100 * i.traffic_share:.1f}%" if i.traffic_share else "")
    out.print(table)
    rest = len(result.impacts) - len(shown)
    if rest:
        out.print(f"+ {rest} other entit{'ies' if rest != 1 else 'y'} with P(impacted) < {PLAUSIBLE_FLOOR:.2f}")
    out.print(f"Entry-point traffic affected: [bold]{100 * result.entry_traffic_share_affected:.1f}%[/bold]")


def render_graph(entities: Iterable, calls: Iterable[tuple[str, str, int, int, bool]],  # noqa: ANN001
                 runs_on: Iterable[tuple[str, str]], console: Console, *, as_json: bool = False) -> None:
    entities, calls, runs_on = list(entities), list(calls), list(runs_on)
    if as_json:
        print(json.dumps({
            "entities": [{"id": e.id, "name": e.name, "kind": e.kind.value,
                          "namespace": e.namespace} for e in entities],
            "calls": [{"caller": a, "callee": b, "calls": c, "errors": e, "async": x}
                      for a, b, c, e, x in calls],
            "runs_on": [{"entity": a, "infra": b} for a, b in runs_on],
        }), file=console.file)
        return
    table = Table(title="Call edges")
    for col in ("caller", "callee", "calls", "errors", "error %"):
        table.add_column(col, justify="right" if col in {"calls", "errors", "error %"} else "left")
    for a, b, c, e, x in calls:
        table.add_row(a, b + (" (async)" if x else ""), str(c), str(e), f"{100 * e / max(c, 1):.1f}")
    console.print(table)
    kinds = Table(title="Entities")
    kinds.add_column("id")
    kinds.add_column("kind")
    for e in entities:
        kinds.add_row(e.id, e.kind.value)
    console.print(kinds)


def _when(seconds: float | None) -> str:
    import time

    return "-" if seconds is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(seconds))


def render_incidents(rows: Sequence, console: Console, *, as_json: bool = False) -> None:  # noqa: ANN001
    """``rootgraph incidents``: one line per incident, 80 columns (client.IncidentSummary)."""
    if as_json:
        for r in rows:
            console.print_json(json.dumps({"incident_id": r.incident_id, "state": r.state, "opened": r.opened_s,
                                           "resolved": r.resolved_s, "top_cause": r.top_cause,
                                           "top_probability": r.top_probability, "symptoms": list(r.symptoms)}))
        return
    table = Table(box=box.SIMPLE, show_edge=False)
    for col in ("state", "opened (UTC)", "top cause", "p", "symptoms"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r.state, _when(r.opened_s), r.top_cause or "(no clear cause)", f"{r.top_probability:.0%}",
                      str(len(r.symptoms)))
    console.print(table)


def step_json(s) -> dict:  # noqa: ANN001 - client.RemediationStep
    return {"step_id": s.step_id, "proposal_id": s.proposal_id, "kind": s.kind, "action": s.action,
            "target": s.target, "actor": s.actor, "exit_status": s.exit_status, "dry_run": s.dry_run,
            "outcome": s.outcome, "policy_version": s.policy_version, "detail": s.detail, "at": s.at_s}


def step_line(s) -> str:  # noqa: ANN001 - client.RemediationStep
    """One remediation step in words: "approved rollback shop/cart by alice"."""
    what = f"{s.kind} {s.action} {s.target}".rstrip()
    who = f" by {s.actor}" if s.actor else ""
    if s.kind == "executed":
        what += " (dry run)" if s.dry_run else f" (exit {s.exit_status})"
    if s.kind == "outcome":
        what += f": {s.outcome}"
    return what + who + (f" [{s.policy_version}]" if s.policy_version else "")


def event_json(e) -> dict:  # noqa: ANN001 - client.IncidentEvent
    if e.remediation is not None:
        return {"seq": e.seq, "kind": e.kind, "incident_id": e.incident_id, "remediation": step_json(e.remediation)}
    return {"seq": e.seq, "kind": e.kind, "incident_id": e.incident_id, "state": e.state,
            "bucket": e.bucket_s, "opened": e.opened_s, "resolved": e.resolved_s,
            "top_cause_changed": e.top_cause_changed, "new_symptoms": list(e.new_symptoms),
            "symptoms": [{"entity": a, "signal": b, "detail": c} for a, b, c in e.symptoms],
            "ranking": ranking_json(e.ranking)}


def render_event(e, console: Console, *, as_json: bool = False) -> None:  # noqa: ANN001
    """``rootgraph watch``: one JSON line per event, or two short lines (80 columns)."""
    if as_json:
        console.out(json.dumps(event_json(e)), highlight=False)
        return
    if e.remediation is not None:
        console.print(f"[bold]#{e.seq} {'step':8s}[/bold] {_when(e.remediation.at_s)} {e.incident_id}", overflow="fold")
        console.print(f"    {step_line(e.remediation)}", overflow="fold")
        return
    top = e.ranking.causes[0] if e.ranking.causes and not e.ranking.no_clear_cause else None
    cause = f"{top.entity} {top.probability:.0%}" if top else "no clear cause"
    console.print(f"[bold]#{e.seq} {e.kind:8s}[/bold] {_when(e.bucket_s)} {e.incident_id}", overflow="fold")
    extra = f"; new: {', '.join(e.new_symptoms)}" if e.kind == "updated" and e.new_symptoms else ""
    console.print(f"    cause {cause}; {len(e.symptoms)} symptoms{extra}", overflow="fold")
