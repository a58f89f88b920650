"""A small, strict client for the OCI distribution API (read side).

Why our own: the Python OCI clients we looked at either return parsed JSON (losing the exact bytes,
so the digest cannot be checked) or do not verify blob digests. Here every manifest and blob is
checked against the digest it was asked for, every read is size-limited, TLS verification is on,
and errors say whether retrying can help.

Where it connects: redirects are followed by hand, each hop judged (never off the host asked or the
policy's redirectHosts, never https to http), and a Bearer challenge's token service is asked only when
`core.gate_egress` allows its realm. Once the gate `restrict`s a client to a HotfixPolicy's rules, every
host is also resolved and its addresses judged (`core.egress`) before anything is sent to it.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from hotfix_operator.adapters.check_http import resolve
from hotfix_operator.core.gate_egress import GateRules, connection_verdict, realm_problem, redirect_problem
from hotfix_operator.formats import sha256_digest

MANIFEST_MEDIA_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

DEFAULT_MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # the distribution spec's recommended manifest limit
DEFAULT_MAX_BLOB_BYTES = 16 * 1024 * 1024  # signatures, attestations and evidence, not image layers

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_REPOSITORY = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_HOST = re.compile(r"^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?$")


class RegistryError(Exception):
    """A registry read failed. `transient` says whether retrying later can help."""

    def __init__(self, message: str, *, transient: bool, reason: str) -> None:
        super().__init__(message)
        self.transient = transient
        self.reason = reason


Resolver = Callable[[str], tuple[str, ...]]
MAX_REDIRECTS = 3


class Egress:
    """The gate's rules in the shell: a token realm and every redirect hop are judged before they are
    followed; with `judge_addresses` (a client restricted to a HotfixPolicy), every host is resolved and
    its addresses judged before anything is sent. A refusal is permanent and names the host."""

    def __init__(self, rules: GateRules, *, judge_addresses: bool, resolver: Resolver = resolve) -> None:
        self.rules = rules
        self.judge_addresses = judge_addresses
        self._resolve = resolver
        self._judged: set[str] = set()

    def connect(self, url: str) -> None:
        if not self.judge_addresses:
            return
        parsed = httpx.URL(url)
        base, host = f"{parsed.scheme}://{parsed.netloc.decode()}/", parsed.host
        if base in self._judged:
            return
        verdict = connection_verdict(self.rules, base, self._resolve(host) if host else ())
        if not verdict.ok:
            raise RegistryError(
                f"{verdict.problem}; nothing was sent. Link-local, metadata and API server addresses are never "
                f"reached; a host on loopback only when {self.rules.who} lists it in registry.loopbackHosts "
                "(or the operator reaches it with --plain-http-registry)", transient=False, reason="HostNotAllowed")
        self._judged.add(base)

    def realm(self, registry: str, realm: str) -> None:
        problem = realm_problem(self.rules, registry, realm)
        if problem:
            raise RegistryError(problem, transient=False, reason="TokenRealmNotAllowed")
        self.connect(realm)

    def redirect(self, first: str, current: str, location: str) -> None:
        problem = redirect_problem(self.rules, first, current, location)
        if problem:
            raise RegistryError(problem, transient=False, reason="RedirectNotAllowed")
        self.connect(location)


def speaks_plain_http(exc: Exception) -> bool:
    """A TLS handshake answered by an HTTP server: OpenSSL reads "HTTP/1." as a record header."""
    text = f"{exc} {exc.__cause__ or ''}"
    return any(sign in text for sign in ("WRONG_VERSION_NUMBER", "wrong version number", "http request"))


class DigestMismatchError(RegistryError):
    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False, reason="DigestMismatch")


class NotFoundError(RegistryError):
    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False, reason="ImageNotFound")


@dataclass(frozen=True)
class ImageReference:
    """registry/repository@sha256:<hex> (or :tag, which the operator refuses for production use)."""

    registry: str
    repository: str
    digest: str | None = None
    tag: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        if len(text) > 1024:
            raise ValueError("image reference is longer than 1024 characters")
        rest, _at, digest_text = text.partition("@")
        digest = digest_text if _at else None
        if digest is not None and not _DIGEST.match(digest):
            raise ValueError(f"image digest {digest!r} is not sha256:<64 lowercase hex>")
        host, _, path = rest.partition("/")
        if not path or not ("." in host or ":" in host or host == "localhost"):
            raise ValueError(f"image reference {text!r} must name its registry host, e.g. registry.example.com/app")
        if not _HOST.match(host):
            raise ValueError(f"registry host {host!r} is not a valid host[:port]")
        tag = None
        last_slash = path.rfind("/")
        colon = path.rfind(":")
        if colon > last_slash:
            path, tag = path[:colon], path[colon + 1 :]
            if not _TAG.match(tag):
                raise ValueError(f"image tag {tag!r} is not a valid tag")
        if not _REPOSITORY.match(path):
            raise ValueError(f"repository {path!r} is not a valid OCI repository name")
        return cls(registry=host, repository=path, digest=digest, tag=tag)

    def __str__(self) -> str:
        ref = f"{self.registry}/{self.repository}"
        if self.tag:
            ref += f":{self.tag}"
        if self.digest:
            ref += f"@{self.digest}"
        return ref


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: Any) -> Descriptor:
        if not isinstance(obj, dict):
            raise ValueError("descriptor is not an object")
        media_type, digest, size = obj.get("mediaType"), obj.get("digest"), obj.get("size")
        if not isinstance(media_type, str) or not isinstance(digest, str) or not _DIGEST.match(digest):
            raise ValueError("descriptor needs a mediaType and a sha256 digest")
        if not isinstance(size, int) or size < 0:
            raise ValueError("descriptor size must be a non-negative integer")
        annotations = obj.get("annotations") or {}
        if not isinstance(annotations, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
        ):
            raise ValueError("descriptor annotations must map strings to strings")
        artifact_type = obj.get("artifactType")
        return cls(media_type, digest, size, artifact_type if isinstance(artifact_type, str) else None, annotations)


@dataclass(frozen=True)
class Manifest:
    """A manifest exactly as served: `raw` hashes to `digest`."""

    media_type: str
    digest: str
    raw: bytes

    def json(self) -> dict[str, Any]:
        value = json.loads(self.raw)
        if not isinstance(value, dict):
            raise RegistryError("manifest is not a JSON object", transient=False, reason="MalformedManifest")
        return value

    def layers(self) -> list[Descriptor]:
        try:
            return [Descriptor.from_json(layer) for layer in self.json().get("layers", [])]
        except ValueError as exc:
            raise RegistryError(f"manifest {self.digest}: {exc}", transient=False, reason="MalformedManifest") from exc


@dataclass(frozen=True)
class RegistryCredentials:
    """Per-host username/password, as found in a kubernetes.io/dockerconfigjson Secret."""

    by_host: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def from_dockerconfigjson(cls, raw: bytes) -> RegistryCredentials:
        try:
            auths = json.loads(raw).get("auths", {})
        except (ValueError, AttributeError) as exc:
            raise ValueError("registry credentials are not valid dockerconfigjson") from exc
        by_host: dict[str, tuple[str, str]] = {}
        for host, entry in auths.items():
            host = re.sub(r"^https?://", "", host).split("/")[0]
            if "auth" in entry:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            else:
                user, password = entry.get("username", ""), entry.get("password", "")
            by_host[host] = (user, password)
        return cls(by_host)

    def __repr__(self) -> str:  # never print secrets
        return f"RegistryCredentials(hosts={sorted(self.by_host)})"


def tls_verify(ca_file: str | None) -> ssl.SSLContext | bool:
    """What httpx verifies servers with: the CA file's context, or the default trust store."""
    return ssl.create_default_context(cafile=ca_file) if ca_file else True


class RegistryConnections(httpx.BaseTransport):
    """One pool of registry connections, with one TLS context, for every RegistryClient the operator makes.

    Each gate check makes its own client (its HotfixPolicy's credentials, tokens and egress rules); without a
    shared pool each would also load the CA file and open new TLS connections, a handshake per release and
    registry. Sharing connections does not widen where a client may connect: every request is judged by the
    client's own rules before it is sent, and a pooled connection only carries requests to the host and port
    it was opened to. A client's close leaves the pool open; `shutdown` closes it."""

    def __init__(self, ca_file: str | None = None) -> None:
        self._transport = httpx.HTTPTransport(verify=tls_verify(ca_file))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._transport.handle_request(request)

    def close(self) -> None:
        """Called by each client's close: the pool stays open for the next one."""

    def shutdown(self) -> None:
        self._transport.close()


class RegistryClient:
    """Reads manifests, blobs and referrers. Counts requests, so benchmarks can report round trips."""

    def __init__(
        self,
        *,
        credentials: RegistryCredentials | None = None,
        ca_file: str | None = None,
        plain_http_hosts: frozenset[str] = frozenset(),
        timeout_seconds: float = 10.0,
        max_manifest_bytes: int = DEFAULT_MAX_MANIFEST_BYTES,
        max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES,
        connections: RegistryConnections | None = None,
    ) -> None:
        """`connections`: a shared pool (its TLS context replaces `ca_file`); None: this client's own."""
        for host in plain_http_hosts:
            if not _is_loopback(host):
                raise ValueError(f"plain HTTP is allowed for loopback registries only, not {host!r}")
        self._credentials = credentials or RegistryCredentials()
        self._plain_http_hosts = plain_http_hosts
        self._max_manifest_bytes = max_manifest_bytes
        self._max_blob_bytes = max_blob_bytes
        self._tokens: dict[tuple[str, str], str] = {}
        if connections is not None:
            self._http = httpx.Client(transport=connections, timeout=timeout_seconds, follow_redirects=False)
        else:
            self._http = httpx.Client(verify=tls_verify(ca_file), timeout=timeout_seconds, follow_redirects=False)
        self.request_count = 0
        # until the gate restricts it, a client judges realms and redirects (own host only), not addresses
        self.egress = Egress(GateRules(plain_http=plain_http_hosts), judge_addresses=False)

    def restrict(self, rules: GateRules, resolver: Resolver = resolve) -> RegistryClient:
        """From now on connect only where `rules` (a HotfixPolicy's, with this client's plain-HTTP hosts) allow."""
        self.egress = Egress(dataclasses.replace(rules, plain_http=self._plain_http_hosts), judge_addresses=True,
                             resolver=resolver)
        return self

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- reads ---------------------------------------------------------------------------------

    def get_manifest(self, image: ImageReference, reference: str | None = None) -> Manifest:
        """Fetch a manifest by digest (verified) or tag (the digest is computed from the bytes)."""
        reference = reference or image.digest or image.tag
        if reference is None:
            raise ValueError("a manifest reference needs a digest or a tag")
        path = f"/v2/{image.repository}/manifests/{reference}"
        response = self._get(image, path, {"Accept": ", ".join(MANIFEST_MEDIA_TYPES)})
        raw = self._read_limited(response, self._max_manifest_bytes, f"manifest {reference}")
        actual = sha256_digest(raw)
        if _DIGEST.match(reference) and actual != reference:
            raise DigestMismatchError(
                f"registry served manifest bytes hashing to {actual} for {image.registry}/{image.repository}"
                f"@{reference}; refusing them"
            )
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        try:
            declared = json.loads(raw).get("mediaType")
        except (ValueError, AttributeError) as exc:
            raise RegistryError(f"manifest {reference} is not JSON", transient=False,
                                reason="MalformedManifest") from exc
        return Manifest(media_type=declared or media_type, digest=actual, raw=raw)

    def get_blob(self, image: ImageReference, digest: str, max_bytes: int | None = None) -> bytes:
        if not _DIGEST.match(digest):
            raise RegistryError(f"blob digest {digest!r} is not sha256", transient=False, reason="MalformedManifest")
        response = self._get(image, f"/v2/{image.repository}/blobs/{digest}", {}, follow=True)
        data = self._read_limited(response, max_bytes or self._max_blob_bytes, f"blob {digest}")
        actual = sha256_digest(data)
        if actual != digest:
            raise DigestMismatchError(f"blob {digest} from {image.registry}/{image.repository} hashes to {actual}")
        return data

    def get_referrers(self, image: ImageReference, digest: str) -> list[Descriptor] | None:
        """OCI 1.1 referrers of `digest`; None when the registry does not implement the API."""
        try:
            response = self._get(image, f"/v2/{image.repository}/referrers/{digest}", {"Accept": OCI_INDEX})
        except NotFoundError:
            return None
        raw = self._read_limited(response, self._max_manifest_bytes, f"referrers of {digest}")
        try:
            index = json.loads(raw)
            return [Descriptor.from_json(d) for d in index.get("manifests", [])]
        except (ValueError, AttributeError) as exc:
            raise RegistryError(f"referrers index of {digest} is malformed: {exc}", transient=False,
                                reason="MalformedManifest") from exc

    # -- HTTP ----------------------------------------------------------------------------------

    def _base_url(self, host: str) -> str:
        scheme = "http" if host in self._plain_http_hosts else "https"
        return f"{scheme}://{host}"

    def _get(self, image: ImageReference, path: str, headers: dict[str, str], follow: bool = False) -> httpx.Response:
        url = self._base_url(image.registry) + path
        auth_headers = dict(headers)
        token = self._tokens.get((image.registry, image.repository))
        if token:
            auth_headers["Authorization"] = token
        response = self._send(url, auth_headers, follow)
        if response.status_code == 401:
            response.close()
            challenge = response.headers.get("www-authenticate", "")
            self._tokens[(image.registry, image.repository)] = self._authorize(image, challenge)
            auth_headers["Authorization"] = self._tokens[(image.registry, image.repository)]
            response = self._send(url, auth_headers, follow)
        if response.status_code == 200:
            return response
        response.close()
        where = f"{image.registry}/{image.repository}"
        if response.status_code == 404:
            raise NotFoundError(f"{where}: {path.rsplit('/', 1)[-1]} not found (HTTP 404)")
        if response.status_code in (401, 403):
            raise RegistryError(f"{where}: access denied (HTTP {response.status_code}); check the registry "
                                "credentials Secret named by the HotfixPolicy", transient=False, reason="RegistryAuth")
        transient = response.status_code == 429 or response.status_code >= 500
        raise RegistryError(f"{where}: HTTP {response.status_code} for {path}", transient=transient,
                            reason="RegistryUnavailable" if transient else "RegistryError")

    def _send(self, url: str, headers: dict[str, str], follow: bool) -> httpx.Response:
        first = url
        for _hop in range(MAX_REDIRECTS + 1):  # blob reads may redirect to storage; manifests must not
            self.egress.connect(url)
            self.request_count += 1
            try:
                response = self._http.send(self._http.build_request("GET", url, headers=headers), stream=True)
            except httpx.TransportError as exc:
                host = httpx.URL(url).netloc.decode()
                if speaks_plain_http(exc):
                    # a set-up mistake with an obvious fix, not an outage: retrying cannot help
                    raise RegistryError(
                        f"registry {host} answered in plain HTTP, not TLS; if it is a registry on this machine, "
                        f"allow it explicitly (hotfix-operator verify --insecure-registry {host}, or hotfix-operator "
                        f"run --plain-http-registry {host}; loopback only), otherwise serve it over TLS",
                        transient=False, reason="RegistryPlainHTTP") from exc
                raise RegistryError(f"cannot reach {url.split('/v2/')[0]}: {type(exc).__name__}: {exc}",
                                    transient=True, reason="RegistryUnavailable") from exc
            if follow and response.status_code in (301, 302, 303, 307, 308) and "location" in response.headers:
                response.close()
                try:
                    location = str(httpx.URL(url).join(response.headers["location"]))
                except httpx.InvalidURL:
                    location = response.headers["location"][:200]
                self.egress.redirect(first, url, location)
                url = location
                headers = {k: v for k, v in headers.items() if k != "Authorization"}
                continue
            return response
        raise RegistryError(f"{httpx.URL(first).netloc.decode()} redirected more than {MAX_REDIRECTS} times for "
                            f"{httpx.URL(first).path}; not followed", transient=False, reason="RedirectNotAllowed")

    def _authorize(self, image: ImageReference, challenge: str) -> str:
        user_password = self._credentials.by_host.get(image.registry)
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic":
            if not user_password:
                raise RegistryError(f"{image.registry} requires credentials and none are configured",
                                    transient=False, reason="RegistryAuth")
            return "Basic " + base64.b64encode(":".join(user_password).encode()).decode()
        if scheme.lower() != "bearer":
            raise RegistryError(f"{image.registry} asked for unsupported auth {scheme!r}", transient=False,
                                reason="RegistryAuth")
        fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
        realm = fields.get("realm")
        if not realm:
            raise RegistryError(f"{image.registry} bearer challenge has no realm", transient=False,
                                reason="RegistryAuth")
        self.egress.realm(image.registry, realm)
        where = httpx.URL(realm).netloc.decode()
        query = {"service": fields.get("service", ""), "scope": f"repository:{image.repository}:pull"}
        self.request_count += 1
        try:
            response = self._http.get(realm, params=query, auth=user_password)
        except httpx.TransportError as exc:
            raise RegistryError(f"cannot reach the token service {where} of {image.registry}: {type(exc).__name__}",
                                transient=True, reason="RegistryUnavailable") from exc
        if response.status_code != 200:
            hint = ("; check the registry credentials Secret named by the HotfixPolicy"
                    if response.status_code in (401, 403) else "")
            raise RegistryError(f"the token service {where} of {image.registry} answered HTTP "
                                f"{response.status_code}{hint}", transient=response.status_code >= 500,
                                reason="RegistryAuth")
        try:
            body = response.json()
        except ValueError:
            body = None
        token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
        if not isinstance(token, str):
            raise RegistryError(f"the token service {where} of {image.registry} returned no token", transient=False,
                                reason="RegistryAuth")
        return f"Bearer {token}"

    @staticmethod
    def _read_limited(response: httpx.Response, limit: int, what: str) -> bytes:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            response.close()
            raise RegistryError(f"{what} is {declared} bytes, over the {limit}-byte limit", transient=False,
                                reason="TooLarge")
        chunks: list[bytes] = []
        total = 0
        try:
            for chunk in response.iter_bytes():
                total += len(chunk)
                if total > limit:
                    raise RegistryError(f"{what} exceeds the {limit}-byte limit", transient=False, reason="TooLarge")
                chunks.append(chunk)
        except httpx.TransportError as exc:
            raise RegistryError(f"reading {what} failed: {exc}", transient=True, reason="RegistryUnavailable") from exc
        finally:
            response.close()
        return b"".join(chunks)


def _is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return name in ("localhost", "[::1]") or name.startswith("127.")
