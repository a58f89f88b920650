"""The HotfixRelease `kubectl hotfix create` files: from a file (-f), from flags, or a file with flags
on top; `requestedBy` filled in with the caller's own name. Pure: reading the file and asking who
the caller is happen in the command."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

from hotfix_operator.api import ANNOTATION_REQUESTED_THROUGH, API_GROUP, API_VERSION, KIND
from hotfix_operator.plugin.validation import Problem

# flag (argparse dest) -> where it goes in spec; the order is the order of `create --help`
SPEC_FLAGS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("version", ("version",), "release version, e.g. 4.1.2-hotfix.1 (the tag becomes v<version>)"),
    ("commit", ("commitSha",), "the full 40-hex SHA of the commit released"),
    ("justification", ("justification",), "why this cannot wait for the normal pipeline (>= 50 characters)"),
    ("ticket", ("ticketUrl",), "https:// link to the incident ticket"),
    ("severity", ("severity",), "P0 or P1"),
    ("risk", ("riskLevel",), "low, medium or high (sets how many approvals are needed)"),
    ("deployment", ("target", "deployment"), "the production Deployment"),
    ("service", ("target", "service"), "its active Service"),
    ("preview_service", ("target", "previewService"), "an optional preview Service"),
    ("container", ("target", "container"), "the container whose image is replaced"),
    ("image", ("artifact", "image"), "the hotfix image, by digest: registry/repo@sha256:<64 hex>"),
    ("source_repo", ("artifact", "sourceRepository"), "where it was built from, e.g. github.com/acme/checkout"),
    ("evidence", ("artifact", "evidence"), "optional evidence bundle: oci://... or https://..."),
    ("progress_deadline_seconds", ("rollout", "progressDeadlineSeconds"), "seconds green may take to come up"),
    ("bake_seconds", ("rollout", "bakeSeconds"), "seconds traffic stays on green, watched"),
    ("scale_down_delay_seconds", ("rollout", "scaleDownDelaySeconds"), "seconds green is kept after the fold"),
)
INT_FLAGS = frozenset({"progress_deadline_seconds", "bake_seconds", "scale_down_delay_seconds"})
# spec field -> the flag that sets it, for naming a missing field the way the user can fix it
FLAG_OF: dict[str, str] = {"spec." + ".".join(path): "--" + dest.replace("_", "-") for dest, path, _ in SPEC_FLAGS}


def default_name(spec: dict[str, Any]) -> str | None:
    """`<deployment>-<version with dots as dashes>`, e.g. checkout-4-1-2-hotfix-1, as in the README."""
    deployment, version = (spec.get("target") or {}).get("deployment"), spec.get("version")
    if not isinstance(deployment, str) or not isinstance(version, str):
        return None
    name = re.sub(r"[^a-z0-9-]+", "-", f"{deployment}-{version}".lower()).strip("-")
    return name[:63].rstrip("-") or None


def build(base: dict[str, Any] | None, flags: dict[str, Any], name: str | None, namespace: str | None,
          auto_rollback: bool | None) -> dict[str, Any]:
    """The manifest: `base` (a file's content, or nothing), every flag given set on top of it."""
    manifest = copy.deepcopy(base) if base else {}
    manifest.setdefault("apiVersion", f"{API_GROUP}/{API_VERSION}")
    manifest.setdefault("kind", KIND)
    meta = manifest.setdefault("metadata", {})
    spec = manifest.setdefault("spec", {})
    for dest, path, _ in SPEC_FLAGS:
        value = flags.get(dest)
        if value is not None:
            _set(spec, path, value)
    if auto_rollback is not None:
        _set(spec, ("rollout", "autoRollback"), auto_rollback)
    if name:
        meta["name"] = name
    elif not meta.get("name") and (derived := default_name(spec)):
        meta["name"] = derived
    if namespace:
        meta["namespace"] = namespace
    return manifest


def _set(spec: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = spec
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def fill_requester(manifest: dict[str, Any], username: str) -> None:
    """requestedBy is you, unless the manifest already says someone (checked in admission_problems)."""
    manifest["spec"].setdefault("requestedBy", username)


def admission_problems(manifest: dict[str, Any], username: str) -> Iterator[Problem]:
    """What the admission policy would refuse at creation, said before it is sent."""
    spec = manifest.get("spec") or {}
    through = ((manifest.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_REQUESTED_THROUGH)
    requested_by = spec.get("requestedBy")
    if through is None and isinstance(requested_by, str) and requested_by != username:
        yield Problem("spec.requestedBy", f"must be your own user name, {username}, not {requested_by}: "
                                          "leave it out and kubectl hotfix fills it in")
    if through is not None and through != username:
        yield Problem(f"metadata.annotations[{ANNOTATION_REQUESTED_THROUGH}]", f"must name you, {username}")
    if (spec.get("approval") or {}).get("approvals"):
        yield Problem("spec.approval.approvals", "a new HotfixRelease cannot carry approvals; approvers add theirs "
                                                 "after it is filed (kubectl hotfix approve NAME)")
    if spec.get("abort") is not None:
        yield Problem("spec.abort", "a new HotfixRelease cannot be aborted already; leave spec.abort out")
    ns = (manifest.get("metadata") or {}).get("namespace")
    if ns is not None and not isinstance(ns, str):
        yield Problem("metadata.namespace", "must be a string")


def with_flag_hints(problems: list[Problem]) -> list[Problem]:
    """A missing field names the flag that sets it: `spec.commitSha: is required (--commit)`."""
    return [Problem(p.field, f"{p.message} ({FLAG_OF[p.field]})") if p.message == "is required" and p.field in FLAG_OF
            else p for p in problems]
