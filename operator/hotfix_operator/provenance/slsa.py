"""SLSA provenance (v0.2 and v1): the builder, source repository and commit an artifact came from."""

from __future__ import annotations

from dataclasses import dataclass

from .reasons import Reason, Rejected
from .sourcerepo import SourceLocation, normalize_commit, parse_source_uri
from .statement import Statement
from .strictjson import JsonObject, JsonValue, as_object, get_object, get_str, optional_list, optional_object

SLSA_PROVENANCE_V02 = "https://slsa.dev/provenance/v0.2"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
SLSA_PROVENANCE_TYPES = (SLSA_PROVENANCE_V02, SLSA_PROVENANCE_V1)


@dataclass(frozen=True)
class BuildFacts:
    predicate_type: str
    builder_id: str
    source_repository: str
    source_ref: str | None
    commit: str


@dataclass(frozen=True)
class _GitSource:
    location: SourceLocation
    commit: str | None
    where: str


def _git_source(uri: str, digest: JsonObject | None, where: str) -> _GitSource:
    try:
        location = parse_source_uri(uri)
    except ValueError as exc:
        raise Rejected(Reason.SOURCE_MISMATCH, f"provenance {where} {uri!r}: {exc}") from None
    commit: str | None = None
    if digest is not None:
        raw = digest.get("gitCommit", digest.get("sha1"))
        if raw is not None:
            try:
                commit = normalize_commit(str(raw))
            except ValueError as exc:
                raise Rejected(Reason.COMMIT_MISMATCH, f"provenance {where} commit: {exc}") from None
    return _GitSource(location=location, commit=commit, where=where)


def _git_dependencies(entries: list[JsonValue] | None, where: str) -> list[_GitSource]:
    sources = []
    for index, raw in enumerate(entries or []):
        entry = as_object(raw, f"provenance {where}[{index}]")
        uri = entry.get("uri")
        if isinstance(uri, str) and uri.startswith("git+"):
            digest = optional_object(entry, "digest", f"provenance {where}[{index}]")
            sources.append(_git_source(uri, digest, f"{where}[{index}]"))
    return sources


def _agree(primary: _GitSource | None, others: list[_GitSource]) -> tuple[SourceLocation, str]:
    """Pick the source and make sure every mention of the same repository names the same commit."""
    if primary is None:
        if not others:
            raise Rejected(Reason.SOURCE_MISMATCH, "provenance names no git source repository")
        primary = others[0]
    commit = primary.commit
    for other in others:
        if other.location.repository != primary.location.repository:
            continue
        if other.commit is not None:
            if commit is not None and other.commit != commit:
                raise Rejected(
                    Reason.COMMIT_MISMATCH,
                    f"provenance disagrees with itself: {primary.where} commit {commit} "
                    f"≠ {other.where} commit {other.commit}",
                )
            commit = other.commit
    if commit is None:
        raise Rejected(Reason.COMMIT_MISMATCH, f"provenance names no commit for {primary.location.repository}")
    return primary.location, commit


def _v02(predicate: JsonObject) -> BuildFacts:
    what = "SLSA v0.2 predicate"
    builder_id = get_str(get_object(predicate, "builder", what), "id", f"{what}.builder")
    invocation = optional_object(predicate, "invocation", what) or {}
    config = optional_object(invocation, "configSource", f"{what}.invocation")
    primary = None
    if config is not None and isinstance(config.get("uri"), str):
        primary = _git_source(
            get_str(config, "uri", "configSource"),
            optional_object(config, "digest", f"{what}.invocation.configSource"),
            "invocation.configSource",
        )
    location, commit = _agree(primary, _git_dependencies(optional_list(predicate, "materials", what), "materials"))
    return BuildFacts(SLSA_PROVENANCE_V02, builder_id, location.repository, location.ref, commit)


def _v1(predicate: JsonObject) -> BuildFacts:
    what = "SLSA v1 predicate"
    run_details = get_object(predicate, "runDetails", what)
    builder_id = get_str(get_object(run_details, "builder", f"{what}.runDetails"), "id", f"{what}.runDetails.builder")
    definition = get_object(predicate, "buildDefinition", what)
    dependencies = _git_dependencies(
        optional_list(definition, "resolvedDependencies", f"{what}.buildDefinition"), "resolvedDependencies"
    )
    external = optional_object(definition, "externalParameters", f"{what}.buildDefinition") or {}
    workflow = optional_object(external, "workflow", "externalParameters")
    primary = None
    if workflow is not None and isinstance(workflow.get("repository"), str):
        primary = _git_source(get_str(workflow, "repository", "workflow"), None, "externalParameters.workflow")
        ref = workflow.get("ref")
        if isinstance(ref, str) and primary.location.ref is None:
            primary = _GitSource(SourceLocation(primary.location.repository, ref), None, primary.where)
    location, commit = _agree(primary, dependencies)
    return BuildFacts(SLSA_PROVENANCE_V1, builder_id, location.repository, location.ref, commit)


def read_build_facts(statement: Statement) -> BuildFacts:
    if statement.predicate_type == SLSA_PROVENANCE_V02:
        return _v02(statement.predicate)
    if statement.predicate_type == SLSA_PROVENANCE_V1:
        return _v1(statement.predicate)
    raise Rejected(Reason.PREDICATE_TYPE_MISSING, f"{statement.predicate_type!r} is not SLSA provenance")
