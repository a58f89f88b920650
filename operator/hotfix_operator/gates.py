"""The gates a release passes before anyone approves it, in the shell: its image exists by digest,
and its provenance verifies under the namespace's HotfixPolicy (registry discovery, the verifier).

Everything that can go wrong becomes an ImageCheck or ProvenanceCheck with a specific reason;
registry and API outages are marked transient so the lifecycle retries with backoff instead of
skipping the gate."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from typing import Any

from hotfix_operator.adapters.authorization import ApprovalAuthority
from hotfix_operator.adapters.discovery import discover
from hotfix_operator.adapters.evidence_fetch import fetch_evidence
from hotfix_operator.adapters.policies import PolicyProblem, PolicySource, ResolvedPolicy
from hotfix_operator.adapters.registry import ImageReference, RegistryClient, RegistryCredentials, RegistryError
from hotfix_operator.core.governance import ApprovalCheck, GovernanceRules
from hotfix_operator.core.model import Release
from hotfix_operator.core.observations import ImageCheck, ProvenanceCheck
from hotfix_operator.formats import utc_iso
from hotfix_operator.provenance import ProvenanceSummary, ReleaseRequest, verify_provenance

RegistryFactory = Callable[[RegistryCredentials | None], RegistryClient]


def pinned_reference(image: str) -> ImageReference | tuple[str, str]:
    """The image as registry/repository@digest, or (reason, message) why it is not one. Both gates use
    it, so a tag is refused in the same words wherever it is met."""
    try:
        reference = ImageReference.parse(image)
    except ValueError as exc:
        return "InvalidImageReference", str(exc)
    if reference.digest is None:
        return "NotDigestPinned", (f"image {image} is not pinned by digest: give registry/repository@sha256:<hex>, "
                                   "the digest the provenance binds (a tag can move)")
    return reference


class Gates:
    def __init__(self, registry: RegistryFactory, authority: ApprovalAuthority, ca_file: str | None = None) -> None:
        self.registry = registry
        self.authority = authority
        self.ca_file = ca_file

    def rules(self, release: Release, policies: PolicySource) -> GovernanceRules | None:
        """The namespace's approval, expiry and SLA rules; None while its policy cannot be read."""
        try:
            return policies.for_namespace(release.namespace).rules
        except PolicyProblem:
            return None

    def check_approvals(self, release: Release) -> ApprovalCheck:
        """The admission policy as shipped, then each approver's right, checked now. Fails closed."""
        admission = self.authority.admission_policy()
        if not admission.ok:
            return ApprovalCheck(admission)
        authors = [a for a in release.spec.approval.approvals if a.approver != release.spec.requested_by]
        return ApprovalCheck(admission, self.authority.rights(release.namespace, authors))

    def check_image(self, release: Release, policies: PolicySource) -> ImageCheck:
        """The image manifest, read by digest from its registry and hash-checked."""
        image = release.spec.artifact.image
        try:
            credentials = policies.for_namespace(release.namespace).registry_credentials
        except PolicyProblem:
            credentials = None  # the provenance gate reports policy problems, with their reasons
        reference = pinned_reference(image)
        if isinstance(reference, tuple):
            return ImageCheck(ok=False, reason=reference[0], message=reference[1])
        try:
            with self.registry(credentials) as registry:
                registry.get_manifest(reference)
        except RegistryError as exc:
            return ImageCheck(ok=False, transient=exc.transient, reason=exc.reason, message=str(exc))
        return ImageCheck(ok=True)

    def check_provenance(self, release: Release, policies: PolicySource) -> ProvenanceCheck:
        try:
            policy = policies.for_namespace(release.namespace)
        except PolicyProblem as problem:
            return ProvenanceCheck(ok=False, reason=problem.reason, message=str(problem), transient=problem.transient)
        return check_image_provenance(policy, release.spec.artifact.image, release.spec.commit_sha,
                                      release.spec.artifact.source_repository, self.registry,
                                      evidence=release.spec.artifact.evidence, ca_file=self.ca_file)


def check_image_provenance(policy: ResolvedPolicy, image: str, commit: str, source_repository: str,
                           registry: RegistryFactory, *, evidence: str | None = None,
                           ca_file: str | None = None) -> ProvenanceCheck:
    """Discover the image's provenance (and evidence bundle, if named) and verify it under `policy`."""
    reference = pinned_reference(image)
    if isinstance(reference, tuple):
        return ProvenanceCheck(ok=False, reason=reference[0], message=reference[1], policy=policy.name)
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
        return utc_iso(value)
    return value


def _camel_key(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)
