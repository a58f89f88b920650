"""go-containerregistry's registry with the OCI 1.1 referrers API (hack/ociregistry), for tests that must
see discovery use `GET /v2/<name>/referrers/<digest>` (Debian's docker-registry only has the tag fallback).

Built on first use from its pinned Go module (hack/build-binaries.sh ociregistry, GO_CONTAINERREGISTRY_VERSION
in hack/versions.env), so a fresh machine needs nothing else. It serves plain HTTP on loopback; the gate
reaches it through its loopback-only plain-HTTP allowance. Its request log is kept, so a test can say
which endpoints were asked.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from localcluster.oci import Pusher
from localcluster.toolchain import HACK


def ociregistry_binary() -> Path:
    built = subprocess.run(["bash", str(HACK / "build-binaries.sh"), "ociregistry"], check=True,
                           capture_output=True, text=True).stdout.strip()
    return Path(built) / "ociregistry"


@dataclass
class OciRegistry:
    host: str
    log: list[str] = field(default_factory=list)

    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request so far, from the registry's own log."""
        seen = []
        for line in list(self.log):
            parts = line.split()
            # "2026/01/02 15:04:05 GET /v2/x/referrers/sha256:… [status code message]"
            if len(parts) >= 4 and parts[2] in {"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"}:
                seen.append((parts[2], parts[3]))
        return seen

    def pusher(self) -> Pusher:
        pusher = Pusher(self.host)
        pusher.http.close()
        pusher.http = httpx.Client(base_url=f"http://{self.host}", timeout=30)
        return pusher


@contextmanager
def running_ociregistry() -> Iterator[OciRegistry]:
    process = subprocess.Popen([str(ociregistry_binary()), "--address", "127.0.0.1:0"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stderr is not None
        registry = OciRegistry(host=process.stdout.readline().strip())
        if not registry.host:
            raise RuntimeError(f"ociregistry did not start: {process.stderr.read()}")
        stderr = process.stderr
        def keep_log() -> None:
            for line in iter(stderr.readline, ""):
                registry.log.append(line)

        threading.Thread(target=keep_log, daemon=True).start()
        yield registry
    finally:
        process.terminate()
        process.wait(timeout=10)
