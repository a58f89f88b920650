"""The gates a release passes before anyone approves it, in the shell: its image exists by digest,
and its provenance verifies under the namespace's HotfixPolicy (registry discovery, the verifier).

Everything that can go wrong becomes an ImageCheck or ProvenanceCheck with a specific reason;
registry and API outages are marked transient so the lifecycle retries with backoff instead of
skipping the gate.

Where either gate connects is the policy's decision (`core.gate_egress`): an image or evidence
location outside its patterns is refused before any connection, and every host the registry client
reaches is judged first. Without a usable policy nothing is read: the image check leaves the release
to the provenance gate, which reports the policy's problem."""

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
from hotfix_operator.core.gate_egress import GateRules, evidence_problem, image_problem
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
    def __init__(self, registry: RegistryFactory, authority: ApprovalAuthority, ca_file: str | None = None,
                 api_server: str | None = None) -> None:
        self.registry = registry
        self.authority = authority
        self.ca_file = ca_file
        self.api_server = api_server  # host:port the gates never connect to

    def rules(self, release: Release, policies: PolicySource) -> GovernanceRules | None:
        """The namespace's approval, expiry and SLA rules; None while its policy cannot be read."""
        try:
            return policies.for_namespace(release.namespace).rules
        except PolicyProblem:
            return None

    def check_approvals(self, release: Release) -> ApprovalCheck:
        """The admission policy as shipped and each approver's right, checked now (together). Fails closed."""
        authors = [a for a in release.spec.approval.approvals if a.approver != release.spec.requested_by]
        undo = release.spec.undo
        if undo is not None:  # an undo's approvers, checked the same way (core.undo_approval)
            known = {a.approver for a in authors}
            authors += [a for a in undo.approvals if a.approver != undo.by and a.approver not in known]
        admission, rights = self.authority.check(release.namespace, authors)
        return ApprovalCheck(admission) if rights is None else ApprovalCheck(admission, rights)

    def check_image(self, release: Release, policies: PolicySource) -> ImageCheck:
        """The image manifest, read by digest from its registry and hash-checked — where the policy allows.
        Without a usable policy, or for an image outside its patterns, nothing is read and the release goes
        on to the provenance gate, which refuses it with the reason (a transient policy problem is retried)."""
        image = release.spec.artifact.image
        reference = pinned_reference(image)
        if isinstance(reference, tuple):
            return ImageCheck(ok=False, reason=reference[0], message=reference[1])
        try:
            policy = policies.for_namespace(release.namespace)
        except PolicyProblem as problem:
            if problem.transient:
                return ImageCheck(ok=False, transient=True, reason=problem.reason, message=str(problem))
            return ImageCheck(ok=True, reason="NotRead", message=(
                "the image manifest was not read: the namespace's HotfixPolicy decides where the operator may "
                "connect, and the provenance gate reports why it cannot be used"))
        rules = self._rules(policy.egress)
        if image_problem(rules, reference.registry, reference.repository):
            return ImageCheck(ok=True, reason="NotRead", message=(
                f"the image manifest was not read: {reference.registry}/{reference.repository} is outside "
                f"HotfixPolicy {policy.name}'s provenance.images, which the provenance gate reports"))
        try:
            with self.registry(policy.registry_credentials) as registry:
                registry.restrict(rules).get_manifest(reference)
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
                                      evidence=release.spec.artifact.evidence, ca_file=self.ca_file,
                                      api_server=self.api_server)

    def _rules(self, rules: GateRules) -> GateRules:
        return dataclasses.replace(rules, api_server=self.api_server) if self.api_server else rules


def check_image_provenance(policy: ResolvedPolicy, image: str, commit: str, source_repository: str,
                           registry: RegistryFactory, *, evidence: str | None = None,
                           ca_file: str | None = None, api_server: str | None = None) -> ProvenanceCheck:
    """Discover the image's provenance (and evidence bundle, if named) and verify it under `policy`,
    connecting only where the policy allows: the image and evidence patterns are judged before any
    connection, every host the registry client reaches before it is sent anything."""
    reference = pinned_reference(image)
    if isinstance(reference, tuple):
        return ProvenanceCheck(ok=False, reason=reference[0], message=reference[1], policy=policy.name)
    rules = dataclasses.replace(policy.egress, api_server=api_server) if api_server else policy.egress
    problem = image_problem(rules, reference.registry, reference.repository)
    if problem:
        return ProvenanceCheck(ok=False, reason="ImageNotAllowed", message=problem, policy=policy.name)
    problem = evidence_problem(rules, evidence) if evidence else None
    if problem:
        return ProvenanceCheck(ok=False, reason="EvidenceNotAllowed", message=problem, policy=policy.name)
    try:
        with registry(policy.registry_credentials) as client:
            material = discover(client.restrict(rules), reference)
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
