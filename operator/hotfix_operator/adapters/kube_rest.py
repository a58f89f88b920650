"""The reconciles' requests, sent on the kubernetes client's connection pool with its credentials but past its
typed API functions.

Why not the typed functions: each call goes through pydantic's argument validation, then walks the whole body
in `sanitize_for_serialization`, then `json.dumps` walks it again. For a status write (a 40-60 KB release with
its audit trail) those walks cost more than the round trip's own work, and the operator sends about 27 writes
per hotfix. Here a body is encoded once, by orjson (about 20 times faster than `json.dumps` on a status), and
answers are decoded by it too. A refusal raises the client's own `ApiException` (404, 409, ...) with the API
server's message, so callers handle errors as with the typed client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.client.rest import RESTResponse

from hotfix_operator.adapters.kind_watch import authorization

JSON = "application/json"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE = "application/strategic-merge-patch+json"


def cluster_path(api_version: str, plural: str, name: str | None = None) -> str:
    """The REST path of a cluster-scoped collection, or of one object in it: `v1` is the core group."""
    root = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{root}/{plural}" + ("" if name is None else f"/{quote(name, safe='')}")


def namespaced_path(api_version: str, namespace: str, plural: str, name: str | None = None,
                    subresource: str | None = None) -> str:
    """The REST path of a namespaced collection, or of one object in it: `v1` is the core group."""
    path = cluster_path(api_version, f"namespaces/{quote(namespace, safe='')}/{plural}", name)
    return path if subresource is None else f"{path}/{subresource}"


class KubeRest:
    """GET, POST, PATCH and DELETE of JSON, answered as the API server sent it (a dict, never a model)."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api

    def get(self, path: str, **query: str) -> dict[str, Any]:
        return self._json(self.request("GET", path, query=query))

    def write(self, method: str, path: str, body: Any, content_type: str = JSON) -> dict[str, Any]:
        """A write's answer: the object as stored. The answer is always read, so its connection goes back to the
        pool (an unread one would make the next request open a new TLS connection)."""
        return self._json(self.request(method, path, body, content_type=content_type))

    def delete(self, path: str, options: Mapping[str, Any]) -> None:
        """DELETE with a DeleteOptions body (propagation, preconditions)."""
        self.request("DELETE", path, dict(options))

    def request(self, method: str, path: str, body: Any = None, *, query: Mapping[str, str] | None = None,
                content_type: str = JSON) -> bytes:
        conf = self.api.configuration
        url = conf.host + path + (f"?{urlencode(query)}" if query else "")
        headers = {**self.api.default_headers, "Accept": JSON}
        if body is not None:
            headers["Content-Type"] = content_type
        token = authorization(conf)
        if token:
            headers["Authorization"] = token
        # the pool the client built from the kubeconfig: its TLS context, client certificate and keep-alive
        sent = self.api.rest_client.pool_manager.request(
            method, url, body=None if body is None else orjson.dumps(body), headers=headers, preload_content=False)
        response = RESTResponse(sent)
        data: bytes = response.read()  # type: ignore[no-untyped-call]  # read in full: the connection goes back
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(http_resp=response, body=data.decode("utf-8", "replace"), data=None)
        return data

    @staticmethod
    def _json(data: bytes) -> dict[str, Any]:
        decoded: dict[str, Any] = orjson.loads(data)
        return decoded
