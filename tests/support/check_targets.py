"""What a hotfix's health checks talk to in tests: kwok pods run nothing, so the app's answers come from
a loopback server each test scripts, per path prefix (one prefix per test namespace). It also serves
`/metrics` in the Prometheus text format with values the test sets, for a real Prometheus to scrape,
and it records every request, so a test can show that a refused check sent nothing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

# An answer: (status, body), "hang" (no answer within any check's timeout), or "close" (drop the connection)
Answer = tuple[int, str] | str


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str
    body: str
    headers: dict[str, str]
    # when it arrived (time.monotonic()), for benchmarks that time the operator's reactions
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class CheckTargets:
    """The scripted server. `script(prefix, answers)`: requests under /prefix get the answers in turn,
    then the last one again. `metrics[name] = value` is exported at /metrics. `hold(matches, until)`:
    a request that `matches` gets no answer until the event `until` is set, so a test can act (kill the
    sender, say) while the request is out and its answer not yet back."""

    port: int = 0
    requests: list[Request] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    _scripts: dict[str, list[Answer]] = field(default_factory=dict)
    _served: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _held: tuple[Callable[[Request], bool], threading.Event] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, prefix: str, *answers: Answer) -> None:
        with self._lock:
            self._scripts[prefix.strip("/")] = list(answers)
            self._served[prefix.strip("/")] = 0

    def hold(self, matches: Callable[[Request], bool], until: threading.Event) -> None:
        self._held = (matches, until)

    def wait_if_held(self, request: Request) -> None:
        held = self._held
        if held is not None and held[0](request):
            held[1].wait(timeout=60)

    def under(self, prefix: str) -> list[Request]:
        return [r for r in self.requests if r.path.strip("/").startswith(prefix.strip("/"))]

    def answer_for(self, path: str) -> Answer:
        with self._lock:
            key = next((k for k in self._scripts if path.strip("/").startswith(k)), None)
            if key is None:
                return 404, "no script for this path"
            answers, i = self._scripts[key], self._served[key]
            self._served[key] = i + 1
            return answers[min(i, len(answers) - 1)]

    def exposition(self) -> str:
        lines = []
        for series, value in sorted(self.metrics.items()):
            lines.append(f"{series} {value}")
        return "\n".join(lines) + "\n"


def _handler(targets: CheckTargets) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            if parts.path == "/metrics":
                self._send(200, targets.exposition(), "text/plain; version=0.0.4")
                return
            request = Request(self.command, parts.path, parts.query, body, dict(self.headers))
            targets.requests.append(request)
            targets.wait_if_held(request)
            answer = targets.answer_for(parts.path)
            if answer == "hang":
                time.sleep(30)
                return
            if answer == "close":
                self.close_connection = True
                self.connection.close()
                return
            assert isinstance(answer, tuple)
            self._send(answer[0], answer[1], "application/json")

        def _send(self, status: int, text: str, kind: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_HEAD = _serve

    return Handler


@contextmanager
def serving(port: int = 0) -> Iterator[CheckTargets]:
    targets = CheckTargets()
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(targets))
    server.daemon_threads = True
    targets.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="check-targets", daemon=True)
    thread.start()
    try:
        yield targets
    finally:
        server.shutdown()
        server.server_close()
