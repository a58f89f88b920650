"""The chart as Helm renders it: helm built on demand from its pinned Go module into the cache
(hack/build-binaries.sh helm), rendering parsed into plain dicts."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "hotfix-operator"
# every switch on: what the dry-run and the render checks look at
EVERYTHING = ("dashboard.enabled=true", "prometheusRule.enabled=true", "metrics.serviceMonitor.enabled=true",
              "defaultPolicy.enabled=true")


@functools.cache
def helm() -> str:
    bin_dir = subprocess.run(["bash", str(REPO / "hack" / "build-binaries.sh"), "helm"], check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return str(Path(bin_dir) / "helm")


def run_helm(*args: str, kubeconfig: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env_args = ["--kubeconfig", str(kubeconfig)] if kubeconfig else []
    done = subprocess.run([helm(), *args, *env_args], capture_output=True, text=True, check=False, timeout=300)
    if check and done.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def render(namespace: str = "hotfix-ops", *sets: str, release: str = "hfo") -> list[dict[str, Any]]:
    args = ["template", release, str(CHART), "--namespace", namespace]
    for value in sets:
        args += ["--set", value]
    return [d for d in yaml.safe_load_all(run_helm(*args).stdout) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]
