"""Fixtures for the follow-ups on the real control plane: a loopback GitHub per test, a token Secret and
a HotfixPolicy with a github section for a namespace label of the test's own, and the session operator
restarted with short post-mortem timings (restored for later tests: it is stopped at teardown and the
`running_operator` fixture starts it again with the plain environment)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from localcluster.cluster import OPERATOR_NAMESPACE, LocalCluster
from localcluster.oci import PushedImage
from localcluster.signing import LOCAL_BUILDER, LocalSigner
from tests.integration.conftest import (
    POLICY_LABEL,
    SOURCE,
    OperatorProcess,
    hotfix_manifest,
    push_signed,
    with_local_registry,
)
from tests.kube import Kube
from tests.publishing.builders import CheckoutSeeder, MainWork, SeededRepository
from tests.support.github_server import GitHubSpec, LoopbackGitHub, load_github_spec

CHECK_SECONDS = 2
DEADLINE_SECONDS = 45


@pytest.fixture(scope="session")
def github_spec() -> GitHubSpec:
    return load_github_spec()


@pytest.fixture(scope="session")
def seeder(tmp_path_factory: pytest.TempPathFactory) -> CheckoutSeeder:
    return CheckoutSeeder(tmp_path_factory.mktemp("followup-histories"))


@pytest.fixture
def github(tmp_path: Path, github_spec: GitHubSpec) -> Iterator[LoopbackGitHub]:
    with LoopbackGitHub(tmp_path / "github", github_spec) as server:
        yield server
        violations = server.take_violations()
    assert not violations, "outside GitHub's OpenAPI description:\n" + "\n".join(map(str, violations))


@pytest.fixture
def followup_operator(operator: OperatorProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[OperatorProcess]:
    operator.stop()
    monkeypatch.setenv("HOTFIX_POSTMORTEM_CHECK_SECONDS", str(CHECK_SECONDS))
    monkeypatch.setenv("HOTFIX_POSTMORTEM_DEADLINE_SECONDS", str(DEADLINE_SECONDS))
    monkeypatch.setenv("HOTFIX_GITHUB_WRITE_INTERVAL", "0")
    monkeypatch.setenv("HOTFIX_FOLLOWUP_BACKOFF_SECONDS", "1")
    operator.start()
    yield operator
    operator.stop()


@dataclass
class GitHubNamespace:
    namespace: str
    github: LoopbackGitHub
    repo: SeededRepository
    policy: str

    def file_hotfix(self, kube: Kube, image: PushedImage, name: str = "checkout-hotfix") -> None:
        manifest = hotfix_manifest(image.reference, name, commitSha=self.repo.hotfix_commit)
        kube.apply(manifest, self.namespace, user="alice")


def github_namespace(kube: Kube, signer: LocalSigner, github: LoopbackGitHub, seeder: CheckoutSeeder,
                     namespace: str, main_work: MainWork = "unrelated") -> Iterator[GitHubNamespace]:
    """acme/checkout on the loopback GitHub, governed by a policy of this test's own."""
    repo = seeder.seed(github, main_work=main_work)
    suffix = uuid.uuid4().hex[:6]
    label, policy, secret = f"github-{suffix}", f"github-{suffix}", f"github-token-{suffix}"
    kube.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret},
                "data": {"token": base64.b64encode(github.token.encode()).decode()}}, OPERATOR_NAMESPACE)
    kube.apply({"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixPolicy", "metadata": {"name": policy},
                "spec": with_local_registry({"namespaceSelector": {"matchLabels": {POLICY_LABEL: label}},
                         "provenance": {"trustedKeys": [{"name": "release", "publicKey": signer.public_pem}],
                                        "requireTransparencyLog": False,
                                        "allowedBuilders": [LOCAL_BUILDER],
                                        "allowedSourceRepositories": [SOURCE]},
                         "github": {"apiUrl": github.base_url, "postmortemDeadlineHours": 1,
                                    "tokenSecretRef": {"name": secret, "key": "token"}}},
                                            kube.cluster.registry_host)}, "default")
    kube.kubectl("label", "namespace", namespace, f"{POLICY_LABEL}={label}", "--overwrite")
    try:
        yield GitHubNamespace(namespace, github, repo, policy)
    finally:
        kube.kubectl("delete", "hotfixpolicy", policy, "--wait=false", check=False)
        kube.kubectl("delete", "secret", secret, "-n", OPERATOR_NAMESPACE, "--wait=false", check=False)


def signed_image_for(cluster: LocalCluster, signer: LocalSigner, repo: SeededRepository, tag: str) -> PushedImage:
    return push_signed(cluster, signer, tag, f"checkout {tag}\n".encode(), commit=repo.hotfix_commit)
