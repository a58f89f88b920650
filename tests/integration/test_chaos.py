"""Chaos (issue 13, item 4): twenty hotfixes with health checks, five at a time, each in its own namespace
with the quickstart app, while the operator is SIGKILLed at random moments (and started again at once) and
the kube-apiserver is restarted once. Five of each: checks pass (Succeeded), a pre-promotion check fails
(RolledBack, traffic never left blue), a post-promotion check fails (RolledBack after the switch), and bob
aborts while the release is in PrePromotion or Promoted (RolledBack).

Afterwards every release has the outcome its scenario calls for; each active Service's selector changed,
by the kube-apiserver's audit log, exactly as often (and to the same pod-template-hashes) as the release's
status.audit accounts for; no green Deployment is left; and no active Service was ever seen with zero ready
endpoints (all namespaces' slices sampled at 10 Hz from one thread).

status.audit accounts for the selector writes this way (tests.support.chaos.recorded_moves): PinnedBlue is
the pin to blue; each TrafficSwitched is a move to another side, written when the EndpointSlices confirm it
rather than when the selector is written; a SelectorUnrecorded entry stands for a move status missed (a
switch written ahead of a status write that a kill stopped) and for the one its reconcile made; the
restoration of the original selector has no entry of its own, and the terminal entry (Succeeded,
RolledBack), written only after it, stands for it. A write that leaves the selector as it was (the
operator sometimes sends the same selector twice in one reconcile) is printed but not counted.

The operator and the kube-apiserver are killed and started from the test's own thread: their processes are
bound to the thread that forks them (PR_SET_PDEATHSIG), which must outlive the test. The scenarios run in
worker threads. Run it alone with `pytest tests/integration/test_chaos.py -s` (or `-m chaos`); the seed is
printed, and CHAOS_SEED=<seed> replays the same order, kill intervals and restart point."""

from __future__ import annotations

import collections
import concurrent.futures
import json
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from hotfix_operator.api import AUDIT_LIMIT
from localcluster.cluster import LocalCluster
from localcluster.oci import PushedImage
from tests.integration.conftest import QUICKSTART, OperatorProcess, approval, hotfix_manifest, whoami
from tests.kube import Kube
from tests.support.chaos import SliceSampler, eventually, recorded_moves, selector_writes
from tests.support.check_targets import CheckTargets, serving
from tests.support.cutover import APP, condition

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]

NAME = "checkout-hotfix"
POLICY = "chaos"
POLICY_LABEL = "hotfix.dev/policy"
SCENARIOS = ("passes", "fails-pre", "fails-post", "aborted")
PER_SCENARIO = int(os.environ.get("CHAOS_PER_SCENARIO") or 5)  # 5 in every real run; fewer to debug
AT_ONCE = 5
MIN_KILLS = 10
# seconds between two kills, drawn uniformly: often until MIN_KILLS are in (so they land while the hotfixes
# run, however fast they are), then less often, so the operator has time to finish the work between kills
KILL_EVERY = (1.0, 4.0)
KILL_EVERY_AFTER = (3.0, 8.0)
TERMINAL = ("Succeeded", "RolledBack", "Failed", "Rejected", "Expired")
BEFORE_APPROVAL = (None, "Pending", "Verifying", "Queued")
# generous: the operator is down for a few seconds after every kill, and everything waits while the API
# server restarts
ROLLOUT = {"progressDeadlineSeconds": 240, "bakeSeconds": 2, "scaleDownDelaySeconds": 1}
RUN_TIMEOUT = 330.0


@dataclass
class Run:
    index: int
    scenario: str
    namespace: str
    abort_in: str | None = None  # for "aborted": the phase bob aborts in
    abort_after: float = 0.0  # seconds bob waits in that phase before he aborts
    aborted_in: str | None = None  # the phase seen just before the abort was sent
    final: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    took: float = 0.0


@pytest.fixture(scope="module")
def targets() -> Iterator[CheckTargets]:
    with serving() as server:
        yield server


@pytest.fixture(scope="module")
def chaos_policy(kube: Kube, test_policy: str, targets: CheckTargets) -> Iterator[str]:
    """The HotfixPolicy of namespaces labelled policy=chaos: the session's test policy (its provenance and
    registry rules, read back from the cluster) for other namespaces, with the loopback check server
    allowed explicitly."""
    base: dict[str, Any] = kube.custom.get_cluster_custom_object("hotfix.dev", "v1alpha1", "hotfixpolicies",
                                                                 test_policy)  # type: ignore[assignment]
    spec = {**base["spec"], "namespaceSelector": {"matchLabels": {POLICY_LABEL: POLICY}},
            "checks": {**(base["spec"].get("checks") or {}), "allowedHosts": [f"127.0.0.1:{targets.port}"]}}
    policy = {"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixPolicy", "metadata": {"name": POLICY},
              "spec": spec}
    kube.apply(policy, "default")
    yield POLICY
    kube.kubectl("delete", "hotfixpolicy", POLICY, "--wait=false", check=False)


def plan(seed: int) -> list[Run]:
    runs: list[Run] = []
    tag = uuid.uuid4().hex[:4]
    for scenario in SCENARIOS:
        for i in range(PER_SCENARIO):
            abort_in = ("PrePromotion" if i % 2 == 0 else "Promoted") if scenario == "aborted" else None
            runs.append(Run(len(runs), scenario, f"chaos-{tag}-{scenario}-{i}", abort_in))
    rng = random.Random(seed)
    for run in runs:
        run.abort_after = rng.uniform(2.0, 8.0) if run.abort_in else 0.0
    rng.shuffle(runs)  # the order they are filed in, so each batch mixes scenarios
    return runs


@pytest.fixture
def runs(kube: Kube, chaos_policy: str, seed: int) -> Iterator[list[Run]]:
    """A namespace per run, labelled for the chaos policy, with the quickstart rolled out (3 endpoints)."""
    planned = plan(seed)

    def prepare(run: Run) -> None:
        namespace = {"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": run.namespace, "labels": {POLICY_LABEL: POLICY}}}
        kube.apply(namespace, "default")
        eventually("the default service account", lambda: kube.core.read_namespaced_service_account(
            "default", run.namespace), timeout=60)
        kube.apply(QUICKSTART, run.namespace)

    def rolled_out(run: Run) -> bool:
        dep = kube.apps.read_namespaced_deployment("checkout", run.namespace)
        available = dep.status.available_replicas if dep.status else 0
        return (available or 0) == 3 and len(kube.endpoint_ips(run.namespace, "checkout")) == 3

    with concurrent.futures.ThreadPoolExecutor(AT_ONCE) as pool:
        list(pool.map(prepare, planned))
    eventually("every quickstart rolled out", lambda: all(rolled_out(run) for run in planned), timeout=120)
    yield planned
    for run in planned:
        kube.kubectl("delete", "namespace", run.namespace, "--wait=false", check=False)


@pytest.fixture
def seed() -> int:
    value = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(2**32))
    print(f"\n[chaos] seed {value} (CHAOS_SEED={value} replays it)", flush=True)
    return value


def http_check(name: str, url: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "http": {"url": url}, "intervalSeconds": 1, **fields}


def script(run: Run, targets: CheckTargets) -> dict[str, Any]:
    """Script the loopback server under /<namespace>/ and return the release's checks and rollout. Each
    scenario takes tens of seconds, so the kills land in every phase."""
    ns, base = run.namespace, targets.base
    health = http_check("health", f"{base}/{ns}/health?hash={{{{ greenPodHash }}}}", count=3)
    soak = http_check("soak", f"{base}/{ns}/soak", count=3)
    ok: tuple[int, str] = (200, '{"status": "ok"}')
    targets.script(f"{ns}/health", ok)
    targets.script(f"{ns}/soak", ok)
    rollout = {**ROLLOUT, "bakeSeconds": 8}
    if run.scenario == "passes":
        pre, post = [health], [soak]
    elif run.scenario == "fails-pre":
        targets.script(f"{ns}/health", ok, ok, (503, '{"status": "degraded"}'))
        pre, post = [{**health, "count": 5}], []
    elif run.scenario == "fails-post":
        targets.script(f"{ns}/soak", ok, ok, ok, (500, "boom"))
        pre, post = [{**health, "count": 2}], [{**soak, "count": 8}]
        rollout["bakeSeconds"] = 60
    elif run.abort_in == "PrePromotion":
        targets.script(f"{ns}/gate", (202, "hold on"))  # held until bob aborts
        pre, post = [{"name": "gate", "webhook": {"url": f"{base}/{ns}/gate"}, "intervalSeconds": 1}], []
    else:
        pre, post = [{**health, "count": 2}], []
        rollout["bakeSeconds"] = 900  # baking on green until bob aborts
    return {"rollout": rollout, "checks": {"prePromotion": pre, "postPromotion": post}}


def read(kube: Kube, run: Run) -> dict[str, Any]:
    return kube.release(run.namespace, NAME)


def phase_of(obj: dict[str, Any]) -> str | None:
    phase = (obj.get("status") or {}).get("phase")
    return str(phase) if phase else None


def in_phase(kube: Kube, run: Run, wanted: Callable[[str | None], bool]) -> dict[str, Any] | None:
    obj = read(kube, run)
    return obj if wanted(phase_of(obj)) else None


def drive(kube: Kube, image: PushedImage, targets: CheckTargets, run: Run) -> Run:
    """One scenario end to end, as alice files it and bob approves (and aborts); every step is retried
    until the API server answers, and each write is sent again only if it did not land."""
    started = time.monotonic()
    try:
        manifest = hotfix_manifest(image.reference, NAME, **script(run, targets))
        eventually("the release filed as alice", lambda: kube.apply(manifest, run.namespace, user="alice"),
                   timeout=90)
        obj = eventually("the release to pass its gates",
                         lambda: in_phase(kube, run, lambda p: p not in BEFORE_APPROVAL), timeout=120)
        if phase_of(obj) == "AwaitingApproval":
            bob = whoami(kube, "bob").username

            def approved() -> bool:
                approvals = (read(kube, run)["spec"].get("approval") or {}).get("approvals") or []
                if not any(a.get("approver") == bob for a in approvals):
                    patch = [{"op": "add", "path": "/spec/approval/approvals/-", "value": approval(kube, "bob")}]
                    kube.kubectl("patch", "hfr", NAME, "-n", run.namespace, "--type=json", "-p", json.dumps(patch),
                                 user="bob")
                return True

            eventually("bob's approval", approved, timeout=90)
        if run.abort_in is not None:
            abort_when_in(kube, run)
        run.final = eventually("a terminal phase", lambda: in_phase(kube, run, lambda p: p in TERMINAL),
                               timeout=RUN_TIMEOUT)
    except AssertionError as exc:
        run.error = str(exc)
        try:
            run.final = read(kube, run)
        except Exception as again:
            run.error += f" (and the release could not be read: {again})"
    run.took = time.monotonic() - started
    return run


def abort_when_in(kube: Kube, run: Run) -> None:
    def ready() -> dict[str, Any] | None:
        obj = read(kube, run)
        phase = phase_of(obj)
        if phase in TERMINAL:
            return obj
        if phase != run.abort_in:
            return None
        if phase == "Promoted" and condition(obj, "TrafficSwitched").get("status") != "True":
            return None  # abort once green is seen serving, so the switch there and back both happen
        return obj

    seen = eventually(f"{run.abort_in} to abort in", ready, timeout=RUN_TIMEOUT)
    if phase_of(seen) in TERMINAL:
        raise AssertionError(f"reached {phase_of(seen)} before bob could abort: {seen['status'].get('message')}")
    time.sleep(run.abort_after)  # part of the scenario: bob aborts a while after it got there, at his own moment
    run.aborted_in = phase_of(eventually("the release before the abort", lambda: read(kube, run), timeout=90))
    body = {"spec": {"abort": {"by": whoami(kube, "bob").username, "reason": "chaos: stopping by hand"}}}

    def aborted() -> bool:
        if read(kube, run)["spec"].get("abort") is None:
            kube.kubectl("patch", "hfr", NAME, "-n", run.namespace, "--type=merge", "-p", json.dumps(body), user="bob")
        return True

    eventually("bob's abort", aborted, timeout=90)


@dataclass
class Chaos:
    kills: list[float] = field(default_factory=list)  # seconds from the start, each while scenarios ran
    api_restart: tuple[float, float] | None = None  # (when, seconds away)


def phases(kube: Kube, namespaces: frozenset[str]) -> str:
    """Where the releases stood at a kill, for the log."""
    try:
        listed = kube.custom.list_cluster_custom_object("hotfix.dev", "v1alpha1", "hotfixreleases",
                                                        _request_timeout=2)
    except Exception:
        return "(the API server did not answer)"
    items: list[dict[str, Any]] = listed["items"]  # type: ignore[index]
    counted = collections.Counter(phase_of(obj) or "-" for obj in items
                                  if obj["metadata"]["namespace"] in namespaces)
    return ", ".join(f"{phase} {n}" for phase, n in sorted(counted.items())) or "(none filed yet)"


def wreak(operator: OperatorProcess, cluster: LocalCluster, kube: Kube, namespaces: frozenset[str],
          rng: random.Random, futures: list[concurrent.futures.Future[Run]], t0: float) -> Chaos:
    """While any scenario runs: SIGKILL the operator at random moments, starting it again at once, and
    restart the kube-apiserver once, after a random number of kills."""
    chaos = Chaos()
    restart_after = rng.randint(3, 6)
    while True:
        every = KILL_EVERY if len(chaos.kills) < MIN_KILLS else KILL_EVERY_AFTER
        done, _ = concurrent.futures.wait(futures, timeout=rng.uniform(*every))
        if len(done) == len(futures):
            return chaos
        operator.kill()
        chaos.kills.append(time.monotonic() - t0)
        operator.start()
        print(f"[chaos] {chaos.kills[-1]:6.1f}s kill {len(chaos.kills)}: operator SIGKILLed and started again; "
              f"releases in {phases(kube, namespaces)}", flush=True)
        if chaos.api_restart is None and len(chaos.kills) >= restart_after:
            at = time.monotonic() - t0
            away = cluster.restart("kube-apiserver")
            chaos.api_restart = (at, away)
            print(f"[chaos] {at:6.1f}s kube-apiserver restarted, away {away:.1f}s; releases in "
                  f"{phases(kube, namespaces)}", flush=True)


def problems_with_outcome(run: Run, bob: str) -> list[str]:
    status = run.final.get("status") or {}
    phase, message = status.get("phase"), status.get("message", "")
    promoted = (status.get("timestamps") or {}).get("promoted")
    if run.error:
        return [run.error]
    want = "Succeeded" if run.scenario == "passes" else "RolledBack"
    if phase != want:
        return [f"phase {phase}, wanted {want}: {message}"]
    found = []
    if run.scenario == "passes":
        for kind in ("PrePromotionChecks", "PostPromotionChecks"):
            if condition(run.final, kind).get("status") != "True":
                found.append(f"{kind}: {condition(run.final, kind)}")
    elif run.scenario in ("fails-pre", "fails-post"):
        stage, kind = ("pre", "PrePromotionChecks") if run.scenario == "fails-pre" else ("post", "PostPromotionChecks")
        if condition(run.final, kind).get("reason") != "CheckFailed":
            found.append(f"{kind} is not CheckFailed: {condition(run.final, kind)}")
        name = "health" if stage == "pre" else "soak"
        if f"{stage}-promotion check {name} (http) failed" not in message:
            found.append(f"the message does not name the failed check: {message}")
        if stage == "pre" and (promoted is not None or "traffic never left blue" not in message):
            found.append(f"promoted {promoted}, message {message!r}: traffic should never have left blue")
        if stage == "post" and promoted is None:
            found.append("rolled back after the bake began, yet no promoted time")
    else:
        rolling = [e for e in status.get("audit", []) if e["action"] == "RollingBack"]
        if len(rolling) != 1 or rolling[0]["actor"] != bob or not rolling[0]["detail"].startswith("aborted by"):
            found.append(f"the rollback is not bob's abort: {rolling}")
        if run.aborted_in != run.abort_in:
            found.append(f"aborted in {run.aborted_in}, meant {run.abort_in}")
        if "aborted by" not in message:
            found.append(f"the message does not name the abort: {message}")
    return found


def test_twenty_hotfixes_survive_operator_kills_and_an_api_server_restart(
    kube: Kube, cluster: LocalCluster, targets: CheckTargets, hotfix_image: PushedImage, runs: list[Run],
    running_operator: OperatorProcess, seed: int,
) -> None:
    rng = random.Random(seed + 1)
    bob = whoami(kube, "bob").username
    whoami(kube, "alice")
    initial = {run.namespace: kube.selector(run.namespace, "checkout") for run in runs}
    assert all(sel == APP for sel in initial.values()), initial
    namespaces = frozenset(r.namespace for r in runs)
    t0 = time.monotonic()
    with SliceSampler(cluster.kubeconfig, namespaces, "checkout", hz=10.0) as samples, \
            concurrent.futures.ThreadPoolExecutor(AT_ONCE, thread_name_prefix="scenario") as pool:
        futures = [pool.submit(drive, kube, hotfix_image, targets, run) for run in runs]
        chaos = wreak(running_operator, cluster, kube, namespaces, rng, futures, t0)
        finished = [f.result() for f in futures]
    took = time.monotonic() - t0
    print(f"[chaos] {len(finished)} hotfixes in {took:.0f}s; {len(chaos.kills)} kills; kube-apiserver restart at "
          f"{chaos.api_restart}; {samples.summary()}", flush=True)

    events = cluster.audit_events()
    problems: list[str] = []
    for run in sorted(finished, key=lambda r: r.index):
        status = run.final.get("status") or {}
        audit = status.get("audit", [])
        writes = selector_writes(events, run.namespace, "checkout", initial[run.namespace])
        changes = [w for w in writes if w.changed]
        moves = recorded_moves(audit)
        print(f"[chaos] {run.namespace:32} {status.get('phase')!s:11} {run.took:5.0f}s  selector: "
              f"{len(changes)} changes in {len(writes)} writes (API server audit); status.audit: "
              f"{moves.total} moves, by entry: {dict(collections.Counter(moves.by))}", flush=True)
        found = problems_with_outcome(run, bob)
        if len(audit) >= AUDIT_LIMIT:
            found.append(f"status.audit holds {len(audit)} entries, its bound: older ones may be gone")
        seen = tuple(w.selector.get("pod-template-hash") for w in changes)
        if len(changes) != moves.total or seen != moves.sequence:
            found.append(f"the selector moved {len(changes)} times ({seen}) but status.audit accounts for "
                         f"{moves.total} ({moves.sequence}); writes: {writes}; audit: "
                         f"{[(e['action'], e['detail']) for e in audit]}")
        if writes and writes[-1].selector != APP:
            found.append(f"Service checkout was left with selector {writes[-1].selector}")
        problems += [f"{run.namespace} ({run.scenario}): {p}" for p in found]

    greens = [(d.metadata.namespace, d.metadata.name) for d in kube.apps.list_deployment_for_all_namespaces(
        label_selector="hotfix.dev/role=green").items if d.metadata is not None]
    problems += [f"green Deployment left behind: {ns}/{name}" for ns, name in greens if ns in namespaces]
    problems += [f"{ns}: Service checkout had zero ready endpoints in {len(dark)} samples, first at "
                 f"{dark[0] - t0:.1f}s" for ns, dark in sorted(samples.dark.items())]
    if samples.rate() < 5.0 or len(samples.observed_at) < 100:
        problems.append(f"sampled too little: {samples.summary()}")
    if len(chaos.kills) < MIN_KILLS or chaos.api_restart is None:
        problems.append(f"not enough chaos while the hotfixes ran: {len(chaos.kills)} kills, kube-apiserver restart "
                        f"{chaos.api_restart}")
    if problems:
        lines = [line for line in running_operator.log_tail(2000).splitlines() if "authentication" not in line]
        print("[chaos] operator log tail (login lines left out):\n" + "\n".join(lines[-80:]), flush=True)
    assert not problems, f"seed {seed}:\n" + "\n".join(problems)
