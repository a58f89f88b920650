"""The provenance gate's imperative shell: the namespace's HotfixPolicy, the registry, the verifier.

Everything that can go wrong becomes a ProvenanceCheck with a specific reason; registry and API
outages are marked transient so the lifecycle retries with backoff instead of skipping the gate."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from typing import Any

from hotfix_operator.adapters.discovery import discover
from hotfix_operator.adapters.evidence import fetch_evidence
from hotfix_operator.adapters.policies import PolicyProblem, PolicyResolver, ResolvedPolicy
from hotfix_operator.adapters.registry import ImageReference, RegistryClient, RegistryCredentials, RegistryError
from hotfix_operator.core.model import Release
from hotfix_operator.core.observations import ProvenanceCheck
from hotfix_operator.provenance import ProvenanceSummary, ReleaseRequest, verify_provenance

RegistryFactory = Callable[[RegistryCredentials | None], RegistryClient]


class ProvenanceGate:
    def __init__(self, policies: PolicyResolver, registry: RegistryFactory, ca_file: str | None = None) -> None:
        self.policies = policies
        self.registry = registry
        self.ca_file = ca_file

    def check(self, release: Release) -> ProvenanceCheck:
        try:
            policy = self.policies.for_namespace(release.namespace)
        except PolicyProblem as problem:
            return ProvenanceCheck(ok=False, reason=problem.reason, message=str(problem), transient=problem.transient)
        return check_image_provenance(policy, release.spec.artifact.image, release.spec.commit_sha,
                                      release.spec.artifact.source_repository, self.registry,
                                      evidence=release.spec.artifact.evidence, ca_file=self.ca_file)


def check_image_provenance(policy: ResolvedPolicy, image: str, commit: str, source_repository: str,
                           registry: RegistryFactory, *, evidence: str | None = None,
                           ca_file: str | None = None) -> ProvenanceCheck:
    """Discover the image's provenance (and evidence bundle, if named) and verify it under `policy`."""
    try:
        reference = ImageReference.parse(image)
    except ValueError as exc:
        return ProvenanceCheck(ok=False, reason="MalformedInput", message=str(exc), policy=policy.name)
    try:
        with registry(policy.registry_credentials) as client:
            material = discover(client, reference)
            if evidence:
                material = dataclasses.replace(material, evidence=fetch_evidence(evidence, client, ca_file))
    except RegistryError as exc:
        return ProvenanceCheck(ok=False, reason="RegistryUnavailable" if exc.transient else exc.reason,
                               message=str(exc), transient=exc.transient, policy=policy.name)
    request = ReleaseRequest(image=image, commit_sha=commit, source_repository=source_repository)
    result = verify_provenance(material, request, policy.provenance)
    if not result.ok or result.summary is None:
        return ProvenanceCheck(ok=False, reason=str(result.reason), message=result.message, policy=policy.name)
    return ProvenanceCheck(ok=True, reason="Verified", message=result.message, policy=policy.name,
                           summary=summary_json(result.summary))


def summary_json(summary: ProvenanceSummary) -> dict[str, Any]:
    """The verified facts as camelCase JSON for status and the audit record."""
    data = _camel(dataclasses.asdict(summary))
    data["signers"] = [{**_camel(dataclasses.asdict(s)), "signer": s.describe()} for s in summary.signers]
    return {k: v for k, v in data.items() if v not in (None, [], {})}


def _camel(value: Any) -> Any:
    if isinstance(value, dict):
        return {_camel_key(k): _camel(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_camel(v) for v in value]
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def _camel_key(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)
