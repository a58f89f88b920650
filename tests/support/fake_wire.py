"""A loopback HTTP server that records each request and answers from a script: for tests of what the
adapters put on the wire (paths, verbs, content types, bodies, credentials, connections). What the real API
server makes of those requests is the integration suite's to show."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeWire:
    """Answers every request with the next scripted (status, body), else 200 and a small object."""

    answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    connections: list[object] = field(default_factory=list)

    def handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        wire = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                wire.connections.append(self.client_address)
                super().setup()

            def do_GET(self) -> None:
                self._answer()

            do_PATCH = do_POST = do_DELETE = do_GET

            def _answer(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                wire.seen.append(Seen(self.command, self.path, dict(self.headers), json.loads(raw) if raw else None))
                status, body = wire.answers.pop(0) if wire.answers else (200, {"metadata": {"name": "x"}})
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        return Handler


@contextmanager
def serving(token: str = "Bearer s3cret") -> Iterator[tuple[FakeWire, client.ApiClient]]:
    """A FakeWire on a free loopback port, and a kubernetes ApiClient configured for it with `token`."""
    fake = FakeWire()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conf = client.Configuration(host=f"http://127.0.0.1:{server.server_port}", api_key={"authorization": token})
    try:
        yield fake, client.ApiClient(conf)
    finally:
        server.shutdown()
