"""The API server as one local identity sees it: plain HTTPS with the client certificate from that
identity's kubeconfig, so a test reads exactly what the API server answered (status code, reason,
message) instead of kubectl's rendering of it."""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

RELEASES = "/apis/hotfix.dev/v1alpha1/namespaces/{namespace}/hotfixreleases"


@dataclass(frozen=True)
class Answer:
    code: int
    body: dict[str, Any]

    @property
    def reason(self) -> str:
        """The Status reason of a refusal (Forbidden, Invalid, ...); empty for an object."""
        return str(self.body.get("reason", "")) if self.body.get("kind") == "Status" else ""

    @property
    def message(self) -> str:
        return str(self.body.get("message", ""))


class ApiAs:
    """Writes HotfixReleases as the identity of `kubeconfig` (the first user, cluster and context)."""

    def __init__(self, kubeconfig: Path) -> None:
        config = json.loads(kubeconfig.read_text())
        cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
        context = ssl.create_default_context(cafile=cluster["certificate-authority"])
        context.load_cert_chain(user["client-certificate"], user["client-key"])
        self._http = httpx.Client(base_url=cluster["server"], verify=context, timeout=30)

    def create(self, namespace: str, manifest: dict[str, Any], *, dry_run: bool = False) -> Answer:
        params = {"dryRun": "All"} if dry_run else {}
        response = self._http.post(RELEASES.format(namespace=namespace), json=manifest, params=params)
        return Answer(response.status_code, response.json())

    def patch(self, namespace: str, name: str, patch: list[dict[str, Any]] | dict[str, Any]) -> Answer:
        """A JSON patch (a list of operations) or a JSON merge patch (an object), as kubectl patch sends."""
        content_type = "application/json-patch+json" if isinstance(patch, list) else "application/merge-patch+json"
        response = self._http.patch(f"{RELEASES.format(namespace=namespace)}/{name}", content=json.dumps(patch),
                                    headers={"Content-Type": content_type})
        return Answer(response.status_code, response.json())

    def close(self) -> None:
        self._http.close()
