"""The provenance gate: given the fetched material, the request and the policy, one verdict.

Every signature-bearing item (`.sig` layer, `.att` layer, bundle) is verified on its own. Items
that fail (say, an attestation by a third party the policy does not trust) are set aside and
reported in the summary, because cosign's model lets anyone with push access add material.
What must hold is then checked over the items that verified:
  - at least one SLSA provenance statement about this image, and *every* verified one must
    match the request and the policy (two trusted provenances disagreeing is refused);
  - for keyless provenance, the certificate's repository, commit and build signer must agree
    with the provenance;
  - required predicate types, an image signature and a vulnerability scan when the policy asks;
  - the evidence bundle, when provided or required.
If nothing needed verified, the first failure among the relevant items is the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .bundles import verify_bundle
from .cosign_layers import describe_layer, verify_attestation_layer, verify_signature_layer
from .digests import check_content_digest, parse_image_digest, require_sha256_digest
from .evidence_bundle import VerifiedPayload, verify_evidence
from .inputs import BundleArtifact, ProvenanceMaterial, ReleaseRequest
from .limits import MAX_BUNDLES, MAX_LAYERS
from .policy import ProvenancePolicy, SignerPolicy
from .reasons import Reason, Rejected, abbreviate_pair
from .results import ProvenanceSummary, VerificationResult, VulnerabilityScanSummary
from .signers import VerifiedSigner
from .slsa import SLSA_PROVENANCE_TYPES, BuildFacts, read_build_facts
from .sourcerepo import normalize_commit, normalize_repository
from .statement import Statement, read_statement, require_subject
from .strictjson import parse_json
from .vulnerability import COSIGN_VULN_PREDICATE, evaluate_scans

# What `cosign sign` (v3, bundle format) signs instead of a simple-signing payload.
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"


@dataclass(frozen=True)
class _Attestation:
    signer: VerifiedSigner
    statement: Statement
    payload: bytes
    origin: str


@dataclass(frozen=True)
class _RequestFacts:
    image_digest: str
    commit: str
    repository: str


def verify_provenance(
    material: ProvenanceMaterial, request: ReleaseRequest, policy: ProvenancePolicy
) -> VerificationResult:
    """Verify everything; never raises. `ok` is True only with reason Verified."""
    try:
        summary = _verify(material, request, policy)
    except Rejected as exc:
        return VerificationResult.failure(exc.reason, exc.message)
    except Exception as exc:
        # Fail closed: no input, however strange, may crash the operator or pass the gate.
        return VerificationResult.failure(
            Reason.MALFORMED_INPUT, f"verification stopped on unexpected {type(exc).__name__}: {exc}"
        )
    signer = summary.signers[0].describe() if summary.signers else "?"
    return VerificationResult(
        ok=True,
        reason=Reason.VERIFIED,
        message=(
            f"{summary.image_digest} built by {summary.builder_id} from {summary.source_repository}"
            f"@{summary.commit_sha}, signed by {signer}"
        ),
        summary=summary,
    )


def _request_facts(material: ProvenanceMaterial, request: ReleaseRequest, policy: ProvenancePolicy) -> _RequestFacts:
    image_digest = parse_image_digest(request.image)
    try:
        commit = normalize_commit(request.commit_sha)
    except ValueError as exc:
        raise Rejected(Reason.MALFORMED_INPUT, f"requested commit: {exc}") from None
    try:
        repository = normalize_repository(request.source_repository)
    except ValueError as exc:
        raise Rejected(Reason.MALFORMED_INPUT, f"requested source repository: {exc}") from None
    if repository not in policy.allowed_source_repositories:
        raise Rejected(
            Reason.SOURCE_MISMATCH,
            f"requested source repository {repository} is not allowed by the policy "
            f"(allowed: {', '.join(policy.allowed_source_repositories)})",
        )
    require_sha256_digest(material.image_digest, what="material image digest")
    if material.image_digest != image_digest:
        expected, actual = abbreviate_pair(image_digest, material.image_digest, keep=19)
        raise Rejected(Reason.DIGEST_MISMATCH, f"material was fetched for {actual} ≠ requested {expected}")
    if material.image_manifest is not None:
        check_content_digest(material.image_manifest, image_digest, what="image manifest")
    return _RequestFacts(image_digest=image_digest, commit=commit, repository=repository)


@dataclass
class _Found:
    """What verified, and what did not (kept to explain a refusal or to report as ignored)."""

    image_signers: list[VerifiedSigner] = field(default_factory=list)
    attestations: list[_Attestation] = field(default_factory=list)
    signature_failures: list[Rejected] = field(default_factory=list)
    attestation_failures: list[Rejected] = field(default_factory=list)

    def add(self, attestation: _Attestation) -> None:
        self.attestations.append(attestation)
        if attestation.statement.predicate_type == COSIGN_SIGN_PREDICATE:
            # cosign 3 signs images as a statement about the image digest.
            self.image_signers.append(attestation.signer)

    @property
    def provenance(self) -> list[_Attestation]:
        return [item for item in self.attestations if item.statement.predicate_type in SLSA_PROVENANCE_TYPES]

    @property
    def predicate_types(self) -> set[str]:
        return {item.statement.predicate_type for item in self.attestations}


def _verify(material: ProvenanceMaterial, request: ReleaseRequest, policy: ProvenancePolicy) -> ProvenanceSummary:
    facts = _request_facts(material, request, policy)
    found = _collect(material, facts.image_digest, policy)
    build_facts = _require_provenance(found, facts, policy)
    _require_policy_extras(found, facts, policy)
    scan_summary = _scan(found, policy)
    evidence_summary = None
    if material.evidence is not None:
        evidence_summary = verify_evidence(
            material.evidence,
            [
                VerifiedPayload(
                    item.payload, parse_json(item.payload, what="verified statement"), item.statement.predicate
                )
                for item in found.provenance
            ],
        )
    elif policy.require_evidence:
        raise Rejected(Reason.EVIDENCE_MISMATCH, "policy requires an evidence bundle; none was provided")

    first = build_facts[0]
    signers = [item.signer.summary for item in found.attestations] + [signer.summary for signer in found.image_signers]
    return ProvenanceSummary(
        image_digest=facts.image_digest,
        builder_id=first.builder_id,
        source_repository=first.source_repository,
        source_ref=first.source_ref,
        commit_sha=first.commit,
        predicate_types=tuple(sorted(found.predicate_types)),
        signers=tuple(dict.fromkeys(signers)),
        image_signature_verified=bool(found.image_signers),
        vulnerability_scan=scan_summary,
        evidence=evidence_summary,
        ignored=tuple(
            f"{failure.reason}: {failure.message}" for failure in found.signature_failures + found.attestation_failures
        ),
    )


def _collect(material: ProvenanceMaterial, image_digest: str, policy: ProvenancePolicy) -> _Found:
    if len(material.signature_layers) + len(material.attestation_layers) > MAX_LAYERS:
        raise Rejected(Reason.MALFORMED_INPUT, f"more than {MAX_LAYERS} signature and attestation layers")
    if len(material.bundles) > MAX_BUNDLES:
        raise Rejected(Reason.MALFORMED_INPUT, f"more than {MAX_BUNDLES} Sigstore bundles")
    if not (material.signature_layers or material.attestation_layers or material.bundles):
        raise Rejected(Reason.NO_SIGNATURE, f"no signature, attestation or Sigstore bundle found for {image_digest}")
    found = _Found()
    for layer in material.signature_layers:
        try:
            found.image_signers.append(verify_signature_layer(layer, image_digest, policy).signer)
        except Rejected as exc:
            found.signature_failures.append(_located(exc, describe_layer(".sig", layer)))
    for layer in material.attestation_layers:
        try:
            verified = verify_attestation_layer(layer, policy)
            require_subject(verified.statement, image_digest)
            found.add(_Attestation(verified.signer, verified.statement, verified.payload, verified.origin))
        except Rejected as exc:
            found.attestation_failures.append(_located(exc, describe_layer(".att", layer)))
    for bundle in material.bundles:
        try:
            _take_bundle(bundle, image_digest, policy, found)
        except Rejected as exc:
            found.attestation_failures.append(exc)
    return found


def _require_provenance(found: _Found, facts: _RequestFacts, policy: ProvenancePolicy) -> list[BuildFacts]:
    provenance = found.provenance
    if not provenance:
        if found.attestation_failures:
            raise found.attestation_failures[0]
        if not found.attestations and not found.image_signers and found.signature_failures:
            raise found.signature_failures[0]
        types = sorted(found.predicate_types)
        raise Rejected(
            Reason.PREDICATE_TYPE_MISSING,
            f"no verified SLSA provenance for {facts.image_digest}"
            + (f" (verified predicate types: {', '.join(types)})" if types else ""),
        )
    return [_check_provenance(item, facts, policy) for item in provenance]


def _require_policy_extras(found: _Found, facts: _RequestFacts, policy: ProvenancePolicy) -> None:
    for required in policy.required_predicate_types:
        if required not in found.predicate_types:
            raise Rejected(
                Reason.PREDICATE_TYPE_MISSING,
                f"policy requires a verified {required} attestation; found {', '.join(sorted(found.predicate_types))}"
                + _unverified_note(found.attestation_failures),
            )
    if policy.require_image_signature and not found.image_signers:
        if found.signature_failures:
            raise found.signature_failures[0]
        raise Rejected(
            Reason.NO_SIGNATURE, f"policy requires an image signature (.sig) for {facts.image_digest}; none found"
        )


def _scan(found: _Found, policy: ProvenancePolicy) -> VulnerabilityScanSummary | None:
    if policy.vulnerability_scan is None:
        return None
    scans = [item.statement for item in found.attestations if item.statement.predicate_type == COSIGN_VULN_PREDICATE]
    if scans:
        return evaluate_scans(scans, policy.vulnerability_scan)
    if policy.vulnerability_scan.required:
        raise Rejected(
            Reason.PREDICATE_TYPE_MISSING,
            f"policy requires a verified vulnerability scan ({COSIGN_VULN_PREDICATE}); none found"
            + _unverified_note(found.attestation_failures),
        )
    return None


def _unverified_note(failures: list[Rejected]) -> str:
    if not failures:
        return ""
    return f" ({len(failures)} attestation(s) did not verify; first: {failures[0].reason}: {failures[0].message})"


def _located(exc: Rejected, origin: str) -> Rejected:
    return exc if origin in exc.message else Rejected(exc.reason, f"{origin}: {exc.message}")


def _take_bundle(bundle: BundleArtifact, image_digest: str, policy: SignerPolicy, found: _Found) -> None:
    verified = verify_bundle(bundle, policy, artifact_digest=image_digest)
    if verified.envelope is None:
        # A message signature over the image digest is an image signature.
        found.image_signers.append(verified.signer)
        return
    statement = read_statement(verified.envelope.payload)
    require_subject(statement, image_digest)
    found.add(_Attestation(verified.signer, statement, verified.envelope.payload, "Sigstore bundle"))


def check_builder(builder_id: str, policy: ProvenancePolicy) -> None:
    base, _, ref = builder_id.partition("@")
    allowed = any(entry == builder_id or ("@" not in entry and entry == base) for entry in policy.allowed_builders)
    if not allowed:
        raise Rejected(
            Reason.BUILDER_NOT_ALLOWED,
            f"builder {builder_id} is not allowed (allowed: {', '.join(policy.allowed_builders)})",
        )
    if policy.require_tagged_builder and not ref.startswith("refs/tags/"):
        raise Rejected(
            Reason.BUILDER_NOT_ALLOWED,
            f"builder {builder_id} is not pinned to a release tag (refs/tags/…), which the policy requires",
        )


def _check_provenance(item: _Attestation, facts: _RequestFacts, policy: ProvenancePolicy) -> BuildFacts:
    build = read_build_facts(item.statement)
    check_builder(build.builder_id, policy)
    if build.source_repository != facts.repository:
        raise Rejected(
            Reason.SOURCE_MISMATCH,
            f"provenance source repository {build.source_repository} ≠ requested {facts.repository}",
        )
    if build.commit != facts.commit:
        expected, actual = abbreviate_pair(facts.commit, build.commit, keep=7)
        raise Rejected(Reason.COMMIT_MISMATCH, f"provenance commit {actual} ≠ requested {expected}")
    identity = item.signer.certificate
    if identity is None:
        return build
    # Keyless: the certificate's claims come from the CI's OIDC token, independent of the
    # provenance document the build wrote; both must tell the same story.
    if identity.source_repository is None:
        raise Rejected(Reason.SOURCE_MISMATCH, "signing certificate names no source repository to cross-check")
    if identity.source_repository != build.source_repository:
        raise Rejected(
            Reason.SOURCE_MISMATCH,
            f"certificate source repository {identity.source_repository} ≠ provenance {build.source_repository}",
        )
    if identity.source_commit is None:
        raise Rejected(Reason.COMMIT_MISMATCH, "signing certificate names no source commit to cross-check")
    if identity.source_commit != build.commit:
        expected, actual = abbreviate_pair(build.commit, identity.source_commit, keep=7)
        raise Rejected(Reason.COMMIT_MISMATCH, f"certificate commit {actual} ≠ provenance commit {expected}")
    signer_uri = identity.build_signer_uri or identity.subject
    if signer_uri != build.builder_id:
        raise Rejected(
            Reason.BUILDER_NOT_ALLOWED, f"certificate build signer {signer_uri} ≠ provenance builder {build.builder_id}"
        )
    return build
