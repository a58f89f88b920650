"""The registry client: against the real registry (TLS, verified with the cluster's CA), and against a
hostile registry on loopback that lies about bytes, sizes and status codes."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from hotfix_operator.adapters.registry import (
    DigestMismatchError,
    ImageReference,
    NotFoundError,
    RegistryClient,
    RegistryConnections,
    RegistryCredentials,
    RegistryError,
)
from hotfix_operator.core.gate_egress import GateRules
from localcluster.cluster import LocalCluster
from localcluster.oci import PushedImage, Pusher


@pytest.fixture(scope="module")
def image(cluster: LocalCluster) -> PushedImage:
    with Pusher(cluster.registry_host, cluster.ca_file) as pusher:
        return pusher.push_image("tests/registry-client", "v1", {"app": b"registry client test\n"})


class TestAgainstTheRealRegistry:
    def test_reads_a_manifest_by_digest_and_checks_its_bytes(self, cluster: LocalCluster, image: PushedImage) -> None:
        with RegistryClient(ca_file=str(cluster.ca_file)) as client:
            manifest = client.get_manifest(ImageReference.parse(image.reference))
            assert manifest.digest == image.digest
            assert manifest.raw == image.manifest
            assert manifest.media_type == "application/vnd.oci.image.manifest.v1+json"
            layer = manifest.layers()[0]
            blob = client.get_blob(ImageReference.parse(image.reference), layer.digest)
            assert "sha256:" + hashlib.sha256(blob).hexdigest() == layer.digest
            assert client.request_count == 2

    def test_a_missing_digest_is_a_permanent_not_found(self, cluster: LocalCluster, image: PushedImage) -> None:
        ref = ImageReference.parse(f"{image.registry}/{image.repository}@sha256:{'0' * 64}")
        with RegistryClient(ca_file=str(cluster.ca_file)) as client, pytest.raises(NotFoundError) as caught:
            client.get_manifest(ref)
        assert not caught.value.transient and caught.value.reason == "ImageNotFound"

    def test_tls_is_verified_by_default(self, image: PushedImage) -> None:
        with RegistryClient() as client, pytest.raises(RegistryError) as caught:  # no CA: the local CA is unknown
            client.get_manifest(ImageReference.parse(image.reference))
        assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)

    def test_referrers_of_a_registry_without_the_api_is_none(self, cluster: LocalCluster, image: PushedImage) -> None:
        with RegistryClient(ca_file=str(cluster.ca_file)) as client:
            assert client.get_referrers(ImageReference.parse(image.reference), image.digest) is None


class Hostile(http.server.BaseHTTPRequestHandler):
    """Answers from a table: path -> (status, headers, body). Records what it was asked."""

    routes: ClassVar[dict[str, tuple[int, dict[str, str], bytes]]] = {}
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_GET(self) -> None:
        self.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "peer": self.client_address})
        path = self.path.split("?")[0]
        status, headers, body = self.routes.get(path, (404, {}, b"{}"))
        if path == "/v2/private/app/manifests/" + DIGEST and self.headers.get("Authorization") != "Bearer t0k3n":
            realm = f"http://{self.headers['Host']}/token"
            status, headers, body = 401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="reg"'}, b""
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", headers.get("Content-Length", str(len(body))))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


MANIFEST = json.dumps(
    {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {}, "layers": []}
).encode()
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


class KeepAlive(Hostile):
    """The same table, keeping each connection open between requests (HTTP/1.1), as registries do."""

    protocol_version = "HTTP/1.1"


@pytest.fixture(params=[Hostile], ids=["closing"])
def hostile(request: pytest.FixtureRequest) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), request.param)
    Hostile.routes, Hostile.seen = {}, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def client_for(host: str, **kwargs: Any) -> RegistryClient:
    return RegistryClient(plain_http_hosts=frozenset({host}), **kwargs)


@pytest.mark.unit
class TestAgainstAHostileRegistry:
    def test_manifest_bytes_that_do_not_hash_to_the_digest_are_refused(self, hostile: str) -> None:
        Hostile.routes[f"/v2/app/manifests/{DIGEST}"] = (200, {}, MANIFEST.replace(b"2", b"3", 1))
        with client_for(hostile) as client, pytest.raises(DigestMismatchError) as caught:
            client.get_manifest(ImageReference.parse(f"{hostile}/app@{DIGEST}"))
        assert caught.value.reason == "DigestMismatch" and not caught.value.transient
        assert "refusing them" in str(caught.value)

    def test_a_blob_whose_bytes_differ_is_refused(self, hostile: str) -> None:
        Hostile.routes[f"/v2/app/blobs/{DIGEST}"] = (200, {}, b"something else")
        with client_for(hostile) as client, pytest.raises(DigestMismatchError):
            client.get_blob(ImageReference.parse(f"{hostile}/app@{DIGEST}"), DIGEST)

    def test_oversized_answers_are_cut_off(self, hostile: str) -> None:
        Hostile.routes[f"/v2/app/manifests/{DIGEST}"] = (200, {}, b"x" * 5000)
        with client_for(hostile, max_manifest_bytes=4096) as client, pytest.raises(RegistryError) as caught:
            client.get_manifest(ImageReference.parse(f"{hostile}/app@{DIGEST}"))
        assert caught.value.reason == "TooLarge"

    def test_a_lying_content_length_is_refused_before_reading(self, hostile: str) -> None:
        Hostile.routes[f"/v2/app/manifests/{DIGEST}"] = (200, {"Content-Length": str(10**9)}, b"")
        with client_for(hostile) as client, pytest.raises(RegistryError) as caught:
            client.get_manifest(ImageReference.parse(f"{hostile}/app@{DIGEST}"))
        assert caught.value.reason == "TooLarge"

    @pytest.mark.parametrize(("status", "transient"), [(500, True), (503, True), (429, True), (400, False)])
    def test_server_errors_are_transient_and_client_errors_are_not(
        self, hostile: str, status: int, transient: bool
    ) -> None:
        Hostile.routes[f"/v2/app/manifests/{DIGEST}"] = (status, {}, b"")
        with client_for(hostile) as client, pytest.raises(RegistryError) as caught:
            client.get_manifest(ImageReference.parse(f"{hostile}/app@{DIGEST}"))
        assert caught.value.transient is transient

    def test_an_unreachable_registry_is_transient(self) -> None:
        with client_for("127.0.0.1:9") as client, pytest.raises(RegistryError) as caught:
            client.get_manifest(ImageReference.parse(f"127.0.0.1:9/app@{DIGEST}"))
        assert caught.value.transient and caught.value.reason == "RegistryUnavailable"

    def test_bearer_challenge_fetches_a_token_with_the_configured_credentials(self, hostile: str) -> None:
        Hostile.routes[f"/v2/private/app/manifests/{DIGEST}"] = (200, {}, MANIFEST)
        Hostile.routes["/token"] = (200, {}, b'{"token": "t0k3n"}')
        creds = RegistryCredentials.from_dockerconfigjson(
            json.dumps({"auths": {hostile: {"auth": base64.b64encode(b"robot:s3cret").decode()}}}).encode()
        )
        with client_for(hostile, credentials=creds) as client:
            assert client.get_manifest(ImageReference.parse(f"{hostile}/private/app@{DIGEST}")).raw == MANIFEST
        token_request = next(s for s in Hostile.seen if s["path"].startswith("/token"))
        assert "scope=repository%3Aprivate%2Fapp%3Apull" in token_request["path"]
        assert token_request["auth"] == "Basic " + base64.b64encode(b"robot:s3cret").decode()
        assert "s3cret" not in repr(creds)

    def test_plain_http_is_refused_for_non_loopback_hosts(self) -> None:
        with pytest.raises(ValueError, match="loopback registries only"):
            RegistryClient(plain_http_hosts=frozenset({"registry.example.com"}))


@pytest.mark.unit
@pytest.mark.parametrize("hostile", [KeepAlive], ids=["keep-alive"], indirect=True)
class TestSharedConnections:
    def _peers(self) -> list[Any]:
        return [seen["peer"] for seen in Hostile.seen]

    def test_clients_sharing_a_pool_reuse_one_connection_after_each_closes(self, hostile: str) -> None:
        Hostile.routes[f"/v2/app/manifests/{DIGEST}"] = (200, {}, MANIFEST)
        connections = RegistryConnections()
        for _ in range(3):  # one client per gate check, as the operator makes them
            with client_for(hostile, connections=connections) as client:
                assert client.get_manifest(ImageReference.parse(f"{hostile}/app@{DIGEST}")).raw == MANIFEST
        connections.shutdown()
        assert len(self._peers()) == 3 and len(set(self._peers())) == 1

    def test_clients_with_their_own_pools_each_open_a_connection(self, hostile: str) -> None:
        Hostile.routes[f"/v2/app/manifests/{DIGEST}"] = (200, {}, MANIFEST)
        for _ in range(3):
            with client_for(hostile) as client:
                client.get_manifest(ImageReference.parse(f"{hostile}/app@{DIGEST}"))
        assert len(set(self._peers())) == 3

    def test_a_pooled_connection_does_not_carry_a_request_the_clients_own_rules_refuse(self, hostile: str) -> None:
        Hostile.routes[f"/v2/app/manifests/{DIGEST}"] = (200, {}, MANIFEST)
        connections = RegistryConnections()
        with client_for(hostile, connections=connections) as client:
            client.get_manifest(ImageReference.parse(f"{hostile}/app@{DIGEST}"))
        # another release's policy: this host is the API server, which no gate may reach
        with client_for(hostile, connections=connections) as client, pytest.raises(RegistryError) as caught:
            client.restrict(GateRules(policy="other", api_server=hostile)).get_manifest(
                ImageReference.parse(f"{hostile}/app@{DIGEST}"))
        connections.shutdown()
        assert hostile in str(caught.value) and len(Hostile.seen) == 1

    def test_tokens_stay_with_the_client_that_was_given_them(self, hostile: str) -> None:
        Hostile.routes[f"/v2/private/app/manifests/{DIGEST}"] = (200, {}, MANIFEST)
        Hostile.routes["/token"] = (200, {}, b'{"token": "t0k3n"}')
        creds = RegistryCredentials.from_dockerconfigjson(
            json.dumps({"auths": {hostile: {"auth": base64.b64encode(b"robot:s3cret").decode()}}}).encode())
        connections = RegistryConnections()
        reference = ImageReference.parse(f"{hostile}/private/app@{DIGEST}")
        with client_for(hostile, credentials=creds, connections=connections) as client:
            client.get_manifest(reference)
        first = len(Hostile.seen)
        with client_for(hostile, connections=connections) as client:  # no credentials of its own
            client.get_manifest(reference)
        connections.shutdown()
        asked = Hostile.seen[first:]
        # its first read carries no token and its token request no password: nothing crossed over in the pool
        assert [(seen["path"].split("?")[0], seen["auth"]) for seen in asked][:2] == [
            (f"/v2/private/app/manifests/{DIGEST}", None), ("/token", None)]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("checkout@sha256:" + "a" * 64, "must name its registry host"),
        ("registry.example.com/app@sha256:abc", "is not sha256:<64 lowercase hex>"),
        ("registry.example.com/App@sha256:" + "a" * 64, "not a valid OCI repository name"),
        ("registry.example.com/app:" + "t" * 200, "not a valid tag"),
        ("x" * 2000, "longer than 1024"),
    ],
)
def test_malformed_references_are_refused_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        ImageReference.parse(text)


@pytest.mark.unit
def test_references_round_trip() -> None:
    text = "127.0.0.1:5000/shop/checkout@sha256:" + "a" * 64
    ref = ImageReference.parse(text)
    assert (ref.registry, ref.repository, ref.tag) == ("127.0.0.1:5000", "shop/checkout", None)
    assert str(ref) == text
