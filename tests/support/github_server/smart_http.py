"""Git's smart-HTTP protocol, served by git's own CGI program `git http-backend`."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .git_store import hermetic_git_env


@dataclass(frozen=True)
class CgiResult:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def run_http_backend(
    project_root: Path,
    *,
    method: str,
    path_info: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    remote_user: str,
) -> CgiResult:
    """Runs one smart-HTTP request through `git http-backend` and parses its CGI answer."""
    lowered = {key.lower(): value for key, value in headers.items()}
    env = hermetic_git_env(
        {
            "GIT_PROJECT_ROOT": str(project_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path_info,
            "REQUEST_METHOD": method,
            "QUERY_STRING": query,
            "CONTENT_TYPE": lowered.get("content-type", ""),
            "CONTENT_LENGTH": str(len(body)),
            # http-backend enables receive-pack (push) only for authenticated users.
            "REMOTE_USER": remote_user,
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_PROTOCOL": lowered.get("git-protocol", ""),
            "HTTP_CONTENT_ENCODING": lowered.get("content-encoding", ""),
        }
    )
    completed = subprocess.run(
        ["git", "http-backend"], input=body, env=env, capture_output=True, check=False, timeout=120
    )
    if completed.returncode != 0 and not completed.stdout:
        message = completed.stderr.decode(errors="replace")
        return CgiResult(500, [("Content-Type", "text/plain")], message.encode())
    return _parse_cgi(completed.stdout)


def _parse_cgi(output: bytes) -> CgiResult:
    found = [(index, sep) for sep in (b"\r\n\r\n", b"\n\n") if (index := output.find(sep)) >= 0]
    if not found:
        return CgiResult(500, [("Content-Type", "text/plain")], b"malformed CGI output from git http-backend")
    index, separator = min(found)
    head, body = output[:index], output[index + len(separator) :]
    status = 200
    headers: list[tuple[str, str]] = []
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split(" ", 1)[0])
        elif name.strip():
            headers.append((name.strip(), value.strip()))
    return CgiResult(status, headers, body)
