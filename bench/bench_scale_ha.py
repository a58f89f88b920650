"""High availability, measured: two `hotfix-operator run --leader-elect` replicas on the local control plane;
the leader is SIGKILLed mid-cutover (in PrePromotion, or in Promoted once traffic is on green) and the standby
finishes. Per lease length: kill -> the standby holds the Lease -> its Kopf's first request -> its first
write -> Succeeded. From the kube-apiserver's audit log (every request of the operator's service account, at
Metadata level, with the user agent that names the replica): what the standby sent while it stood by (Lease
reads only, no writes), and how often the active Service's selector moved to green (once).

    make bench-scale-ha      (HOTFIX_BENCH_HA_RUNS kills per phase and lease, default 3)
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config

from bench_cutover import APP, approve, bench_policy, hotfix, prepare
from common import REPO, report, s, summarise
from hotfix_operator.core import leadership
from localcluster.cluster import LocalCluster, _die_with_parent, free_port
from localcluster.identities import OPERATOR
from localcluster.signing import LocalSigner

RUNS = int(os.environ.get("HOTFIX_BENCH_HA_RUNS", "3"))
LEASES = (8, 15)
PHASES = ("PrePromotion", "Promoted")
BUDGET_SECONDS = 30.0
LEASE_NAMESPACE = "hotfix-system"
SELECTOR = {"app": "checkout"}
WRITES = {"create", "update", "patch", "delete", "deletecollection"}
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1", "kind": "Policy",
    "rules": [
        {"level": "Request", "verbs": ["update", "patch"], "resources": [{"group": "", "resources": ["services"]}],
         "omitStages": ["RequestReceived", "ResponseStarted"]},
        {"level": "Metadata", "users": [OPERATOR.username], "omitStages": ["RequestReceived"]},
        {"level": "None"}]}
CHECKS = {"prePromotion": [{"name": "pods", "kubernetes": {}, "intervalSeconds": 1, "count": 4}]}


class AuditedCluster(LocalCluster):
    """The local control plane, auditing every request of the operator's service account as well."""

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Any:
        if name == "kube-apiserver" and "--audit-policy-file" in argv:
            policy = self.workdir / "data" / "ha-audit-policy.json"
            policy.write_text(json.dumps(AUDIT_POLICY))
            at = argv.index("--audit-policy-file") + 1
            argv = [*argv[:at], str(policy), *argv[at + 1:]]
        return super()._spawn(name, argv, env)


@dataclass
class Trial:
    lease_seconds: int
    phase: str
    kill_to_lease: float = 0.0
    kill_to_first_request: float = 0.0
    kill_to_first_write: float = 0.0
    kill_to_succeeded: float = 0.0
    standby_requests: Counter[str] = field(default_factory=Counter)
    standby_writes: int = 0
    green_switches: int = 0
    load_1m: float = 0.0


def elected(cluster: LocalCluster, identity: str, lease: str, lease_seconds: int) -> subprocess.Popen[bytes]:
    log = (cluster.workdir / "logs" / f"operator-{identity}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "hotfix_operator.cli", "run", "--kubeconfig", str(cluster.operator_kubeconfig),
         "--registry-ca-file", str(cluster.ca_file), "--metrics-port", str(free_port()),
         "--metrics-address", "127.0.0.1", "--leader-elect", "--identity", identity, "--lease-name", lease,
         "--lease-namespace", LEASE_NAMESPACE, "--lease-seconds", str(lease_seconds)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)


def until(what: str, probe: Any, timeout: float = 120.0, poll: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(poll)
    raise SystemExit(f"timed out waiting for {what}")


class Reader:
    def __init__(self, cluster: LocalCluster) -> None:
        api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        self.leases, self.custom = client.CoordinationV1Api(api), client.CustomObjectsApi(api)

    def holder(self, name: str) -> tuple[str | None, datetime.datetime | None]:
        try:
            spec = self.leases.read_namespaced_lease(name, LEASE_NAMESPACE).spec
        except client.ApiException:
            return None, None
        return (spec.holder_identity, spec.acquire_time) if spec else (None, None)

    def release(self, ns: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object("hotfix.dev", "v1alpha1", ns,
                                                                       "hotfixreleases", "hf")
        return obj


def at_kill_point(reader: Reader, ns: str, phase: str) -> bool:
    status = reader.release(ns).get("status") or {}
    if status.get("phase") in ("Finalizing", "Succeeded", "RolledBack", "Failed"):
        raise SystemExit(f"{ns} passed {phase} before the kill: {status.get('phase')}")
    if status.get("phase") != phase:
        return False
    switched = next((c for c in status.get("conditions", []) if c["type"] == "TrafficSwitched"), {})
    return phase != "Promoted" or switched.get("status") == "True"


def stamp(event: dict[str, Any]) -> datetime.datetime:
    return datetime.datetime.fromisoformat(str(event["requestReceivedTimestamp"]).replace("Z", "+00:00"))


def trial(cluster: LocalCluster, reader: Reader, signer: LocalSigner, lease_seconds: int, phase: str,
          index: int) -> Trial:
    ns = f"ha-{lease_seconds}-{phase.lower()}-{index}"
    image = prepare(cluster, signer, ns, "bench", ns)
    lease, a_id, b_id = f"bench-{ns}", f"{ns}-a", f"{ns}-b"
    a = elected(cluster, a_id, lease, lease_seconds)
    b: subprocess.Popen[bytes] | None = None
    try:
        until("a to lead", lambda: reader.holder(lease)[0] == a_id)
        b = elected(cluster, b_id, lease, lease_seconds)
        b_log = cluster.workdir / "logs" / f"operator-{b_id}.log"
        until("b to stand by", lambda: "standing by" in b_log.read_text(errors="replace"))
        manifest = hotfix(image, bake=4, scale_down=1, checks=CHECKS)
        cluster.kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(manifest), user="alice")
        approve(cluster, ns)
        until(f"{phase} in {ns}", lambda: at_kill_point(reader, ns, phase))
        killed, killed_wall = time.monotonic(), datetime.datetime.now(datetime.UTC)
        a.kill()
        a.wait()
        result = Trial(lease_seconds, phase, load_1m=os.getloadavg()[0])
        until("b to take the Lease", lambda: reader.holder(lease)[0] == b_id, timeout=BUDGET_SECONDS, poll=0.02)
        result.kill_to_lease = time.monotonic() - killed
        until("Succeeded", lambda: (reader.release(ns).get("status") or {}).get("phase") == "Succeeded",
              timeout=BUDGET_SECONDS * 2)
        result.kill_to_succeeded = time.monotonic() - killed
        acquired = reader.holder(lease)[1]
        assert acquired is not None
        read_audit(cluster, result, ns, b_id, killed_wall, acquired, reader.release(ns))
        return result
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=20)
        cluster.kubectl("delete", "namespace", ns, "--wait=false")


def read_audit(cluster: LocalCluster, result: Trial, ns: str, b_id: str, killed: datetime.datetime,
               acquired: datetime.datetime, release: dict[str, Any]) -> None:
    from tests.support.chaos import selector_writes  # once common has put the repository on sys.path

    events = cluster.audit_events()
    agent = f"hotfix-operator ({b_id})"
    ours = [e for e in events if e.get("userAgent") == agent and e.get("stage") != "ResponseStarted"]
    for event in ours:
        if stamp(event) >= acquired:
            continue
        ref = event.get("objectRef") or {}
        result.standby_requests[f"{event.get('verb')} {ref.get('resource')}"] += 1
        result.standby_writes += int(event.get("verb") in WRITES and ref.get("resource") != "leases")
    kopf = [stamp(e) for e in events if str(e.get("userAgent", "")).startswith("kopf/") and stamp(e) > killed]
    result.kill_to_first_request = (min(kopf) - killed).total_seconds() if kopf else float("nan")
    writes = [stamp(e) for e in ours if stamp(e) > killed and e.get("verb") in WRITES
              and (e.get("objectRef") or {}).get("resource") != "leases"]
    result.kill_to_first_write = (min(writes) - killed).total_seconds() if writes else float("nan")
    green = release["status"]["blueGreen"]["greenHash"]
    changes = [w for w in selector_writes(events, ns, "checkout", SELECTOR) if w.changed]
    result.green_switches = sum(1 for w in changes if w.selector.get("pod-template-hash") == green)


def rows_and_results(trials: list[Trial]) -> tuple[list[tuple[str, ...]], dict[str, Any]]:
    rows: list[tuple[str, ...]] = []
    results: dict[str, Any] = {"budgetSeconds": BUDGET_SECONDS, "killPhases": list(PHASES), "byLease": {}}
    measures = (("kill -> standby holds the Lease", "killToLeaseTakenSeconds", "kill_to_lease"),
                ("kill -> its Kopf's first request", "killToNewLeaderFirstRequestSeconds", "kill_to_first_request"),
                ("kill -> its first write", "killToNewLeaderFirstWriteSeconds", "kill_to_first_write"),
                ("kill -> Succeeded", "killToSucceededSeconds", "kill_to_succeeded"))
    for lease in LEASES:
        mine = [t for t in trials if t.lease_seconds == lease]
        entry: dict[str, Any] = {"renewEverySeconds": leadership.renew_period(lease),
                                 "standbyLooksEverySeconds": leadership.retry_period(lease),
                                 "renewDeadlineSeconds": leadership.renew_deadline(lease)}
        for title, key, attr in measures:
            stats = summarise([getattr(t, attr) for t in mine])
            entry[key] = stats
            rows.append((f"lease {lease}s: {title}", str(stats["n"]), s(stats["median"]), s(stats["max"])))
        entry["withinBudget"] = all(t.kill_to_succeeded <= BUDGET_SECONDS for t in mine)
        results["byLease"][f"{lease}s"] = entry
    standby: Counter[str] = Counter()
    for t in trials:
        standby.update(t.standby_requests)
    results["standbyRequestsBeforeTakeover"] = dict(standby)
    results["standbyWritesBeforeTakeover"] = sum(t.standby_writes for t in trials)
    results["greenSwitchesPerHotfix"] = sorted({t.green_switches for t in trials})
    results["trials"] = [{"leaseSeconds": t.lease_seconds, "killedIn": t.phase, "killToLeaseSeconds": t.kill_to_lease,
                          "killToFirstWriteSeconds": t.kill_to_first_write,
                          "killToSucceededSeconds": t.kill_to_succeeded, "loadAverage1m": t.load_1m}
                         for t in trials]
    rows.append(("standby's requests before take-over (all trials)", str(sum(standby.values())),
                 ", ".join(f"{k}: {v}" for k, v in sorted(standby.items())), ""))
    rows.append(("standby's writes before take-over", str(results["standbyWritesBeforeTakeover"]), "", ""))
    rows.append(("selector moves to green per hotfix", str(results["greenSwitchesPerHotfix"]), "", ""))
    return rows, results


def main() -> None:
    trials: list[Trial] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, AuditedCluster(Path(tmp)) as cluster:
        cluster.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
        cluster.kubectl("wait", "--for", "condition=Established", "crd", "--all", "--timeout=30s")
        cluster.kubectl("apply", "-f", str(REPO / "charts" / "hotfix-operator" / "templates" / "role.yaml"))
        signer = LocalSigner.load_or_create(cluster.workdir / "signing" / "release.key")
        policy = bench_policy(signer, "bench", registry_host=cluster.registry_host)
        cluster.kubectl("apply", "-f", "-", stdin=json.dumps(policy))
        reader = Reader(cluster)
        for lease in LEASES:
            for phase in PHASES:
                for index in range(RUNS):
                    done = trial(cluster, reader, signer, lease, phase, index)
                    print(f"  lease {lease}s, killed in {phase}: Lease taken {done.kill_to_lease:.1f}s, first "
                          f"write {done.kill_to_first_write:.1f}s, Succeeded {done.kill_to_succeeded:.1f}s after "
                          f"the kill; green switches {done.green_switches}; load {done.load_1m:.1f}", flush=True)
                    trials.append(done)
    rows, results = rows_and_results(trials)
    results["loadAverage"] = {"before": list(load_before), "after": list(os.getloadavg()), "cores": os.cpu_count()}
    results["app"] = str(APP.relative_to(REPO))
    report("scale-ha", f"High availability: SIGKILL the leader mid-cutover, {RUNS} per phase and lease",
           rows, ("measure", "n", "median", "max"), results, packages=("kopf", "kubernetes"))
    if results["standbyWritesBeforeTakeover"] or results["greenSwitchesPerHotfix"] != [1] or not all(
            entry["withinBudget"] for entry in results["byLease"].values()):
        raise SystemExit("high availability target missed: see the table")


if __name__ == "__main__":
    main()
