"""Where the provenance gate may connect: the HotfixPolicy's decision, never the requester's. Pure: the
shell resolves names and asks before every connection; the answers are made here.

- Images: `spec.provenance.images` globs over registry/repository (the digest excluded); none listed
  means any registry host, subject to the address rules.
- Evidence: `spec.provenance.evidence` globs over `oci://registry/repository` (digest excluded) or the
  `https://host/path/` URL; none listed means any.
- Token services: a registry's Bearer challenge may send the operator (with that registry's
  credentials) only to the registry's own host:port or to hosts `spec.registry.tokenHosts` lists for
  that registry, and only over https (http only for a host the operator was told is a plain-HTTP
  loopback registry).
- Redirects: a hop stays on the host asked or on `spec.registry.redirectHosts`, and never goes from
  https to http.
- Every host, whatever its name: `core.egress.judge_connection` on its resolved addresses (never
  link-local, metadata or the API server; loopback only for `spec.registry.loopbackHosts` or the
  operator's plain-HTTP registries).

Globs: `*` matches within one path segment (no `/`), `**` across segments; everything else literally."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlsplit

from hotfix_operator.core.egress import EgressVerdict, judge_connection


@dataclass(frozen=True)
class GateRules:
    policy: str = ""
    images: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    # registry host[:port] -> the hosts its token service may be on besides its own
    token_hosts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    redirect_hosts: tuple[str, ...] = ()
    # host[:port] that may be reached although they resolve to loopback
    loopback_hosts: tuple[str, ...] = ()
    # the operator's plain-HTTP (loopback) registries: reached over http, and on loopback
    plain_http: frozenset[str] = frozenset()
    api_server: str | None = None

    @property
    def who(self) -> str:
        return f"HotfixPolicy {self.policy}" if self.policy else "the policy"


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    for i, piece in enumerate(pattern.split("**")):
        if i:
            parts.append(".*")
        parts.append("[^/]*".join(re.escape(chunk) for chunk in piece.split("*")))
    return re.compile("".join(parts))


def glob_match(pattern: str, text: str) -> bool:
    """`*` within a segment, `**` across segments, the whole of `text`."""
    return _glob_regex(pattern).fullmatch(text) is not None


def image_problem(rules: GateRules, registry: str, repository: str) -> str | None:
    """Why the image registry/repository is outside the policy's `provenance.images` (None: inside)."""
    if not rules.images:
        return None
    name = f"{registry.lower()}/{repository}"
    if any(glob_match(pattern, name) for pattern in rules.images):
        return None
    return (f"image {name} matches none of {rules.who}'s provenance.images ({', '.join(rules.images)}); "
            "push it to a repository the policy allows, or ask a cluster administrator to add a pattern")


def evidence_location(url: str) -> str | None:
    """What evidence patterns are matched against: `oci://registry/repository` or `https://host[:port]/path`;
    None when the URL is neither (the fetch refuses it with its own reason)."""
    if url.startswith("oci://"):
        name = url.removeprefix("oci://").split("@", 1)[0]
        host, _, path = name.partition("/")
        last = path.rsplit("/", 1)[-1]
        if ":" in last:  # a tag
            path = path[: len(path) - len(last)] + last.split(":", 1)[0]
        return f"oci://{host.lower()}/{path}"
    if url.startswith(("https://", "http://")):
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc.lower()}{parts.path}"
    return None


def evidence_problem(rules: GateRules, url: str) -> str | None:
    """Why the evidence URL is outside the policy's `provenance.evidence` (None: inside)."""
    if url.startswith(("https://", "http://")):
        parts = urlsplit(url)
        if parts.query or parts.fragment or parts.username or parts.password:
            return f"evidence {url} carries a query, fragment or credentials; give the plain directory URL"
    location = evidence_location(url)
    if not rules.evidence or location is None:
        return None
    if any(glob_match(pattern, location) for pattern in rules.evidence):
        return None
    return (f"evidence {location} matches none of {rules.who}'s provenance.evidence ({', '.join(rules.evidence)}); "
            "publish it where the policy allows, or ask a cluster administrator to add a pattern")


def _host_port(url: str) -> tuple[str, str, str] | None:
    """(scheme, host, host:port with the scheme's default port) of an http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    shown = f"[{host}]" if ":" in host else host
    return parts.scheme, host, f"{shown}:{port or (443 if parts.scheme == 'https' else 80)}"


def _listed(host: str, host_port: str, entries: Iterable[str]) -> bool:
    """host:port exactly, a bare host (any port), or `*.domain` (any name under it, any port)."""
    for entry in entries:
        entry = entry.lower().rstrip(".")
        if entry in (host, host_port):
            return True
        if entry.startswith("*.") and host.endswith(entry[1:]):
            return True
    return False


def registry_url(rules: GateRules, registry: str) -> str:
    """The base URL the registry host[:port] is reached at: https, or http for an operator's plain-HTTP one."""
    return f"{'http' if registry in rules.plain_http else 'https'}://{registry}"


def _plain_http_host(rules: GateRules, host: str, host_port: str) -> bool:
    return host_port in rules.plain_http or host in rules.plain_http


def realm_problem(rules: GateRules, registry: str, realm: str) -> str | None:
    """Why the token service a registry's Bearer challenge names may not be asked (None: it may)."""
    parsed = _host_port(realm)
    if parsed is None:
        return f"registry {registry} names a token service that is not an http(s) URL; nothing was sent"
    scheme, host, host_port = parsed
    own = _host_port(registry_url(rules, registry))
    if scheme == "http" and not _plain_http_host(rules, host, host_port):
        return (f"registry {registry} sends token requests to {host_port} over plain http; tokens are fetched over "
                "https only (http only for a loopback registry the operator reaches with --plain-http-registry)")
    if own is not None and host_port == own[2]:
        return None
    allowed = next((hosts for name, hosts in rules.token_hosts.items() if name.lower() == registry.lower()), ())
    if _listed(host, host_port, allowed):
        return None
    return (f"registry {registry} sends token requests to {host_port}, which is neither the registry's own host nor "
            f"in {rules.who}'s registry.tokenHosts for {registry}; nothing was sent there. If {host} is that "
            f"registry's token service, a cluster administrator can add it")


def redirect_problem(rules: GateRules, first: str, current: str, location: str) -> str | None:
    """Why a redirect from `current` to `location`, met while fetching `first`, may not be followed."""
    asked, now, hop = _host_port(first), _host_port(current), _host_port(location)
    origin = asked[2] if asked else first
    if hop is None:
        return f"{origin} redirected to something that is not an http(s) URL; not followed"
    scheme, host, host_port = hop
    if now is not None and now[0] == "https" and scheme == "http":
        return f"{origin} redirected from https to plain http ({host_port}); not followed"
    if scheme == "http" and not _plain_http_host(rules, host, host_port):
        return f"{origin} redirected to plain http ({host_port}); downloads are made over https only"
    if host_port == origin or _listed(host, host_port, rules.redirect_hosts):
        return None
    return (f"{origin} redirected to {host_port}, which is not in {rules.who}'s registry.redirectHosts; not followed. "
            f"If {host} is where that registry or server keeps its content, a cluster administrator can add it")


def connection_verdict(rules: GateRules, url: str, addresses: Iterable[str]) -> EgressVerdict:
    """The address rules for one connection of the gate, with the policy's loopback allowance."""
    return judge_connection(url, addresses, listed=(*rules.loopback_hosts, *rules.plain_http),
                            api_server=rules.api_server)
