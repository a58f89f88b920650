"""The provenance gate on a registry with the OCI 1.1 referrers API (go-containerregistry's, hack/ociregistry):
an attestation attached by `subject` is found through `GET /v2/<name>/referrers/<digest>`, not the tag fallback.

The other registry tests run on Debian's docker-registry (distribution 2.8), which has no referrers API and
so only ever exercises the `sha256-<hex>` fallback tag; here the real endpoint is used and shown to be.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from localcluster.oci import OCI_MANIFEST, PushedImage, digest_of
from localcluster.signing import LOCAL_BUILDER, LocalSigner, slsa_v1_statement
from tests.support.ociregistry import OciRegistry, running_ociregistry

SOURCE = "github.com/acme/checkout"
COMMIT = "3f1c2d4e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d"
IN_TOTO = "application/vnd.in-toto+json"
DSSE_LAYER = "application/vnd.dsse.envelope.v1+json"


@pytest.fixture(scope="module")
def registry() -> Iterator[OciRegistry]:
    with running_ociregistry() as served:
        yield served


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> LocalSigner:
    return LocalSigner.load_or_create(tmp_path_factory.mktemp("signer") / "release.key")


def attach(registry: OciRegistry, image: PushedImage, envelope: bytes) -> str:
    """The attestation as an OCI 1.1 referrer: an artifact manifest whose `subject` is the image."""
    with registry.pusher() as pusher:
        config = b"{}"
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": IN_TOTO,
            # go-containerregistry reports a referrer's artifactType from its config's media type.
            "config": {"mediaType": IN_TOTO, "digest": pusher.push_blob(image.repository, config),
                       "size": len(config)},
            "layers": [{"mediaType": DSSE_LAYER, "digest": pusher.push_blob(image.repository, envelope),
                        "size": len(envelope)}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": image.digest, "size": len(image.manifest)},
        }, sort_keys=True).encode()
        # By digest, with no tag: only the referrers API can lead a client to it.
        return pusher.push_manifest(image.repository, digest_of(manifest), manifest)


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory, signer: LocalSigner) -> Path:
    directory = tmp_path_factory.mktemp("policy")
    (directory / "release.pub").write_text(signer.public_pem)
    policy = {"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixPolicy", "metadata": {"name": "shop"},
              "spec": {"namespaceSelector": {}, "provenance": {
                  "trustedKeys": [{"name": "release", "configMapKeyRef": {"name": "keys", "key": "release.pub"}}],
                  "requireTransparencyLog": False, "allowedBuilders": [LOCAL_BUILDER],
                  "allowedSourceRepositories": [SOURCE]}}}
    (directory / "policy.yaml").write_text(yaml.safe_dump(policy))
    return directory / "policy.yaml"


def verify(registry: OciRegistry, image: PushedImage, policy_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hotfix_operator.cli", "verify", image.reference, "--commit", COMMIT,
         "--source-repo", SOURCE, "--policy", str(policy_file),
         "--ref", f"keys/release.pub={policy_file.parent / 'release.pub'}", "--insecure-registry", registry.host],
        capture_output=True, text=True, timeout=60)


def test_an_attestation_attached_by_subject_is_found_through_the_referrers_api(
    registry: OciRegistry, signer: LocalSigner, policy_file: Path
) -> None:
    with registry.pusher() as pusher:
        image = pusher.push_image("shop/checkout", "v4.1.2-hotfix.1", {"app": b"checkout 4.1.2-hotfix.1"})
    statement = slsa_v1_statement(f"{registry.host}/{image.repository}", image.digest, SOURCE, COMMIT)
    referrer = attach(registry, image, signer.envelope(statement))
    before = len(registry.requests())

    done = verify(registry, image, policy_file)

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"PASS  {image.reference}  (policy shop)")
    asked = registry.requests()[before:]
    referrers = f"/v2/{image.repository}/referrers/{image.digest}"
    assert ("GET", referrers) in asked, asked
    assert ("GET", f"/v2/{image.repository}/manifests/{referrer}") in asked, asked
    fallback_tag = f"/v2/{image.repository}/manifests/{image.digest.replace(':', '-', 1)}"
    assert ("GET", fallback_tag) not in asked, asked


def test_a_referrer_signed_by_an_untrusted_key_is_refused(
    registry: OciRegistry, tmp_path: Path, policy_file: Path
) -> None:
    stranger = LocalSigner.load_or_create(tmp_path / "stranger.key")
    with registry.pusher() as pusher:
        image = pusher.push_image("shop/checkout", "v4.1.2-hotfix.2", {"app": b"checkout 4.1.2-hotfix.2"})
    statement = slsa_v1_statement(f"{registry.host}/{image.repository}", image.digest, SOURCE, COMMIT)
    attach(registry, image, stranger.envelope(statement))

    done = verify(registry, image, policy_file)

    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL  SignatureInvalid" in done.stderr, done.stdout + done.stderr
    assert ("GET", f"/v2/{image.repository}/referrers/{image.digest}") in registry.requests()
