"""Where the control-plane binaries are: the version-keyed cache that hack/build-binaries.sh fills,
and Debian's docker-registry. Versions come from hack/versions.env, the one place they are pinned."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

HACK = Path(__file__).resolve().parent.parent


def pinned_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for line in (HACK / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            versions[key] = value.strip().strip('"')
    return versions


def cache_root() -> Path:
    return Path(os.environ.get("HOTFIX_CACHE", Path.home() / ".cache" / "hotfix-operator"))


@dataclass(frozen=True)
class Toolchain:
    etcd: str
    kube_apiserver: str
    kube_controller_manager: str
    kube_scheduler: str
    kubectl: str
    kwok: str
    registry: str

    @classmethod
    def from_cache(cls, build: bool = True) -> Toolchain:
        v = pinned_versions()
        root = cache_root()
        k8s = root / f"kubernetes-{v['KUBERNETES_VERSION']}" / "bin"
        paths = {
            "etcd": root / f"etcd-{v['ETCD_VERSION']}" / "bin" / "etcd",
            "kube_apiserver": k8s / "kube-apiserver",
            "kube_controller_manager": k8s / "kube-controller-manager",
            "kube_scheduler": k8s / "kube-scheduler",
            "kubectl": k8s / "kubectl",
            "kwok": root / f"kwok-{v['KWOK_VERSION']}" / "bin" / "kwok",
        }
        if build and not all(p.exists() for p in paths.values()):
            subprocess.run(["bash", str(HACK / "build-binaries.sh")], check=True, stdout=subprocess.DEVNULL)
        missing = [str(p) for p in paths.values() if not p.exists()]
        if missing:
            raise FileNotFoundError(f"control-plane binaries missing: {missing}; run hack/build-binaries.sh")
        registry = shutil.which("docker-registry") or "/usr/bin/docker-registry"
        if not Path(registry).exists():
            raise FileNotFoundError("docker-registry not installed; run `make deps` (apt-get install docker-registry)")
        return cls(registry=registry, **{k: str(p) for k, p in paths.items()})
