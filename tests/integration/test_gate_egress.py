"""Where the provenance gate may connect is the HotfixPolicy's decision, shown on the real control plane
and through `hotfix-operator verify`: an image outside the policy's patterns is refused at Verifying with
nothing sent to its registry; a token realm on another host, and an evidence or blob redirect off the
allowed hosts or from https to http, are refused with nothing arriving where they point; a name that
resolves to loopback but is not listed is refused before any connection.

Registries and servers here are loopback stubs that record every request (TLS with the cluster's CA, or
plain HTTP where the command is told so), and the places they point to are recording listeners
(tests/support/check_targets.serving), so "nothing was sent" is what those listeners saw."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from localcluster.cluster import LocalCluster
from localcluster.oci import PushedImage
from localcluster.pki import CertificateAuthority
from localcluster.signing import LOCAL_BUILDER, LocalSigner
from tests.integration.conftest import COMMIT, POLICY_LABEL, SOURCE, OperatorProcess, hotfix_manifest
from tests.kube import Kube
from tests.support.check_targets import CheckTargets, serving

DIGEST = "sha256:" + "1" * 64
ATT_TAG = DIGEST.replace(":", "-") + ".att"
Route = tuple[int, dict[str, str], bytes]


@dataclass
class Stub:
    """A registry or file server on loopback answering from `routes` (path -> status, headers, body)."""

    host: str = ""
    routes: dict[str, Route] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)


@contextmanager
def stub_server(cluster: LocalCluster | None = None) -> Iterator[Stub]:
    """A recording stub; over TLS with a certificate from the cluster's CA when `cluster` is given."""
    stub = Stub()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            stub.seen.append(self.path)
            status, headers, body = stub.routes.get(self.path.split("?")[0], (404, {}, b'{"errors": []}'))
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if cluster is not None:
        pair = CertificateAuthority(Path(cluster.ca_file).parent).issue(
            "egress-stub", "egress-stub", server=True, dns_names=("localhost",), ip_addresses=("127.0.0.1",))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(pair.cert), str(pair.key))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    stub.host = f"127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()


def bearer_challenge(realm: str) -> Route:
    body = b'{"errors": [{"code": "UNAUTHORIZED"}]}'
    return 401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="stub"'}, body


def attestation_manifest() -> bytes:
    """A cosign .att manifest with one DSSE layer, so discovery asks for that layer's blob."""
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "digest": "sha256:" + "2" * 64, "size": 2},
                       "layers": [{"mediaType": "application/vnd.dsse.envelope.v1+json",
                                   "digest": "sha256:" + "3" * 64, "size": 100}]}).encode()


@pytest.fixture(scope="module")
def listener() -> Iterator[CheckTargets]:
    """Where realms and redirects point: it must never be asked anything."""
    with serving() as targets:
        yield targets


@pytest.fixture(scope="module")
def tls_stub(cluster: LocalCluster) -> Iterator[Stub]:
    with stub_server(cluster) as stub:
        yield stub


@pytest.fixture(scope="module")
def egress_policy(kube: Kube, cluster: LocalCluster, signer: LocalSigner, tls_stub: Stub) -> str:
    """Images in shop/ of the local registry or the stub; evidence under the stub's /evidence/; both
    listed as loopback hosts (localhost is not); `localhost` allowed as a redirect host by name only."""
    kube.apply({"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixPolicy", "metadata": {"name": "egress"},
                "spec": {"namespaceSelector": {"matchLabels": {POLICY_LABEL: "egress"}},
                         "provenance": {"trustedKeys": [{"name": "release", "publicKey": signer.public_pem}],
                                        "requireTransparencyLog": False, "allowedBuilders": [LOCAL_BUILDER],
                                        "allowedSourceRepositories": [SOURCE],
                                        "images": [{"glob": f"{cluster.registry_host}/shop/**"},
                                                   {"glob": f"{tls_stub.host}/shop/**"},
                                                   {"glob": "localhost:*/shop/**"}],
                                        "evidence": [{"glob": f"https://{tls_stub.host}/evidence/**"}]},
                         "registry": {"loopbackHosts": [cluster.registry_host, tls_stub.host],
                                      "redirectHosts": ["localhost"]}}}, "default")
    return "egress"


@pytest.fixture
def egress_namespace(kube: Kube, quickstart: str, egress_policy: str) -> str:
    kube.kubectl("label", "namespace", quickstart, f"{POLICY_LABEL}={egress_policy}", "--overwrite")
    return quickstart


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == type_), {})


def rejected(kube: Kube, namespace: str, image: str, **artifact: str) -> dict[str, Any]:
    manifest = hotfix_manifest(image)
    manifest["spec"]["artifact"].update(artifact)
    kube.apply(manifest, namespace, user="alice")
    obj = kube.wait_phase(namespace, "checkout-hotfix", "Rejected", "AwaitingApproval")
    assert obj["status"]["phase"] == "Rejected", obj["status"].get("message")
    return obj


def refusal(obj: dict[str, Any]) -> dict[str, Any]:
    """The False condition the rejection was written on (InputValid at Pending, ProvenanceVerified at Verifying)."""
    return next(c for c in obj["status"]["conditions"] if c["status"] == "False"
                and c["type"] in ("InputValid", "ProvenanceVerified"))


def test_an_image_outside_the_patterns_is_refused_at_verifying_with_nothing_sent_to_its_registry(
        kube: Kube, egress_namespace: str, running_operator: OperatorProcess, tls_stub: Stub) -> None:
    before = len(tls_stub.seen)
    image = f"{tls_stub.host}/payments/checkout@{DIGEST}"
    obj = rejected(kube, egress_namespace, image)
    cond = condition(obj, "ProvenanceVerified")
    assert cond["reason"] == "ImageNotAllowed", obj["status"]["conditions"]
    assert f"image {tls_stub.host}/payments/checkout" in cond["message"]
    assert "HotfixPolicy egress" in cond["message"] and "provenance.images" in cond["message"]
    assert "was not read" in condition(obj, "InputValid")["message"], "Pending did not claim to have read it"
    assert tls_stub.seen[before:] == [], "nothing was sent to the image's registry"


def test_a_token_realm_on_another_host_is_refused_and_nothing_reaches_it(
        kube: Kube, egress_namespace: str, running_operator: OperatorProcess, tls_stub: Stub,
        listener: CheckTargets) -> None:
    realm = f"https://127.0.0.1:{listener.port}/token"
    tls_stub.routes[f"/v2/shop/realm/manifests/{DIGEST}"] = bearer_challenge(realm)
    before = len(listener.requests)
    obj = rejected(kube, egress_namespace, f"{tls_stub.host}/shop/realm@{DIGEST}")
    cond = refusal(obj)
    assert cond["reason"] == "TokenRealmNotAllowed", cond
    assert f"127.0.0.1:{listener.port}" in cond["message"] and "registry.tokenHosts" in cond["message"]
    assert "UNAUTHORIZED" not in json.dumps(obj["status"]), "no registry body is echoed into status"
    assert listener.requests[before:] == [], "nothing was sent to the token service"


def test_a_name_that_resolves_to_loopback_but_is_not_listed_is_refused_before_any_connection(
        kube: Kube, egress_namespace: str, running_operator: OperatorProcess, tls_stub: Stub) -> None:
    port = tls_stub.host.rsplit(":", 1)[1]  # the stub is listed as 127.0.0.1:<port>, not as localhost
    tls_stub.routes[f"/v2/shop/checkout/manifests/{DIGEST}"] = (200, {}, b"{}")
    before = len(tls_stub.seen)
    obj = rejected(kube, egress_namespace, f"localhost:{port}/shop/checkout@{DIGEST}")
    cond = refusal(obj)
    assert cond["reason"] == "HostNotAllowed", cond
    assert "localhost resolves to" in cond["message"] and "loopback" in cond["message"]
    assert "registry.loopbackHosts" in cond["message"], "says what to do"
    assert tls_stub.seen[before:] == [], "nothing was sent"


@pytest.mark.parametrize(("case", "reason"), [
    ("to plain http", "RedirectNotAllowed"),
    ("to another host", "RedirectNotAllowed"),
    ("to a name for loopback", "HostNotAllowed"),  # localhost is a redirect host, but not a loopback host
])
def test_evidence_that_redirects_off_the_allowed_hosts_is_refused_and_nothing_arrives_there(
        kube: Kube, egress_namespace: str, running_operator: OperatorProcess, tls_stub: Stub,
        listener: CheckTargets, hotfix_image: PushedImage, case: str, reason: str) -> None:
    target = {"to plain http": f"http://{tls_stub.host}/evidence/elsewhere/SHA256SUMS",
              "to another host": f"https://127.0.0.1:{listener.port}/SHA256SUMS",
              "to a name for loopback": f"https://localhost:{listener.port}/SHA256SUMS"}[case]
    directory = f"/evidence/{case.replace(' ', '-')}/"
    tls_stub.routes[directory + "SHA256SUMS"] = (302, {"Location": target}, b"")
    before_listener, before_stub = len(listener.requests), len(tls_stub.seen)
    obj = rejected(kube, egress_namespace, hotfix_image.reference, evidence=f"https://{tls_stub.host}{directory}")
    cond = condition(obj, "ProvenanceVerified")
    assert cond["reason"] == reason, cond
    assert tls_stub.seen[before_stub:] == [directory + "SHA256SUMS"], "one request, to the allowed server"
    assert listener.requests[before_listener:] == [], "nothing arrived where the redirect pointed"
    if case == "to plain http":
        assert "from https to plain http" in cond["message"]
    elif case == "to another host":
        assert f"127.0.0.1:{listener.port}" in cond["message"] and "registry.redirectHosts" in cond["message"]
    else:
        assert "localhost resolves to" in cond["message"]


# -- the same rules through `hotfix-operator verify`, on a plain-HTTP stub registry it is told of ---------


@pytest.fixture
def plain_stub() -> Iterator[Stub]:
    with stub_server() as stub:
        yield stub


def verify(tmp_path: Path, signer: LocalSigner, image: str, *flags: str,
           **registry: Any) -> subprocess.CompletedProcess[str]:
    policy = {"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixPolicy", "metadata": {"name": "shop"},
              "spec": {"namespaceSelector": {}, "registry": registry, "provenance": {
                  "trustedKeys": [{"name": "release", "publicKey": signer.public_pem}],
                  "requireTransparencyLog": False, "allowedBuilders": [LOCAL_BUILDER],
                  "allowedSourceRepositories": [SOURCE]}}}
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
    return subprocess.run([sys.executable, "-m", "hotfix_operator.cli", "verify", image, "--commit", COMMIT,
                           "--source-repo", SOURCE, "--policy", str(tmp_path / "policy.yaml"), *flags],
                          capture_output=True, text=True, timeout=60)


def test_verify_refuses_a_plain_http_realm_on_another_port(
        tmp_path: Path, signer: LocalSigner, plain_stub: Stub, listener: CheckTargets) -> None:
    plain_stub.routes[f"/v2/shop/app/manifests/{ATT_TAG}"] = bearer_challenge(f"http://127.0.0.1:{listener.port}/t")
    before = len(listener.requests)
    done = verify(tmp_path, signer, f"{plain_stub.host}/shop/app@{DIGEST}", "--insecure-registry", plain_stub.host)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("FAIL  TokenRealmNotAllowed: "), done.stderr
    assert f"127.0.0.1:{listener.port}" in done.stderr and "over plain http" in done.stderr
    assert listener.requests[before:] == []


def test_verify_asks_a_realm_the_policy_lists_for_that_registry(
        tmp_path: Path, signer: LocalSigner, plain_stub: Stub) -> None:
    """The other side: a token service on the registry's own host is asked (and its answer judged)."""
    plain_stub.routes[f"/v2/shop/app/manifests/{ATT_TAG}"] = bearer_challenge(f"http://{plain_stub.host}/token")
    plain_stub.routes["/token"] = (403, {}, b"secret body that must not be echoed")
    done = verify(tmp_path, signer, f"{plain_stub.host}/shop/app@{DIGEST}", "--insecure-registry", plain_stub.host)
    assert "/token" in [p.split("?")[0] for p in plain_stub.seen]
    assert done.returncode == 1 and "RegistryAuth" in done.stderr, done.stderr
    assert "must not be echoed" not in done.stderr


def test_verify_refuses_a_blob_redirect_off_the_registry(
        tmp_path: Path, signer: LocalSigner, plain_stub: Stub, listener: CheckTargets) -> None:
    plain_stub.routes[f"/v2/shop/app/manifests/{ATT_TAG}"] = (200, {}, attestation_manifest())
    plain_stub.routes[f"/v2/shop/app/blobs/sha256:{'3' * 64}"] = (
        307, {"Location": f"https://127.0.0.1:{listener.port}/blob"}, b"")
    before = len(listener.requests)
    done = verify(tmp_path, signer, f"{plain_stub.host}/shop/app@{DIGEST}", "--insecure-registry", plain_stub.host)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("FAIL  RedirectNotAllowed: "), done.stderr
    assert f"127.0.0.1:{listener.port}" in done.stderr and "registry.redirectHosts" in done.stderr
    assert listener.requests[before:] == []


def test_verify_refuses_an_unlisted_loopback_registry_before_connecting(
        tmp_path: Path, signer: LocalSigner, tls_stub: Stub, cluster: LocalCluster) -> None:
    before = len(tls_stub.seen)
    done = verify(tmp_path, signer, f"{tls_stub.host}/shop/app@{DIGEST}", "--registry-ca-file", str(cluster.ca_file))
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("FAIL  HostNotAllowed: "), done.stderr
    assert tls_stub.seen[before:] == []
    listed = verify(tmp_path, signer, f"{tls_stub.host}/shop/app@{DIGEST}", "--registry-ca-file",
                    str(cluster.ca_file), loopbackHosts=[tls_stub.host])
    assert "HostNotAllowed" not in listed.stderr, listed.stderr
    assert len(tls_stub.seen) > before, "listed, it is asked"
