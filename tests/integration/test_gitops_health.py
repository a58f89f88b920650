"""What GitOps tools see: Flux's kstatus (the real library, through hack/kstatus) and the Argo CD
health check shipped in the chart (run with Lua through lupa) on real HotfixReleases in each phase."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import lupa  # type: ignore[import-untyped]
import pytest

from tests.integration.conftest import FileHotfix, OperatorProcess, approve
from tests.kube import Kube

REPO = Path(__file__).resolve().parents[2]
LUA = (REPO / "charts" / "hotfix-operator" / "files" / "argocd-health.lua").read_text()


@pytest.fixture(scope="module")
def kstatus() -> Path:
    built = subprocess.run(["bash", str(REPO / "hack" / "build-binaries.sh"), "kstatus"], check=True,
                           capture_output=True, text=True, timeout=600).stdout.strip().splitlines()[-1]
    return Path(built) / "kstatus"


def flux_status(binary: Path, objects: list[dict[str, Any]]) -> list[str]:
    out = subprocess.run([str(binary)], input=json.dumps(objects), check=True, capture_output=True, text=True)
    return [json.loads(line)["status"] for line in out.stdout.splitlines()]


def argo_health(obj: dict[str, Any]) -> str:
    """The check as Argo CD runs it: the script's body with `obj` bound to the live object."""
    runtime = lupa.LuaRuntime(unpack_returned_tuples=True)
    check = runtime.eval(f"function(obj)\n{LUA}\nend")
    return str(check(runtime.table_from(_lua_ready(obj), recursive=True))["status"])


def _lua_ready(value: Any) -> Any:
    """Lua has no JSON null: drop None, as Argo CD's own decoding does."""
    if isinstance(value, dict):
        return {k: _lua_ready(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_lua_ready(v) for v in value]
    return value


def test_each_phase_reads_as_flux_and_argo_cd_should_report_it(
    kube: Kube, quickstart: str, file_hotfix: FileHotfix, running_operator: OperatorProcess, kstatus: Path
) -> None:
    ns = quickstart
    file_hotfix(ns, name="good", rollout={"progressDeadlineSeconds": 30, "bakeSeconds": 8, "scaleDownDelaySeconds": 1})
    file_hotfix(ns, name="refused", version="4.1.2-hotfix.2")
    seen = {"AwaitingApproval": kube.wait_phase(ns, "good", "AwaitingApproval")}
    seen["Queued"] = kube.wait_phase(ns, "refused", "Queued")
    approve(kube, ns, "good")
    seen["Promoted"] = kube.wait_phase(ns, "good", "Promoted")
    seen["Succeeded"] = kube.wait_phase(ns, "good", "Succeeded", timeout=90)
    kube.wait_phase(ns, "refused", "AwaitingApproval")
    approve(kube, ns, "refused", decision="Reject")
    seen["Rejected"] = kube.wait_phase(ns, "refused", "Rejected")
    phases = list(seen)
    flux = dict(zip(phases, flux_status(kstatus, list(seen.values())), strict=True))
    assert flux == {"AwaitingApproval": "InProgress", "Queued": "InProgress", "Promoted": "InProgress",
                    "Succeeded": "Current", "Rejected": "Failed"}
    argo = {phase: argo_health(obj) for phase, obj in seen.items()}
    assert argo == {"AwaitingApproval": "Suspended", "Queued": "Suspended", "Promoted": "Progressing",
                    "Succeeded": "Healthy", "Rejected": "Degraded"}


def test_argo_cd_never_calls_a_change_the_operator_has_not_seen_healthy() -> None:
    stale = {"metadata": {"generation": 3}, "status": {"phase": "Succeeded", "observedGeneration": 2}}
    assert argo_health(stale) == "Progressing"
    assert argo_health({"metadata": {"generation": 1}}) == "Progressing"
