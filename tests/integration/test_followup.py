"""After promotion, end to end: the operator as a real process on the real control plane publishes to a
loopback GitHub (validated against GitHub's OpenAPI description, backed by real git repositories)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from hotfix_operator.publishing import OVERDUE_LABEL
from localcluster.cluster import LocalCluster
from localcluster.signing import LocalSigner
from tests.integration.conftest import OperatorProcess, approve
from tests.integration.github_fixtures import (  # noqa: F401  (fixtures)
    GitHubNamespace,
    followup_operator,
    github,
    github_namespace,
    github_spec,
    seeder,
    signed_image_for,
)
from tests.kube import Kube, wait_for
from tests.publishing.builders import CheckoutSeeder
from tests.support.github_server import LoopbackGitHub

TAG = "v4.1.2-hotfix.1"
POSTMORTEM = f"docs/releases/HOTFIX_POSTMORTEMS/{TAG}.md"
CREATE_TAG = ("POST", "/repos/{owner}/{repo}/git/tags")
CREATE_REF = ("POST", "/repos/{owner}/{repo}/git/refs")
CREATE_RELEASE = ("POST", "/repos/{owner}/{repo}/releases")
UPLOAD_ASSET = ("POST", "/repos/{owner}/{repo}/releases/{release_id}/assets")
CREATE_PULL = ("POST", "/repos/{owner}/{repo}/pulls")
CREATE_ISSUE = ("POST", "/repos/{owner}/{repo}/issues")


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == type_), {})


def wait_condition(kube: Kube, ns: str, type_: str, timeout: float) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        obj = kube.release(ns, "checkout-hotfix")
        return obj if condition(obj, type_).get("status") == "True" else None

    return wait_for(f"{type_}=True", probe, timeout=timeout)


def new_writes(server: LoopbackGitHub) -> set[tuple[str, str, int]]:
    """(method, endpoint, n) of the successful REST writes; n counts only for asset uploads."""
    with server._record_lock:
        writes = [(e.method, e.template) for e in server.exchanges if e.method != "GET" and 200 <= e.status < 300]
    keys = set()
    for index, (method, template) in enumerate(writes):
        ordinal = writes[: index + 1].count((method, template)) if (method, template) == UPLOAD_ASSET else 1
        keys.add((method, template, ordinal))
    return keys


def postmortems_cli(server: LoopbackGitHub) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hotfix_operator.cli", "postmortems", "--repo", "github.com/acme/checkout",
         "--github-url", server.base_url, "--token-env", "E2E_GITHUB_TOKEN"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "E2E_GITHUB_TOKEN": server.token},
    )


@pytest.fixture
def clean(kube: Kube, signer: LocalSigner, github: LoopbackGitHub, seeder: CheckoutSeeder,  # noqa: F811
          quickstart: str) -> Iterator[GitHubNamespace]:
    yield from github_namespace(kube, signer, github, seeder, quickstart)


@pytest.fixture
def conflicting(kube: Kube, signer: LocalSigner, github: LoopbackGitHub, seeder: CheckoutSeeder,  # noqa: F811
                quickstart: str) -> Iterator[GitHubNamespace]:
    yield from github_namespace(kube, signer, github, seeder, quickstart, main_work="conflicting")


def test_follow_ups_happen_exactly_once_although_the_operator_is_killed_after_every_write(
    kube: Kube, cluster: LocalCluster, signer: LocalSigner, clean: GitHubNamespace,
    followup_operator: OperatorProcess,  # noqa: F811
) -> None:
    ns, gh, repo = clean.namespace, clean.github, clean.repo
    log_start = followup_operator.log_path.stat().st_size
    image = signed_image_for(cluster, signer, repo, "followup-clean")
    clean.file_hotfix(kube, image)
    kube.wait_phase(ns, "checkout-hotfix", "AwaitingApproval")
    approve(kube, ns, "checkout-hotfix")

    # SIGKILL the operator right after each kind of GitHub write is first served (each asset upload
    # counts on its own), until both pull requests exist. A write the restarted operator repeats on
    # purpose (the same tag object, which git addresses by content) does not kill it again.
    killed_at: set[tuple[str, str, int]] = set()
    deadline = time.monotonic() + 240
    while gh.writes(*CREATE_PULL) < 2:
        assert time.monotonic() < deadline, f"follow-ups stalled; {kube.release(ns, 'checkout-hotfix')['status']}"
        for key in new_writes(gh) - killed_at:
            killed_at.add(key)
            followup_operator.kill()
            followup_operator.start()
        time.sleep(0.02)
    assert len(killed_at) >= 9, killed_at  # tag object, tag ref, draft, 4 assets, publication, backport PR

    done = kube.wait_phase(ns, "checkout-hotfix", "Succeeded", "Failed", "RolledBack", timeout=120)
    assert done["status"]["phase"] == "Succeeded", done["status"]["message"]
    filed = wait_condition(kube, ns, "PostmortemFiled", timeout=60)
    status = filed["status"]
    hosted = repo.hosted

    # the tag: annotated, at the hotfix commit, exactly once
    assert hosted.git.resolve(f"refs/tags/{TAG}^{{commit}}") == repo.hotfix_commit
    assert hosted.git.object_type(hosted.git.resolve(f"refs/tags/{TAG}") or "") == "tag"
    assert gh.writes(*CREATE_REF) == 1
    # the release: one, published, not latest, each asset once with the digest the status records
    releases = [r for r in hosted.releases.values() if r.tag_name == TAG]
    assert len(releases) == 1 and gh.writes(*CREATE_RELEASE) == 1
    published = releases[0]
    assert not published.draft and hosted.latest_release_id != published.id
    assets = {a.name: a for a in published.assets}
    assert sorted(assets) == ["SHA256SUMS", "evidence.tar.gz", "hotfix_record.json", "provenance.json"]
    assert gh.writes(*UPLOAD_ASSET) == 4
    assert status["release"]["assets"] == {name: a.digest for name, a in assets.items()}
    sums = dict(reversed(line.split("  ")) for line in assets["SHA256SUMS"].data.decode().splitlines())
    assert sums == {name: hashlib.sha256(a.data).hexdigest() for name, a in assets.items() if name != "SHA256SUMS"}
    record = json.loads(assets["hotfix_record.json"].data)
    assert record["commitSha"] == repo.hotfix_commit and record["incidentId"] == status["incidentId"]
    assert [a["approver"] for a in record["approvals"]] == ["bob"]
    assert condition(filed, "Released")["status"] == "True"
    assert published.tag_name in status["release"]["url"]
    # the backport and the post-mortem pull requests: one each
    pulls = sorted(hosted.pulls.values(), key=lambda p: p.number)
    assert [p.head_ref for p in pulls] == [f"hotfix/backport-{TAG}", f"hotfix/postmortem-{TAG}"]
    assert gh.writes(*CREATE_PULL) == 2
    backport = pulls[0]
    assert not backport.draft
    assert f"(cherry picked from commit {repo.hotfix_commit})" in hosted.git.git(
        "log", "-1", "--format=%B", f"refs/heads/hotfix/backport-{TAG}")
    assert status["release"]["url"] in (backport.body or "")
    assert condition(filed, "BackportOpened")["status"] == "True"
    assert status["backport"]["pullRequest"].endswith(f"/pull/{backport.number}")
    assert repo.file_at(f"refs/heads/hotfix/postmortem-{TAG}", POSTMORTEM) is not None
    assert status["postmortem"]["dueAt"]

    # the post-mortem is not on main: the CLI says so, the deadline passes, exactly one issue is opened
    missing = postmortems_cli(gh)
    assert missing.returncode == 1 and f"Missing: {POSTMORTEM}" in missing.stdout, missing
    overdue = wait_condition(kube, ns, "PostmortemOverdue", timeout=120)
    assert condition(overdue, "PostmortemComplete")["reason"] == "Overdue"
    followup_operator.kill()  # and a restart after the issue: still one
    followup_operator.start()
    time.sleep(6)  # several checks (every 2 s)
    issues = [i for i in hosted.issues.values() if any(label.name == OVERDUE_LABEL for label in i.labels)
              or TAG in i.title]
    issues = [i for i in issues if not any(p.number == i.number for p in hosted.pulls.values())]
    assert len(issues) == 1 and gh.writes(*CREATE_ISSUE) == 1, [i.title for i in issues]
    assert overdue["status"]["postmortem"]["issue"].endswith(f"/issues/{issues[0].number}")
    events = kube.core.list_namespaced_event(ns, field_selector="involvedObject.kind=HotfixRelease").items
    assert sum(1 for e in events if e.reason == "PostmortemOverdue") == 1

    # someone merges the post-mortem: complete, and the operator is finished with the release
    hosted.git.commit_files("main", {POSTMORTEM: b"# Hotfix Post-Mortem\n"}, "Post-mortem for " + TAG)
    complete = wait_condition(kube, ns, "PostmortemComplete", timeout=60)
    assert condition(complete, "PostmortemOverdue")["status"] == "False"
    assert complete["status"]["phase"] == "Succeeded"
    assert postmortems_cli(gh).returncode == 0

    # no secret anywhere
    token = gh.token
    assert token not in json.dumps(complete)
    events = kube.core.list_namespaced_event(ns, field_selector="involvedObject.kind=HotfixRelease").items
    assert not any(token in (e.message or "") for e in events)
    with followup_operator.log_path.open("rb") as log:
        log.seek(log_start)
        assert token.encode() not in log.read()


def test_a_github_outage_delays_follow_ups_but_never_the_hotfix_and_a_conflict_opens_a_draft(
    kube: Kube, cluster: LocalCluster, signer: LocalSigner, conflicting: GitHubNamespace,
    followup_operator: OperatorProcess,  # noqa: F811
) -> None:
    ns, gh, repo = conflicting.namespace, conflicting.github, conflicting.repo
    log_start = followup_operator.log_path.stat().st_size
    gh.fail_next(*CREATE_RELEASE, status=502, times=3)
    gh.fail_next(*CREATE_PULL, status=403, retry_after=2, times=1)  # a secondary rate limit
    image = signed_image_for(cluster, signer, repo, "followup-conflict")
    conflicting.file_hotfix(kube, image)
    kube.wait_phase(ns, "checkout-hotfix", "AwaitingApproval")
    approve(kube, ns, "checkout-hotfix")

    def outage_in_status() -> dict[str, Any] | None:
        obj = kube.release(ns, "checkout-hotfix")
        return obj if ((obj.get("status") or {}).get("release") or {}).get("retries") else None

    delayed = wait_for("the outage to show in status", outage_in_status, timeout=120)
    retry = delayed["status"]["release"]["retries"]["Release"]
    assert retry["failure"] == "Transient" and retry["reason"] == "GitHubUnavailable" and "502" in retry["lastError"]
    assert condition(delayed, "Released")["status"] == "Unknown"
    done = kube.wait_phase(ns, "checkout-hotfix", "Succeeded", "Failed", "RolledBack", timeout=120)
    assert done["status"]["phase"] == "Succeeded", done["status"]["message"]
    assert condition(done, "Ready")["status"] == "True"

    filed = wait_condition(kube, ns, "PostmortemFiled", timeout=120)
    status = filed["status"]
    assert "retries" not in status["release"] and "retries" not in status["backport"]
    assert condition(filed, "Released")["status"] == "True"
    assert gh.calls(*CREATE_RELEASE) == 4 and gh.writes(*CREATE_RELEASE) == 1
    # the conflicting cherry-pick: a draft with the conflict committed, listing the file
    backport = next(p for p in repo.hosted.pulls.values() if p.head_ref == f"hotfix/backport-{TAG}")
    assert backport.draft
    content = repo.file_at(f"refs/heads/hotfix/backport-{TAG}", "app/config.py") or ""
    assert "<<<<<<<" in content and ">>>>>>>" in content
    assert "app/config.py" in (backport.body or "")
    assert condition(filed, "BackportOpened")["reason"] == "OpenedWithConflicts"
    assert status["backport"]["conflictedFiles"] == ["app/config.py"] and status["backport"]["draft"] is True
    events = kube.core.list_namespaced_event(ns, field_selector="involvedObject.kind=HotfixRelease").items
    assert any(e.reason == "FollowupDelayed" and e.type == "Warning" for e in events)
    token = gh.token
    assert token not in json.dumps(filed)
    assert not any(token in (e.message or "") for e in events)
    with followup_operator.log_path.open("rb") as log:
        log.seek(log_start)
        assert token.encode() not in log.read()
