"""Fulcio (keyless) signing certificates: who they name, and whether they chain to the pinned root.

Fulcio records the OIDC token's claims as X.509 extensions under 1.3.6.1.4.1.57264.1. The newer
ones (.8 and up) are DER UTF8Strings; the deprecated GitHub ones (.1–.6) are raw bytes. We read
both, preferring the newer, so certificates from either era carry the facts we cross-check
against the provenance (source repository, commit, build signer).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store, VerificationError

from .encoding import der_utf8_string
from .reasons import Reason, Rejected
from .sourcerepo import GITHUB_HOST, normalize_commit, normalize_repository
from .trustroot import PinnedTrustRoot

_FULCIO = "1.3.6.1.4.1.57264.1."
OID_ISSUER_V1 = x509.ObjectIdentifier(_FULCIO + "1")
OID_GITHUB_WORKFLOW_SHA = x509.ObjectIdentifier(_FULCIO + "3")
OID_GITHUB_WORKFLOW_REPOSITORY = x509.ObjectIdentifier(_FULCIO + "5")
OID_GITHUB_WORKFLOW_REF = x509.ObjectIdentifier(_FULCIO + "6")
OID_OTHERNAME_SAN = x509.ObjectIdentifier(_FULCIO + "7")
OID_ISSUER = x509.ObjectIdentifier(_FULCIO + "8")
OID_BUILD_SIGNER_URI = x509.ObjectIdentifier(_FULCIO + "9")
OID_SOURCE_REPOSITORY_URI = x509.ObjectIdentifier(_FULCIO + "12")
OID_SOURCE_REPOSITORY_DIGEST = x509.ObjectIdentifier(_FULCIO + "13")
OID_SOURCE_REPOSITORY_REF = x509.ObjectIdentifier(_FULCIO + "14")
GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"


@dataclass(frozen=True)
class CertificateIdentity:
    """The identity and build facts a Fulcio certificate attests to."""

    subject: str
    issuer: str | None
    build_signer_uri: str | None
    source_repository_uri: str | None
    source_commit: str | None
    source_ref: str | None

    @property
    def source_repository(self) -> str | None:
        """Normalized repository, or None when the certificate names none we can read."""
        if self.source_repository_uri is None:
            return None
        try:
            return normalize_repository(self.source_repository_uri)
        except ValueError:
            return None


def _raw_extension(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> bytes | None:
    try:
        extension = certificate.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return None
    value = extension.value
    return value.value if isinstance(value, x509.UnrecognizedExtension) else None


def _legacy_text(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> str | None:
    raw = _raw_extension(certificate, oid)
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(Reason.MALFORMED_INPUT, f"certificate extension {oid.dotted_string} is not UTF-8") from None


def _der_text(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> str | None:
    raw = _raw_extension(certificate, oid)
    return None if raw is None else der_utf8_string(raw, what=f"certificate extension {oid.dotted_string}")


def _subject_alternative_name(certificate: x509.Certificate) -> str:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise Rejected(Reason.CERTIFICATE_UNTRUSTED, "signing certificate has no subject alternative name") from None
    values: list[str] = []
    values.extend(names.get_values_for_type(x509.UniformResourceIdentifier))
    values.extend(names.get_values_for_type(x509.RFC822Name))
    for other in names.get_values_for_type(x509.OtherName):
        if other.type_id == OID_OTHERNAME_SAN:
            values.append(der_utf8_string(other.value, what="certificate otherName SAN"))
    if len(values) != 1:
        raise Rejected(
            Reason.CERTIFICATE_UNTRUSTED,
            f"signing certificate names {len(values)} identities, Fulcio issues exactly one",
        )
    return values[0]


def certificate_identity(certificate: x509.Certificate) -> CertificateIdentity:
    issuer = _der_text(certificate, OID_ISSUER)
    legacy_issuer = _legacy_text(certificate, OID_ISSUER_V1)
    if issuer is not None and legacy_issuer is not None and issuer != legacy_issuer:
        raise Rejected(
            Reason.IDENTITY_MISMATCH,
            f"certificate names two OIDC issuers: {issuer!r} (.1.8) and {legacy_issuer!r} (.1.1)",
        )
    issuer = issuer or legacy_issuer
    repository_uri = _der_text(certificate, OID_SOURCE_REPOSITORY_URI)
    if repository_uri is None and issuer == GITHUB_ACTIONS_ISSUER:
        legacy_repository = _legacy_text(certificate, OID_GITHUB_WORKFLOW_REPOSITORY)
        repository_uri = f"https://{GITHUB_HOST}/{legacy_repository}" if legacy_repository else None
    commit = _der_text(certificate, OID_SOURCE_REPOSITORY_DIGEST) or _legacy_text(certificate, OID_GITHUB_WORKFLOW_SHA)
    if commit is not None:
        try:
            commit = normalize_commit(commit)
        except ValueError as exc:
            raise Rejected(Reason.MALFORMED_INPUT, f"certificate source commit: {exc}") from None
    return CertificateIdentity(
        subject=_subject_alternative_name(certificate),
        issuer=issuer,
        build_signer_uri=_der_text(certificate, OID_BUILD_SIGNER_URI),
        source_repository_uri=repository_uri,
        source_commit=commit,
        source_ref=_der_text(certificate, OID_SOURCE_REPOSITORY_REF)
        or _legacy_text(certificate, OID_GITHUB_WORKFLOW_REF),
    )


def verify_certificate_chain(
    certificate: x509.Certificate, trust: PinnedTrustRoot, signing_time: datetime
) -> list[x509.Certificate]:
    """Chain the leaf to a pinned Fulcio CA valid at `signing_time`; returns leaf-first chain.

    Only the pinned root's certificates are used to build the path: intermediates shipped next
    to the signature (cosign's `chain` annotation) are not trusted, so a chain that only works
    with them does not chain to the pinned root.
    """
    if not certificate.not_valid_before_utc <= signing_time <= certificate.not_valid_after_utc:
        raise Rejected(
            Reason.CERTIFICATE_EXPIRED,
            f"signing time {signing_time.isoformat()} is outside the certificate's validity "
            f"{certificate.not_valid_before_utc.isoformat()} – {certificate.not_valid_after_utc.isoformat()}",
        )
    # Fulcio leaves carry the code-signing EKU, not the client-auth EKU WebPKI client
    # verification expects; everything else in the WebPKI profile still applies.
    ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
    )
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
    )
    failures: list[str] = []
    for authority in trust.certificate_authorities:
        if not authority.validity.contains(signing_time):
            continue
        verifier = (
            PolicyBuilder()
            .store(Store([authority.root]))
            .time(signing_time)
            .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
            .build_client_verifier()
        )
        try:
            verified = verifier.verify(certificate, list(authority.intermediates))
        except (VerificationError, x509.UnsupportedGeneralNameType) as exc:
            failures.append(str(exc))
            continue
        _require_code_signing(certificate)
        return list(verified.chain)
    detail = "; ".join(failures) if failures else "no pinned Fulcio CA was valid at that time"
    raise Rejected(
        Reason.CERTIFICATE_UNTRUSTED,
        f"signing certificate (issuer {certificate.issuer.rfc4514_string()}) does not chain to the pinned "
        f"trusted root at {signing_time.isoformat()}: {detail}",
    )


def _require_code_signing(certificate: x509.Certificate) -> None:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        extended = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise Rejected(Reason.CERTIFICATE_UNTRUSTED, "signing certificate lacks key usage extensions") from None
    if not usage.digital_signature or ExtendedKeyUsageOID.CODE_SIGNING not in extended:
        raise Rejected(Reason.CERTIFICATE_UNTRUSTED, "signing certificate is not a code-signing certificate")
