"""core.gate_egress: where the provenance gate may connect is the HotfixPolicy's decision — image and
evidence patterns, token realms, redirect hops — judged before anything is sent."""

from __future__ import annotations

import pytest

from hotfix_operator.core.gate_egress import (
    GateRules,
    connection_verdict,
    evidence_location,
    evidence_problem,
    glob_match,
    image_problem,
    realm_problem,
    redirect_problem,
)

RULES = GateRules(
    policy="shop",
    images=("registry.example.com/shop/**", "ghcr.io/acme/*"),
    evidence=("oci://registry.example.com/shop/evidence/**", "https://releases.example.com/acme/**"),
    token_hosts={"registry-1.docker.io": ("auth.docker.io",), "registry.example.com": ("*.auth.example.com",)},
    redirect_hosts=("storage.example.com", "*.s3.amazonaws.com"),
    loopback_hosts=("127.0.0.1:5000",),
    plain_http=frozenset({"127.0.0.1:5001"}),
)


@pytest.mark.parametrize(("pattern", "text", "matches"), [
    ("registry.example.com/shop/**", "registry.example.com/shop/checkout", True),
    ("registry.example.com/shop/**", "registry.example.com/shop/team/checkout", True),
    ("registry.example.com/shop/*", "registry.example.com/shop/checkout", True),
    ("registry.example.com/shop/*", "registry.example.com/shop/team/checkout", False),
    ("registry.example.com/shop/**", "registry.example.com/shopping/checkout", False),
    ("registry.example.com/shop/**", "registry.example.com.evil.io/shop/checkout", False),
    ("*.example.com/app", "eu.example.com/app", True),
    ("*.example.com/app", "a/b.example.com/app", False),
    ("registry.example.com/a.b", "registry.example.com/aXb", False),  # everything but * is literal
    ("127.0.0.1:5000/**", "127.0.0.1:5000/shop/checkout", True),
])
def test_globs(pattern: str, text: str, matches: bool) -> None:
    assert glob_match(pattern, text) is matches


def test_an_image_inside_the_patterns_is_allowed_and_one_outside_is_refused_naming_both() -> None:
    assert image_problem(RULES, "registry.example.com", "shop/checkout") is None
    assert image_problem(RULES, "Registry.Example.com", "shop/checkout") is None
    assert image_problem(RULES, "ghcr.io", "acme/checkout") is None
    problem = image_problem(RULES, "ghcr.io", "mallory/checkout")
    assert problem is not None
    assert "image ghcr.io/mallory/checkout" in problem and "HotfixPolicy shop" in problem
    assert "registry.example.com/shop/**" in problem


def test_no_image_patterns_means_any_registry() -> None:
    assert image_problem(GateRules(policy="open"), "anything.example", "x/y") is None


@pytest.mark.parametrize(("url", "location"), [
    ("oci://registry.example.com/shop/evidence@sha256:" + "a" * 64, "oci://registry.example.com/shop/evidence"),
    ("oci://Registry.Example.com:5000/shop/evidence:v1", "oci://registry.example.com:5000/shop/evidence"),
    ("https://Releases.Example.com/acme/v4.1.2/", "https://releases.example.com/acme/v4.1.2/"),
    ("s3://bucket/x", None),
])
def test_what_evidence_patterns_are_matched_against(url: str, location: str | None) -> None:
    assert evidence_location(url) == location


@pytest.mark.parametrize(("url", "allowed"), [
    ("oci://registry.example.com/shop/evidence/checkout@sha256:" + "a" * 64, True),
    ("https://releases.example.com/acme/checkout/v4.1.2/", True),
    ("oci://registry.example.com/payments/evidence@sha256:" + "a" * 64, False),
    ("https://releases.example.com.evil.io/acme/x/", False),
    ("https://127.0.0.1:8443/acme/x/", False),
])
def test_evidence_inside_the_patterns_only(url: str, allowed: bool) -> None:
    problem = evidence_problem(RULES, url)
    assert (problem is None) is allowed
    if problem:
        assert "provenance.evidence" in problem and "HotfixPolicy shop" in problem


def test_evidence_urls_with_a_query_or_credentials_are_refused_even_without_patterns() -> None:
    for url in ("https://h.example/x/?a=b", "https://user:pw@h.example/x/", "https://h.example/x/#f"):
        assert "query, fragment or credentials" in (evidence_problem(GateRules(), url) or "")


@pytest.mark.parametrize(("registry", "realm"), [
    ("registry.example.com", "https://registry.example.com/token"),
    ("registry.example.com", "https://registry.example.com:443/token"),
    ("registry.example.com", "https://eu.auth.example.com/token"),
    ("registry-1.docker.io", "https://auth.docker.io/token"),
    ("127.0.0.1:5001", "http://127.0.0.1:5001/token"),  # a plain-HTTP loopback registry the operator was told of
])
def test_a_realm_on_the_registry_or_its_token_hosts(registry: str, realm: str) -> None:
    assert realm_problem(RULES, registry, realm) is None


@pytest.mark.parametrize(("registry", "realm", "problem"), [
    ("registry.example.com", "https://auth.docker.io/token", "neither the registry's own host nor"),
    ("registry-1.docker.io", "https://eu.auth.example.com/token", "tokenHosts for registry-1.docker.io"),
    ("127.0.0.1:5000", "https://127.0.0.1:5002/token", "127.0.0.1:5002, which is neither"),
    ("registry.example.com", "http://registry.example.com/token", "over plain http"),
    ("registry-1.docker.io", "http://auth.docker.io/token", "over plain http"),
    ("127.0.0.1:5001", "http://127.0.0.1:6000/token", "over plain http"),
    ("registry.example.com", "file:///etc/passwd", "not an http(s) URL"),
])
def test_a_realm_elsewhere_is_refused_naming_its_host(registry: str, realm: str, problem: str) -> None:
    found = realm_problem(RULES, registry, realm)
    assert found is not None and problem in found


@pytest.mark.parametrize(("location", "problem"), [
    ("https://registry.example.com/v2/blob2", None),
    ("https://storage.example.com/blob", None),
    ("https://bucket.s3.amazonaws.com/blob?sig=x", None),
    ("http://storage.example.com/blob", "from https to plain http"),
    ("https://elsewhere.example/blob", "elsewhere.example:443, which is not in HotfixPolicy shop's registry"),
    ("https://127.0.0.1:9/blob", "not in HotfixPolicy shop's registry.redirectHosts"),
    ("gopher://x/", "not an http(s) URL"),
])
def test_a_redirect_stays_on_allowed_hosts_and_never_downgrades(location: str, problem: str | None) -> None:
    first = "https://registry.example.com/v2/shop/app/blobs/sha256:" + "a" * 64
    found = redirect_problem(RULES, first, first, location)
    assert found == problem if problem is None else (found is not None and problem in found)


def test_plain_http_hops_only_on_a_plain_http_loopback_registry() -> None:
    first = "http://127.0.0.1:5001/v2/app/blobs/sha256:" + "a" * 64
    assert redirect_problem(RULES, first, first, "http://127.0.0.1:5001/other") is None
    assert "plain http" in (redirect_problem(GateRules(), "http://h.example/x", "http://h.example/x",
                                             "http://h.example/y") or "")


def test_the_connection_verdict_lists_the_policy_s_loopback_hosts_and_the_operator_s_plain_http_ones() -> None:
    assert connection_verdict(RULES, "https://127.0.0.1:5000/v2/", ("127.0.0.1",)).ok
    assert connection_verdict(RULES, "http://127.0.0.1:5001/v2/", ("127.0.0.1",)).ok
    refused = connection_verdict(RULES, "https://localhost:5000/v2/", ("127.0.0.1",))
    assert not refused.ok and "loopback" in refused.problem
    assert not connection_verdict(RULES, "https://registry.example.com/v2/", ("169.254.169.254",)).ok
