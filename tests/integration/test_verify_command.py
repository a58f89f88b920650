"""`hotfix-operator verify`: the same gate from a workstation, as a real process against the real registry."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from localcluster.cluster import LocalCluster
from localcluster.oci import PushedImage, Pusher
from localcluster.signing import LOCAL_BUILDER, LocalSigner
from tests.integration.conftest import COMMIT, SOURCE, with_local_registry


def verify(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hotfix_operator.cli", "verify", *args,
                           "--registry-ca-file", str(cluster.ca_file)], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory, signer: LocalSigner, cluster: LocalCluster) -> Path:
    """A HotfixPolicy manifest naming its key by ConfigMap reference, as a platform team writes it."""
    directory = tmp_path_factory.mktemp("policy")
    (directory / "release.pub").write_text(signer.public_pem)
    policy = {"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixPolicy", "metadata": {"name": "shop"},
              "spec": with_local_registry({"namespaceSelector": {}, "provenance": {
                  "trustedKeys": [{"name": "release", "configMapKeyRef": {"name": "keys", "key": "release.pub"}}],
                  "requireTransparencyLog": False, "allowedBuilders": [LOCAL_BUILDER],
                  "allowedSourceRepositories": [SOURCE]}}, cluster.registry_host)}
    path = directory / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    return path


def key_ref(policy_file: Path) -> list[str]:
    return ["--ref", f"keys/release.pub={policy_file.parent / 'release.pub'}"]


def test_a_proven_image_passes_and_prints_each_verified_fact(cluster: LocalCluster, hotfix_image: PushedImage,
                                                              policy_file: Path) -> None:
    done = verify(cluster, hotfix_image.reference, "--commit", COMMIT, "--source-repo", SOURCE,
                  "--policy", str(policy_file), *key_ref(policy_file))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"PASS  {hotfix_image.reference}  (policy shop)")
    assert f"commit      {COMMIT}" in done.stdout
    assert f"builder     {LOCAL_BUILDER}" in done.stdout
    assert "signers     key release" in done.stdout


def test_json_output_for_ci(cluster: LocalCluster, hotfix_image: PushedImage, policy_file: Path) -> None:
    done = verify(cluster, hotfix_image.reference, "--commit", "c" * 40, "--source-repo", SOURCE,
                  "--policy", str(policy_file), *key_ref(policy_file), "--output", "json")
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["verified"] is False
    assert result["reason"] == "CommitMismatch"
    assert COMMIT[:7] in result["message"] and "ccccccc" in result["message"]


@pytest.mark.parametrize(("case", "reason"), [("another source repository", "SourceMismatch"),
                                              ("unsigned", "NoSignature")])
def test_a_refusal_exits_1_with_the_reason(cluster: LocalCluster, hotfix_image: PushedImage,
                                           policy_file: Path, case: str, reason: str) -> None:
    image, source = hotfix_image.reference, SOURCE
    if case == "another source repository":
        source = "github.com/acme/payments"
    else:
        with Pusher(cluster.registry_host, cluster.ca_file) as pusher:
            image = pusher.push_image("shop/unsigned", "v1", {"app": b"unsigned"}).reference
    done = verify(cluster, image, "--commit", COMMIT, "--source-repo", source, "--policy", str(policy_file),
                  *key_ref(policy_file))
    assert done.returncode == 1
    assert done.stderr.startswith(f"FAIL  {reason}: "), done.stderr


def test_a_missing_reference_or_a_bad_policy_is_a_usage_error(cluster: LocalCluster, hotfix_image: PushedImage,
                                                              policy_file: Path, tmp_path: Path) -> None:
    done = verify(cluster, hotfix_image.reference, "--commit", COMMIT, "--source-repo", SOURCE,
                  "--policy", str(policy_file))
    assert done.returncode == 2
    assert "pass its value with --ref keys/release.pub=FILE" in done.stderr
    (tmp_path / "empty.yaml").write_text("kind: ConfigMap\n")
    done = verify(cluster, hotfix_image.reference, "--commit", COMMIT, "--source-repo", SOURCE,
                  "--policy", str(tmp_path / "empty.yaml"))
    assert done.returncode == 2
    assert "holds no HotfixPolicy" in done.stderr


def test_an_unreachable_registry_exits_3(cluster: LocalCluster, policy_file: Path) -> None:
    done = verify(cluster, f"127.0.0.1:9/shop/checkout@sha256:{'1' * 64}", "--commit", COMMIT, "--source-repo",
                  SOURCE, "--policy", str(policy_file), *key_ref(policy_file), "--insecure-registry", "127.0.0.1:9")
    assert done.returncode == 3
    assert "RegistryUnavailable" in done.stderr


def test_plain_http_is_refused_for_a_remote_registry(cluster: LocalCluster, policy_file: Path) -> None:
    done = verify(cluster, f"registry.example.com/app@sha256:{'1' * 64}", "--commit", COMMIT, "--source-repo",
                  SOURCE, "--policy", str(policy_file), *key_ref(policy_file),
                  "--insecure-registry", "registry.example.com")
    assert done.returncode == 2
    assert "loopback registries only" in done.stderr


@pytest.fixture
def plain_http_server() -> Iterator[str]:
    """Something on loopback that answers in plain HTTP, as a test registry without TLS does."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_a_registry_answering_in_plain_http_is_a_usage_error_that_names_the_flag(
    cluster: LocalCluster, policy_file: Path, plain_http_server: str
) -> None:
    done = verify(cluster, f"{plain_http_server}/shop/checkout@sha256:{'1' * 64}", "--commit", COMMIT,
                  "--source-repo", SOURCE, "--policy", str(policy_file), *key_ref(policy_file))
    assert done.returncode == 2, done.stderr
    assert "RegistryPlainHTTP" in done.stderr and f"--insecure-registry {plain_http_server}" in done.stderr
    assert "retry" not in done.stderr.lower(), "a set-up mistake is not an outage"
    assert len(done.stderr.strip().splitlines()) == 1


def test_an_image_by_tag_is_a_usage_error(cluster: LocalCluster, policy_file: Path) -> None:
    done = verify(cluster, f"{cluster.registry_host}/shop/checkout:4.1.2", "--commit", COMMIT, "--source-repo",
                  SOURCE, "--policy", str(policy_file), *key_ref(policy_file))
    assert done.returncode == 2, done.stderr
    assert "NotDigestPinned" in done.stderr and "@sha256:" in done.stderr
