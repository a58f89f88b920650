"""Find the one HotfixPolicy that governs a namespace and resolve what it references.

References (keys, the trusted root, credentials) are read from the operator's own namespace only:
policy authors are cluster administrators, and the operator never needs read access to Secrets
anywhere else."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from hotfix_operator.adapters.registry import RegistryCredentials
from hotfix_operator.adapters.watch_cache import WatchCache
from hotfix_operator.api import API_GROUP, API_VERSION
from hotfix_operator.core.check_model import Checks, HeaderRef
from hotfix_operator.core.gate_egress import GateRules
from hotfix_operator.core.governance import GovernanceRules
from hotfix_operator.core.selectors import selector_matches
from hotfix_operator.provenance import ProvenancePolicy, Rejected, load_policy


class PolicyProblem(Exception):
    """No usable policy. `transient` when the API server could not be read."""

    def __init__(self, reason: str, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.transient = transient


@dataclass(frozen=True)
class GitHubSettings:
    api_url: str
    postmortem_deadline_hours: int
    token: str | None = field(default=None, repr=False)
    app_id: int | None = None
    installation_id: int | None = None
    app_private_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CheckSettings:
    """The policy's checks section: checks every release runs, and where checks may connect."""

    checks: Checks = field(default_factory=Checks)
    allowed_hosts: tuple[str, ...] = ()
    # name -> base URL of a Prometheus that prometheus checks may query
    prometheus: dict[str, str] = field(default_factory=dict)
    # name -> the headers a header set adds (values read from Secrets at measurement time)
    header_sets: dict[str, tuple[HeaderRef, ...]] = field(default_factory=dict)


def check_settings(name: str, spec: dict[str, Any]) -> CheckSettings:
    section = spec.get("checks") or {}
    try:
        checks = Checks.model_validate({k: section.get(k) or [] for k in ("prePromotion", "postPromotion")})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PolicyProblem("PolicyInvalid", f"HotfixPolicy {name}: checks.{where}: {first['msg']}") from exc
    return CheckSettings(
        checks=checks,
        allowed_hosts=tuple(section.get("allowedHosts") or ()),
        prometheus={p["name"]: p["address"] for p in section.get("prometheus") or []},
        header_sets={h["name"]: tuple(HeaderRef(header=x["header"], secret_name=x["secretKeyRef"]["name"],
                                                key=x["secretKeyRef"]["key"]) for x in h["headers"])
                     for h in section.get("headerSets") or []},
    )

# how long a resolved policy is reused at the same resourceVersion (its Secrets and ConfigMaps are read again
# after that; the operator may not watch Secrets)
RESOLVED_SECONDS = 10.0


@dataclass(frozen=True)
class ResolvedPolicy:
    name: str
    provenance: ProvenancePolicy
    registry_credentials: RegistryCredentials | None = None
    github: GitHubSettings | None = None
    rules: GovernanceRules = field(default_factory=GovernanceRules)
    checks: CheckSettings = field(default_factory=CheckSettings)
    # where the provenance gate may connect: image and evidence patterns, token, redirect and loopback hosts
    egress: GateRules = field(default_factory=GateRules)
    # who hears of what happens to releases (their URLs are read from Secrets only when sending)
    receivers: tuple[Receiver, ...] = ()


@dataclass(frozen=True)
class Receiver:
    name: str
    style: Literal["webhook", "slack"]
    url_secret: str
    url_key: str


def receivers(spec: dict[str, Any]) -> tuple[Receiver, ...]:
    return tuple(Receiver(r["name"], "slack" if r["type"] == "slack" else "webhook", r["urlSecretRef"]["name"],
                          r["urlSecretRef"]["key"]) for r in (spec.get("notifications") or {}).get("receivers") or [])


def gate_rules(name: str, spec: dict[str, Any]) -> GateRules:
    """The policy's image and evidence patterns (spec.provenance) and registry hosts (spec.registry)."""
    provenance, registry = spec.get("provenance") or {}, spec.get("registry") or {}
    try:
        return GateRules(
            policy=name,
            images=tuple(str(p["glob"]) for p in provenance.get("images") or ()),
            evidence=tuple(str(p["glob"]) for p in provenance.get("evidence") or ()),
            token_hosts={str(t["registry"]): tuple(map(str, t.get("hosts") or ()))
                         for t in registry.get("tokenHosts") or ()},
            redirect_hosts=tuple(map(str, registry.get("redirectHosts") or ())),
            loopback_hosts=tuple(map(str, registry.get("loopbackHosts") or ())),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise PolicyProblem("PolicyInvalid", f"HotfixPolicy {name}: provenance.images and provenance.evidence are "
                            "lists of {glob: ...}; registry.tokenHosts a list of {registry, hosts}") from exc


def governance_rules(spec: dict[str, Any]) -> GovernanceRules:
    """The policy's approvals and sla sections over the defaults (the schema bounds every number)."""
    approvals, sla, defaults = spec.get("approvals") or {}, spec.get("sla") or {}, GovernanceRules()
    undo = spec.get("undo") or {}
    return GovernanceRules(
        required={**defaults.required, **{k: int(v) for k, v in (approvals.get("required") or {}).items()}},
        required_groups={k: tuple(v) for k, v in (approvals.get("requiredGroups") or {}).items()},
        wait_seconds={**defaults.wait_seconds, **{k: int(v) for k, v in (approvals.get("waitSeconds") or {}).items()}},
        expiry_seconds=int(approvals.get("expirySeconds", defaults.expiry_seconds)),
        sla_seconds=int(sla.get("targetSeconds", defaults.sla_seconds)),
        on_sla_breach="StopBeforeSwitch" if sla.get("onBreach") == "StopBeforeSwitch" else "Continue",
        undo_window_seconds=int(undo.get("windowSeconds", defaults.undo_window_seconds)),
        undo_approvals_required=int(undo.get("approvalsRequired", defaults.undo_approvals_required)),
        drill_approvals="Required" if approvals.get("drills") == "Required" else "NotRequired",
    )


# Reads one referenced value: ("ConfigMap" | "Secret", {"name", "key"}) -> text. In the operator it reads the
# API server; the `verify` command reads files instead.
ReferenceLookup = Callable[[Literal["ConfigMap", "Secret"], dict[str, str]], str]


def resolve_policy(policy: dict[str, Any], lookup: ReferenceLookup) -> ResolvedPolicy:
    """A HotfixPolicy manifest with every reference read through `lookup`, validated."""
    name, spec = policy["metadata"]["name"], policy["spec"]
    provenance = {k: v for k, v in spec["provenance"].items() if k not in ("images", "evidence")}
    keys = []
    for key in provenance.get("trustedKeys") or []:
        if "publicKey" in key:
            pem = key["publicKey"]
        elif "configMapKeyRef" in key:
            pem = lookup("ConfigMap", key["configMapKeyRef"])
        else:
            pem = lookup("Secret", key["secretKeyRef"])
        keys.append({"name": key["name"], "publicKey": pem})
    provenance["trustedKeys"] = keys
    if "trustedRoot" in provenance:
        provenance["trustedRoot"] = lookup("ConfigMap", provenance["trustedRoot"]["configMapKeyRef"])
    try:
        resolved = load_policy(provenance)
    except Rejected as exc:
        raise PolicyProblem("PolicyInvalid", f"HotfixPolicy {name}: {exc}") from exc
    credentials = None
    secret_ref = (spec.get("registry") or {}).get("credentialsSecretRef")
    if secret_ref:
        raw = lookup("Secret", {"name": secret_ref["name"], "key": ".dockerconfigjson"})
        try:
            credentials = RegistryCredentials.from_dockerconfigjson(raw.encode())
        except ValueError as exc:
            raise PolicyProblem("PolicyInvalid", f"HotfixPolicy {name}: {exc}") from exc
    return ResolvedPolicy(name, resolved, credentials, _github(spec.get("github"), lookup), governance_rules(spec),
                          check_settings(name, spec), gate_rules(name, spec), receivers(spec))


def _github(spec: dict[str, Any] | None, lookup: ReferenceLookup) -> GitHubSettings | None:
    if not spec:
        return None
    api_url = spec.get("apiUrl", "https://api.github.com")
    hours = int(spec.get("postmortemDeadlineHours", 24))
    if "tokenSecretRef" in spec:
        return GitHubSettings(api_url, hours, token=lookup("Secret", spec["tokenSecretRef"]).strip())
    app = spec["app"]
    return GitHubSettings(api_url, hours, app_id=int(app["appId"]), installation_id=int(app["installationId"]),
                          app_private_key=lookup("Secret", app["privateKeySecretRef"]))


class PolicyResolver:
    """Which HotfixPolicy applies to a namespace, resolved with the Secrets and ConfigMaps it names.

    With the operator's watch cache attached, the policies and the namespace's labels come from it, and a
    policy resolved in the last `RESOLVED_SECONDS` at the same resourceVersion is reused: an edited policy
    applies at once, an edited Secret or ConfigMap it names within that time."""

    def __init__(self, api: Any, operator_namespace: str, watch: WatchCache | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        # imported here, not at module level: `hotfix-operator verify` resolves policies from files and
        # never needs the Kubernetes client (~0.3 s to import)
        from hotfix_operator.adapters.kube_rest import KubeRest

        self.rest = KubeRest(api)
        self.api = api
        self.operator_namespace = operator_namespace
        self.watch = watch
        self._clock = clock
        # (policy uid, resourceVersion) -> (resolved, when)
        self._resolved: dict[tuple[str, str], tuple[ResolvedPolicy, float]] = {}

    def _policies_and_labels(self, namespace: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
        from kubernetes.client.exceptions import ApiException

        from hotfix_operator.adapters.kube_rest import cluster_path

        if self.watch is not None and self.watch.attached:
            labels = self.watch.namespace_labels(namespace)
            if labels is None:  # created a moment ago: the watch has not delivered it yet
                try:
                    labels = self._namespace_labels(namespace)
                except ApiException as exc:
                    raise PolicyProblem("PolicyUnavailable", f"cannot read namespace {namespace}: {exc.reason}",
                                        transient=True) from exc
            return self.watch.policies(), labels

        try:
            labels = self._namespace_labels(namespace)
            items: list[dict[str, Any]] = self.rest.get(
                cluster_path(f"{API_GROUP}/{API_VERSION}", "hotfixpolicies")).get("items") or []
        except ApiException as exc:
            raise PolicyProblem("PolicyUnavailable", f"cannot read HotfixPolicies: {exc.reason}",
                                transient=True) from exc
        return items, labels

    def _namespace_labels(self, namespace: str) -> dict[str, str]:
        from hotfix_operator.adapters.kube_rest import cluster_path

        found = self.rest.get(cluster_path("v1", "namespaces", namespace))
        return dict((found.get("metadata") or {}).get("labels") or {})

    def for_namespace(self, namespace: str) -> ResolvedPolicy:
        items, labels = self._policies_and_labels(namespace)
        selecting = [p for p in items if selector_matches(p["spec"].get("namespaceSelector") or {}, labels)]
        if not selecting:
            raise PolicyProblem("NoPolicy", f"no HotfixPolicy selects namespace {namespace} (labels {labels}); a "
                                "cluster administrator must create one that names the trusted signers for it")
        if len(selecting) > 1:
            names = ", ".join(sorted(p["metadata"]["name"] for p in selecting))
            raise PolicyProblem("PolicyConflict", f"namespace {namespace} is selected by several HotfixPolicies "
                                f"({names}); narrow their namespaceSelectors so exactly one applies")
        return self._memoised(selecting[0])

    def _memoised(self, policy: dict[str, Any]) -> ResolvedPolicy:
        meta = policy["metadata"]
        key = (str(meta.get("uid") or ""), str(meta.get("resourceVersion") or ""))
        if self.watch is None or not all(key):
            return self.resolve(policy)
        now = self._clock()
        found = self._resolved.get(key)
        if found is not None and now - found[1] <= RESOLVED_SECONDS:
            return found[0]
        resolved = self.resolve(policy)  # a PolicyProblem is never kept: the next reconcile reads again
        self._resolved = {k: v for k, v in self._resolved.items() if now - v[1] <= RESOLVED_SECONDS}
        self._resolved[key] = (resolved, now)
        return resolved

    def resolve(self, policy: dict[str, Any]) -> ResolvedPolicy:
        name = policy["metadata"]["name"]

        def lookup(kind: Literal["ConfigMap", "Secret"], ref: dict[str, str]) -> str:
            return self._value(name, kind, ref)

        return resolve_policy(policy, lookup)

    def secret_value(self, policy: str, name: str, key: str) -> str:
        """One key of a Secret in the operator's namespace, which `policy` names (a check's header)."""
        return self._value(policy, "Secret", {"name": name, "key": key})

    def _value(self, policy: str, kind: Literal["ConfigMap", "Secret"], ref: dict[str, str]) -> str:
        """One key of a ConfigMap or Secret in the operator's namespace (Secret values are base64)."""
        from kubernetes.client.exceptions import ApiException

        from hotfix_operator.adapters.kube_rest import namespaced_path

        plural = "configmaps" if kind == "ConfigMap" else "secrets"
        try:
            data = self.rest.get(namespaced_path("v1", self.operator_namespace, plural, ref["name"])).get("data") or {}
        except ApiException as exc:
            raise self._missing(policy, kind, ref, exc) from exc
        if ref["key"] not in data:
            raise PolicyProblem("PolicyInvalid", f"HotfixPolicy {policy}: {kind} {self.operator_namespace}/"
                                f"{ref['name']} has no key {ref['key']!r}")
        value = str(data[ref["key"]])
        return base64.b64decode(value).decode() if kind == "Secret" else value

    def _missing(self, policy: str, kind: str, ref: dict[str, str], exc: Any) -> PolicyProblem:
        if exc.status == 404:
            return PolicyProblem("PolicyInvalid", f"HotfixPolicy {policy} names {kind} {self.operator_namespace}/"
                                 f"{ref['name']}, which does not exist")
        return PolicyProblem("PolicyUnavailable", f"cannot read {kind} {ref['name']}: {exc.reason}", transient=True)


class PolicySource(Protocol):
    def for_namespace(self, namespace: str) -> ResolvedPolicy: ...


class ReconcilePolicies:
    """One reconcile's view of the policies: each namespace is resolved at most once, and its answer
    (or its problem) is reused by the image check, the provenance gate and the follow-ups. Made anew
    for every reconcile, so an edited policy takes effect at the next one."""

    def __init__(self, resolver: PolicyResolver) -> None:
        self._resolver = resolver
        self._seen: dict[str, ResolvedPolicy | PolicyProblem] = {}

    def for_namespace(self, namespace: str) -> ResolvedPolicy:
        if namespace not in self._seen:
            try:
                self._seen[namespace] = self._resolver.for_namespace(namespace)
            except PolicyProblem as problem:
                self._seen[namespace] = problem
        found = self._seen[namespace]
        if isinstance(found, PolicyProblem):
            raise found
        return found
