"""The cluster as kubectl would reach it: --kubeconfig (else $KUBECONFIG, else ~/.kube/config),
--context, the namespace (-n, else the context's, else `default`), who the API server says you are
(a SelfSubjectReview, what `kubectl auth whoami` asks), and the API server's refusals as one line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from hotfix_operator.api import API_GROUP, API_VERSION, PLURAL

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"


class PluginError(Exception):
    """A failure to tell the user in one line, with the exit status to leave with."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = " ".join(message.split())  # one line, whatever the API server sent
        self.exit_code = exit_code


@dataclass(frozen=True)
class Identity:
    """The caller as the API server authenticated them."""

    username: str
    groups: tuple[str, ...]


@dataclass
class Connection:
    api: client.ApiClient
    namespace: str
    all_namespaces: bool = False

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def get(self, name: str) -> dict[str, Any]:
        return _object(call(lambda: self.custom.get_namespaced_custom_object(
            API_GROUP, API_VERSION, self.namespace, PLURAL, name), f"read {self.namespace}/{name}", self))

    def releases(self) -> list[dict[str, Any]]:
        if self.all_namespaces:
            body = call(lambda: self.custom.list_cluster_custom_object(API_GROUP, API_VERSION, PLURAL),
                        "list HotfixReleases in all namespaces", self)
        else:
            body = call(lambda: self.custom.list_namespaced_custom_object(
                API_GROUP, API_VERSION, self.namespace, PLURAL), f"list HotfixReleases in {self.namespace}", self)
        items: list[dict[str, Any]] = _object(body).get("items") or []
        return items

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        return _object(call(lambda: self.custom.create_namespaced_custom_object(
            API_GROUP, API_VERSION, self.namespace, PLURAL, manifest),
            f"create {self.namespace}/{manifest['metadata']['name']}", self))

    def patch(self, name: str, patch: list[dict[str, Any]] | dict[str, Any], action: str) -> dict[str, Any]:
        content_type = JSON_PATCH if isinstance(patch, list) else MERGE_PATCH
        return _object(call(lambda: self.custom.patch_namespaced_custom_object(
            API_GROUP, API_VERSION, self.namespace, PLURAL, name, patch, _content_type=content_type), action, self))

    def whoami(self) -> Identity:
        review = call(lambda: client.AuthenticationV1Api(self.api).create_self_subject_review(
            body=client.V1SelfSubjectReview(api_version="authentication.k8s.io/v1", kind="SelfSubjectReview")),
            "ask the API server who you are (SelfSubjectReview)", self)
        info = review.status.user_info
        return Identity(str(info.username), tuple(info.groups or ()))


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PluginError(f"the API server answered with {type(value).__name__}, not an object")
    return value


def connect(kubeconfig: str | None, context: str | None, namespace: str | None,
            all_namespaces: bool = False) -> Connection:
    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        api = config.new_client_from_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
    except (config.ConfigException, OSError) as error:
        where = kubeconfig or "$KUBECONFIG or ~/.kube/config"
        raise PluginError(f"cannot load the kubeconfig ({where}): {error}; pass --kubeconfig FILE or --context NAME",
                          exit_code=2) from error
    chosen = next((c for c in contexts if c["name"] == context), None) if context else active
    default = ((chosen or {}).get("context") or {}).get("namespace") or "default"
    return Connection(api, namespace or default, all_namespaces)


def call(request: Any, action: str, conn: Connection) -> Any:
    """Run one API request; a refusal or an unreachable server becomes a PluginError naming what to do."""
    try:
        return request()
    except ApiException as error:
        raise refusal(error, action, conn.namespace) from None
    except HTTPError as error:
        host = getattr(conn.api.configuration, "host", "the API server")
        raise PluginError(f"cannot {action}: cannot reach {host} ({type(error).__name__}); "
                          "check --kubeconfig and --context") from None


def refusal(error: ApiException, action: str, namespace: str) -> PluginError:
    """The API server's own message, prefixed by what was refused and followed by what to do."""
    try:
        body = json.loads(error.body or "{}")
    except ValueError:
        body = {}
    message = str(body.get("message") or error.reason or "no message")
    reason = str(body.get("reason") or error.reason or "")
    hint = advice(int(error.status or 0), message, namespace)
    return PluginError(f"cannot {action}: the API server refused ({error.status} {reason}): {message}"
                       + (f"; {hint}" if hint else ""))


def advice(code: int, message: str, namespace: str) -> str:
    """What to do about a refusal, where the API server's message does not already say it."""
    if code == 401:
        return "your credentials were not accepted; log in again or pick another --context"
    if code == 403 and " cannot " in message and "resource" in message:
        return (f"ask an administrator to bind you to hotfix-requester (file, abort your own) or hotfix-approver "
                f"(approve, reject, abort) in namespace {namespace}")
    if code == 404:
        return f"check the name and namespace: kubectl hotfix list -n {namespace}"
    if code == 409 and "already exists" in message:
        return "a HotfixRelease of that name exists; give another name (a release is never changed once filed)"
    if code == 422 and "Duplicate value" in message:
        return "you already decided on this release, and a decision cannot be changed (abort it to stop it)"
    return ""
