"""The watch cache: what the indexes keep of each kind, how a reconcile reads it, and the rules that keep a
view a few milliseconds behind harmless. The indexes here are plain dicts shaped as Kopf's (key -> store of
values); that the operator really runs on Kopf's is covered by every integration test of a cutover."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from hotfix_operator.adapters import watch_cache
from hotfix_operator.adapters.kube import KubeAdapter
from hotfix_operator.adapters.watch_cache import WatchCache
from hotfix_operator.core.model import Status
from tests.support.releases import T0, release_object

UID = "d-uid-1"


def deployment_body(name: str = "checkout", *, image: str = "shop/checkout:1", generation: int = 3,
                    observed: int = 3) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "shop", "uid": UID, "generation": generation,
                     "annotations": {"deployment.kubernetes.io/revision": "7"}, "labels": {"app": "checkout"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "checkout"}},
                 "template": {"metadata": {"labels": {"app": "checkout"}},
                              "spec": {"containers": [{"name": "app", "image": image}]}}},
        "status": {"observedGeneration": observed, "updatedReplicas": 3, "availableReplicas": 3},
    }


def pod_body(ip: str, pod_hash: str, *, ready: bool = True) -> dict[str, Any]:
    return {"metadata": {"name": f"p-{ip}", "labels": {"app": "checkout", "pod-template-hash": pod_hash}},
            "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def indexes() -> dict[str, dict[Any, list[Any]]]:
    rs = {"metadata": {"annotations": {"deployment.kubernetes.io/revision": "7"},
                       "labels": {"pod-template-hash": "abc"},
                       "ownerReferences": [{"kind": "Deployment", "controller": True, "uid": UID}]}}
    slice_ = {"endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}},
                            {"addresses": ["10.0.0.9"], "conditions": {"ready": False}},
                            {"addresses": ["10.0.0.2"]}]}  # unset ready means ready
    return {
        watch_cache.DEPLOYMENTS: {("shop", "checkout"): [watch_cache.deployment_entry(deployment_body())]},
        watch_cache.REPLICA_SETS: {("shop", watch_cache.replicaset_owner(rs)): [watch_cache.replicaset_entry(rs)]},
        watch_cache.SERVICES: {("shop", "checkout"): [watch_cache.service_entry(
            {"spec": {"selector": {"app": "checkout"}}})]},
        watch_cache.ENDPOINTS: {("shop", "checkout"): [watch_cache.endpoint_entry(slice_)]},
        watch_cache.PODS: {"shop": [watch_cache.pod_entry(pod_body("10.0.0.1", "abc")),
                                    watch_cache.pod_entry(pod_body("10.0.0.2", "abc")),
                                    watch_cache.pod_entry(pod_body("10.0.0.3", "abc", ready=False))]},
        watch_cache.POLICIES: {}, watch_cache.NAMESPACES: {},
    }


class Refusing(client.ApiClient):
    """An API client that fails the test on any request: what the cache answers needs none."""

    def __init__(self) -> None:
        super().__init__(client.Configuration(host="http://127.0.0.1:9"))
        self.requests: list[str] = []
        self.rest_client.pool_manager = self  # type: ignore[assignment]  # every request goes through the pool

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        self.requests.append(f"{method} {url}")
        raise AssertionError(f"unexpected request {self.requests[-1]}")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_endpoint_slice_entry_keeps_only_ready_addresses_and_counts_unset_as_ready() -> None:
    assert set(indexes()[watch_cache.ENDPOINTS][("shop", "checkout")][0]) == {"10.0.0.1", "10.0.0.2"}


def test_a_replica_set_without_a_controlling_deployment_has_no_owner() -> None:
    assert watch_cache.replicaset_owner({"metadata": {"ownerReferences": [{"kind": "Deployment", "uid": "x"}]}}) is None


def test_observe_on_an_attached_cache_sends_no_request() -> None:
    api = Refusing()
    kube = KubeAdapter(api)
    kube.cache.attach(indexes())
    release = release_object()
    seen = kube.observe(release, Status(), T0, None)
    assert seen.green is None
    assert seen.blue is not None and seen.blue.current_hash == "abc" and seen.blue.rolled_out
    assert seen.service is not None and dict(seen.service.selector) == {"app": "checkout"}
    assert seen.endpoint_ips == frozenset({"10.0.0.1", "10.0.0.2"})
    assert seen.pod_ips_by_hash == {"abc": frozenset({"10.0.0.1", "10.0.0.2"})}
    assert api.requests == []


def test_a_deployment_the_cache_does_not_have_is_absent_unless_the_operator_just_created_it() -> None:
    api, clock = Refusing(), Clock()
    kube = KubeAdapter(api, WatchCache(clock=clock))
    kube.cache.attach(indexes())
    assert kube._cached_deployment("shop", "never-made") is None
    kube.cache.created_deployment("shop", "just-created")
    with pytest.raises(AssertionError, match="deployments/just-created"):
        kube._cached_deployment("shop", "just-created")
    clock.now += watch_cache.OWN_WRITE_SECONDS + 0.1
    assert kube._cached_deployment("shop", "just-created") is None


def test_a_selector_the_operator_wrote_reads_as_written_until_the_watch_shows_it() -> None:
    clock = Clock()
    cache = WatchCache(clock=clock)
    cache.attach(indexes())
    pinned = {"app": "checkout", "pod-template-hash": "abc"}
    cache.wrote_selector("shop", "checkout", pinned)
    assert cache.service("shop", "checkout") == {"selector": pinned}
    cache._index(watch_cache.SERVICES)[("shop", "checkout")] = [{"selector": pinned}]  # type: ignore[index]
    assert cache.service("shop", "checkout") == {"selector": pinned}
    # the watch caught up: a later change by someone else shows as it is
    cache._index(watch_cache.SERVICES)[("shop", "checkout")] = [{"selector": {"app": "x"}}]  # type: ignore[index]
    assert cache.service("shop", "checkout") == {"selector": {"app": "x"}}


def test_an_image_the_operator_wrote_reads_as_written_and_not_rolled_out_until_the_watch_shows_it() -> None:
    api, clock = Refusing(), Clock()
    kube = KubeAdapter(api, WatchCache(clock=clock))
    kube.cache.attach(indexes())
    kube.cache.wrote_image("shop", "checkout", "app", "shop/checkout@sha256:" + "f" * 64)
    folded = kube._cached_deployment("shop", "checkout")
    assert folded is not None and folded.container_image("app") == "shop/checkout@sha256:" + "f" * 64
    # the old template's finished rollout must not pass for the new one's (the fold would adopt blue's hash)
    assert not folded.rolled_out
    # the watch shows the write, at a new generation its controller is rolling out: read as it is
    rolling = watch_cache.deployment_entry(deployment_body(image="shop/checkout@sha256:" + "f" * 64, generation=4))
    kube.cache._index(watch_cache.DEPLOYMENTS)[("shop", "checkout")] = [rolling]  # type: ignore[index]
    assert kube.cache.deployment("shop", "checkout") == rolling


def test_an_own_write_the_watch_never_shows_gives_way_to_the_watch_after_a_while() -> None:
    clock = Clock()
    cache = WatchCache(clock=clock)
    cache.attach(indexes())
    cache.wrote_selector("shop", "checkout", {"app": "checkout", "pod-template-hash": "abc"})
    clock.now += watch_cache.OWN_WRITE_SECONDS + 0.1
    assert cache.service("shop", "checkout") == {"selector": {"app": "checkout"}}


def test_a_cache_is_attached_only_with_every_index() -> None:
    cache = WatchCache()
    cache.attach({watch_cache.DEPLOYMENTS: {}})
    assert not cache.attached
    cache.attach(indexes())
    assert cache.attached


def test_a_store_updated_while_copied_is_copied_again() -> None:
    class Flaky:
        def __init__(self) -> None:
            self.calls = 0

        def __iter__(self) -> Any:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("dictionary changed size during iteration")
            return iter(["x"])

    store = Flaky()
    assert watch_cache._values({"k": store}, "k") == ["x"]
    assert store.calls == 2

