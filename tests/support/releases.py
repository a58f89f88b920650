"""The one HotfixRelease every test starts from: the quickstart's hotfix for Deployment checkout.

`release_spec()` is the spec as a requester writes it; `release_object()` is the same release as the
core reads it (metadata plus spec). Tests override only what they are about."""

from __future__ import annotations

import copy
import datetime
from typing import Any

from hotfix_operator.core.model import Release

COMMIT = "a8b1963c1f0e2d3b4a5968776655443322110099"
SOURCE = "github.com/acme/checkout"
HOTFIX_IMAGE = "registry.example.com/shop/checkout@sha256:" + "ab" * 32
T0 = datetime.datetime(2026, 11, 23, 9, 12, tzinfo=datetime.UTC)

BASE_SPEC: dict[str, Any] = {
    "version": "4.1.2-hotfix.1",
    "commitSha": COMMIT,
    "justification": "Checkout fails for every card payment since 09:12 UTC; all revenue is blocked.",
    "ticketUrl": "https://tracker.example.com/INCIDENT-123",
    "severity": "P0",
    "riskLevel": "medium",  # one approval, no wait timer under the default rules
    "requestedBy": "alice",
    "target": {"deployment": "checkout", "service": "checkout", "container": "app",
               "previewService": "checkout-preview"},
    "artifact": {"image": HOTFIX_IMAGE, "sourceRepository": SOURCE},
    "rollout": {"progressDeadlineSeconds": 30, "bakeSeconds": 2, "scaleDownDelaySeconds": 1},
}


def release_spec(image: str = HOTFIX_IMAGE, *, approvals: tuple[tuple[str, str], ...] = (),
                 rollout: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """The spec with `image`, (approver, decision) pairs, rollout settings merged in, and fields replaced."""
    spec = copy.deepcopy(BASE_SPEC)
    spec["artifact"]["image"] = image
    if approvals:
        spec["approval"] = {"approvals": [{"approver": a, "decision": d, "groups": ["hotfix:approvers"]}
                                          for a, d in approvals]}
    if rollout:
        spec["rollout"] = {**spec["rollout"], **rollout}
    spec.update(copy.deepcopy(overrides))
    return spec


def release_object(spec: dict[str, Any] | None = None, *, created: datetime.datetime = T0,
                   generation: int = 1) -> Release:
    return Release.model_validate({"name": "checkout-hotfix", "namespace": "shop",
                                   "uid": "0764d121-aaaa-bbbb-cccc-000000000001", "generation": generation,
                                   "created": created, "spec": spec or release_spec()})
