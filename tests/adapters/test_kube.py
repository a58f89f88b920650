"""The Kubernetes adapter's requests as they reach an API server: path, verb, content type, body and
credentials; what a refusal does; what they cost in connections (tests.support.fake_wire)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes.client.exceptions import ApiException

from hotfix_operator.adapters.kube import KubeAdapter
from hotfix_operator.api import FINALIZER, LABEL_SETTLED
from hotfix_operator.core.actions import CreateDeployment, DeleteDeployment, Event, SetServiceSelector
from hotfix_operator.core.model import Status
from tests.support.fake_wire import FakeWire, serving
from tests.support.releases import T0, release_object

RELEASES = "/apis/hotfix.dev/v1alpha1/namespaces/shop/hotfixreleases"


@pytest.fixture
def wire() -> Iterator[tuple[FakeWire, KubeAdapter]]:
    with serving() as (fake, api):
        yield fake, KubeAdapter(api)


def test_the_status_write_replaces_the_whole_status_on_its_subresource_and_returns_the_stored_object(
        wire: tuple[FakeWire, KubeAdapter]) -> None:
    fake, kube = wire
    fake.answers.append((200, {"metadata": {"name": "checkout-hotfix", "resourceVersion": "42"}}))
    stored = kube.write_status(release_object(), Status(message="verifying"))
    (request,) = fake.seen
    assert (request.method, request.path) == ("PATCH", f"{RELEASES}/checkout-hotfix/status")
    assert request.headers["Content-Type"] == "application/json-patch+json"
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert request.body == [{"op": "add", "path": "/status", "value": Status(message="verifying").to_json()}]
    assert stored["metadata"]["resourceVersion"] == "42"


def test_an_event_names_its_release_by_uid_and_keeps_the_message_within_the_api_limit(
        wire: tuple[FakeWire, KubeAdapter]) -> None:
    fake, kube = wire
    release = release_object()
    kube.post_event(release, Event("Warning", "ProbeFailed", "x" * 5000, actor="bob"), T0)
    (request,) = fake.seen
    assert (request.method, request.path) == ("POST", "/api/v1/namespaces/shop/events")
    body = request.body
    assert body["involvedObject"] == {"apiVersion": "hotfix.dev/v1alpha1", "kind": "HotfixRelease",
                                      "name": release.name, "namespace": "shop", "uid": release.uid}
    assert (body["type"], body["reason"], body["action"]) == ("Warning", "ProbeFailed", "ProbeFailed")
    assert body["message"].startswith("bob: x") and len(body["message"]) == 1024
    assert body["firstTimestamp"] == body["lastTimestamp"] == "2026-11-23T09:12:00Z"
    assert body["metadata"] == {"generateName": "checkout-hotfix.", "namespace": "shop"}


def test_an_event_the_api_server_refuses_does_not_break_the_reconcile(wire: tuple[FakeWire, KubeAdapter]) -> None:
    fake, kube = wire
    fake.answers.append((403, {"kind": "Status", "message": "events is forbidden"}))
    kube.post_event(release_object(), Event("Normal", "Verified", "ok"), T0)
    assert len(fake.seen) == 1


def test_a_missing_release_reads_as_none_and_any_other_refusal_raises_with_the_servers_message(
        wire: tuple[FakeWire, KubeAdapter]) -> None:
    fake, kube = wire
    fake.answers += [(404, {"kind": "Status", "reason": "NotFound"}),
                     (500, {"kind": "Status", "message": "etcdserver: request timed out"})]
    assert kube.get_release("shop", "gone") is None
    with pytest.raises(ApiException) as refused:
        kube.get_release("shop", "checkout-hotfix")
    assert refused.value.status == 500 and "etcdserver: request timed out" in str(refused.value.body)
    assert [s.path for s in fake.seen] == [f"{RELEASES}/gone", f"{RELEASES}/checkout-hotfix"]


def test_settling_drops_only_the_operators_finalizer_and_retries_a_conflict_on_a_fresh_read(
        wire: tuple[FakeWire, KubeAdapter]) -> None:
    fake, kube = wire
    current = {"metadata": {"name": "r", "resourceVersion": "7", "finalizers": [FINALIZER, "other.io/keep"]}}
    fake.answers += [(200, current), (409, {"kind": "Status", "reason": "Conflict"}),
                     (200, {**current, "metadata": {**current["metadata"], "resourceVersion": "8"}}), (200, current)]
    kube.mark_settled("shop", "r")
    patches = [s for s in fake.seen if s.method == "PATCH"]
    assert [p.headers["Content-Type"] for p in patches] == ["application/merge-patch+json"] * 2
    assert patches[-1].body == {"metadata": {"labels": {LABEL_SETTLED: "true"}, "resourceVersion": "8",
                                             "finalizers": ["other.io/keep"]}}


GREEN = {"metadata": {"name": "checkout-green", "uid": "u-1",
                      "labels": {"hotfix.dev/release-uid": release_object().uid}}}


def test_a_deployment_that_already_exists_is_not_an_error_and_deletion_is_of_the_object_read(
        wire: tuple[FakeWire, KubeAdapter]) -> None:
    fake, kube = wire
    release = release_object()
    fake.answers += [(409, {"kind": "Status", "reason": "AlreadyExists"}), (200, GREEN)]
    assert "already exists" in kube.execute(release, CreateDeployment({"metadata": {"name": "checkout-green"}}))
    assert kube.execute(release, DeleteDeployment("checkout-green", release.uid)) == "deleted Deployment checkout-green"
    green = "/apis/apps/v1/namespaces/shop/deployments/checkout-green"
    assert [(s.method, s.path) for s in fake.seen] == [
        ("POST", "/apis/apps/v1/namespaces/shop/deployments"), ("GET", green), ("DELETE", green)]
    assert fake.seen[-1].body == {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background",
                                  "preconditions": {"uid": "u-1"}}


def test_a_deployment_this_release_did_not_create_or_that_was_replaced_since_it_was_read_is_not_deleted(
        wire: tuple[FakeWire, KubeAdapter]) -> None:
    fake, kube = wire
    release = release_object()
    foreign = {"metadata": {"name": "checkout", "uid": "u-2", "labels": {"app": "checkout"}}}
    fake.answers += [(200, foreign), (200, GREEN), (409, {"kind": "Status", "reason": "Conflict",
                                                           "message": "Precondition failed: UID in precondition: u-1"})]
    with pytest.raises(RuntimeError, match="not created by this release"):
        kube.execute(release, DeleteDeployment("checkout", release.uid))
    with pytest.raises(RuntimeError, match="replaced since it was read"):
        kube.execute(release, DeleteDeployment("checkout-green", release.uid))
    assert [s.method for s in fake.seen] == ["GET", "GET", "DELETE"]


def test_writes_whose_answer_is_not_needed_still_give_their_connection_back(
        wire: tuple[FakeWire, KubeAdapter]) -> None:
    """Two Service patches and an Event over one keep-alive connection: an unread answer would make the
    client open a new connection (a TLS handshake against a real API server) for every write."""
    fake, kube = wire
    release = release_object()
    for _ in range(2):
        kube.execute(release, SetServiceSelector("checkout", {"app": "checkout"}, why="switch"))
    kube.post_event(release, Event("Normal", "Promoted", "green serves"), T0)
    assert len(fake.seen) == 3 and len(fake.connections) == 1
    assert fake.seen[0].body == [{"op": "replace", "path": "/spec/selector", "value": {"app": "checkout"}}]
