"""Helpers for the provenance tests that run against the local TLS registry.

- `Cosign` runs the real cosign binary (hack/build-binaries.sh cosign, pinned in hack/versions.env)
  offline: key pairs only, no Fulcio, no Rekor, no TUF; the registry's CA reaches it via SSL_CERT_FILE.
- `allow_loopback_only` replaces the package-wide "no network" guard for these tests: the registry is
  on loopback, everything else stays forbidden.
- `TamperingRegistry` stands in front of the real registry and changes chosen answers, to play a
  registry that lies or fails.
"""

from __future__ import annotations

import http.server
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from localcluster.toolchain import HACK, cache_root, pinned_versions

COSIGN_TIMEOUT_SECONDS = 120
# Only the test keys are protected by it; cosign reads it instead of prompting.
KEY_PASSWORD = "hotfix-operator-test-key"

# Flags that keep cosign 3 offline with a key: no transparency log, no signing config fetched via TUF.
OFFLINE = ("--tlog-upload=false", "--use-signing-config=false", "--yes")
# cosign 3 writes Sigstore bundles as OCI 1.1 referrers by default; this selects the older `.sig`/`.att` tags.
LEGACY_TAGS = ("--new-bundle-format=false",)


def cosign_binary() -> Path:
    """The pinned cosign, built on first use (a cold build takes several minutes on 2 cores)."""
    version = pinned_versions()["COSIGN_VERSION"]
    binary = cache_root() / f"cosign-{version}" / "bin" / "cosign"
    if not binary.exists():
        subprocess.run(["bash", str(HACK / "build-binaries.sh"), "cosign"], check=True, stdout=subprocess.DEVNULL)
    return binary


@dataclass(frozen=True)
class KeyPair:
    private_key: Path
    public_key: Path

    @property
    def public_pem(self) -> str:
        return self.public_key.read_text()


@dataclass
class Cosign:
    binary: Path
    workdir: Path
    ca_file: Path
    runs: list[list[str]] = field(default_factory=list)

    def run(self, *args: str, experimental: bool = False) -> subprocess.CompletedProcess[str]:
        home = self.workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        # A minimal environment: no proxy settings, credentials or caches of the person running the tests.
        env = {
            "HOME": str(home),
            "DOCKER_CONFIG": str(home / "docker"),
            "TUF_ROOT": str(home / "tuf"),
            "SSL_CERT_FILE": str(self.ca_file),
            "COSIGN_PASSWORD": KEY_PASSWORD,
            "PATH": os.defpath,
        }
        if experimental:
            env["COSIGN_EXPERIMENTAL"] = "1"
        argv = [str(self.binary), *args]
        self.runs.append(argv)
        result = subprocess.run(
            argv, cwd=self.workdir, env=env, capture_output=True, text=True, timeout=COSIGN_TIMEOUT_SECONDS
        )
        if result.returncode != 0:
            raise AssertionError(f"cosign {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def generate_key_pair(self, name: str) -> KeyPair:
        self.run("generate-key-pair", "--output-key-prefix", name)
        return KeyPair(self.workdir / f"{name}.key", self.workdir / f"{name}.pub")

    def sign(self, image: str, key: KeyPair, *, bundle: bool, referrers_mode: str | None = None) -> None:
        extra = () if bundle else LEGACY_TAGS
        mode = () if referrers_mode is None else (f"--registry-referrers-mode={referrers_mode}",)
        # cosign 3 accepts --registry-referrers-mode only in experimental mode.
        self.run("sign", "--key", str(key.private_key), *OFFLINE, *extra, *mode, image, experimental=bool(mode))

    def attest(self, image: str, key: KeyPair, *, predicate: dict[str, Any], predicate_type: str, bundle: bool) -> None:
        path = self.workdir / f"predicate-{len(self.runs)}.json"
        path.write_text(json.dumps(predicate))
        extra = () if bundle else LEGACY_TAGS
        self.run(
            "attest", "--key", str(key.private_key), "--type", predicate_type, "--predicate", str(path),
            *OFFLINE, *extra, image,
        )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Network: loopback only
# ---------------------------------------------------------------------------------------------


class NonLoopbackNetworkUsed(AssertionError):
    pass


def _is_loopback(host: object) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return False


def allow_loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sockets may connect to loopback addresses (the local registry) and nowhere else."""
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex
    create_connection, getaddrinfo = socket.create_connection, socket.getaddrinfo

    def checked(address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if not _is_loopback(host):
            raise NonLoopbackNetworkUsed(f"network access beyond loopback attempted: {address!r}")

    def guarded_connect(self: socket.socket, address: Any) -> None:
        checked(address)
        connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        checked(address)
        return connect_ex(self, address)

    def guarded_create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        checked(address)
        return create_connection(address, *args, **kwargs)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        checked((host,))
        return getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    monkeypatch.setattr(socket, "create_connection", guarded_create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)


# ---------------------------------------------------------------------------------------------
# A registry that lies or fails
# ---------------------------------------------------------------------------------------------

# Given the upstream status and body of one GET, return what to answer instead (or None: unchanged).
Rule = Callable[[int, bytes], tuple[int, bytes] | None]


class _Front(http.server.BaseHTTPRequestHandler):
    upstream: ClassVar[httpx.Client]
    rules: ClassVar[dict[str, Rule]]

    def do_GET(self) -> None:
        answer = self.upstream.get(self.path, headers={"Accept": self.headers.get("Accept", "*/*")})
        status, body = answer.status_code, answer.content
        rule = self.rules.get(self.path.split("?")[0])
        if rule is not None:
            status, body = rule(status, body) or (status, body)
        self.send_response(status)
        for name in ("Content-Type", "Docker-Content-Digest"):
            if name in answer.headers:
                self.send_header(name, answer.headers[name])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


class TamperingRegistry:
    """Plain HTTP on loopback in front of the real TLS registry; `rules` maps request paths to edits."""

    def __init__(self, registry_host: str, ca_file: Path) -> None:
        self.rules: dict[str, Rule] = {}
        upstream = httpx.Client(
            base_url=f"https://{registry_host}", verify=ssl.create_default_context(cafile=str(ca_file)), timeout=10
        )
        handler = type("Front", (_Front,), {"upstream": upstream, "rules": self.rules})
        self._upstream = upstream
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.host = f"127.0.0.1:{self._server.server_address[1]}"

    @contextmanager
    def serving(self) -> Iterator[TamperingRegistry]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            self._upstream.close()
