"""The pinned Sigstore trusted root: Fulcio CAs, Rekor logs and CT logs, each with a validity window.

We read the JSON ourselves (rather than only through sigstore's model) because the legacy cosign
path needs each authority's validity window and each log's id, and because a trust anchor is
the one input that must be parsed strictly: duplicate keys or an unknown media type refuse it.
The sigstore library's own TrustedRoot is derived from the same text for bundle verification.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cryptography import x509

from .encoding import decode_base64
from .keys import PublicKey, load_der_public_key
from .reasons import Rejected
from .strictjson import (
    JsonObject,
    JsonValue,
    as_list,
    as_object,
    get_list,
    get_object,
    get_str,
    optional_object,
    parse_json_object,
)

if TYPE_CHECKING:
    from sigstore.models import TrustedRoot

TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")
# Key types we can verify with; others (RSA CT logs of old staging instances) are skipped.
_SUPPORTED_KEY_DETAILS = frozenset(
    {"PKIX_ECDSA_P256_SHA_256", "PKIX_ECDSA_P384_SHA_384", "PKIX_ECDSA_P521_SHA_512", "PKIX_ED25519"}
)


def parse_timestamp(text: str, *, what: str) -> datetime:
    """RFC 3339 as protobuf JSON writes it (0–9 fractional digits, Z or offset)."""
    match = _TIMESTAMP.fullmatch(text)
    if not match:
        raise ValueError(f"{what}: {text!r} is not an RFC 3339 timestamp")
    base, fraction, zone = match.groups()
    micros = (fraction or "").ljust(6, "0")[:6]
    normalized = f"{base}.{micros}{'+00:00' if zone == 'Z' else zone}"
    return datetime.fromisoformat(normalized).astimezone(UTC)


@dataclass(frozen=True)
class ValidityWindow:
    start: datetime
    end: datetime | None

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment and (self.end is None or moment <= self.end)

    def describe(self) -> str:
        end = self.end.isoformat() if self.end else "open"
        return f"{self.start.isoformat()} – {end}"


@dataclass(frozen=True)
class LogInstance:
    """A Rekor or CT log: its id (as logs name themselves), key and the period the key was used."""

    log_id: bytes
    key: PublicKey
    validity: ValidityWindow
    base_url: str


@dataclass(frozen=True)
class CertificateAuthority:
    """A Fulcio CA; `chain` runs from the issuing certificate to the self-signed root."""

    chain: tuple[x509.Certificate, ...]
    validity: ValidityWindow
    uri: str

    @property
    def root(self) -> x509.Certificate:
        return self.chain[-1]

    @property
    def intermediates(self) -> tuple[x509.Certificate, ...]:
        return self.chain[:-1]


@dataclass(frozen=True)
class PinnedTrustRoot:
    text: str
    certificate_authorities: tuple[CertificateAuthority, ...]
    transparency_logs: Mapping[bytes, LogInstance]
    ct_logs: Mapping[bytes, LogInstance]
    _sigstore_cache: dict[str, TrustedRoot] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str) -> PinnedTrustRoot:
        """Parse trusted-root JSON; raises ValueError with a specific message when it is unusable."""
        try:
            document = parse_json_object(text, what="trusted root")
            return cls._from_document(text, document)
        except Rejected as exc:
            raise ValueError(exc.message) from None

    @classmethod
    def _from_document(cls, text: str, document: JsonObject) -> PinnedTrustRoot:
        media_type = get_str(document, "mediaType", "trusted root")
        if media_type != TRUSTED_ROOT_MEDIA_TYPE:
            raise ValueError(f"trusted root media type {media_type!r} is not {TRUSTED_ROOT_MEDIA_TYPE!r}")
        authorities = tuple(
            _authority(as_object(item, f"trusted root certificateAuthorities[{index}]"), index)
            for index, item in enumerate(_entries(document, "certificateAuthorities"))
        )
        tlogs = _logs(document, "tlogs")
        ctlogs = _logs(document, "ctlogs")
        if not tlogs:
            raise ValueError("trusted root has no usable transparency log (tlogs)")
        return cls(text=text, certificate_authorities=authorities, transparency_logs=tlogs, ct_logs=ctlogs)

    def sigstore_trusted_root(self) -> TrustedRoot:
        """The same root as the sigstore library's object, built once from the pinned text.

        sigstore offers only `TrustedRoot.from_file`; the pinned root lives in memory (a
        ConfigMap), so we build it the way `from_file` does, from the parsed protobuf model.
        """
        cached = self._sigstore_cache.get("root")
        if cached is None:
            from sigstore.models import TrustedRoot
            from sigstore_models.trustroot.v1 import TrustedRoot as TrustedRootMessage

            cached = TrustedRoot(TrustedRootMessage.from_json(self.text))
            self._sigstore_cache["root"] = cached
        return cached

    def describe_logs(self) -> str:
        return ", ".join(sorted({log.base_url or log.log_id.hex() for log in self.transparency_logs.values()}))


def _entries(document: JsonObject, key: str) -> list[JsonValue]:
    value = document.get(key)
    if value is None:
        return []
    return as_list(value, f"trusted root {key}")


def _validity(container: JsonObject, what: str) -> ValidityWindow:
    window = optional_object(container, "validFor", what)
    if window is None:
        raise ValueError(f"{what} has no validFor period")
    start = parse_timestamp(get_str(window, "start", f"{what}.validFor"), what=f"{what}.validFor.start")
    end_text = window.get("end")
    end = None if end_text is None else parse_timestamp(str(end_text), what=f"{what}.validFor.end")
    return ValidityWindow(start=start, end=end)


def _authority(item: JsonObject, index: int) -> CertificateAuthority:
    what = f"trusted root certificateAuthorities[{index}]"
    chain_doc = get_object(item, "certChain", what)
    certificates: list[x509.Certificate] = []
    for position, entry in enumerate(get_list(chain_doc, "certificates", f"{what}.certChain")):
        raw = decode_base64(
            get_str(as_object(entry, f"{what} certificate {position}"), "rawBytes", what), what=f"{what} certificate"
        )
        try:
            certificates.append(x509.load_der_x509_certificate(raw))
        except ValueError as exc:
            raise ValueError(f"{what} certificate {position} is not DER: {exc}") from None
    if not certificates:
        raise ValueError(f"{what} has an empty certificate chain")
    uri = item.get("uri")
    return CertificateAuthority(
        chain=tuple(certificates), validity=_validity(item, what), uri=uri if isinstance(uri, str) else ""
    )


def _logs(document: JsonObject, key: str) -> dict[bytes, LogInstance]:
    logs: dict[bytes, LogInstance] = {}
    for index, raw_entry in enumerate(_entries(document, key)):
        what = f"trusted root {key}[{index}]"
        entry = as_object(raw_entry, what)
        public_key = get_object(entry, "publicKey", what)
        details = public_key.get("keyDetails")
        if details not in _SUPPORTED_KEY_DETAILS:
            continue
        raw_key = decode_base64(get_str(public_key, "rawBytes", f"{what}.publicKey"), what=f"{what} key")
        key_object = load_der_public_key(raw_key, what=f"{what} key")
        log_id = decode_base64(get_str(get_object(entry, "logId", what), "keyId", f"{what}.logId"), what=f"{what} id")
        base_url = entry.get("baseUrl")
        logs[log_id] = LogInstance(
            log_id=log_id,
            key=key_object,
            validity=_validity(public_key, f"{what}.publicKey"),
            base_url=base_url if isinstance(base_url, str) else "",
        )
    return logs
