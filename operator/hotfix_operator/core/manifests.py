"""What the operator creates: the green Deployment, built from blue's live template. Pure."""

from __future__ import annotations

import copy
from typing import Any

from hotfix_operator.api import (
    ANNOTATION_INCIDENT,
    ANNOTATION_TAG,
    LABEL_MANAGED_BY,
    LABEL_RELEASE,
    LABEL_RELEASE_UID,
    LABEL_ROLE,
    OPERATOR,
    POD_TEMPLATE_HASH,
    ROLE_GREEN,
)
from hotfix_operator.core.model import Release
from hotfix_operator.core.observations import DeploymentView


def green_name(release: Release) -> str:
    return f"{release.spec.target.deployment[:40]}-hotfix-{release.uid.replace('-', '')[:8]}"


def green_deployment(release: Release, blue: DeploymentView, name: str, incident_id: str, *,
                     image: str | None = None, role: str = ROLE_GREEN) -> dict[str, Any]:
    """Blue's pod template with the hotfix image (or `image`: an undo's previous one) in the target
    container, and green's own labels so that neither side's ReplicaSets or Services ever select the
    other's pods."""
    spec = release.spec
    marks = {LABEL_ROLE: role, LABEL_RELEASE_UID: release.uid}
    template: dict[str, Any] = copy.deepcopy(dict(blue.pod_template))
    meta = template.setdefault("metadata", {})
    meta["labels"] = {**{k: v for k, v in meta.get("labels", {}).items() if k != POD_TEMPLATE_HASH}, **marks}
    for container in template.get("spec", {}).get("containers", []):
        if container.get("name") == spec.target.container:
            container["image"] = image or spec.artifact.image
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": release.namespace,
                     "labels": {**marks, LABEL_RELEASE: release.name, LABEL_MANAGED_BY: OPERATOR},
                     "annotations": {ANNOTATION_TAG: spec.tag, ANNOTATION_INCIDENT: incident_id}},
        "spec": {"replicas": max(blue.replicas, 1),
                 "selector": {"matchLabels": {**dict(blue.selector), **marks}},
                 "progressDeadlineSeconds": spec.rollout.progress_deadline_seconds,
                 "template": template},
    }
