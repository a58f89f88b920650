"""The provenance gate through a HotfixRelease on the real control plane: only an image whose signed
provenance binds it to the exact commit reaches AwaitingApproval; anything else is Rejected by reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from localcluster.cluster import OPERATOR_NAMESPACE, LocalCluster
from localcluster.oci import Pusher
from localcluster.signing import LocalSigner
from tests.integration.conftest import COMMIT, POLICY_LABEL, FileHotfix, OperatorProcess, push_signed
from tests.kube import Kube
from tests.support.vectors import VECTORS

SLSA_REPO = "github.com/slsa-framework/example-package"
GENERATOR = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml"


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == type_), {})


def test_a_signed_image_for_the_exact_commit_is_verified_before_approval_is_asked(
        kube: Kube, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess) -> None:
    file_hotfix(quickstart)
    obj = kube.wait_phase(quickstart, "checkout-hotfix", "AwaitingApproval", "Rejected")
    verified = condition(obj, "ProvenanceVerified")
    assert verified["status"] == "True", obj["status"]["message"]
    facts = obj["status"]["provenance"]
    assert facts["commitSha"] == COMMIT
    assert facts["sourceRepository"] == "github.com/acme/checkout"
    assert facts["predicateTypes"] == ["https://slsa.dev/provenance/v1"]
    assert facts["signers"][0]["keyName"] == "release"
    assert obj["status"]["policy"] == "test"
    assert "signed by key release" in verified["message"]
    assert any(a["action"] == "ProvenanceVerified" for a in obj["status"]["audit"])


@pytest.mark.parametrize(("case", "reason"), [
    ("attested for another commit", "CommitMismatch"),
    ("unsigned", "NoSignature"),
    # a key signature names no key: another key's signature simply does not verify
    ("signed by an untrusted key", "SignatureInvalid"),
])
def test_an_unproven_image_is_rejected_by_reason(
        kube: Kube, cluster: LocalCluster, quickstart: str, file_hotfix: FileHotfix,
        running_operator: OperatorProcess, signer: LocalSigner, case: str, reason: str) -> None:
    content = f"checkout {case}\n".encode()
    if case == "attested for another commit":
        image = push_signed(cluster, signer, "other-commit", content, commit="b" * 40)
    elif case == "unsigned":
        with Pusher(cluster.registry_host, cluster.ca_file) as pusher:
            image = pusher.push_image("shop/checkout", "unsigned", {"app": content})
    else:
        stranger = LocalSigner.load_or_create(cluster.workdir / "signing" / "stranger.key")
        image = push_signed(cluster, stranger, "stranger", content)
    file_hotfix(quickstart, artifact={"image": image.reference, "sourceRepository": "github.com/acme/checkout"})
    obj = kube.wait_phase(quickstart, "checkout-hotfix", "Rejected", "AwaitingApproval")
    assert obj["status"]["phase"] == "Rejected"
    cond = condition(obj, "ProvenanceVerified")
    assert cond["status"] == "False"
    assert cond["reason"] == reason, cond["message"]
    if reason == "CommitMismatch":
        assert "b" * 7 in cond["message"] and COMMIT[:7] in cond["message"], "names both commits"
    assert [d.metadata.name for d in kube.apps.list_namespaced_deployment(quickstart).items] == ["checkout"]


def test_a_namespace_no_policy_selects_is_refused_with_a_condition_that_says_so(
        kube: Kube, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess) -> None:
    kube.kubectl("label", "namespace", quickstart, f"{POLICY_LABEL}-")
    file_hotfix(quickstart)
    obj = kube.wait_phase(quickstart, "checkout-hotfix", "Rejected", "AwaitingApproval")
    cond = condition(obj, "ProvenanceVerified")
    assert cond["reason"] == "NoPolicy"
    assert f"no HotfixPolicy selects namespace {quickstart}" in cond["message"]


@pytest.fixture(scope="module")
def slsa_vectors(kube: Kube, cluster: LocalCluster) -> dict[str, str]:
    """The real keyless provenance of slsa-github-generator's container test images (v1.10.0, v2.0.0), pushed
    into the local registry, and a policy that trusts GitHub Actions' identity under the pinned production root."""
    images = {}
    with Pusher(cluster.registry_host, cluster.ca_file) as pusher:
        for version in ("v1.10.0", "v2.0.0"):
            vector = VECTORS / "slsa-github-generator" / f"container-{version}"
            pusher.push_layout(vector / "oci-layout", "vectors/example-package")
            digest = (vector / "image.digest").read_text().strip()
            images[version] = f"{cluster.registry_host}/vectors/example-package@{digest}"
    root = (VECTORS / "trust" / "sigstore-production-trusted_root.json").read_text()
    kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "sigstore-production-root"},
                "data": {"trusted_root.json": root}}, OPERATOR_NAMESPACE)
    kube.apply({"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixPolicy", "metadata": {"name": "slsa-vectors"},
                "spec": {"namespaceSelector": {"matchLabels": {POLICY_LABEL: "slsa-vectors"}},
                         "registry": {"loopbackHosts": [cluster.registry_host]},
                         "provenance": {
                             "keylessIdentities": [{
                                 "issuer": {"exact": "https://token.actions.githubusercontent.com"},
                                 "subject": {"regex": GENERATOR.replace(".", r"\.") + r"@refs/tags/v[0-9.]+"}}],
                             "trustedRoot": {"configMapKeyRef": {"name": "sigstore-production-root",
                                                                 "key": "trusted_root.json"}},
                             "allowedBuilders": [GENERATOR],
                             "allowedSourceRepositories": [SLSA_REPO],
                             "images": [{"glob": f"{cluster.registry_host}/vectors/*"}]}}}, "default")
    return images


V1_COMMIT, V2_COMMIT = "d37a7f740ee7404914456f24dcd90e865a0509e8", "693130cb6cb840a7bc9cb18c6510d536a95dc7e6"


@pytest.mark.parametrize(("version", "commit", "phase"), [
    ("v2.0.0", V2_COMMIT, "AwaitingApproval"),
    ("v2.0.0", V1_COMMIT, "Rejected"),
    ("v1.10.0", V1_COMMIT, "AwaitingApproval"),
    ("v1.10.0", V2_COMMIT, "Rejected"),
])
def test_real_keyless_provenance_from_public_ci_verifies_for_its_commit_only(
        kube: Kube, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess,
        slsa_vectors: dict[str, str], version: str, commit: str, phase: str) -> None:
    kube.kubectl("label", "namespace", quickstart, f"{POLICY_LABEL}=slsa-vectors", "--overwrite")
    file_hotfix(quickstart, commitSha=commit, artifact={"image": slsa_vectors[version],
                                                         "sourceRepository": SLSA_REPO})
    obj = kube.wait_phase(quickstart, "checkout-hotfix", "AwaitingApproval", "Rejected")
    cond = condition(obj, "ProvenanceVerified")
    assert obj["status"]["phase"] == phase, cond.get("message")
    if phase == "AwaitingApproval":
        facts = obj["status"]["provenance"]
        assert facts["commitSha"] == commit
        assert facts["builderId"] == f"{GENERATOR}@refs/tags/{version}"
        signer = facts["signers"][0]
        assert signer["issuer"] == "https://token.actions.githubusercontent.com"
        assert signer["tlogIndex"] > 0
    else:
        assert cond["reason"] == "CommitMismatch"
        assert V1_COMMIT[:7] in cond["message"] and V2_COMMIT[:7] in cond["message"], "names both commits"
    assert json.dumps(obj["status"]).count("BEGIN") == 0, "no key or certificate material in status"


def evidence_bundle(statement: bytes, extra: bytes = b"") -> dict[str, bytes]:
    """The seeds' evidence: an archive of build records, the provenance, and SHA256SUMS over both."""
    import hashlib
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (("build.log", b"build ok\n"), ("sbom.spdx.json", b"{}")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    files = {"evidence.tar.gz": buffer.getvalue(), "provenance.json": statement}
    sums = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in sorted(files.items()))
    return {**files, "SHA256SUMS": sums.encode() + extra}


@pytest.mark.parametrize(("tamper", "phase"), [(None, "AwaitingApproval"), ("sums", "Rejected"),
                                               ("provenance", "Rejected")])
def test_an_evidence_bundle_is_fetched_and_must_agree_with_the_provenance(
        kube: Kube, cluster: LocalCluster, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess,
        signer: LocalSigner, tamper: str | None, phase: str) -> None:
    from localcluster.signing import slsa_v1_statement

    image = push_signed(cluster, signer, f"evidence-{tamper}", f"evidence {tamper}".encode())
    statement = slsa_v1_statement(f"{image.registry}/{image.repository}", image.digest, "github.com/acme/checkout",
                                  COMMIT)
    if tamper == "provenance":  # a provenance.json from another build
        statement = statement.replace(image.digest.removeprefix("sha256:").encode(), b"0" * 64)
    files = evidence_bundle(statement)
    if tamper == "sums":
        files["SHA256SUMS"] = files["SHA256SUMS"].replace(files["SHA256SUMS"][:8], b"00000000", 1)
    with Pusher(cluster.registry_host, cluster.ca_file) as pusher:
        evidence = pusher.push_artifact("shop/evidence", f"v-{tamper}", files)
    file_hotfix(quickstart, artifact={"image": image.reference, "sourceRepository": "github.com/acme/checkout",
                                      "evidence": f"oci://{evidence.reference}"})
    obj = kube.wait_phase(quickstart, "checkout-hotfix", "AwaitingApproval", "Rejected")
    cond = condition(obj, "ProvenanceVerified")
    assert obj["status"]["phase"] == phase, cond.get("message")
    if phase == "AwaitingApproval":
        # the digests of the files SHA256SUMS vouches for
        assert set(obj["status"]["provenance"]["evidence"]["fileDigests"]) == {"evidence.tar.gz", "provenance.json"}
    else:
        assert cond["reason"] == "EvidenceMismatch", cond["message"]
