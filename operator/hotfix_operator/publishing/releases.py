"""The GitHub release for the hotfix tag, with its evidence attached, published not-latest."""

from __future__ import annotations

import io

from github import GithubException, UnknownObjectException
from github.GitRelease import GitRelease
from github.GitReleaseAsset import GitReleaseAsset
from github.Repository import Repository

from hotfix_operator.core.followup_results import ReleaseResult

from ..formats import sha256_digest
from .checksums import evidence_digests, verify_checksums
from .errors import AssetConflictError, PermanentError, TagConflictError
from .facts import HotfixFacts
from .rendering import asset_label, release_notes, release_title
from .session import GitHubSession, is_already_exists
from .tags import find_tag

# GitHub's description documents only application/octet-stream for asset uploads; evidence is
# downloaded byte-for-byte either way, so there is nothing to gain from guessing media types.
ASSET_MEDIA_TYPE = "application/octet-stream"


def ensure_release(session: GitHubSession, facts: HotfixFacts) -> ReleaseResult:
    """Finds or creates a draft release for the tag, uploads missing evidence, publishes it.

    Uploading to a draft and publishing last means nobody ever sees a release without its
    evidence. Published with make_latest=false: a hotfix must not become the "latest" release.
    Raises EvidenceIntegrityError before any write if the evidence contradicts its SHA256SUMS,
    AssetConflictError when an asset of the same name holds other bytes, and PermanentError
    when the tag is missing (GitHub would otherwise tag the default branch head on publication).
    """
    verify_checksums(facts.evidence)
    digests = evidence_digests(facts.evidence)
    repo = session.repository(facts.repository)
    with session.errors(f"ensuring release {facts.tag} in {facts.repository}"):
        tag = find_tag(repo, facts.tag)
        if tag is None:
            raise PermanentError(f"tag {facts.tag} does not exist in {facts.repository}; ensure the tag first")
        if tag.commit_sha != facts.commit_sha:
            raise TagConflictError(facts.tag, tag.commit_sha, facts.commit_sha)
        release, created = _find_or_create_draft(repo, facts, digests)
        _upload_missing_assets(release, facts)
        published = False
        if release.draft:
            release = release.update_release(
                name=release_title(facts),
                message=release_notes(facts, digests),
                draft=False,
                prerelease=False,
                make_latest="false",
            )
            published = True
        return ReleaseResult(release.id, release.html_url, digests, created=created, published=published)


def find_release(repo: Repository, tag: str) -> GitRelease | None:
    """The published release for the tag, else the oldest draft for it, else None."""
    try:
        return repo.get_release(tag)
    except UnknownObjectException:
        pass
    # Drafts are not attached to their tag yet, so only the listing shows them.
    drafts = [release for release in repo.get_releases() if release.tag_name == tag and release.draft]
    return min(drafts, key=lambda release: release.id) if drafts else None


def _find_or_create_draft(repo: Repository, facts: HotfixFacts, digests: dict[str, str]) -> tuple[GitRelease, bool]:
    existing = find_release(repo, facts.tag)
    if existing is not None:
        return existing, False
    draft = repo.create_git_release(
        facts.tag,
        name=release_title(facts),
        message=release_notes(facts, digests),
        draft=True,
        prerelease=False,
        target_commitish=facts.commit_sha,
        make_latest="false",
    )
    return draft, True


def _upload_missing_assets(release: GitRelease, facts: HotfixFacts) -> None:
    present = {asset.name: asset for asset in release.get_assets()}
    for name, data in sorted(facts.evidence.items()):
        if name in present:
            _require_same(facts, present[name], data)
            continue
        try:
            release.upload_asset_from_memory(
                io.BytesIO(data), len(data), name, content_type=ASSET_MEDIA_TYPE, label=asset_label(name)
            )
        except GithubException as error:
            # An earlier upload may have landed although its answer was lost: judge what is there.
            if not is_already_exists(error):
                raise
            landed = next((asset for asset in release.get_assets() if asset.name == name), None)
            if landed is None:
                raise
            _require_same(facts, landed, data)


def _require_same(facts: HotfixFacts, asset: GitReleaseAsset, data: bytes) -> None:
    wanted = sha256_digest(data)
    if asset.digest is not None:
        if asset.digest != wanted:
            raise AssetConflictError(facts.tag, asset.name, f"digest {asset.digest}", f"digest {wanted}")
    elif asset.size != len(data):
        # Older GitHub Enterprise versions report no digest; the size is all there is to compare.
        raise AssetConflictError(facts.tag, asset.name, f"{asset.size} bytes", f"{len(data)} bytes")
    if asset.state != "uploaded":
        raise AssetConflictError(facts.tag, asset.name, f"an unfinished upload (state {asset.state})", wanted)
