"""Which HotfixPolicy applies, read from the watch cache: the namespace's labels and the policies come from
memory, and one resolved policy (with the Secrets and ConfigMaps it names) is reused only at the same
resourceVersion and only for a short while."""

from __future__ import annotations

from typing import Any, cast

import pytest
from kubernetes import client

from hotfix_operator.adapters import policies, watch_cache
from hotfix_operator.adapters.policies import PolicyProblem, PolicyResolver, ResolvedPolicy
from hotfix_operator.adapters.watch_cache import WatchCache
from tests.adapters.test_watch_cache import Clock, Refusing


def policy(name: str, version: str, team: str) -> dict[str, Any]:
    return watch_cache.policy_entry({"metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": version},
                                     "spec": {"namespaceSelector": {"matchLabels": {"team": team}}}})


class Resolver(PolicyResolver):
    """Counts the full resolutions (the part that reads Secrets and ConfigMaps) instead of doing them."""

    def __init__(self, watch: WatchCache, clock: Clock) -> None:
        super().__init__(Refusing(), "hotfix-system", watch, clock=clock)
        self.resolved: list[str] = []

    def resolve(self, policy: dict[str, Any]) -> ResolvedPolicy:
        self.resolved.append(f"{policy['metadata']['name']}@{policy['metadata']['resourceVersion']}")
        return cast(ResolvedPolicy, object())


def attached(*found: dict[str, Any]) -> tuple[WatchCache, dict[str, Any]]:
    indexes: dict[str, Any] = {name: {} for name in watch_cache.INDEX_NAMES}
    indexes[watch_cache.POLICIES][watch_cache.ALL] = list(found)
    indexes[watch_cache.NAMESPACES]["shop"] = [{"team": "shop"}]
    cache = WatchCache()
    cache.attach(indexes)
    return cache, indexes


def test_a_policy_is_resolved_once_per_version_while_fresh_and_sends_no_request() -> None:
    clock = Clock()
    cache, indexes = attached(policy("shop-policy", "10", "shop"), policy("other", "11", "payments"))
    resolver = Resolver(cache, clock)
    first = resolver.for_namespace("shop")
    assert resolver.for_namespace("shop") is first
    assert resolver.resolved == ["shop-policy@10"]
    # edited: the new version is resolved at once
    indexes[watch_cache.POLICIES][watch_cache.ALL] = [policy("shop-policy", "12", "shop")]
    resolver.for_namespace("shop")
    # the same version, later: its Secrets and ConfigMaps are read again
    clock.now += policies.RESOLVED_SECONDS + 1
    resolver.for_namespace("shop")
    assert resolver.resolved == ["shop-policy@10", "shop-policy@12", "shop-policy@12"]


def test_a_namespace_two_policies_select_is_refused_from_the_cache_too() -> None:
    cache, _ = attached(policy("a", "1", "shop"), policy("b", "2", "shop"))
    with pytest.raises(PolicyProblem, match="selected by several HotfixPolicies"):
        Resolver(cache, Clock()).for_namespace("shop")


def test_a_namespace_the_watch_has_not_delivered_is_read_live() -> None:
    cache, _ = attached(policy("shop-policy", "10", "shop"))
    resolver = Resolver(cache, Clock())
    with pytest.raises(AssertionError, match="namespaces/just-made"):
        resolver.for_namespace("just-made")
    assert isinstance(resolver.api, client.ApiClient)
