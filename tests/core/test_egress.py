"""core.egress: a check connects only where the HotfixPolicy allows, judged before any request."""

from __future__ import annotations

import pytest

from hotfix_operator.core.egress import EgressRules, judge, judge_connection

RULES = EgressRules("shop", allowed=("127.0.0.1:9100", "status.example.com:443"), api_server="127.0.0.1:6443")


@pytest.mark.parametrize(("url", "addresses"), [
    ("http://checkout-preview/healthz", ("10.96.0.12",)),
    ("http://checkout-preview.shop.svc:8080/healthz", ("10.96.0.12",)),
    ("http://checkout-preview.shop.svc.cluster.local/h", ()),
    ("http://127.0.0.1:9100/metrics", ("127.0.0.1",)),
    ("https://status.example.com/ok", ("203.0.113.7",)),
])
def test_allowed(url: str, addresses: tuple[str, ...]) -> None:
    assert judge(url, RULES, addresses).ok


@pytest.mark.parametrize(("url", "addresses", "problem"), [
    ("http://169.254.169.254/latest/meta-data/", ("169.254.169.254",), "neither a Service in namespace shop"),
    ("http://checkout.payments.svc/h", ("10.96.0.9",), "neither a Service in namespace shop"),
    ("https://127.0.0.1:6443/api", ("127.0.0.1",), "is the Kubernetes API server"),
    ("https://kubernetes.default.svc/api", ("10.96.0.1",), "is the Kubernetes API server"),
    ("http://kubernetes/api", ("10.96.0.1",), "is the Kubernetes API server"),
    ("http://127.0.0.1:9200/", ("127.0.0.1",), "neither a Service"),
    ("http://localhost:9100/", ("127.0.0.1",), "neither a Service"),
    # an in-namespace name that resolves somewhere it must not
    ("http://evil/", ("169.254.169.254",), "link-local"),
    ("http://evil/", ("::ffff:169.254.169.254",), "link-local"),
    ("http://evil/", ("127.0.0.1",), "loopback, which the HotfixPolicy does not list"),
    ("http://evil/", ("0.0.0.0",), "not a host"),
    ("http://evil/", ("fd00:ec2::254",), "metadata"),
    ("file:///etc/passwd", (), "not an http or https URL"),
    ("http://user:pw@checkout-preview/", (), "carries credentials"),
])
def test_refused(url: str, addresses: tuple[str, ...], problem: str) -> None:
    verdict = judge(url, RULES, addresses)
    assert not verdict.ok and problem in verdict.problem


def test_a_listed_metadata_address_is_still_refused() -> None:
    rules = EgressRules("shop", allowed=("169.254.169.254:80",))
    verdict = judge("http://169.254.169.254/", rules, ("169.254.169.254",))
    assert not verdict.ok and "link-local" in verdict.problem


def test_a_listed_host_that_resolves_to_the_api_servers_address_on_another_port_is_allowed() -> None:
    assert judge("http://127.0.0.1:9100/", RULES, ("127.0.0.1",)).explicit


# -- judge_connection: the provenance gate's connections (any name; the addresses decide) ----------------


@pytest.mark.parametrize(("url", "addresses", "listed"), [
    ("https://registry.example.com/v2/", ("203.0.113.7",), ()),
    ("https://127.0.0.1:5000/v2/", ("127.0.0.1",), ("127.0.0.1:5000",)),
    ("http://[::1]:5000/v2/", ("::1",), ("[::1]:5000",)),
    ("https://registry.local:5000/v2/", ("127.0.0.1",), ("registry.local",)),  # a bare host: any port
    ("https://unresolvable.example/v2/", (), ()),  # nothing to judge: the connection fails on its own
])
def test_a_connection_is_allowed(url: str, addresses: tuple[str, ...], listed: tuple[str, ...]) -> None:
    assert judge_connection(url, addresses, listed=listed).ok


@pytest.mark.parametrize(("url", "addresses", "listed", "problem"), [
    ("https://127.0.0.1:5000/v2/", ("127.0.0.1",), (), "127.0.0.1 is loopback"),
    ("https://127.0.0.1:5000/v2/", ("127.0.0.1",), ("127.0.0.1:5001",), "127.0.0.1 is loopback"),
    ("https://localhost:5000/v2/", ("127.0.0.1", "::1"), ("127.0.0.1:5000",), "localhost resolves to 127.0.0.1"),
    ("https://lo.example.test/v2/", ("127.0.0.1",), (), "lo.example.test resolves to 127.0.0.1"),
    ("https://registry.example.com/v2/", ("203.0.113.7", "169.254.169.254"), (), "link-local"),
    ("http://metadata.example/", ("fd00:ec2::254",), ("metadata.example",), "cloud metadata"),
    ("http://[::ffff:169.254.169.254]/", ("::ffff:169.254.169.254",), (), "link-local"),
    ("https://0.0.0.0:5000/", ("0.0.0.0",), ("0.0.0.0:5000",), "is not a host"),
    ("https://kubernetes.default.svc/api", ("10.96.0.1",), ("kubernetes.default.svc",), "Kubernetes API server"),
    ("ftp://registry.example.com/", (), (), "not an http or https URL"),
])
def test_a_connection_is_refused(url: str, addresses: tuple[str, ...], listed: tuple[str, ...],
                                 problem: str) -> None:
    verdict = judge_connection(url, addresses, listed=listed)
    assert not verdict.ok
    assert problem in verdict.problem


def test_the_api_server_is_refused_by_host_port_and_by_address() -> None:
    assert "Kubernetes API server" in judge_connection("https://10.0.0.1:6443/", ("10.0.0.1",),
                                                       api_server="10.0.0.1:6443").problem
    assert "API server's address" in judge_connection("https://api.example.com:6443/", ("10.0.0.1",),
                                                      api_server="10.0.0.1:6443").problem
