"""Fetch the optional evidence bundle a HotfixRelease names (spec.artifact.evidence):

- oci://registry/repository@sha256:<digest> — an OCI artifact with one layer per file, each named by
  its `org.opencontainers.image.title` annotation (what `oras push` writes); every byte digest-checked.
- https://host/path/ — a directory holding SHA256SUMS and the files it lists (the seeds' release assets).

The verifier then checks the files against SHA256SUMS and provenance.json against the verified
provenance; here we only fetch, with limits, and say whether a failure is worth retrying. Where: the
registry client's egress rules judge every https request and each redirect hop (followed by hand)."""

from __future__ import annotations

import httpx

from hotfix_operator.adapters.registry import (
    MAX_REDIRECTS,
    Egress,
    ImageReference,
    RegistryClient,
    RegistryError,
    tls_verify,
)
from hotfix_operator.provenance import EvidenceFiles

TITLE = "org.opencontainers.image.title"
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_FILES = 32


def fetch_evidence(reference: str, registry: RegistryClient, ca_file: str | None = None) -> EvidenceFiles:
    if reference.startswith("oci://"):
        return _from_registry(reference.removeprefix("oci://"), registry)
    if reference.startswith("https://"):
        return _from_https(reference, ca_file, registry.egress)
    raise RegistryError(f"evidence reference {reference!r} must start with oci:// or https://", transient=False,
                        reason="EvidenceMismatch")


def _from_registry(text: str, registry: RegistryClient) -> EvidenceFiles:
    try:
        artifact = ImageReference.parse(text)
    except ValueError as exc:
        raise RegistryError(f"evidence {text}: {exc}", transient=False, reason="EvidenceMismatch") from exc
    if artifact.digest is None:
        raise RegistryError(f"evidence oci://{text} must be pinned by digest", transient=False,
                            reason="NotDigestPinned")
    layers = registry.get_manifest(artifact).layers()
    if len(layers) > MAX_FILES:
        raise RegistryError(f"evidence oci://{text} has {len(layers)} files, more than {MAX_FILES}",
                            transient=False, reason="TooLarge")
    files: dict[str, bytes] = {}
    for layer in layers:
        name = layer.annotations.get(TITLE)
        if not name or "/" in name or name in files:
            raise RegistryError(f"evidence oci://{text}: every layer needs a distinct plain file name in {TITLE}",
                                transient=False, reason="EvidenceMismatch")
        files[name] = registry.get_blob(artifact, layer.digest, max_bytes=MAX_FILE_BYTES)
    return EvidenceFiles(files)


def _from_https(base: str, ca_file: str | None, egress: Egress) -> EvidenceFiles:
    base = base if base.endswith("/") else base.rsplit("/", 1)[0] + "/"
    with httpx.Client(verify=tls_verify(ca_file), timeout=30, follow_redirects=False) as http:
        sums = _get(http, base + "SHA256SUMS", egress)
        names = []
        for line in sums.decode(errors="replace").splitlines():
            parts = line.split()
            if len(parts) == 2:
                names.append(parts[1].lstrip("*"))
        if len(names) > MAX_FILES or any("/" in n or n.startswith(".") for n in names):
            raise RegistryError(f"evidence {base}SHA256SUMS lists unusable file names", transient=False,
                                reason="EvidenceMismatch")
        files = {"SHA256SUMS": sums}
        for name in names:
            files[name] = _get(http, base + name, egress)
    return EvidenceFiles(files)


def _get(http: httpx.Client, first: str, egress: Egress) -> bytes:
    url = first
    for _hop in range(MAX_REDIRECTS + 1):
        egress.connect(url)
        location = _read(http, url)
        if isinstance(location, bytes):
            return location
        egress.redirect(first, url, location)
        url = location
    raise RegistryError(f"evidence {first} redirected more than {MAX_REDIRECTS} times; not followed",
                        transient=False, reason="RedirectNotAllowed")


def _read(http: httpx.Client, url: str) -> bytes | str:
    """The body of `url`, or where it redirects to."""
    try:
        with http.stream("GET", url) as response:
            if response.status_code in (301, 302, 303, 307, 308) and "location" in response.headers:
                try:
                    return str(httpx.URL(url).join(response.headers["location"]))
                except httpx.InvalidURL:
                    return response.headers["location"][:200]
            if response.status_code != 200:
                transient = response.status_code >= 500 or response.status_code == 429
                raise RegistryError(f"evidence {url}: HTTP {response.status_code}", transient=transient,
                                    reason="RegistryUnavailable" if transient else "EvidenceMismatch")
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > MAX_FILE_BYTES:
                    raise RegistryError(f"evidence {url} exceeds {MAX_FILE_BYTES} bytes", transient=False,
                                        reason="TooLarge")
            return bytes(data)
    except httpx.TransportError as exc:
        raise RegistryError(f"cannot fetch evidence {url}: {exc}", transient=True,
                            reason="RegistryUnavailable") from exc
