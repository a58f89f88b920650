"""DSSE envelopes (github.com/secure-systems-lab/dsse, protocol v1).

The signature covers PAE(payloadType, payload), never the JSON around it, so the payload we
hand on must be exactly the bytes the signature was checked against: callers get `payload`
from here and must not re-read it from anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

from .encoding import decode_base64
from .limits import MAX_DSSE_SIGNATURES
from .reasons import Reason, Rejected
from .strictjson import JsonObject, as_object, get_list, get_str, optional_str, parse_json_object

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


@dataclass(frozen=True)
class EnvelopeSignature:
    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[EnvelopeSignature, ...]

    def pae(self) -> bytes:
        return pae(self.payload_type, self.payload)

    def only_signature(self) -> EnvelopeSignature:
        """Exactly one signature: a second one is unverifiable noise that tools disagree about."""
        if len(self.signatures) != 1:
            raise Rejected(
                Reason.SIGNATURE_INVALID,
                f"DSSE envelope carries {len(self.signatures)} signatures; exactly one is accepted",
            )
        return self.signatures[0]

    def require_in_toto(self) -> None:
        if self.payload_type != IN_TOTO_PAYLOAD_TYPE:
            raise Rejected(
                Reason.PAYLOAD_TYPE_NOT_ALLOWED,
                f"DSSE payloadType {self.payload_type!r} ≠ {IN_TOTO_PAYLOAD_TYPE!r}",
            )


def pae(payload_type: str, payload: bytes) -> bytes:
    """Pre-authentication encoding: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, byte lengths."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def parse_envelope(data: bytes, *, what: str) -> Envelope:
    return envelope_from_json(parse_json_object(data, what=what), what=what)


def envelope_from_json(document: JsonObject, *, what: str) -> Envelope:
    payload_type = get_str(document, "payloadType", what)
    payload = decode_base64(get_str(document, "payload", what), what=f"{what} payload")
    raw_signatures = get_list(document, "signatures", what)
    if not raw_signatures:
        raise Rejected(Reason.SIGNATURE_INVALID, f"{what} carries no signature")
    if len(raw_signatures) > MAX_DSSE_SIGNATURES:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} carries {len(raw_signatures)} signatures")
    signatures = []
    for index, raw in enumerate(raw_signatures):
        entry = as_object(raw, f"{what} signature {index}")
        signatures.append(
            EnvelopeSignature(
                keyid=optional_str(entry, "keyid", f"{what} signature {index}") or "",
                sig=decode_base64(get_str(entry, "sig", f"{what} signature {index}"), what=f"{what} signature {index}"),
            )
        )
    return Envelope(payload_type=payload_type, payload=payload, signatures=tuple(signatures))
