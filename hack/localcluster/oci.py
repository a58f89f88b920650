"""Push small OCI images and OCI image layouts to a registry with the distribution API (no Docker
engine here). Used by `make dev`, the tests and the benchmarks."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import ssl
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class PushedImage:
    registry: str
    repository: str
    digest: str
    manifest: bytes

    @property
    def reference(self) -> str:
        return f"{self.registry}/{self.repository}@{self.digest}"


class Pusher:
    def __init__(self, registry: str, ca_file: str | Path | None = None) -> None:
        self.registry = registry
        verify = ssl.create_default_context(cafile=str(ca_file)) if ca_file else True
        self.http = httpx.Client(base_url=f"https://{registry}", verify=verify, timeout=30)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Pusher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def push_blob(self, repository: str, data: bytes) -> str:
        digest = digest_of(data)
        if self.http.head(f"/v2/{repository}/blobs/{digest}").status_code == 200:
            return digest
        started = self.http.post(f"/v2/{repository}/blobs/uploads/")
        started.raise_for_status()
        location = started.headers["location"]
        separator = "&" if "?" in location else "?"
        done = self.http.put(f"{location}{separator}digest={digest}", content=data,
                             headers={"Content-Type": "application/octet-stream"})
        done.raise_for_status()
        return digest

    def push_manifest(self, repository: str, reference: str, manifest: bytes, media_type: str = OCI_MANIFEST) -> str:
        response = self.http.put(f"/v2/{repository}/manifests/{reference}", content=manifest,
                                 headers={"Content-Type": media_type})
        response.raise_for_status()
        return digest_of(manifest)

    def push_image(self, repository: str, tag: str, files: dict[str, bytes],
                   labels: dict[str, str] | None = None) -> PushedImage:
        """A one-layer image holding `files`; deterministic, so the same input gives the same digest."""
        layer = _tar_gz(files)
        diff_id = digest_of(gzip.decompress(layer))
        config = json.dumps({
            "architecture": "amd64", "os": "linux",
            "config": {"Labels": labels or {}, "Cmd": ["/app"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }, sort_keys=True).encode()
        manifest_obj: dict[str, Any] = {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": self.push_blob(repository, config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": self.push_blob(repository, layer), "size": len(layer)}],
        }
        manifest = json.dumps(manifest_obj, sort_keys=True).encode()
        digest = self.push_manifest(repository, tag, manifest)
        return PushedImage(self.registry, repository, digest, manifest)

    def push_artifact(self, repository: str, tag: str, files: dict[str, bytes]) -> PushedImage:
        """An OCI artifact with one layer per file, named by its title annotation (as `oras push` does)."""
        config = b"{}"
        layers = [{"mediaType": "application/octet-stream", "digest": self.push_blob(repository, data),
                   "size": len(data), "annotations": {"org.opencontainers.image.title": name}}
                  for name, data in sorted(files.items())]
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.hotfix.evidence.v1",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": self.push_blob(repository, config),
                       "size": len(config)},
            "layers": layers}, sort_keys=True).encode()
        digest = self.push_manifest(repository, tag, manifest)
        return PushedImage(self.registry, repository, digest, manifest)

    def push_layout(self, layout: Path, repository: str) -> list[str]:
        """Push every manifest of an OCI image layout (index.json + blobs/), keeping cosign's tags."""
        index = json.loads((layout / "index.json").read_text())
        manifests = index.get("manifests", [])
        # `cosign save` marks entries by kind; in a registry cosign keeps signatures and attestations
        # under tags derived from the image digest, which is where verifiers look for them.
        kinds = {(d.get("annotations") or {}).get("kind"): d for d in manifests}
        image = kinds.get("dev.cosignproject.cosign/imageIndex") or kinds.get("dev.cosignproject.cosign/image")
        suffixes = {"dev.cosignproject.cosign/atts": ".att", "dev.cosignproject.cosign/sigs": ".sig"}
        pushed: list[str] = []
        for descriptor in manifests:
            suffix = suffixes.get(str((descriptor.get("annotations") or {}).get("kind")))
            if image and suffix:
                tag = image["digest"].replace(":", "-", 1) + suffix
                descriptor = {**descriptor, "annotations": {"org.opencontainers.image.ref.name": tag}}
            pushed.extend(self._push_layout_manifest(layout, repository, descriptor))
        return pushed

    def _push_layout_manifest(self, layout: Path, repository: str, descriptor: dict[str, Any]) -> list[str]:
        raw = _layout_blob(layout, descriptor["digest"])
        manifest = json.loads(raw)
        pushed: list[str] = []
        for child in manifest.get("manifests", []):  # an index: its manifests first
            pushed.extend(self._push_layout_manifest(layout, repository, child))
        for blob in [manifest.get("config"), *manifest.get("layers", [])]:
            if blob:
                self.push_blob(repository, _layout_blob(layout, blob["digest"]))
        annotations = descriptor.get("annotations") or {}
        reference = annotations.get("org.opencontainers.image.ref.name") or descriptor["digest"]
        self.push_manifest(repository, reference, raw, manifest.get("mediaType") or descriptor["mediaType"])
        pushed.append(descriptor["digest"])
        return pushed


def _layout_blob(layout: Path, digest: str) -> bytes:
    algorithm, _, hexdigest = digest.partition(":")
    return (layout / "blobs" / algorithm / hexdigest).read_bytes()


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), mtime=0)
