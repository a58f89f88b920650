"""Where a check may connect: the HotfixPolicy's decision, never the requester's. Pure: the shell
resolves names and passes the addresses in; the decision is made here, before any request.

Allowed: a Service in the release's own namespace, the Prometheus addresses the policy names, and the
hosts the policy lists in `checks.allowedHosts`. Never, whatever the name: link-local and metadata
addresses, the unspecified address, multicast, and the API server. Loopback only when the policy
lists that very host:port (as tests do).

The same address rules judge every connection the provenance gate makes (`judge_connection`: registries,
token services, redirect hops, evidence servers); which names it may ask for is `core.gate_egress`'s."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Services whose names stand for the API server in every namespace's search path
API_SERVER_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local")


@dataclass(frozen=True)
class EgressRules:
    namespace: str
    # host:port entries the policy allows outright (its Prometheus addresses included)
    allowed: tuple[str, ...] = ()
    # host:port of the API server the operator talks to
    api_server: str | None = None


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int

    @property
    def host_port(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class EgressVerdict:
    ok: bool
    target: Target | None
    explicit: bool = False
    problem: str = ""


def parse_target(url: str) -> Target:
    """scheme, lower-cased host and port of an http(s) URL; ValueError naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{url!r} is not an http or https URL")
    if not parts.hostname:
        raise ValueError(f"{url!r} has no host")
    if parts.username or parts.password:
        raise ValueError(f"{url!r} carries credentials; the policy's header sets are where secrets go")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return Target(parts.scheme, parts.hostname.lower().rstrip("."), port)


def normalise(entry: str) -> str:
    """A policy's allowedHosts entry as host:port (a URL or a bare host:port)."""
    if "://" in entry:
        target = parse_target(entry)
        return target.host_port
    return entry.lower().rstrip(".")


def in_namespace_service(host: str, namespace: str) -> bool:
    """svc, svc.ns, svc.ns.svc or svc.ns.svc.cluster.local, with ns the release's own namespace."""
    if host in API_SERVER_NAMES:
        return False
    labels = host.split(".")
    if not DNS_LABEL.match(labels[0]) or labels[0] == "localhost":
        return False
    rest = labels[1:]
    return rest in ([], [namespace], [namespace, "svc"], [namespace, "svc", "cluster", "local"])


def forbidden_address(address: str) -> str | None:
    """Why an address is never a check target, or None. Loopback is judged by the caller."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_link_local:
        return f"{ip} is link-local (cloud metadata services live there)"
    if ip.is_unspecified or ip.is_multicast:
        return f"{ip} is not a host"
    if ip == ipaddress.ip_address("fd00:ec2::254"):
        return f"{ip} is a cloud metadata address"
    return None


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def judge(url: str, rules: EgressRules, addresses: Iterable[str]) -> EgressVerdict:
    """May a check connect to `url`, whose host resolved to `addresses` (empty: not resolvable now)?"""
    try:
        target = parse_target(url)
    except ValueError as exc:
        return EgressVerdict(False, None, problem=str(exc))
    allowed = {normalise(a) for a in rules.allowed}
    explicit = target.host_port in allowed
    api = normalise(rules.api_server) if rules.api_server else None
    if target.host_port == api or target.host in API_SERVER_NAMES:
        return EgressVerdict(False, target, problem=f"{target.host_port} is the Kubernetes API server")
    if not explicit and not in_namespace_service(target.host, rules.namespace):
        return EgressVerdict(False, target, problem=(
            f"{target.host_port} is neither a Service in namespace {rules.namespace} nor in the HotfixPolicy's "
            "checks.allowedHosts"))
    problem = address_problem(target, addresses, explicit=explicit, api_server=api)
    if problem is not None:
        return EgressVerdict(False, target, problem=problem)
    return EgressVerdict(True, target, explicit=explicit)


def address_problem(target: Target, addresses: Iterable[str], *, explicit: bool,
                    api_server: str | None = None) -> str | None:
    """Why `target`, resolved to `addresses`, may not be connected to (None: it may). The address rules
    every connection the operator makes on a policy's behalf shares: never link-local, metadata,
    unspecified or multicast; loopback and the API server's address only when the host is `explicit`."""
    api_host = api_server.rsplit(":", 1)[0] if api_server else None
    for address in addresses:
        why = forbidden_address(address)
        if why is None and is_loopback(address) and not explicit:
            why = f"{address} is loopback, which the HotfixPolicy does not list"
        if why is None and not explicit and api_host is not None and address == api_host:
            why = f"{address} is the Kubernetes API server's address"
        if why is not None:
            return f"{target.host} resolves to {address}: {why}"
    return None


def host_listed(target: Target, entries: Iterable[str]) -> bool:
    """Whether `entries` (host:port, a bare host for any port, or a URL) name `target`'s host."""
    for entry in entries:
        name = normalise(entry)
        if name.startswith("["):  # [v6]:port as written in a URL, Target keeps the bare address
            name = name[1:].replace("]", "", 1)
        if name in (target.host_port, target.host):
            return True
    return False


def judge_connection(url: str, addresses: Iterable[str], *, listed: Iterable[str] = (),
                     api_server: str | None = None) -> EgressVerdict:
    """May the operator connect to `url` for a policy (a registry, a token service, a redirect hop, an
    evidence server), its host resolved to `addresses`? Any name may be asked for — which names is the
    caller's rule (image and evidence patterns, token hosts) —, the addresses decide: never link-local,
    metadata, unspecified, multicast or the API server; loopback only for a host `listed` names."""
    try:
        target = parse_target(url)
    except ValueError as exc:
        return EgressVerdict(False, None, problem=str(exc))
    api = normalise(api_server) if api_server else None
    if target.host_port == api or target.host in API_SERVER_NAMES:
        return EgressVerdict(False, target, problem=f"{target.host_port} is the Kubernetes API server")
    explicit = host_listed(target, listed)
    problem = address_problem(target, addresses, explicit=explicit, api_server=api)
    if problem is not None:
        return EgressVerdict(False, target, problem=problem)
    return EgressVerdict(True, target, explicit=explicit)
