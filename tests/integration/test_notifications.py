"""Notifications on the real control plane: a loopback receiver hears of each event once (by its dedupe
key), a Slack-style receiver gets the incoming-webhook shape, an unreachable receiver changes nothing
in the lifecycle and shows in status, and an operator killed between a send and its status write sends
again with the same dedupe key."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from localcluster.cluster import OPERATOR_NAMESPACE, free_port
from localcluster.signing import LOCAL_BUILDER, LocalSigner
from tests.integration.conftest import POLICY_LABEL, FileHotfix, OperatorProcess, approve, with_local_registry
from tests.kube import Kube, wait_for
from tests.support.check_targets import CheckTargets, Request, serving
from tests.support.releases import SOURCE

NAME = "checkout-hotfix"
FAST = {"progressDeadlineSeconds": 60, "bakeSeconds": 1, "scaleDownDelaySeconds": 0}
EVERY_EVENT = {"ApprovalNeeded", "Approved", "Promoted", "Succeeded"}


@pytest.fixture(scope="module")
def receiver() -> Iterator[CheckTargets]:
    with serving() as server:
        yield server


def url_secret(kube: Kube, name: str, url: str) -> dict[str, str]:
    kube.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"url": url}},
               OPERATOR_NAMESPACE)
    return {"name": name, "key": "url"}


@pytest.fixture(scope="module")
def notify_policy(kube: Kube, signer: LocalSigner, receiver: CheckTargets) -> Iterator[str]:
    unreachable = f"http://127.0.0.1:{free_port()}/nobody-listens"
    receivers = [
        {"name": "incident-bot", "type": "webhook", "urlSecretRef": url_secret(kube, "notify-bot",
                                                                                f"{receiver.base}/bot")},
        {"name": "chat", "type": "slack", "urlSecretRef": url_secret(kube, "notify-chat", f"{receiver.base}/chat")},
        {"name": "broken", "type": "webhook", "urlSecretRef": url_secret(kube, "notify-broken", unreachable)},
    ]
    policy = {"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixPolicy", "metadata": {"name": "notify"},
              "spec": with_local_registry({
                  "namespaceSelector": {"matchLabels": {POLICY_LABEL: "notify"}},
                  "provenance": {"trustedKeys": [{"name": "release", "publicKey": signer.public_pem}],
                                 "requireTransparencyLog": False, "allowedBuilders": [LOCAL_BUILDER],
                                 "allowedSourceRepositories": [SOURCE]},
                  "notifications": {"receivers": receivers}}, kube.cluster.registry_host)}
    kube.apply(policy, "default")
    yield "notify"
    kube.kubectl("delete", "hotfixpolicy", "notify", "--wait=false", check=False)


@pytest.fixture
def ns(kube: Kube, quickstart: str, notify_policy: str, receiver: CheckTargets) -> str:
    kube.kubectl("label", "namespace", quickstart, f"{POLICY_LABEL}=notify", "--overwrite")
    receiver.script("bot", (200, "ok"))
    receiver.script("chat", (200, "ok"))
    return quickstart


def of_release(receiver: CheckTargets, path: str, uid: str) -> list[Request]:
    def key(r: Request) -> str:
        body = r.json()
        return str(body.get("dedupeKey") or body["metadata"]["event_payload"]["dedupeKey"])

    return [r for r in receiver.under(path) if key(r).startswith(uid)]


def kinds(requests: list[Request]) -> collections.Counter[str]:
    return collections.Counter(r.headers["Idempotency-Key"].split("/", 1)[1] for r in requests)


def run_to_succeeded(kube: Kube, ns: str, file_hotfix: FileHotfix) -> dict[str, Any]:
    file_hotfix(ns, rollout=FAST)
    kube.wait_phase(ns, NAME, "AwaitingApproval")
    started = time.monotonic()
    approve(kube, ns, NAME)
    done = kube.wait_phase(ns, NAME, "Succeeded", "RolledBack", "Failed", timeout=120)
    assert done["status"]["phase"] == "Succeeded", done["status"]["message"]
    # an unreachable receiver is retried in the background: the cutover took no longer than usual
    assert time.monotonic() - started < 30
    return done


def test_each_receiver_hears_of_each_event_once_and_an_unreachable_one_changes_nothing(
    kube: Kube, ns: str, receiver: CheckTargets, file_hotfix: FileHotfix, running_operator: OperatorProcess
) -> None:
    done = run_to_succeeded(kube, ns, file_hotfix)
    uid = done["metadata"]["uid"]
    wait_for("every notice delivered to both reachable receivers", lambda: all(
        set(kinds(of_release(receiver, path, uid))) >= EVERY_EVENT for path in ("bot", "chat")), timeout=30)
    for path in ("bot", "chat"):
        counts = kinds(of_release(receiver, path, uid))
        assert all(n == 1 for n in counts.values()), f"{path} heard an event twice: {counts}"
    bot = {r.json()["kind"]: r.json() for r in of_release(receiver, "bot", uid)}
    assert "kubectl hotfix approve checkout-hotfix -n " + ns in bot["ApprovalNeeded"]["text"]
    assert bot["Approved"]["dedupeKey"] == f"{uid}/Approved"
    chat = [r.json() for r in of_release(receiver, "chat", uid)]
    assert all(set(body) == {"text", "metadata"} for body in chat)
    # the answers are folded into status by later reconciles: wait until every one is written down
    notices = wait_for("every answer, and the broken receiver's failures, in status", lambda: (
        n if (n := {x["key"]: x for x in kube.release(ns, NAME)["status"].get("notifications", [])})
        and all(x.get("attempts", 0) >= 1 and {"chat", "incident-bot"} <= set(x.get("deliveredTo", []))
                for x in n.values()) else None), timeout=30)
    for notice in notices.values():
        assert set(notice["deliveredTo"]) >= {"chat", "incident-bot"}
        assert "broken" not in notice["deliveredTo"] and "broken: " in notice["lastError"]


def test_a_send_cut_off_by_a_crash_is_sent_again_with_the_same_dedupe_key(
    kube: Kube, ns: str, receiver: CheckTargets, file_hotfix: FileHotfix, running_operator: OperatorProcess
) -> None:
    killed = threading.Event()

    def is_approved_notice(r: Request) -> bool:
        return (r.headers.get("Idempotency-Key", "").endswith("/Approved") and r.path.endswith("bot")
                and r.json().get("namespace") == ns)

    # the receiver holds its answer until the operator is dead: the send is out, its answer never arrives
    receiver.hold(is_approved_notice, until=killed)

    def kill_on_first_approved() -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if any(is_approved_notice(r) for r in receiver.requests):
                running_operator.kill()
                killed.set()
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=kill_on_first_approved, daemon=True)
    watcher.start()
    file_hotfix(ns, rollout=FAST)
    kube.wait_phase(ns, NAME, "AwaitingApproval")
    approve(kube, ns, NAME)
    assert killed.wait(timeout=60), "the operator was never killed"
    # restarted from this thread: the operator dies with the thread that started it (PR_SET_PDEATHSIG)
    running_operator.start()
    done = kube.wait_phase(ns, NAME, "Succeeded", "RolledBack", "Failed", timeout=120)
    assert done["status"]["phase"] == "Succeeded", done["status"]["message"]
    uid = done["metadata"]["uid"]
    wait_for("every notice delivered", lambda: set(kinds(of_release(receiver, "bot", uid))) >= EVERY_EVENT,
             timeout=30)
    approved = [r for r in of_release(receiver, "bot", uid) if r.json()["kind"] == "Approved"]
    assert len(approved) >= 2, "the cut-off notice was not sent again"
    assert {r.json()["dedupeKey"] for r in approved} == {f"{uid}/Approved"}
    assert {r.headers["Idempotency-Key"] for r in approved} == {f"{uid}/Approved"}
