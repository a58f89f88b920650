"""Sign and attest images in the local registry with a local ECDSA P-256 key, in cosign's legacy
layout (`sha256-<hex>.att`: a DSSE envelope holding an in-toto Statement with SLSA provenance v1).
What `make dev` and the integration tests use to give their images real, verifiable provenance;
tests/provenance/test_cosign_interop.py shows the operator reads the real cosign's output the same way."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from localcluster.oci import OCI_CONFIG, OCI_MANIFEST, Pusher, digest_of

DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
SLSA_V1 = "https://slsa.dev/provenance/v1"
LOCAL_BUILDER = "https://ci.example.com/builders/hotfix@refs/tags/v1"


@dataclass(frozen=True)
class LocalSigner:
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def load_or_create(cls, path: Path) -> LocalSigner:
        if path.exists():
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
            assert isinstance(loaded, ec.EllipticCurvePrivateKey)
            return cls(loaded)
        key = ec.generate_private_key(ec.SECP256R1())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        path.chmod(0o600)
        return cls(key)

    @property
    def public_pem(self) -> str:
        return self.key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def envelope(self, statement: bytes) -> bytes:
        pae = b"DSSEv1 %d %s %d %s" % (len(IN_TOTO), IN_TOTO.encode(), len(statement), statement)
        signature = self.key.sign(pae, ec.ECDSA(hashes.SHA256()))
        return json.dumps({"payloadType": IN_TOTO, "payload": base64.b64encode(statement).decode(),
                           "signatures": [{"keyid": "", "sig": base64.b64encode(signature).decode()}]}).encode()

    def attest(self, pusher: Pusher, repository: str, image_digest: str, statement: bytes) -> str:
        """Push `statement`, signed, as the image's cosign attestation; returns the manifest digest."""
        layer = self.envelope(statement)
        config = json.dumps({"architecture": "", "os": "", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [digest_of(layer)]}}).encode()
        predicate_type = json.loads(statement)["predicateType"]
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": pusher.push_blob(repository, config), "size": len(config)},
            "layers": [{"mediaType": DSSE_MEDIA_TYPE, "digest": pusher.push_blob(repository, layer),
                        "size": len(layer), "annotations": {"dev.cosignproject.cosign/signature": "",
                                                            "predicateType": predicate_type}}],
        }).encode()
        return pusher.push_manifest(repository, image_digest.replace(":", "-") + ".att", manifest)


def slsa_v1_statement(image_name: str, image_digest: str, source_repository: str, commit: str,
                      builder_id: str = LOCAL_BUILDER) -> bytes:
    """SLSA provenance v1 for `image_digest`, built from `commit` of `source_repository` (github.com/o/r)."""
    return json.dumps({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": image_name, "digest": {"sha256": image_digest.removeprefix("sha256:")}}],
        "predicateType": SLSA_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": "https://ci.example.com/buildtypes/container@v1",
                "externalParameters": {"workflow": {"repository": f"https://{source_repository}",
                                                    "ref": "refs/heads/hotfix", "path": ".ci/release.yml"}},
                "resolvedDependencies": [{"uri": f"git+https://{source_repository}@refs/heads/hotfix",
                                          "digest": {"gitCommit": commit}}],
            },
            "runDetails": {"builder": {"id": builder_id}, "metadata": {"invocationId": "local-1"}},
        },
    }).encode()
