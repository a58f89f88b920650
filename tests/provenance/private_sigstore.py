"""A private Sigstore instance for tests, and cosign-format material signed with it.

It has its own Fulcio-like CA (root + intermediate), CT log key and Rekor key, publishes them
as a trusted root, issues Fulcio-shaped certificates with embedded SCTs, and writes Rekor SETs.
With it the keyless path can be exercised end to end (and tampered with) without the network,
and key-based material is produced in exactly the layout cosign writes, so cosign's own output
will later go through the same functions.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hotfix_operator.provenance import OciLayer
from hotfix_operator.provenance.dsse import IN_TOTO_PAYLOAD_TYPE, pae

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_LAYER = "application/vnd.dsse.envelope.v1+json"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
SCT_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
FULCIO = "1.3.6.1.4.1.57264.1."
ROOT_VALIDITY = (datetime(2020, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def der_utf8(text: str) -> bytes:
    raw = text.encode()
    length = (
        bytes([len(raw)])
        if len(raw) < 0x80
        else bytes([0x81, len(raw)])
        if len(raw) < 0x100
        else bytes([0x82]) + len(raw).to_bytes(2, "big")
    )
    return b"\x0c" + length + raw


def cert_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _ca_certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey | None,
) -> x509.Certificate:
    name = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hotfix.test"), x509.NameAttribute(NameOID.COMMON_NAME, subject)]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(ROOT_VALIDITY[0])
        .not_valid_after(ROOT_VALIDITY[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=None if issuer is None else 0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None and issuer_key is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


@dataclass(frozen=True)
class BuildClaims:
    """What a CI's OIDC token says, as Fulcio records it in the certificate."""

    subject: str
    issuer: str = GITHUB_ISSUER
    build_signer_uri: str | None = None
    source_repository_uri: str | None = None
    source_commit: str | None = None
    source_ref: str | None = None


@dataclass
class PrivateSigstore:
    root_key: ec.EllipticCurvePrivateKey = field(default_factory=new_key)
    intermediate_key: ec.EllipticCurvePrivateKey = field(default_factory=new_key)
    ct_key: ec.EllipticCurvePrivateKey = field(default_factory=new_key)
    rekor_key: ec.EllipticCurvePrivateKey = field(default_factory=new_key)
    name: str = "private"

    def __post_init__(self) -> None:
        self.root = _ca_certificate(f"{self.name}-root", self.root_key, None, None)
        self.intermediate = _ca_certificate(
            f"{self.name}-intermediate", self.intermediate_key, self.root, self.root_key
        )

    @property
    def rekor_log_id(self) -> bytes:
        return hashlib.sha256(spki(self.rekor_key)).digest()

    @property
    def ct_log_id(self) -> bytes:
        return hashlib.sha256(spki(self.ct_key)).digest()

    def trusted_root(
        self, *, ca_valid_until: str | None = None, extra_tlog_key: ec.EllipticCurvePrivateKey | None = None
    ) -> str:
        def log(key: ec.EllipticCurvePrivateKey, url: str) -> dict[str, Any]:
            return {
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": b64(spki(key)),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": "2020-01-01T00:00:00Z"},
                },
                "logId": {"keyId": b64(hashlib.sha256(spki(key)).digest())},
            }

        valid_for: dict[str, str] = {"start": "2020-01-01T00:00:00Z"}
        if ca_valid_until:
            valid_for["end"] = ca_valid_until
        tlogs = [log(self.rekor_key, f"https://rekor.{self.name}.test")]
        if extra_tlog_key is not None:
            tlogs.append(log(extra_tlog_key, f"https://rekor2.{self.name}.test"))
        document = {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": tlogs,
            "certificateAuthorities": [
                {
                    "subject": {"organization": "hotfix.test", "commonName": f"{self.name}-root"},
                    "uri": f"https://fulcio.{self.name}.test",
                    "certChain": {
                        "certificates": [
                            {"rawBytes": b64(self.intermediate.public_bytes(serialization.Encoding.DER))},
                            {"rawBytes": b64(self.root.public_bytes(serialization.Encoding.DER))},
                        ]
                    },
                    "validFor": valid_for,
                }
            ],
            "ctlogs": [log(self.ct_key, f"https://ct.{self.name}.test")],
            "timestampAuthorities": [],
        }
        return json.dumps(document, indent=1)

    def issue(
        self,
        claims: BuildClaims,
        leaf_key: ec.EllipticCurvePrivateKey,
        *,
        issued_at: datetime,
        lifetime: timedelta = timedelta(minutes=10),
        with_sct: bool = True,
        sct_key: ec.EllipticCurvePrivateKey | None = None,
        forge_sct: bool = False,
        code_signing: bool = True,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.intermediate.subject)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(issued_at)
            .not_valid_after(issued_at + lifetime)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.CODE_SIGNING if code_signing else ExtendedKeyUsageOID.EMAIL_PROTECTION]
                ),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.intermediate_key.public_key()), critical=False
            )
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(claims.subject)]), critical=True)
            .add_extension(
                x509.UnrecognizedExtension(x509.ObjectIdentifier(FULCIO + "1"), claims.issuer.encode()), critical=False
            )
            .add_extension(
                x509.UnrecognizedExtension(x509.ObjectIdentifier(FULCIO + "8"), der_utf8(claims.issuer)), critical=False
            )
        )
        for suffix, value in (
            ("9", claims.build_signer_uri),
            ("12", claims.source_repository_uri),
            ("13", claims.source_commit),
            ("14", claims.source_ref),
        ):
            if value is not None:
                builder = builder.add_extension(
                    x509.UnrecognizedExtension(x509.ObjectIdentifier(FULCIO + suffix), der_utf8(value)), critical=False
                )
        if not with_sct:
            return builder.sign(self.intermediate_key, hashes.SHA256())
        precertificate = builder.sign(self.intermediate_key, hashes.SHA256())
        sct = self._sct(precertificate.tbs_certificate_bytes, issued_at, sct_key or self.ct_key, forge=forge_sct)
        sct_list = struct.pack(">H", len(sct) + 2) + struct.pack(">H", len(sct)) + sct
        octet_string = (
            b"\x04" + (bytes([len(sct_list)]) if len(sct_list) < 0x80 else bytes([0x81, len(sct_list)])) + sct_list
        )
        certificate = builder.add_extension(x509.UnrecognizedExtension(SCT_OID, octet_string), critical=False).sign(
            self.intermediate_key, hashes.SHA256()
        )
        assert certificate.tbs_precertificate_bytes == precertificate.tbs_certificate_bytes
        return certificate

    def _sct(self, tbs: bytes, moment: datetime, key: ec.EllipticCurvePrivateKey, *, forge: bool = False) -> bytes:
        timestamp = int(moment.timestamp() * 1000)
        issuer_key_hash = hashlib.sha256(spki(self.intermediate_key)).digest()
        signed = (
            b"\x00\x00"
            + struct.pack(">Q", timestamp)
            + struct.pack(">H", 1)
            + issuer_key_hash
            + len(tbs).to_bytes(3, "big")
            + tbs
            + struct.pack(">H", 0)
        )
        # A forged SCT names the log but is signed by someone else.
        signature = sign(new_key() if forge else key, signed)
        log_id = hashlib.sha256(spki(key)).digest()
        return (
            b"\x00"
            + log_id
            + struct.pack(">Q", timestamp)
            + struct.pack(">H", 0)
            + b"\x04\x03"
            + struct.pack(">H", len(signature))
            + signature
        )

    def log(
        self,
        body: Mapping[str, Any],
        *,
        integrated_time: int,
        log_index: int = 4242,
        rekor_key: ec.EllipticCurvePrivateKey | None = None,
    ) -> str:
        """A cosign `dev.sigstore.cosign/bundle` annotation: the body, its SET and the SET's payload."""
        key = rekor_key or self.rekor_key
        payload: dict[str, str | int] = {
            "body": b64(json.dumps(body, separators=(",", ":")).encode()),
            "integratedTime": integrated_time,
            "logIndex": log_index,
            "logID": hashlib.sha256(spki(key)).hexdigest(),
        }
        return json.dumps({"SignedEntryTimestamp": b64(sign(key, rfc8785.dumps(payload))), "Payload": payload})


def hashedrekord_body(payload: bytes, signature: bytes, verifier_pem: str) -> dict[str, Any]:
    return {
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": sha256_hex(payload)}},
            "signature": {"content": b64(signature), "publicKey": {"content": b64(verifier_pem.encode())}},
        },
    }


def intoto_body(envelope: bytes, payload: bytes, signature: bytes, verifier_pem: str) -> dict[str, Any]:
    """Rekor's older intoto/0.0.2 entry, which stores the signature base64-encoded twice."""
    return {
        "apiVersion": "0.0.2",
        "kind": "intoto",
        "spec": {
            "content": {
                "envelope": {
                    "payloadType": IN_TOTO_PAYLOAD_TYPE,
                    "signatures": [{"sig": b64(b64(signature).encode()), "publicKey": b64(verifier_pem.encode())}],
                },
                "hash": {"algorithm": "sha256", "value": sha256_hex(envelope)},
                "payloadHash": {"algorithm": "sha256", "value": sha256_hex(payload)},
            }
        },
    }


def dsse_body(envelope: bytes, payload: bytes, signature: bytes, verifier_pem: str) -> dict[str, Any]:
    return {
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": sha256_hex(envelope)},
            "payloadHash": {"algorithm": "sha256", "value": sha256_hex(payload)},
            "signatures": [{"signature": b64(signature), "verifier": b64(verifier_pem.encode())}],
        },
    }


def simple_signing_payload(image_digest: str, reference: str = "registry.example.com/shop/checkout") -> bytes:
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": image_digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        },
        separators=(",", ":"),
    ).encode()


def envelope_bytes(payload: bytes, signatures: list[bytes], payload_type: str = IN_TOTO_PAYLOAD_TYPE) -> bytes:
    return json.dumps(
        {
            "payloadType": payload_type,
            "payload": b64(payload),
            "signatures": [{"keyid": "", "sig": b64(s)} for s in signatures],
        }
    ).encode()


def layer(media_type: str, blob: bytes, annotations: Mapping[str, str]) -> OciLayer:
    return OciLayer(
        media_type=media_type, digest="sha256:" + sha256_hex(blob), blob=blob, annotations=dict(annotations)
    )


@dataclass
class Signer:
    """Signs cosign-format layers either with a key or keylessly through a PrivateSigstore."""

    key: ec.EllipticCurvePrivateKey = field(default_factory=new_key)
    sigstore: PrivateSigstore | None = None
    claims: BuildClaims | None = None
    signed_at: datetime = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    log_entries: bool = True
    logged_at: datetime | None = None
    certificate: x509.Certificate | None = None

    def __post_init__(self) -> None:
        if self.claims is not None and self.certificate is None:
            if self.sigstore is None:
                raise ValueError("keyless signing needs a PrivateSigstore")
            self.certificate = self.sigstore.issue(
                self.claims, self.key, issued_at=self.signed_at - timedelta(seconds=5)
            )

    @property
    def verifier_pem(self) -> str:
        return cert_pem(self.certificate) if self.certificate is not None else public_pem(self.key)

    def annotations_for(self, body: dict[str, Any] | None) -> dict[str, str]:
        annotations: dict[str, str] = {}
        if self.certificate is not None and self.sigstore is not None:
            annotations["dev.sigstore.cosign/certificate"] = cert_pem(self.certificate)
            annotations["dev.sigstore.cosign/chain"] = cert_pem(self.sigstore.intermediate) + cert_pem(
                self.sigstore.root
            )
        if body is not None and self.log_entries and self.sigstore is not None:
            annotations["dev.sigstore.cosign/bundle"] = self.sigstore.log(
                body, integrated_time=int((self.logged_at or self.signed_at).timestamp())
            )
        return annotations

    def signature_layer(self, image_digest: str, payload: bytes | None = None) -> OciLayer:
        payload = payload if payload is not None else simple_signing_payload(image_digest)
        signature = sign(self.key, payload)
        annotations = self.annotations_for(hashedrekord_body(payload, signature, self.verifier_pem))
        annotations["dev.cosignproject.cosign/signature"] = b64(signature)
        return layer(SIMPLE_SIGNING, payload, annotations)

    def attestation_layer(self, statement: bytes, *, payload_type: str = IN_TOTO_PAYLOAD_TYPE) -> OciLayer:
        signature = sign(self.key, pae(payload_type, statement))
        envelope = envelope_bytes(statement, [signature], payload_type)
        annotations = self.annotations_for(dsse_body(envelope, statement, signature, self.verifier_pem))
        annotations["dev.cosignproject.cosign/signature"] = ""
        annotations["predicateType"] = json.loads(statement).get("predicateType", "")
        return layer(DSSE_LAYER, envelope, annotations)


def slsa_v02(
    image_digest: str,
    *,
    commit: str,
    repository: str = "git+https://github.com/acme/checkout@refs/tags/v4.1.2-hotfix.1",
    builder: str = "https://github.com/acme/ci/.github/workflows/build.yml@refs/tags/v1.0.0",
    statement_type: str = "https://in-toto.io/Statement/v0.1",
) -> bytes:
    return json.dumps(
        {
            "_type": statement_type,
            "predicateType": "https://slsa.dev/provenance/v0.2",
            "subject": [
                {
                    "name": "registry.example.com/shop/checkout",
                    "digest": {"sha256": image_digest.removeprefix("sha256:")},
                }
            ],
            "predicate": {
                "builder": {"id": builder},
                "buildType": "https://github.com/acme/ci/container@v1",
                "invocation": {
                    "configSource": {"uri": repository, "digest": {"sha1": commit}, "entryPoint": "build.yml"}
                },
                "materials": [{"uri": repository, "digest": {"sha1": commit}}],
            },
        }
    ).encode()


def slsa_v1(
    image_digest: str,
    *,
    commit: str,
    repository: str = "https://github.com/acme/checkout",
    ref: str = "refs/tags/v4.1.2-hotfix.1",
    builder: str = "https://github.com/acme/ci/.github/workflows/build.yml@refs/tags/v1.0.0",
) -> bytes:
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "predicateType": "https://slsa.dev/provenance/v1",
            "subject": [
                {
                    "name": "registry.example.com/shop/checkout",
                    "digest": {"sha256": image_digest.removeprefix("sha256:")},
                }
            ],
            "predicate": {
                "buildDefinition": {
                    "buildType": "https://actions.github.io/buildtypes/workflow/v1",
                    "externalParameters": {
                        "workflow": {"ref": ref, "repository": repository, "path": ".github/workflows/build.yml"}
                    },
                    "resolvedDependencies": [{"uri": f"git+{repository}@{ref}", "digest": {"gitCommit": commit}}],
                },
                "runDetails": {"builder": {"id": builder}, "metadata": {"invocationId": "run-1"}},
            },
        }
    ).encode()


def vulnerability_scan(image_digest: str, report: Mapping[str, Any]) -> bytes:
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://cosign.sigstore.dev/attestation/vuln/v1",
            "subject": [
                {
                    "name": "registry.example.com/shop/checkout",
                    "digest": {"sha256": image_digest.removeprefix("sha256:")},
                }
            ],
            "predicate": {
                "invocation": {"parameters": None, "uri": "", "event_id": "", "builder.id": ""},
                "scanner": {
                    "uri": "pkg:github/aquasecurity/trivy@v0.50.0",
                    "version": "0.50.0",
                    "result": dict(report),
                },
                "metadata": {"scanStartedOn": "2025-03-01T11:59:00Z", "scanFinishedOn": "2025-03-01T12:00:00Z"},
            },
        }
    ).encode()


def key_signed_bundle(
    signer: Signer,
    *,
    statement: bytes | None = None,
    message_digest: str | None = None,
    media_type: str = "application/vnd.dev.sigstore.bundle.v0.3+json",
    log: bool = True,
    kind_version: tuple[str, str] | None = None,
) -> bytes:
    """A Sigstore bundle signed with a managed key, as `cosign sign-blob --bundle` writes it."""
    if signer.sigstore is None:
        raise ValueError("bundles carry a log entry; the signer needs a PrivateSigstore")
    document: dict[str, Any] = {"mediaType": media_type}
    if statement is not None:
        signature = sign(signer.key, pae(IN_TOTO_PAYLOAD_TYPE, statement))
        envelope = envelope_bytes(statement, [signature])
        body = dsse_body(envelope, statement, signature, public_pem(signer.key))
        document["dsseEnvelope"] = json.loads(envelope)
    elif message_digest is not None:
        digest = bytes.fromhex(message_digest.removeprefix("sha256:"))
        signature = signer.key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        body = {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": digest.hex()}},
                "signature": {
                    "content": b64(signature),
                    "publicKey": {"content": b64(public_pem(signer.key).encode())},
                },
            },
        }
        document["messageSignature"] = {
            "messageDigest": {"algorithm": "SHA2_256", "digest": b64(digest)},
            "signature": b64(signature),
        }
    else:
        raise ValueError("give a statement or a message digest")
    material: dict[str, Any] = {
        "publicKey": {"hint": b64(hashlib.sha256(spki(signer.key)).digest())},
        "tlogEntries": [],
    }
    if log:
        annotation = json.loads(signer.sigstore.log(body, integrated_time=int(signer.signed_at.timestamp())))
        payload = annotation["Payload"]
        kind, version = kind_version or (body["kind"], body["apiVersion"])
        material["tlogEntries"].append(
            {
                "logIndex": str(payload["logIndex"]),
                "logId": {"keyId": b64(bytes.fromhex(payload["logID"]))},
                "kindVersion": {"kind": kind, "version": version},
                "integratedTime": str(payload["integratedTime"]),
                "inclusionPromise": {"signedEntryTimestamp": annotation["SignedEntryTimestamp"]},
                "canonicalizedBody": payload["body"],
            }
        )
    document["verificationMaterial"] = material
    return json.dumps(document).encode()
