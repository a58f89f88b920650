"""The loopback GitHub: one HTTP origin serving the REST API, uploads, downloads and git.

    with LoopbackGitHub(tmp_path) as github:
        github.create_repository("acme/checkout", files={"README.md": b"hello"})
        client = Github(auth=Auth.Token(github.token), base_url=github.base_url)

Every REST request is routed through GitHub's OpenAPI description; anything the description does
not define, and any request or response its schemas reject, is recorded in `violations` (the
pytest fixture fails the test on any) and a request outside it is answered with an error.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from . import representations as rep
from .api import Call, GitHubState, Reply, unauthorized
from .faults import Fault, FaultPlan
from .model import Account, AppInstallation, HostedRepository
from .representations import Urls
from .smart_http import run_http_backend
from .spec import GitHubSpec, RouteMatch, ServerName, load_github_spec
from .validation import ApiRequest, ApiResponse, ContractValidator, Violation

_GIT_PATH = re.compile(
    r"^/(?P<owner>[^/]+)/(?P<repo>[^/]+)\.git(?P<rest>/(?:info/refs|git-upload-pack|git-receive-pack))$"
)
_DOWNLOAD_PATH = re.compile(r"^/(?P<owner>[^/]+)/(?P<repo>[^/]+)/releases/download/(?P<tag>[^/]+)/(?P<name>[^/]+)$")


@dataclass(frozen=True)
class Exchange:
    """One REST request as the server saw it, routed to its OpenAPI template."""

    method: str
    template: str
    operation_id: str
    path: str
    status: int
    caller: str | None


class LoopbackGitHub:
    def __init__(self, root: Path, spec: GitHubSpec | None = None) -> None:
        self.root = root
        self.spec = spec or load_github_spec()
        self.validator = ContractValidator(self.spec)
        self.faults = FaultPlan()
        self.violations: list[Violation] = []
        self.exchanges: list[Exchange] = []
        self._record_lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _RequestHandler)
        self._http.daemon_threads = True
        self._http.app = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None
        self.urls = Urls(f"http://127.0.0.1:{self._http.server_address[1]}")
        self.state = GitHubState(root / "git", self.urls)
        self.token = self.state.issue_token("hotfix-bot")

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> LoopbackGitHub:
        # A short poll interval: shutdown() waits for the serving loop to notice, once per test.
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.02}, name="loopback-github", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> LoopbackGitHub:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    # -- what tests use --------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self.urls.api

    def git_url(self, full_name: str) -> str:
        return f"{self.urls.web}/{full_name}.git"

    def create_repository(
        self,
        full_name: str,
        *,
        default_branch: str = "main",
        files: Mapping[str, bytes | str] | None = None,
        copy_of: Path | None = None,
    ) -> HostedRepository:
        """A new hosted repository: empty, with files in one initial commit, or a copy of a bare repo."""
        encoded = {path: c.encode() if isinstance(c, str) else c for path, c in (files or {}).items()}
        return self.state.create_repository(full_name, default_branch, encoded, copy_of)

    def repository(self, full_name: str) -> HostedRepository:
        return self.state.repositories[full_name]

    def issue_token(self, login: str) -> str:
        return self.state.issue_token(login)

    def register_app(self, app_id: int, installation_id: int, public_key_pem: bytes) -> AppInstallation:
        return self.state.register_app(app_id, installation_id, public_key_pem)

    def fail_next(
        self,
        method: str,
        template: str,
        *,
        status: int = 502,
        times: int = 1,
        after: int = 0,
        retry_after: int | None = None,
        after_handling: bool = False,
    ) -> None:
        """Makes the next `times` matching requests fail (after letting `after` through).

        With after_handling=True the request is carried out and only its response is replaced,
        the way a connection dropped after GitHub committed a write looks to a client.
        """
        operation = self.spec.operation(method, template)  # a typo in a test must not pass silently
        self.faults.add(Fault(operation.method, operation.template, status, times, after, retry_after, after_handling))

    def calls(self, method: str, template: str) -> int:
        with self._record_lock:
            return sum(1 for e in self.exchanges if e.method == method.upper() and e.template == template)

    def writes(self, method: str, template: str) -> int:
        """How many requests to this endpoint succeeded (2xx): the 'exactly once' counter."""
        with self._record_lock:
            return sum(
                1
                for e in self.exchanges
                if e.method == method.upper() and e.template == template and 200 <= e.status < 300
            )

    def take_violations(self) -> list[Violation]:
        with self._record_lock:
            taken, self.violations = self.violations, []
        return taken

    # -- request handling -----------------------------------------------------------------------

    def handle(self, handler: _RequestHandler) -> None:
        split = urllib.parse.urlsplit(handler.path)
        headers = dict(handler.headers.items())
        body = _read_body(handler)
        path = split.path
        if path.startswith("/api/v3/"):
            self._send(handler, self._rest("api", handler.command, path[len("/api/v3") :], split.query, headers, body))
        elif path.startswith("/api/uploads/"):
            self._send(
                handler, self._rest("uploads", handler.command, path[len("/api/uploads") :], split.query, headers, body)
            )
        elif found := _GIT_PATH.match(path):
            self._git(handler, found, split.query, headers, body)
        elif found := _DOWNLOAD_PATH.match(path):
            self._send(handler, self._download(found, headers))
        else:
            self._send(handler, ApiResponse(404, b"Not Found", "text/plain"))

    def _rest(
        self, server: ServerName, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> ApiResponse:
        request = ApiRequest(
            method=method,
            path=path,
            query=urllib.parse.parse_qsl(query, keep_blank_values=True),
            headers=headers,
            body=body,
            content_type=next((v for k, v in headers.items() if k.lower() == "content-type"), ""),
        )
        match = self.spec.find(method, server, path)
        if match is None:
            self.record_violation("unknown-operation", method, path, "no operation in GitHub's OpenAPI description")
            return ApiResponse.json(404, rep.error("Not Found"))
        with self.state.lock:
            caller = self._caller(match, request)
            response = self._answer(match, request, caller)
        operation = match.operation
        login = None if caller is None else caller.login
        self._record(
            Exchange(operation.method, operation.template, operation.operation_id, path, response.status, login)
        )
        return response

    def _answer(self, match: RouteMatch, request: ApiRequest, caller: Account | None) -> ApiResponse:
        operation = match.operation
        if caller is None:
            return self._checked(match, request, unauthorized().response)
        # Validated before any scheduled fault, so a faulty request never hides behind one.
        problems = self.validator.check_request(match, request)
        if problems:
            self.record_violation("request", request.method, request.path, "; ".join(problems))
            return ApiResponse.json(422, rep.error("Invalid request.\n\n" + "\n".join(problems)))
        fault = self.faults.take(operation.method, operation.template, after_handling=False)
        if fault is not None:
            return self._checked(match, request, fault.response())
        handler = self.state.handlers.get(operation.operation_id)
        if handler is None:
            self.record_violation(
                "unimplemented", request.method, request.path, f"{operation.operation_id} is not emulated"
            )
            return ApiResponse.json(501, rep.error(f"{operation.operation_id} is not emulated"))
        try:
            response = handler(Call(match, request, caller))
        except Reply as reply:
            response = reply.response
        fault = self.faults.take(operation.method, operation.template, after_handling=True)
        if fault is not None:
            response = fault.response()
        return self._checked(match, request, response)

    def _caller(self, match: RouteMatch, request: ApiRequest) -> Account | None:
        if match.operation.operation_id == "apps/create-installation-access-token":
            # The token exchange is the one call authenticated by the App's signed JWT instead.
            installation = self.state.verify_app_jwt(request.headers, match.path_params["installation_id"])
            return None if installation is None else installation.bot
        return self.state.authenticate(request.headers)

    def _checked(self, match: RouteMatch, request: ApiRequest, response: ApiResponse) -> ApiResponse:
        problems = self.validator.check_response(match, request, response)
        if problems:
            self.record_violation(
                "response", request.method, request.path, f"{response.status}: " + "; ".join(problems)
            )
        return response

    def _download(self, found: re.Match[str], headers: dict[str, str]) -> ApiResponse:
        if self.state.authenticate(headers) is None:
            return ApiResponse(404, b"Not Found", "text/plain")
        repo = self.state.repositories.get(f"{found['owner']}/{found['repo']}")
        tag, name = urllib.parse.unquote(found["tag"]), urllib.parse.unquote(found["name"])
        for release in repo.releases.values() if repo else []:
            for asset in release.assets:
                if release.tag_name == tag and asset.name == name:
                    return ApiResponse(200, asset.data, "application/octet-stream")
        return ApiResponse(404, b"Not Found", "text/plain")

    def _git(
        self, handler: _RequestHandler, found: re.Match[str], query: str, headers: dict[str, str], body: bytes
    ) -> None:
        caller = self.state.authenticate(headers)
        full_name = f"{found['owner']}/{found['repo']}"
        if caller is None:
            challenge = {"WWW-Authenticate": 'Basic realm="GitHub"'}
            self._send(handler, ApiResponse(401, b"Authentication required\n", "text/plain", challenge))
            return
        if full_name not in self.state.repositories:
            self._send(handler, ApiResponse(404, b"Repository not found\n", "text/plain"))
            return
        result = run_http_backend(
            self.state.root,
            method=handler.command,
            path_info=f"/{found['owner']}/{found['repo']}.git{found['rest']}",
            query=query,
            headers=headers,
            body=body,
            remote_user=caller.login,
        )
        content_type = next((v for k, v in result.headers if k.lower() == "content-type"), "")
        extra = {k: v for k, v in result.headers if k.lower() not in ("content-type", "content-length")}
        self._send(handler, ApiResponse(result.status, result.body, content_type, extra))

    # -- plumbing ---------------------------------------------------------------------------

    def record_violation(self, kind: str, method: str, path: str, detail: str) -> None:
        with self._record_lock:
            self.violations.append(Violation(kind, method, path, detail))

    def _record(self, exchange: Exchange) -> None:
        with self._record_lock:
            self.exchanges.append(exchange)

    @staticmethod
    def _send(handler: _RequestHandler, response: ApiResponse) -> None:
        handler.send_response(response.status)
        if response.content_type:
            handler.send_header("Content-Type", response.content_type)
        for key, value in response.headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(response.body)))
        handler.send_header("X-GitHub-Request-Id", "LOOPBACK")
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(response.body)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients of GitHub expect
    server_version = "LoopbackGitHub"

    def _dispatch(self) -> None:
        app: LoopbackGitHub = self.server.app  # type: ignore[attr-defined]
        try:
            app.handle(self)
        except ConnectionError:
            # The client hung up mid-exchange (tests SIGKILL the operator on purpose): nobody is
            # left to answer, and a caller going away is not the server misbehaving.
            self.close_connection = True
        except Exception as error:  # the server must answer, and the test must learn why
            app.record_violation("server-error", self.command, self.path, f"{type(error).__name__}: {error}")
            payload = json.dumps(rep.error(f"loopback server error: {error}")).encode()
            LoopbackGitHub._send(self, ApiResponse(500, payload))

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _dispatch

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the exchanges are recorded on the server object instead."""


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        # git sends large pushes chunked; http.server does not decode that for us.
        chunks: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""
