"""The provenance part of a HotfixPolicy: whom to trust and what the provenance must say.

These models mirror the cluster-scoped HotfixPolicy spec (camelCase on the wire). Everything a
requester could abuse to trust their own signature lives here, never in the HotfixRelease.
Keys, regular expressions and the trusted root are parsed when the policy is loaded, so a
broken policy fails at load time with a message, not in the middle of an emergency.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator
from pydantic.alias_generators import to_camel

from .keys import PublicKey, load_pem_public_key
from .sourcerepo import parse_source_uri
from .trustroot import PinnedTrustRoot

SeverityName = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]


class _Spec(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class StringMatch(_Spec):
    """Exactly one of `exact` or `regex`; a regex must match the whole value."""

    exact: str | None = None
    regex: str | None = None
    _pattern: re.Pattern[str] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _one_form(self) -> StringMatch:
        if (self.exact is None) == (self.regex is None):
            raise ValueError("set exactly one of exact or regex")
        if self.regex is not None:
            try:
                self._pattern = re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {self.regex!r}: {exc}") from None
        return self

    def matches(self, value: str) -> bool:
        if self._pattern is not None:
            return self._pattern.fullmatch(value) is not None
        return value == self.exact

    def describe(self) -> str:
        return repr(self.exact) if self.exact is not None else f"/{self.regex}/"


class KeylessIdentity(_Spec):
    """A Fulcio identity: the OIDC issuer and the certificate subject (SAN)."""

    issuer: StringMatch
    subject: StringMatch

    def describe(self) -> str:
        return f"subject {self.subject.describe()} from issuer {self.issuer.describe()}"


class TrustedKey(_Spec):
    name: str = Field(min_length=1)
    public_key: str

    @field_validator("public_key")
    @classmethod
    def _loads(cls, value: str) -> str:
        key = load_pem_public_key(value, what="trusted public key")
        if key.algorithm not in ("ECDSA secp256r1", "Ed25519"):
            # cosign pairs other curves with hash functions inconsistently; refuse rather than guess.
            raise ValueError(f"trusted keys must be ECDSA P-256 or Ed25519, not {key.algorithm}")
        return value


class VulnerabilityScanPolicy(_Spec):
    """Refuse when a verified scan reports a finding at or above `failAt`."""

    required: bool = True
    fail_at: SeverityName = "HIGH"
    unknown_severity_as: SeverityName = "MEDIUM"
    ignore_ids: list[str] = Field(default_factory=list)


class SignerPolicy(_Spec):
    """Who may sign: trusted keys and/or keyless identities, and the pinned Sigstore root."""

    trusted_keys: list[TrustedKey] = Field(default_factory=list)
    keyless_identities: list[KeylessIdentity] = Field(default_factory=list)
    trusted_root: str | None = None
    require_transparency_log: bool = True

    _keys: tuple[PublicKey, ...] = PrivateAttr(default=())
    _root: PinnedTrustRoot | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _coherent(self) -> SignerPolicy:
        if not self.trusted_keys and not self.keyless_identities:
            raise ValueError("trust at least one key (trustedKeys) or identity (keylessIdentities)")
        names = [key.name for key in self.trusted_keys]
        if len(set(names)) != len(names):
            raise ValueError("trusted key names must be unique")
        if self.trusted_root is None and (self.keyless_identities or self.require_transparency_log):
            raise ValueError(
                "trustedRoot is required for keyless identities and for transparency-log checks "
                "(set requireTransparencyLog: false to trust bare key signatures)"
            )
        if self.trusted_root is not None:
            self._root = PinnedTrustRoot.parse(self.trusted_root)
            if self.keyless_identities and not self._root.certificate_authorities:
                raise ValueError("trustedRoot has no certificate authority for keyless identities")
        self._keys = tuple(load_pem_public_key(key.public_key, name=key.name) for key in self.trusted_keys)
        return self

    @property
    def keys(self) -> tuple[PublicKey, ...]:
        return self._keys

    @property
    def root(self) -> PinnedTrustRoot | None:
        return self._root

    def matching_identity(self, subject: str, issuer: str | None) -> KeylessIdentity | None:
        if issuer is None:
            return None
        for identity in self.keyless_identities:
            if identity.issuer.matches(issuer) and identity.subject.matches(subject):
                return identity
        return None


class ProvenancePolicy(SignerPolicy):
    """What the provenance must say, on top of who may sign it."""

    allowed_builders: list[str] = Field(min_length=1)
    require_tagged_builder: bool = True
    allowed_source_repositories: list[str] = Field(min_length=1)
    required_predicate_types: list[str] = Field(default_factory=list)
    require_image_signature: bool = False
    require_evidence: bool = False
    vulnerability_scan: VulnerabilityScanPolicy | None = None

    @field_validator("allowed_source_repositories")
    @classmethod
    def _normalized_repositories(cls, values: list[str]) -> list[str]:
        return [parse_source_uri(value).repository for value in values]

    @model_validator(mode="after")
    def _builders_coherent(self) -> ProvenancePolicy:
        for builder in self.allowed_builders:
            if not builder:
                raise ValueError("allowedBuilders entries must not be empty")
            if "@" in builder and self.require_tagged_builder:
                ref = builder.split("@", 1)[1]
                if not ref.startswith("refs/tags/"):
                    raise ValueError(
                        f"allowed builder {builder!r} is pinned to {ref!r}, but requireTaggedBuilder is set"
                    )
        return self
