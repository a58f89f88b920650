"""ensure_release: one release per tag, evidence attached and verified, published not-latest."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
import requests
from github import Auth, Github

from hotfix_operator.publishing import (
    AssetConflictError,
    EvidenceIntegrityError,
    GitHubSession,
    HotfixFacts,
    PermanentError,
    TransientError,
    ensure_release,
    ensure_tag,
)
from tests.support.github_server import LoopbackGitHub

from .builders import REPOSITORY, SeededRepository, evidence_files

CREATE_RELEASE = ("POST", "/repos/{owner}/{repo}/releases")
UPLOAD_ASSET = ("POST", "/repos/{owner}/{repo}/releases/{release_id}/assets")
UPDATE_RELEASE = ("PATCH", "/repos/{owner}/{repo}/releases/{release_id}")


def _client(github: LoopbackGitHub) -> Github:
    return Github(auth=Auth.Token(github.token), base_url=github.base_url, retry=None)


def _download(github: LoopbackGitHub, asset_api_url: str) -> bytes:
    """Fetches an asset the way clients do: the API redirects binary requests to the bytes."""
    headers = {"Authorization": f"token {github.token}", "Accept": "application/octet-stream"}
    redirect = requests.get(asset_api_url, headers=headers, allow_redirects=False, timeout=10)
    assert redirect.status_code == 302
    download = requests.get(redirect.headers["Location"], headers=headers, timeout=10)
    assert download.status_code == 200
    return download.content


def test_publishes_a_not_latest_release_whose_assets_hash_as_uploaded(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    repo = _client(github).get_repo(REPOSITORY)
    regular = repo.create_git_release("v4.1.1", "v4.1.1", "regular release", target_commitish="main")
    ensure_tag(session, facts)

    result = ensure_release(session, facts)

    release = repo.get_release("v4.1.2-hotfix.1")
    assert (result.created, result.published) == (True, True)
    assert result.html_url == release.html_url
    assert not release.draft
    assert not release.prerelease
    assert repo.get_latest_release().id == regular.id  # the hotfix did not become "latest"
    assert "INC-20260108-100000" in release.body
    assets = {asset.name: asset for asset in release.get_assets()}
    assert sorted(assets) == sorted(facts.evidence)
    for name, data in facts.evidence.items():
        expected = "sha256:" + hashlib.sha256(data).hexdigest()
        assert result.asset_digests[name] == expected
        assert assets[name].digest == expected
        downloaded = _download(github, assets[name].url)
        assert "sha256:" + hashlib.sha256(downloaded).hexdigest() == expected


def test_calling_twice_writes_everything_once(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts
) -> None:
    ensure_tag(session, facts)
    first = ensure_release(session, facts)
    second = ensure_release(session, facts)

    assert (second.created, second.published) == (False, False)
    assert second.release_id == first.release_id
    assert second.asset_digests == first.asset_digests
    assert github.writes(*CREATE_RELEASE) == 1
    assert github.writes(*UPLOAD_ASSET) == len(facts.evidence)
    assert github.writes(*UPDATE_RELEASE) == 1


def test_a_crash_midway_through_uploads_resumes_without_duplicates(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    ensure_tag(session, facts)
    github.fail_next(*UPLOAD_ASSET, status=502, after=2)

    with pytest.raises(TransientError):
        ensure_release(session, facts)
    draft = next(iter(checkout.hosted.releases.values()))
    assert draft.draft
    assert len(draft.assets) == 2

    result = ensure_release(session, facts)

    assert (result.created, result.published) == (False, True)
    assert len(checkout.hosted.releases) == 1
    assert sorted(asset.name for asset in draft.assets) == sorted(facts.evidence)
    assert github.writes(*CREATE_RELEASE) == 1
    assert github.writes(*UPLOAD_ASSET) == len(facts.evidence)


def test_an_upload_whose_answer_was_lost_is_recognised_by_its_digest(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    ensure_tag(session, facts)
    github.fail_next(*UPLOAD_ASSET, status=504, after_handling=True)

    with pytest.raises(TransientError):
        ensure_release(session, facts)
    result = ensure_release(session, facts)

    release = checkout.hosted.releases[result.release_id]
    assert result.published
    assert sorted(asset.name for asset in release.assets) == sorted(facts.evidence)


def test_a_draft_created_whose_answer_was_lost_is_reused(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    ensure_tag(session, facts)
    github.fail_next(*CREATE_RELEASE, status=502, after_handling=True)

    with pytest.raises(TransientError):
        ensure_release(session, facts)
    result = ensure_release(session, facts)

    assert not result.created
    assert list(checkout.hosted.releases) == [result.release_id]


def test_an_asset_with_the_same_name_and_other_bytes_is_refused(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts
) -> None:
    ensure_tag(session, facts)
    ensure_release(session, facts)
    changed = evidence_files()
    changed["provenance.json"] = b'{"subject": "something else"}\n'
    changed.pop("SHA256SUMS")

    with pytest.raises(AssetConflictError, match=r"provenance\.json") as refused:
        ensure_release(session, replace(facts, evidence=changed))

    assert "sha256:" + hashlib.sha256(changed["provenance.json"]).hexdigest() in str(refused.value)
    assert github.writes(*UPLOAD_ASSET) == len(facts.evidence)


def test_evidence_contradicting_its_checksums_publishes_nothing(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts
) -> None:
    ensure_tag(session, facts)
    tampered = dict(facts.evidence)
    tampered["evidence.tar.gz"] = b"not the bundle that was verified"

    with pytest.raises(EvidenceIntegrityError, match=r"evidence\.tar\.gz"):
        ensure_release(session, replace(facts, evidence=tampered))
    assert github.calls(*CREATE_RELEASE) == 0


def test_a_missing_tag_is_refused_before_github_could_invent_one(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts
) -> None:
    with pytest.raises(PermanentError, match=r"tag v4\.1\.2-hotfix\.1 does not exist"):
        ensure_release(session, facts)
    assert github.calls(*CREATE_RELEASE) == 0
