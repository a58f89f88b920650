"""Fetching the evidence bundle: from an OCI artifact in the real registry, and from an https directory."""

from __future__ import annotations

import hashlib
import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from hotfix_operator.adapters.evidence_fetch import fetch_evidence
from hotfix_operator.adapters.registry import RegistryClient, RegistryError
from localcluster.cluster import LocalCluster
from localcluster.oci import Pusher
from localcluster.pki import CertificateAuthority

FILES = {"provenance.json": b'{"_type": "x"}', "evidence.tar.gz": b"\x1f\x8b not really"}
SUMS = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in FILES.items()).encode()


def test_an_oci_evidence_artifact_is_read_file_by_file(cluster: LocalCluster) -> None:
    with Pusher(cluster.registry_host, cluster.ca_file) as pusher:
        artifact = pusher.push_artifact("tests/evidence", "v1", {**FILES, "SHA256SUMS": SUMS})
    with RegistryClient(ca_file=str(cluster.ca_file)) as client:
        evidence = fetch_evidence(f"oci://{artifact.reference}", client)
    assert dict(evidence.files) == {**FILES, "SHA256SUMS": SUMS}


def test_an_evidence_tag_is_refused(cluster: LocalCluster) -> None:
    with RegistryClient(ca_file=str(cluster.ca_file)) as client, pytest.raises(RegistryError) as caught:
        fetch_evidence(f"oci://{cluster.registry_host}/tests/evidence:v1", client)
    assert caught.value.reason == "NotDigestPinned"


class Assets(http.server.BaseHTTPRequestHandler):
    served: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        body = self.served.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def https_assets(cluster: LocalCluster) -> Iterator[str]:
    pair = CertificateAuthority(Path(cluster.ca_file).parent).issue("evidence-server", "evidence", server=True,
                                                                    ip_addresses=("127.0.0.1",))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Assets)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(pair.cert), str(pair.key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_an_https_directory_is_read_through_its_sha256sums(cluster: LocalCluster, https_assets: str) -> None:
    Assets.served = {"/releases/v4.1.2/SHA256SUMS": SUMS, **{f"/releases/v4.1.2/{n}": d for n, d in FILES.items()}}
    with RegistryClient() as client:
        evidence = fetch_evidence(f"{https_assets}/releases/v4.1.2/", client, ca_file=str(cluster.ca_file))
    assert dict(evidence.files) == {**FILES, "SHA256SUMS": SUMS}


def test_a_listed_file_that_is_missing_is_a_permanent_refusal(cluster: LocalCluster, https_assets: str) -> None:
    Assets.served = {"/r/SHA256SUMS": SUMS, "/r/provenance.json": FILES["provenance.json"]}
    with RegistryClient() as client, pytest.raises(RegistryError) as caught:
        fetch_evidence(f"{https_assets}/r/", client, ca_file=str(cluster.ca_file))
    assert not caught.value.transient
    assert "evidence.tar.gz: HTTP 404" in str(caught.value)


def test_https_evidence_is_tls_verified(https_assets: str) -> None:
    with RegistryClient() as client, pytest.raises(RegistryError) as caught:
        fetch_evidence(f"{https_assets}/r/", client)  # the local CA is not trusted by default
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
