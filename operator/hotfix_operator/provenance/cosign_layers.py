"""cosign's legacy layout: `sha256-<hex>.sig` and `.att` manifests whose layers carry the proof.

A `.sig` layer's blob is the simple-signing payload and its signature sits in an annotation;
an `.att` layer's blob is a DSSE envelope (its signature annotation is empty). Both may carry a
Fulcio certificate and a Rekor SET (`dev.sigstore.cosign/bundle`) as annotations. sigstore-python
cannot read these, so we verify them by hand with the same signer rules as everything else.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509

from .digests import check_content_digest
from .dsse import parse_envelope
from .encoding import decode_base64, load_pem_certificate
from .inputs import OciLayer
from .limits import MAX_ANNOTATION_BYTES, MAX_LAYER_BYTES
from .policy import SignerPolicy
from .reasons import Reason, Rejected
from .rekor import TlogEntry, parse_cosign_bundle_annotation
from .signers import SignedContent, VerifiedSigner, verify_signer
from .simplesigning import SimpleSigningClaim, read_simple_signing, require_signs_image
from .statement import Statement, read_statement

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
ANNOTATION_SIGNATURE = "dev.cosignproject.cosign/signature"
ANNOTATION_CERTIFICATE = "dev.sigstore.cosign/certificate"
ANNOTATION_BUNDLE = "dev.sigstore.cosign/bundle"


@dataclass(frozen=True)
class VerifiedImageSignature:
    signer: VerifiedSigner
    claim: SimpleSigningClaim
    origin: str


@dataclass(frozen=True)
class VerifiedAttestation:
    signer: VerifiedSigner
    statement: Statement
    payload: bytes
    origin: str


def describe_layer(kind: str, layer: OciLayer) -> str:
    return f"{kind} layer {layer.digest[:19]}…" if len(layer.digest) > 19 else f"{kind} layer {layer.digest!r}"


def _checked_blob(layer: OciLayer, media_type: str, what: str) -> bytes:
    if layer.media_type != media_type:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} has media type {layer.media_type!r}, expected {media_type!r}")
    if len(layer.blob) > MAX_LAYER_BYTES:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} is {len(layer.blob)} bytes, over the {MAX_LAYER_BYTES} limit")
    if layer.size is not None and layer.size != len(layer.blob):
        raise Rejected(Reason.DIGEST_MISMATCH, f"{what} is {len(layer.blob)} bytes, its descriptor says {layer.size}")
    check_content_digest(layer.blob, layer.digest, what=what)
    return layer.blob


def _annotation(layer: OciLayer, name: str, what: str) -> str | None:
    value = layer.annotations.get(name)
    if value is None or value == "":
        return None
    if len(value) > MAX_ANNOTATION_BYTES:
        raise Rejected(Reason.MALFORMED_INPUT, f"{what} annotation {name} is too large")
    return value


def _certificate(layer: OciLayer, what: str) -> x509.Certificate | None:
    pem = _annotation(layer, ANNOTATION_CERTIFICATE, what)
    return None if pem is None else load_pem_certificate(pem, what=f"{what} certificate")


def _tlog(layer: OciLayer, what: str) -> TlogEntry | None:
    text = _annotation(layer, ANNOTATION_BUNDLE, what)
    return None if text is None else parse_cosign_bundle_annotation(text)


def verify_signature_layer(layer: OciLayer, image_digest: str, policy: SignerPolicy) -> VerifiedImageSignature:
    """A `.sig` layer: a trusted signer's signature over a payload naming exactly this image."""
    what = describe_layer(".sig", layer)
    payload = _checked_blob(layer, SIMPLE_SIGNING_MEDIA_TYPE, what)
    encoded = _annotation(layer, ANNOTATION_SIGNATURE, what)
    if encoded is None:
        raise Rejected(Reason.NO_SIGNATURE, f"{what} has no {ANNOTATION_SIGNATURE} annotation")
    signer = verify_signer(
        content=SignedContent.simple(payload),
        signature=decode_base64(encoded, what=f"{what} signature"),
        certificate=_certificate(layer, what),
        tlog=_tlog(layer, what),
        policy=policy,
        what=what,
    )
    claim = read_simple_signing(payload)
    require_signs_image(claim, image_digest)
    return VerifiedImageSignature(signer=signer, claim=claim, origin=what)


def verify_attestation_layer(layer: OciLayer, policy: SignerPolicy) -> VerifiedAttestation:
    """An `.att` layer: a DSSE envelope with one signature by a trusted signer over an in-toto statement.

    The predicateType annotation is unsigned and therefore ignored; the statement says what it is.
    """
    what = describe_layer(".att", layer)
    blob = _checked_blob(layer, DSSE_MEDIA_TYPE, what)
    envelope = parse_envelope(blob, what=f"{what} DSSE envelope")
    envelope.require_in_toto()
    only = envelope.only_signature()
    signer = verify_signer(
        # The layer is the very envelope cosign uploaded: its hash is what the log entry records.
        content=SignedContent.envelope(
            envelope.pae(), envelope.payload, payload_type=envelope.payload_type, envelope_bytes=blob
        ),
        signature=only.sig,
        certificate=_certificate(layer, what),
        tlog=_tlog(layer, what),
        policy=policy,
        what=what,
    )
    return VerifiedAttestation(
        signer=signer, statement=read_statement(envelope.payload), payload=envelope.payload, origin=what
    )
