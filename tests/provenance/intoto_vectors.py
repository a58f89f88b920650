"""The real intoto-entry vectors (slsa-github-generator v1.x via slsa-verifier) and synthetic look-alikes.

The real ones show the gate accepts what those builders published; the synthetic ones, made with a
PrivateSigstore, cover what no public artifact can: a genuine SET over a body that names something
else, or a certificate that had expired when the entry was logged.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from hotfix_operator.provenance import SignerPolicy
from hotfix_operator.provenance.dsse import pae
from tests.provenance.private_sigstore import (
    GITHUB_ISSUER,
    IN_TOTO_PAYLOAD_TYPE,
    BuildClaims,
    PrivateSigstore,
    b64,
    cert_pem,
    envelope_bytes,
    intoto_body,
    new_key,
    sha256_hex,
    sign,
)

GENERATOR = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/"
REPOSITORY = "github.com/slsa-framework/example-package"


@dataclasses.dataclass(frozen=True)
class LegacyVector:
    """A `cosign save` layout whose `.att` layer's Rekor entry is intoto/0.0.1."""

    name: str
    digest: str
    commit: str
    builder: str
    log_index: int
    signed_at: datetime


LEGACY = [
    LegacyVector(
        "container-v1.4.0",
        "sha256:a74d89d8dd863ca5dae4a29e0feede81ddf59197849a80784af5a02ab7786925",
        "904e2c3e02725e314cf6cf141c4700081298dcbd",
        GENERATOR + "generator_container_slsa3.yml@refs/tags/v1.4.0",
        10957770,
        datetime.fromtimestamp(1673455977, UTC),
    ),
    LegacyVector(
        "container-v1.9.0",
        "sha256:5b146084201148bf151871fa779767f013c47706d031106af0d727fb5b88f5ac",
        "2bcaa7495e1cbd11fbd4f598d857b3a6f18df933",
        GENERATOR + "generator_container_slsa3.yml@refs/tags/v1.9.0",
        32414261,
        datetime.fromtimestamp(1692768128, UTC),
    ),
]


@dataclasses.dataclass(frozen=True)
class BundleVector:
    """A Sigstore bundle whose tlog entry is intoto/0.0.2, for a file whose digest is `artifact`."""

    path: str
    media_type: str
    artifact: str
    signer: str
    log_index: int
    has_proof: bool


BUNDLES = [
    BundleVector(
        "delegator-v1.10.0/binary-linux-amd64-workflow_dispatch.build.slsa",
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
        GENERATOR + "delegator_generic_slsa3.yml@refs/tags/v1.10.0",
        80019145,
        True,
    ),
    BundleVector(
        "delegator-v2.0.0/binary-linux-amd64-workflow_dispatch.build.slsa",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
        GENERATOR + "delegator_generic_slsa3.yml@refs/tags/v2.0.0",
        87850635,
        True,
    ),
    BundleVector(
        "container-based-v1.7.0/binary-linux-amd64-workflow_dispatch.intoto.sigstore",
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        GENERATOR + "builder_container-based_slsa3.yml@refs/tags/v1.7.0",
        23032398,
        False,
    ),
]


def bundle_document(vectors: Path, vector: BundleVector) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((vectors / "slsa-github-generator" / vector.path).read_text())
    return document


def signer_policy(root: str, subject: str) -> SignerPolicy:
    return SignerPolicy.model_validate(
        {
            "keylessIdentities": [{"issuer": {"exact": GITHUB_ISSUER}, "subject": {"exact": subject}}],
            "trustedRoot": root,
        }
    )


def intoto_v001_body(envelope: bytes, payload: bytes | None, verifier_pem: str) -> dict[str, Any]:
    """Rekor's intoto/0.0.1 canonical body: no signature, the envelope's hash, the payload's (if any)."""
    content: dict[str, Any] = {"hash": {"algorithm": "sha256", "value": sha256_hex(envelope)}}
    if payload is not None:
        content["payloadHash"] = {"algorithm": "sha256", "value": sha256_hex(payload)}
    return {
        "apiVersion": "0.0.1",
        "kind": "intoto",
        "spec": {"content": content, "publicKey": b64(verifier_pem.encode())},
    }


SUBJECT = "https://github.com/acme/ci/.github/workflows/build.yml@refs/tags/v1.0.0"
SIGNED_AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def private_bundle(
    sigstore: PrivateSigstore,
    statement: bytes,
    *,
    body_for: Any = None,
    logged_at: datetime = SIGNED_AT,
    media_type: str = "application/vnd.dev.sigstore.bundle+json;version=0.1",
) -> bytes:
    """A keyless bundle with an intoto entry from a PrivateSigstore; `body_for(envelope, payload, sig, pem)`
    builds the logged body (default: a faithful intoto/0.0.2 one)."""
    key = new_key()
    certificate = sigstore.issue(BuildClaims(subject=SUBJECT), key, issued_at=SIGNED_AT - timedelta(seconds=5))
    signature = sign(key, pae(IN_TOTO_PAYLOAD_TYPE, statement))
    envelope = envelope_bytes(statement, [signature])
    body = (body_for or intoto_body)(envelope, statement, signature, cert_pem(certificate))
    annotation = json.loads(sigstore.log(body, integrated_time=int(logged_at.timestamp())))
    payload = annotation["Payload"]
    entry = {
        "logIndex": str(payload["logIndex"]),
        "logId": {"keyId": b64(bytes.fromhex(payload["logID"]))},
        "kindVersion": {"kind": body["kind"], "version": body["apiVersion"]},
        "integratedTime": str(payload["integratedTime"]),
        "inclusionPromise": {"signedEntryTimestamp": annotation["SignedEntryTimestamp"]},
        "canonicalizedBody": payload["body"],
    }
    der = base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()
    document = {
        "mediaType": media_type,
        "verificationMaterial": {"x509CertificateChain": {"certificates": [{"rawBytes": der}]}, "tlogEntries": [entry]},
        "dsseEnvelope": json.loads(envelope),
    }
    return json.dumps(document).encode()
