"""What the shell saw of the world, reduced to what the lifecycle decides on. Plain frozen data."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hotfix_operator.core.check_model import CheckState, Measurement
    from hotfix_operator.core.governance import ApprovalCheck, GovernanceRules


@dataclass(frozen=True)
class DeploymentView:
    name: str
    generation: int
    observed_generation: int
    replicas: int
    updated_replicas: int
    available_replicas: int
    # pod-template-hash of the ReplicaSet for the Deployment's current template, once it exists
    current_hash: str | None
    selector: Mapping[str, str]
    pod_template: Mapping[str, Any]
    labels: Mapping[str, str] = field(default_factory=dict)
    # why it is not progressing, from its conditions (e.g. a quota refusing pods), if anything
    stuck_reason: str | None = None
    # its deployment.kubernetes.io/revision annotation
    revision: str | None = None

    def container_image(self, container: str) -> str | None:
        for c in self.pod_template.get("spec", {}).get("containers", []):
            if c.get("name") == container:
                image = c.get("image")
                return image if isinstance(image, str) else None
        return None

    @property
    def updated_to_current(self) -> int:
        """Replicas running its current template: none, as far as anyone knows, until its controller has
        observed that template (status then still counts the previous one's)."""
        return self.updated_replicas if self.observed_generation >= self.generation else 0

    @property
    def rolled_out(self) -> bool:
        """Its controller has caught up and every replica runs the current template and is available."""
        return (
            self.observed_generation >= self.generation
            and self.current_hash is not None
            and self.updated_replicas >= self.replicas
            and self.available_replicas >= self.replicas
        )


@dataclass(frozen=True)
class ServiceView:
    name: str
    selector: Mapping[str, str]


@dataclass(frozen=True)
class ImageCheck:
    """Result of reading the image's manifest from its registry by digest."""

    ok: bool
    transient: bool = False
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class ProvenanceCheck:
    """Result of the provenance gate under the namespace's HotfixPolicy."""

    ok: bool
    reason: str
    message: str
    transient: bool = False
    policy: str | None = None
    summary: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class CheckPlan:
    """At Verifying: every check the release will run, with where each may connect, or why not."""

    ok: bool
    reason: str = ""
    message: str = ""
    transient: bool = False
    states: tuple[CheckState, ...] = ()


@dataclass(frozen=True)
class Observations:
    now: datetime.datetime
    blue: DeploymentView | None
    service: ServiceView | None
    preview_service: ServiceView | None
    green: DeploymentView | None
    # ready pod IPs behind the active Service, as the EndpointSlice controller published them
    endpoint_ips: frozenset[str] = frozenset()
    # the same for the preview Service (empty when there is none)
    preview_endpoint_ips: frozenset[str] = frozenset()
    # ready pod IPs per pod-template-hash, among pods of the target's app
    pod_ips_by_hash: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # pods (ready or not, terminating included) carrying this release's green label
    green_pod_count: int = 0
    image: ImageCheck | None = None
    provenance: ProvenanceCheck | None = None
    # earlier, unfinished HotfixReleases for the same Deployment, oldest first (None: not looked up: it is
    # at Verifying and Queued)
    queue_ahead: tuple[str, ...] | None = None
    # the namespace's HotfixPolicy rules for approvals, expiry and the SLA (None: policy unreadable now)
    rules: GovernanceRules | None = None
    # in AwaitingApproval: the admission policy's state and each approver's right, checked now
    approvals: ApprovalCheck | None = None
    # at Verifying: the checks the release will run (None: not planned this reconcile)
    check_plan: CheckPlan | None = None
    # the check measurements the shell made this reconcile (those core.checks.due named)
    measurements: tuple[Measurement, ...] = ()
