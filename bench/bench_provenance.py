"""The provenance gate's cost per image: registry round trips, wall time and CPU time of discovery plus
verification, cold (a new registry client: new connection and TLS handshake) and cached (one client
reused), for a key-signed legacy attestation and for real keyless provenance from public CI; and the
verification alone (bytes already fetched). Targets: < 150 ms CPU per verification, <= 5 requests.

    make bench-provenance       (HOTFIX_BENCH_RUNS=20 by default)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import REPO, ms, report, summarise
from hotfix_operator.adapters.discovery import discover
from hotfix_operator.adapters.policies import resolve_policy
from hotfix_operator.adapters.registry import ImageReference, RegistryClient
from hotfix_operator.provenance import ReleaseRequest, verify_provenance
from localcluster.cluster import LocalCluster
from localcluster.oci import Pusher
from localcluster.signing import LOCAL_BUILDER, LocalSigner, slsa_v1_statement

RUNS = int(os.environ.get("HOTFIX_BENCH_RUNS", "20"))
VECTORS = REPO / "tests" / "data" / "vectors"
COMMIT = "a8b1963c1f0e2d3b4a5968776655443322110099"
SOURCE = "github.com/acme/checkout"
GENERATOR = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml"


def measure(runs: int, work: Callable[[], int]) -> dict[str, dict[str, float]]:
    walls, cpus, requests = [], [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        count = work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        requests.append(float(count))
    return {"wallSeconds": summarise(walls), "cpuSeconds": summarise(cpus), "requests": summarise(requests)}


def command_times(tmp: Path, image: str, public_pem: str, ca: str, runs: int = 5) -> dict[str, dict[str, float]]:
    """Wall time of the command a person or a CI job runs: --help, and a whole verify (new process each)."""
    policy = tmp / "policy.json"
    policy.write_text(json.dumps({"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixPolicy",
                                  "metadata": {"name": "bench"}, "spec": {"namespaceSelector": {}, "provenance": {
                                      "trustedKeys": [{"name": "bench", "publicKey": public_pem}],
                                      "requireTransparencyLog": False, "allowedBuilders": [LOCAL_BUILDER],
                                      "allowedSourceRepositories": [SOURCE],
                                      "images": [{"glob": f"{image.split('/')[0]}/bench/**"}]},
                                      "registry": {"loopbackHosts": [image.split("/")[0]]}}}))
    command = [sys.executable, "-m", "hotfix_operator.cli", "verify"]
    full = [*command, image, "--commit", COMMIT, "--source-repo", SOURCE, "--policy", str(policy),
            "--registry-ca-file", ca]
    times: dict[str, dict[str, float]] = {}
    for what, argv in (("--help", [*command, "--help"]), ("(key-signed image)", full)):
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True, timeout=60)
            samples.append(time.perf_counter() - started)
        times[what] = summarise(samples)
    return times


def main() -> None:
    results: dict[str, object] = {}
    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory() as tmp, LocalCluster(Path(tmp)) as cluster:
        ca = str(cluster.ca_file)
        signer = LocalSigner.load_or_create(Path(tmp) / "release.key")
        with Pusher(cluster.registry_host, ca) as pusher:
            image = pusher.push_image("bench/app", "v1", {"app": b"bench"})
            signer.attest(pusher, image.repository, image.digest,
                          slsa_v1_statement(f"{image.registry}/{image.repository}", image.digest, SOURCE, COMMIT))
            vector = VECTORS / "slsa-github-generator" / "container-v2.0.0"
            pusher.push_layout(vector / "oci-layout", "bench/example-package")
        vector_ref = f"{cluster.registry_host}/bench/example-package@{(vector / 'image.digest').read_text().strip()}"
        key_policy = resolve_policy({"metadata": {"name": "bench"}, "spec": {"provenance": {
            "trustedKeys": [{"name": "bench", "publicKey": signer.public_pem}], "requireTransparencyLog": False,
            "allowedBuilders": [LOCAL_BUILDER], "allowedSourceRepositories": [SOURCE]}}}, lambda *_: "")
        root = (VECTORS / "trust" / "sigstore-production-trusted_root.json").read_text()
        keyless_policy = resolve_policy({"metadata": {"name": "bench"}, "spec": {"provenance": {
            "keylessIdentities": [{"issuer": {"exact": "https://token.actions.githubusercontent.com"},
                                   "subject": {"regex": GENERATOR.replace(".", r"\.") + "@refs/tags/.*"}}],
            "trustedRoot": {"configMapKeyRef": {"name": "root", "key": "root"}},
            "allowedBuilders": [GENERATOR],
            "allowedSourceRepositories": ["github.com/slsa-framework/example-package"]}}}, lambda *_: root)
        cases = [("key-signed legacy .att (SLSA v1)", image.reference, COMMIT, SOURCE, key_policy),
                 ("keyless legacy .att from public CI (SLSA v0.2, Fulcio + Rekor SET)", vector_ref,
                  "693130cb6cb840a7bc9cb18c6510d536a95dc7e6", "github.com/slsa-framework/example-package",
                  keyless_policy)]
        for label, ref, commit, source, policy in cases:
            reference = ImageReference.parse(ref)
            request = ReleaseRequest(image=ref, commit_sha=commit, source_repository=source)

            def cold(reference: ImageReference = reference, request: ReleaseRequest = request,
                     policy: object = policy) -> int:
                with RegistryClient(ca_file=ca) as client:
                    material = discover(client, reference)
                    assert verify_provenance(material, request, policy.provenance).ok  # type: ignore[attr-defined]
                    return client.request_count

            shared = RegistryClient(ca_file=ca)

            def cached(reference: ImageReference = reference, request: ReleaseRequest = request,
                       policy: object = policy, client: RegistryClient = shared) -> int:
                before = client.request_count
                material = discover(client, reference)
                assert verify_provenance(material, request, policy.provenance).ok  # type: ignore[attr-defined]
                return client.request_count - before

            material = discover(shared, reference)

            def verify_only(material: object = material, request: ReleaseRequest = request,
                            policy: object = policy) -> int:
                assert verify_provenance(material, request, policy.provenance).ok  # type: ignore[arg-type,attr-defined]
                return 0

            case = {"cold": measure(RUNS, cold), "cached": measure(RUNS, cached),
                    "verifyOnly": measure(RUNS, verify_only)}
            shared.close()
            results[label] = case
            for mode in ("cold", "cached", "verifyOnly"):
                m = case[mode]
                rows.append((label if mode == "cold" else "", mode, f"{m['requests']['median']:.0f}",
                             ms(m["wallSeconds"]["median"]), ms(m["cpuSeconds"]["median"]),
                             ms(m["cpuSeconds"]["p90"])))
        results["command"] = command_times(Path(tmp), image.reference, signer.public_pem, ca)
        for what, m in results["command"].items():  # type: ignore[union-attr]
            rows.append((f"hotfix-operator verify {what}", "process", "-", ms(m["median"]), "-", "-"))
    report("provenance", f"provenance gate per image ({RUNS} runs each; loopback TLS registry)", rows,
           ("image", "mode", "requests", "wall median", "CPU median", "CPU p90"), results,
           packages=("sigstore", "cryptography", "httpx"))


if __name__ == "__main__":
    main()
