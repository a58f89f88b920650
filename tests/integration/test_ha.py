"""High availability and sharding on the real control plane.

- Candidates racing for one Lease through the real API server: of those that read the same version and
  write at once, exactly one wins (409 for the others), for the create and for a take-over.
- Two `hotfix-operator run --leader-elect` processes on one Lease: only the holder acts (every write to the
  Service, by the kube-apiserver's audit log, carries the holder's user agent; the standby's gauge reads 0).
  SIGKILL the holder mid-cutover: the standby takes the Lease once it expires and the hotfix reaches
  Succeeded within 30 s of the kill; the active Service's selector moved to green exactly once (audit log),
  and its EndpointSlices never listed zero ready endpoints.
- Sharding: two elected operators on disjoint namespaces, each with its own Lease (the default per set of
  namespaces), each completes only its own namespace's hotfix; its Kopf watches are all in its namespace.

The session's cluster-wide operator is stopped first (it would act on these namespaces too); later tests
start it again through `running_operator`.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from hotfix_operator.core import leadership
from hotfix_operator.core.leadership import Claim, Move
from hotfix_operator.leader import EXIT_LEASE_LOST, Elector, LeaseLock
from localcluster.cluster import LocalCluster
from localcluster.oci import PushedImage
from tests.integration.conftest import (
    POLICY_LABEL,
    QUICKSTART,
    FileHotfix,
    OperatorProcess,
    approve,
)
from tests.kube import Kube, wait_for
from tests.support.chaos import recorded_moves, selector_writes
from tests.support.cutover import APP, assert_original_shape, condition, pods_by_hash
from tests.support.elected import (
    LEASE_NAMESPACE,
    LEASE_SECONDS,
    ElectedOperator,
    audit_time,
    holder,
    lease_of,
    service_writes,
)
from tests.support.traffic import EndpointSampler

pytestmark = pytest.mark.timeout(420)
TAKEOVER_BUDGET = 30.0
NAME = "checkout-hotfix"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def quiet_cluster(cluster: LocalCluster, operator: OperatorProcess) -> LocalCluster:
    """No other operator acts while these tests run, and the operator's Role allows its Lease."""
    operator.stop()
    cluster.kubectl("apply", "-f", str(REPO / "charts" / "hotfix-operator" / "templates" / "role.yaml"))
    return cluster


@pytest.fixture
def elected(quiet_cluster: LocalCluster) -> Iterator[Callable[..., ElectedOperator]]:
    started: list[ElectedOperator] = []

    def start(identity: str, lease: str | None, namespaces: tuple[str, ...] = (),
              verbose: bool = False) -> ElectedOperator:
        proc = ElectedOperator(quiet_cluster, f"{identity}-{uuid.uuid4().hex[:4]}", lease, namespaces, verbose)
        proc.start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def quickstart_namespace(kube: Kube, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:5]}"
    kube.kubectl("create", "namespace", name)
    kube.kubectl("label", "namespace", name, f"{POLICY_LABEL}=test")
    wait_for("default service account",
             lambda: kube.kubectl("get", "sa", "default", "-n", name, check=False).startswith("NAME"))
    kube.apply(QUICKSTART, name)
    wait_for("quickstart rolled out with 3 endpoints", lambda: (
        (kube.apps.read_namespaced_deployment("checkout", name).status.available_replicas or 0) == 3
        and len(kube.endpoint_ips(name, "checkout")) == 3))
    return name


@pytest.fixture
def namespaces(kube: Kube) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for name in made:
        kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


# -- the Lease itself: never two holders ---------------------------------------------------------------------


class RacingLock(LeaseLock):
    """A LeaseLock whose writes wait for every racer to have read and decided, so they land at once."""

    def __init__(self, api: client.ApiClient, name: str, barrier: threading.Barrier) -> None:
        super().__init__(api, LEASE_NAMESPACE, name, timeout=10)
        self.barrier = barrier

    def write(self, claim: Claim) -> str | None:
        self.barrier.wait(timeout=20)
        return super().write(claim)


def race(electors: list[Elector]) -> list[Claim | None]:
    results: list[Claim | None] = [None] * len(electors)

    def run(i: int) -> None:
        results[i] = electors[i].try_once()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(electors))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_of_candidates_writing_at_once_exactly_one_holds_the_lease(quiet_cluster: LocalCluster, kube: Kube) -> None:
    from kubernetes import config

    name, seconds = f"race-{uuid.uuid4().hex[:6]}", 3
    api = config.new_client_from_config(config_file=str(quiet_cluster.operator_kubeconfig))  # the operator's RBAC
    fences: list[str] = []
    first = threading.Barrier(4)
    electors = [Elector(RacingLock(api, name, first), f"cand-{i}", seconds, fence=fences.append) for i in range(4)]
    created = race(electors)
    winners = [i for i, c in enumerate(created) if c is not None]
    assert len(winners) == 1 and created[winners[0]].move is Move.CREATE, created  # type: ignore[union-attr]
    leader = electors[winners[0]]
    assert holder(kube, name) == leader.identity
    others = [e for e in electors if e is not leader]
    # the others see the Lease held and not expired; then the leader falls silent, and they race to take it
    for elector in others:
        elector.lock = LeaseLock(api, LEASE_NAMESPACE, name, timeout=10)
        claim = elector.try_once()
        assert claim is not None and claim.move is Move.WAIT and claim.holder == leader.identity
    time.sleep(seconds + 0.3)
    second = threading.Barrier(3)
    for elector in others:
        elector.lock = RacingLock(api, name, second)
    taken = race(others)
    takers = [others[i] for i, c in enumerate(taken) if c is not None]
    assert len(takers) == 1 and [c.move for c in taken if c] == [Move.TAKE], taken
    lease = lease_of(kube, name)
    assert lease is not None and lease.spec is not None
    assert (lease.spec.holder_identity, lease.spec.lease_transitions) == (takers[0].identity, 1)
    # the old leader's next look finds another holder: it does not renew
    leader.lock = LeaseLock(api, LEASE_NAMESPACE, name, timeout=10)
    again = leader.try_once()
    assert again is not None and again.move is Move.WAIT and again.holder == takers[0].identity
    client.CoordinationV1Api(kube.api).delete_namespaced_lease(name, LEASE_NAMESPACE)


# -- two replicas: one acts, the other takes over -------------------------------------------------------------


def checks_that_hold_pre_promotion() -> dict[str, Any]:
    # green's pods measured four times a second apart: PrePromotion lasts a few seconds, long enough to kill in
    return {"prePromotion": [{"name": "pods", "kubernetes": {}, "intervalSeconds": 1, "count": 4}]}


def reached(kube: Kube, namespace: str, phase: str) -> dict[str, Any] | None:
    obj = kube.release(namespace, NAME)
    status = obj.get("status") or {}
    if status.get("phase") in ("RolledBack", "Failed", "Succeeded", "Finalizing"):
        raise AssertionError(f"reached {status.get('phase')} before the kill in {phase}: {status.get('message')}")
    if status.get("phase") != phase:
        return None
    if phase == "Promoted" and condition(obj, "TrafficSwitched").get("status") != "True":
        return None  # kill once green is seen serving: the switch is behind us and must not happen again
    return obj


@pytest.mark.parametrize("kill_in", ["PrePromotion", "Promoted"])
def test_only_the_leader_acts_and_the_standby_finishes_when_it_is_killed(
    kube: Kube, cluster: LocalCluster, elected: Callable[..., ElectedOperator], namespaces: list[str],
    file_hotfix: FileHotfix, hotfix_image: PushedImage, kill_in: str,
) -> None:
    ns = quickstart_namespace(kube, "ha")
    namespaces.append(ns)
    lease = f"ha-{uuid.uuid4().hex[:6]}"
    a = elected("ha-a", lease)
    wait_for("a to lead", lambda: holder(kube, lease) == a.identity, timeout=60)
    b = elected("ha-b", lease)
    wait_for("b to stand by", lambda: "standing by" in b.log() and b.leader_gauge() == 0.0, timeout=60)
    wait_for("a's gauge", lambda: a.leader_gauge() == 1.0, timeout=30)
    assert b.healthz() == (200, "standby\n")  # Ready to take over
    blue_hash = next(iter(pods_by_hash(kube, ns)))

    with EndpointSampler(cluster.kubeconfig, ns, "checkout", NAME) as sampler:
        file_hotfix(ns, rollout={"bakeSeconds": 4, "scaleDownDelaySeconds": 1},
                    checks=checks_that_hold_pre_promotion())
        kube.wait_phase(ns, NAME, "AwaitingApproval", timeout=60)
        approve(kube, ns, NAME)
        wait_for(f"{kill_in} to kill the leader in", lambda: reached(kube, ns, kill_in), timeout=90, interval=0.1)
        killed_at, killed_wall = time.monotonic(), datetime.datetime.now(datetime.UTC)
        a.kill()
        assert b.leader_gauge() == 0.0 and holder(kube, lease) == a.identity  # b has not acted yet
        wait_for("b to take the Lease", lambda: holder(kube, lease) == b.identity, timeout=TAKEOVER_BUDGET,
                 interval=0.1)
        led_at = time.monotonic()
        final = kube.wait_phase(ns, NAME, "Succeeded", "RolledBack", "Failed",
                                timeout=TAKEOVER_BUDGET - (led_at - killed_at) + 15)
        done_at = time.monotonic()
    status = final["status"]
    assert status["phase"] == "Succeeded", status.get("message")
    took = done_at - killed_at
    writes = service_writes(cluster, ns)
    b_writes = [e for e in writes if e.get("userAgent") == b.user_agent]
    first_b = min((audit_time(e) for e in b_writes), default=None)
    print(f"\n[ha] killed in {kill_in}: Lease taken over {led_at - killed_at:.1f}s after the kill, "
          f"first Service write by the new leader "
          f"{(first_b - killed_wall).total_seconds() if first_b else float('nan'):.1f}s, Succeeded "
          f"{took:.1f}s after the kill (lease {LEASE_SECONDS}s); {sampler.summary()}", flush=True)
    assert took <= TAKEOVER_BUDGET, f"Succeeded {took:.1f}s after the kill"

    # only the holder ever wrote: a's writes all before the kill, b's all after it took the Lease
    by_agent = {e.get("userAgent") for e in writes}
    assert by_agent <= {a.user_agent, b.user_agent}, by_agent
    assert all(audit_time(e) < killed_wall for e in writes if e.get("userAgent") == a.user_agent)
    held = lease_of(kube, lease)
    assert held is not None and held.spec is not None and held.spec.acquire_time is not None
    assert all(audit_time(e) >= held.spec.acquire_time for e in b_writes), (held.spec.acquire_time, b_writes)
    assert held.spec.lease_transitions == 1
    assert f"took it over from {a.identity}" in b.log()
    code, body = b.healthz()
    assert code == 200 and body != "standby\n", body  # Kopf's liveness endpoint, on the same port
    assert b.leader_gauge() == 1.0

    # exactly one switch to green, and the selector's changes are the ones status.audit accounts for
    changes = [w for w in selector_writes(cluster.audit_events(), ns, "checkout", APP) if w.changed]
    green_hash = status["blueGreen"]["greenHash"]
    assert green_hash and green_hash != blue_hash
    green = [w for w in changes if w.selector.get("pod-template-hash") == green_hash]
    assert len(green) == 1, changes
    moves = recorded_moves(status["audit"])
    assert len(changes) == moves.total, (changes, moves)
    assert changes[-1].selector == APP
    sampler.assert_never_dark(min_hz=5.0)  # two cores shared with the control plane and two operators
    assert_original_shape(kube, ns, hotfix_image.reference)


def test_a_leader_stopped_cleanly_releases_the_lease_and_the_standby_takes_it_at_once(
    kube: Kube, elected: Callable[..., ElectedOperator],
) -> None:
    lease = f"ha-{uuid.uuid4().hex[:6]}"
    a = elected("ha-a", lease)
    wait_for("a to lead", lambda: holder(kube, lease) == a.identity, timeout=60)
    b = elected("ha-b", lease)
    wait_for("b to stand by", lambda: "standing by" in b.log(), timeout=60)
    stopped = time.monotonic()
    a.stop()  # SIGTERM: Kopf stops, then the Lease is released
    assert a.popen is not None and a.popen.returncode == 0, a.log_tail()
    wait_for("b to take the released Lease", lambda: holder(kube, lease) == b.identity, timeout=LEASE_SECONDS,
             interval=0.1)
    print(f"\n[ha] released Lease taken {time.monotonic() - stopped:.1f}s after SIGTERM", flush=True)
    assert "took it over from nobody (released)" in b.log()
    # a standby stopped has nothing to finish or release
    c = elected("ha-c", lease)
    wait_for("c to stand by", lambda: "standing by" in c.log(), timeout=60)
    c.stop()
    assert c.popen is not None and c.popen.returncode == 0, c.log_tail()
    assert "SIGTERM while standing by: exiting" in c.log() and "released" not in c.log()
    assert holder(kube, lease) == b.identity


def test_a_leader_that_cannot_renew_stops_at_once(
    kube: Kube, cluster: LocalCluster, elected: Callable[..., ElectedOperator],
) -> None:
    """Fencing: take the Lease away from a running leader (as a partition would leave it); it exits with
    EXIT_LEASE_LOST at its next renewal instead of acting on."""
    lease = f"ha-{uuid.uuid4().hex[:6]}"
    a = elected("ha-a", lease)
    wait_for("a to lead", lambda: holder(kube, lease) == a.identity, timeout=60)
    patch = {"spec": {"holderIdentity": "someone-else", "renewTime": datetime.datetime.now(datetime.UTC)
                      .strftime("%Y-%m-%dT%H:%M:%S.%fZ")}}
    client.CoordinationV1Api(kube.api).patch_namespaced_lease(lease, LEASE_NAMESPACE, patch)
    assert a.popen is not None
    code = a.popen.wait(timeout=leadership.renew_period(LEASE_SECONDS) + 5)
    assert code == EXIT_LEASE_LOST, a.log_tail()
    assert "stopping at once" in a.log()


@pytest.mark.unit
@pytest.mark.parametrize(("args", "message"), [
    (["--lease-seconds", "2"], "--lease-seconds 2 is too short: at least 3"),
    (["--lease-name", "Shard_A"], "--lease-name 'Shard_A' is not a valid object name"),
    (["--identity", " "], "--identity is empty: give each replica a name of its own"),
])
def test_bad_election_settings_are_refused_before_anything_starts(args: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "hotfix_operator.cli", "run", "--kubeconfig", "/nonexistent",
                           "--metrics-port", "0", "--leader-elect", *args], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    assert message in done.stderr


def watched_plural(line: str) -> str:
    """The resource of Kopf's 'Starting the watch-stream for <plural>.<version>[.<group>] ...' line."""
    return line.split("Starting the watch-stream for ", 1)[1].split(".", 1)[0]


# -- sharding ---------------------------------------------------------------------------------------------------


def test_two_shards_on_disjoint_namespaces_each_complete_only_their_own(
    kube: Kube, cluster: LocalCluster, elected: Callable[..., ElectedOperator], namespaces: list[str],
    file_hotfix: FileHotfix, hotfix_image: PushedImage,
) -> None:
    cluster_scoped = {name.split(".")[0] for name in kube.kubectl("api-resources", "--namespaced=false", "-o",
                                                                  "name").split()}
    ns_a, ns_b = quickstart_namespace(kube, "shard-a"), quickstart_namespace(kube, "shard-b")
    namespaces += [ns_a, ns_b]
    a = elected("shard-a", None, (ns_a,), verbose=True)  # the default Lease: one per set of namespaces
    b = elected("shard-b", None, (ns_b,), verbose=True)
    lease_a, lease_b = leadership.default_lease_name([ns_a]), leadership.default_lease_name([ns_b])
    wait_for("each shard to lead its own Lease",
             lambda: holder(kube, lease_a) == a.identity and holder(kube, lease_b) == b.identity, timeout=60)
    for ns in (ns_a, ns_b):
        file_hotfix(ns, rollout={"bakeSeconds": 1, "scaleDownDelaySeconds": 1})
    for ns in (ns_a, ns_b):
        kube.wait_phase(ns, NAME, "AwaitingApproval", timeout=60)
        approve(kube, ns, NAME)
    for ns in (ns_a, ns_b):
        assert kube.wait_phase(ns, NAME, "Succeeded", "RolledBack", "Failed", timeout=120)["status"]["phase"] == \
            "Succeeded"
        assert_original_shape(kube, ns, hotfix_image.reference)
    for ns, mine, other in ((ns_a, a, b), (ns_b, b, a)):
        agents = {e.get("userAgent") for e in service_writes(cluster, ns)}
        assert agents == {mine.user_agent}, (ns, agents)
        assert ns not in other.log().replace(f"namespace={ns}", "")  # never watched, never reconciled
    for proc, ns in ((a, ns_a), (b, ns_b)):
        streams = [line for line in proc.log().splitlines() if "Starting the watch-stream for" in line]
        kinds = {"hotfixreleases", "deployments", "endpointslices"}
        for kind in kinds:
            assert any(kind in line and f"in '{ns}'" in line for line in streams), (kind, streams)
        # every watch is in the shard's namespace, but those of cluster-scoped resources (CRDs, namespaces,
        # HotfixPolicies), which have no namespace to restrict them to
        stray = [line for line in streams if f"in '{ns}'" not in line
                 and not (line.endswith(" cluster-wide.") and watched_plural(line) in cluster_scoped)]
        assert not stray, stray
    print(f"\n[ha] shards: {json.dumps({ns_a: a.identity, ns_b: b.identity})}", flush=True)
