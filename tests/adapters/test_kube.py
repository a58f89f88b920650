"""The Kubernetes adapter's requests: what they cost the API server and the operator."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from hotfix_operator.adapters.kube import KubeAdapter


def test_writes_whose_answer_is_not_needed_still_give_their_connection_back() -> None:
    """Two Service patches and an Event over one keep-alive connection: an unread answer would make the
    client open a new connection (a TLS handshake against a real API server) for every write."""
    import http.server
    import threading

    connections: list[object] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            connections.append(self.client_address)
            super().setup()

        def do_PATCH(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = b'{"kind": "Service", "metadata": {"name": "checkout"}}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        kube = KubeAdapter(client.ApiClient(client.Configuration(host=f"http://127.0.0.1:{server.server_port}")))
        patch = [{"op": "replace", "path": "/spec/selector", "value": {"app": "checkout"}}]
        for _ in range(2):
            kube.send(kube.core.patch_namespaced_service, "checkout", "shop", patch,
                      _content_type="application/json-patch+json")
        kube.send(kube.core.create_namespaced_event, "shop", {"metadata": {"generateName": "x."},
                                                             "involvedObject": {"kind": "HotfixRelease", "name": "x"}})
        assert len(connections) == 1
    finally:
        server.shutdown()
