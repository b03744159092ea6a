"""Explicit deployments from OpenTelemetry CI/CD pipeline spans.

Implicit deployments need nothing here: every span's ``service.version`` lands in
``GraphDelta.versions`` and the graph store turns a change into a deployment.

Explicit ones follow the CI/CD semantic conventions (``cicd.*``, development status): a
pipeline *task* span with ``cicd.pipeline.task.type == "deploy"``. The conventions do
not say which service a deploy task deployed, so we read, on the span's own attributes
(the resource describes the CI system, not the target):

=================  =============================================================
field              first present of
=================  =============================================================
service            ``service.namespace``/``service.name`` (the target service, in
                   the same identity form as resources), else ``deployment.name``
version            ``service.version``, else ``vcs.ref.head.revision``
commit             ``vcs.ref.head.revision``
at_ms              span start: the new version may serve from the first rollout step
=================  =============================================================

A deploy span without a target service yields nothing (counted by the caller as
``cicd_without_service``). Tasks whose ``cicd.pipeline.task.run.result`` is ``skip`` or
``cancellation`` deployed nothing; failed ones are kept (a half-done rollout is a prime
suspect) with the result in ``attributes``. The id ``cicd:<trace hex>:<span hex>`` makes
a re-sent span idempotent. CI/CD spans are never counted as service traffic.
"""

from __future__ import annotations

from rootgraph.graph.records import Deployment
from rootgraph.ingest.spans import Span

__all__ = ["cicd_deployment"]

_NOT_DEPLOYED = frozenset({"skip", "cancellation"})
_KEPT_ATTRIBUTES = (
    "cicd.pipeline.name", "cicd.pipeline.run.id", "cicd.pipeline.task.name",
    "cicd.pipeline.task.run.id", "cicd.pipeline.task.run.result", "cicd.pipeline.result",
    "cicd.pipeline.task.run.url.full", "cicd.pipeline.run.url.full", "deployment.id",
    "deployment.environment.name", "deployment.status", "vcs.ref.head.name",
)


def cicd_deployment(span: Span) -> Deployment | None:
    """The deployment a CI/CD deploy-task span records, or None (see module docstring)."""
    attrs = span.attrs
    if attrs.get("cicd.pipeline.task.type", "").lower() != "deploy":
        return None
    if attrs.get("cicd.pipeline.task.run.result", "").lower() in _NOT_DEPLOYED:
        return None
    name = attrs.get("service.name") or attrs.get("deployment.name")
    if not name:
        return None
    namespace = attrs.get("service.namespace", "") if attrs.get("service.name") else ""
    # capped like virtual nodes: the service becomes an entity id (pairing.MAX_PEER_NAME)
    service = (f"{namespace}/{name}" if namespace else name)[:1024]
    commit = attrs.get("vcs.ref.head.revision", "")
    return Deployment(
        id=f"cicd:{span.trace_id.hex()}:{span.span_id.hex()}",
        service=service,
        version=attrs.get("service.version") or commit,
        at_ms=span.start_ns // 1_000_000,
        commit=commit,
        source="cicd",
        attributes=tuple((k, attrs[k]) for k in _KEPT_ATTRIBUTES if k in attrs),
    )
