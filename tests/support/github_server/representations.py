"""JSON bodies shaped the way GitHub shapes them (and checked against its schemas on every send).

URLs follow GitHub Enterprise Server's layout on one origin: the REST API under /api/v3, uploads
under /api/uploads, web pages and git under the root. PyGithub handles that layout natively.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .git_store import TagObject, TreeEntry
from .model import Account, HostedRepository, Issue, IssueComment, Label, PullRequest, Release, ReleaseAsset


@dataclass(frozen=True)
class Urls:
    web: str  # http://127.0.0.1:PORT

    @property
    def api(self) -> str:
        return f"{self.web}/api/v3"

    @property
    def uploads(self) -> str:
        return f"{self.web}/api/uploads"

    def repo_api(self, repo: HostedRepository) -> str:
        return f"{self.api}/repos/{repo.full_name}"

    def repo_web(self, repo: HostedRepository) -> str:
        return f"{self.web}/{repo.full_name}"


def timestamp(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def account(urls: Urls, who: Account) -> dict[str, Any]:
    user_api = f"{urls.api}/users/{who.login}"
    return {
        "login": who.login,
        "id": who.id,
        "node_id": f"U_{who.id}",
        "avatar_url": f"{urls.web}/avatars/u/{who.id}",
        "gravatar_id": "",
        "url": user_api,
        "html_url": f"{urls.web}/{who.login}",
        "followers_url": f"{user_api}/followers",
        "following_url": f"{user_api}/following{{/other_user}}",
        "gists_url": f"{user_api}/gists{{/gist_id}}",
        "starred_url": f"{user_api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{user_api}/subscriptions",
        "organizations_url": f"{user_api}/orgs",
        "repos_url": f"{user_api}/repos",
        "events_url": f"{user_api}/events{{/privacy}}",
        "received_events_url": f"{user_api}/received_events",
        "type": who.kind,
        "site_admin": False,
        "user_view_type": "public",
    }


# The hypermedia URL families every repository representation carries.
_REPO_URL_TEMPLATES = {
    "archive_url": "/{archive_format}{/ref}",
    "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}",
    "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}",
    "comments_url": "/comments{/number}",
    "commits_url": "/commits{/sha}",
    "compare_url": "/compare/{base}...{head}",
    "contents_url": "/contents/{+path}",
    "contributors_url": "/contributors",
    "deployments_url": "/deployments",
    "downloads_url": "/downloads",
    "events_url": "/events",
    "forks_url": "/forks",
    "git_commits_url": "/git/commits{/sha}",
    "git_refs_url": "/git/refs{/sha}",
    "git_tags_url": "/git/tags{/sha}",
    "hooks_url": "/hooks",
    "issue_comment_url": "/issues/comments{/number}",
    "issue_events_url": "/issues/events{/number}",
    "issues_url": "/issues{/number}",
    "keys_url": "/keys{/key_id}",
    "labels_url": "/labels{/name}",
    "languages_url": "/languages",
    "merges_url": "/merges",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "pulls_url": "/pulls{/number}",
    "releases_url": "/releases{/id}",
    "stargazers_url": "/stargazers",
    "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers",
    "subscription_url": "/subscription",
    "tags_url": "/tags",
    "teams_url": "/teams",
    "trees_url": "/git/trees{/sha}",
}


def repository(urls: Urls, repo: HostedRepository) -> dict[str, Any]:
    """A full-repository body; also satisfies the shorter 'repository' schema used in pulls."""
    api = urls.repo_api(repo)
    web = urls.repo_web(repo)
    open_issues = sum(1 for issue in repo.issues.values() if issue.state == "open")
    created = timestamp(repo.created_at)
    body: dict[str, Any] = {
        "id": repo.id,
        "node_id": f"R_{repo.id}",
        "name": repo.name,
        "full_name": repo.full_name,
        "owner": account(urls, repo.owner),
        "private": repo.private,
        "visibility": "private" if repo.private else "public",
        "html_url": web,
        "description": None,
        "fork": False,
        "url": api,
        "clone_url": f"{web}.git",
        "git_url": f"{web.replace('http://', 'git://', 1)}.git",
        "ssh_url": f"git@{web.split('//', 1)[1].split('/', 1)[0]}:{repo.full_name}.git",
        "svn_url": web,
        "mirror_url": None,
        "homepage": None,
        "language": None,
        "default_branch": repo.default_branch,
        "forks": 0,
        "forks_count": 0,
        "stargazers_count": 0,
        "watchers": 0,
        "watchers_count": 0,
        "network_count": 0,
        "subscribers_count": 0,
        "size": 0,
        "open_issues": open_issues,
        "open_issues_count": open_issues,
        "has_issues": True,
        "has_projects": False,
        "has_wiki": False,
        "has_pages": False,
        "has_downloads": True,
        "has_discussions": False,
        "archived": False,
        "disabled": False,
        "license": None,
        "pushed_at": created,
        "created_at": created,
        "updated_at": created,
        "permissions": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
    }
    for key, suffix in _REPO_URL_TEMPLATES.items():
        body[key] = api + suffix
    return body


def git_ref(urls: Urls, repo: HostedRepository, name: str, sha: str, kind: str) -> dict[str, Any]:
    api = urls.repo_api(repo)
    plural = {"commit": "commits", "tag": "tags", "tree": "trees", "blob": "blobs"}[kind]
    return {
        "ref": name,
        "node_id": f"REF_{repo.id}_{name}",
        "url": f"{api}/git/{name}",
        "object": {"type": kind, "sha": sha, "url": f"{api}/git/{plural}/{sha}"},
    }


def git_tag(urls: Urls, repo: HostedRepository, tag: TagObject) -> dict[str, Any]:
    api = urls.repo_api(repo)
    plural = {"commit": "commits", "tag": "tags", "tree": "trees", "blob": "blobs"}[tag.object_type]
    return {
        "node_id": f"TAG_{tag.sha}",
        "sha": tag.sha,
        "url": f"{api}/git/tags/{tag.sha}",
        "tag": tag.name,
        "message": tag.message,
        "tagger": {"name": tag.tagger_name, "email": tag.tagger_email, "date": timestamp(tag.tagged_at)},
        "object": {"type": tag.object_type, "sha": tag.object_sha, "url": f"{api}/git/{plural}/{tag.object_sha}"},
        "verification": {
            "verified": False,
            "reason": "unsigned",
            "payload": None,
            "signature": None,
            "verified_at": None,
        },
    }


def release_asset(urls: Urls, repo: HostedRepository, release: Release, asset: ReleaseAsset) -> dict[str, Any]:
    return {
        "id": asset.id,
        "node_id": f"RA_{asset.id}",
        "name": asset.name,
        "label": asset.label,
        "content_type": asset.content_type,
        "size": len(asset.data),
        "digest": asset.digest,
        "state": asset.state,
        "download_count": 0,
        "url": f"{urls.repo_api(repo)}/releases/assets/{asset.id}",
        "browser_download_url": f"{urls.repo_web(repo)}/releases/download/{release.tag_name}/{asset.name}",
        "uploader": account(urls, asset.uploader),
        "created_at": timestamp(asset.created_at),
        "updated_at": timestamp(asset.created_at),
    }


def release(urls: Urls, repo: HostedRepository, rel: Release) -> dict[str, Any]:
    api = f"{urls.repo_api(repo)}/releases/{rel.id}"
    web = urls.repo_web(repo)
    return {
        "id": rel.id,
        "node_id": f"RE_{rel.id}",
        "url": api,
        "html_url": f"{web}/releases/tag/{rel.tag_name}",
        "assets_url": f"{api}/assets",
        "upload_url": f"{urls.uploads}/repos/{repo.full_name}/releases/{rel.id}/assets{{?name,label}}",
        "tarball_url": None if rel.draft else f"{urls.repo_api(repo)}/tarball/{rel.tag_name}",
        "zipball_url": None if rel.draft else f"{urls.repo_api(repo)}/zipball/{rel.tag_name}",
        "tag_name": rel.tag_name,
        "target_commitish": rel.target_commitish,
        "name": rel.name,
        "body": rel.body,
        "draft": rel.draft,
        "prerelease": rel.prerelease,
        "immutable": False,
        "created_at": timestamp(rel.created_at),
        "updated_at": timestamp(rel.updated_at or rel.created_at),
        "published_at": timestamp(rel.published_at),
        "author": account(urls, rel.author),
        "assets": [release_asset(urls, repo, rel, asset) for asset in rel.assets],
    }


def label(urls: Urls, repo: HostedRepository, lab: Label) -> dict[str, Any]:
    return {
        "id": lab.id,
        "node_id": f"LA_{lab.id}",
        "url": f"{urls.repo_api(repo)}/labels/{lab.name}",
        "name": lab.name,
        "description": lab.description,
        "color": lab.color,
        "default": False,
    }


def _link(href: str) -> dict[str, str]:
    return {"href": href}


def pull_request(urls: Urls, repo: HostedRepository, pr: PullRequest) -> dict[str, Any]:
    api = urls.repo_api(repo)
    self_url = f"{api}/pulls/{pr.number}"
    html_url = f"{urls.repo_web(repo)}/pull/{pr.number}"
    repo_body = repository(urls, repo)
    owner = account(urls, repo.owner)

    def side(ref: str, sha: str) -> dict[str, Any]:
        return {"label": f"{repo.owner.login}:{ref}", "ref": ref, "sha": sha, "repo": repo_body, "user": owner}

    return {
        "id": pr.id,
        "node_id": f"PR_{pr.id}",
        "number": pr.number,
        "url": self_url,
        "html_url": html_url,
        "diff_url": f"{html_url}.diff",
        "patch_url": f"{html_url}.patch",
        "issue_url": f"{api}/issues/{pr.number}",
        "commits_url": f"{self_url}/commits",
        "review_comments_url": f"{self_url}/comments",
        "review_comment_url": f"{api}/pulls/comments{{/number}}",
        "comments_url": f"{api}/issues/{pr.number}/comments",
        "statuses_url": f"{api}/statuses/{pr.head_sha}",
        "state": pr.state,
        "locked": False,
        "title": pr.title,
        "body": pr.body,
        "user": account(urls, pr.user),
        "labels": [],
        "milestone": None,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "created_at": timestamp(pr.created_at),
        "updated_at": timestamp(pr.updated_at),
        "closed_at": timestamp(pr.closed_at),
        "merged_at": timestamp(pr.merged_at),
        "merge_commit_sha": None,
        "head": side(pr.head_ref, pr.head_sha),
        "base": side(pr.base_ref, pr.base_sha),
        "_links": {
            "self": _link(self_url),
            "html": _link(html_url),
            "issue": _link(f"{api}/issues/{pr.number}"),
            "comments": _link(f"{api}/issues/{pr.number}/comments"),
            "review_comments": _link(f"{self_url}/comments"),
            "review_comment": _link(f"{api}/pulls/comments{{/number}}"),
            "commits": _link(f"{self_url}/commits"),
            "statuses": _link(f"{api}/statuses/{pr.head_sha}"),
        },
        "author_association": "MEMBER",
        "auto_merge": None,
        "active_lock_reason": None,
        "draft": pr.draft,
        "merged": pr.merged_at is not None,
        "mergeable": None,
        "rebaseable": None,
        "mergeable_state": "unknown",
        "merged_by": None,
        "comments": 0,
        "review_comments": 0,
        "maintainer_can_modify": pr.maintainer_can_modify,
        "commits": 1,
        "additions": 0,
        "deletions": 0,
        "changed_files": 0,
    }


# What GitHub leaves out when it lists pull requests (the pull-request-simple shape); clients
# that read these fields from a listed pull request must fetch it, as they must on GitHub.
_FULL_PULL_REQUEST_ONLY = (
    "merged",
    "mergeable",
    "rebaseable",
    "mergeable_state",
    "merged_by",
    "comments",
    "review_comments",
    "maintainer_can_modify",
    "commits",
    "additions",
    "deletions",
    "changed_files",
)


def pull_request_listed(urls: Urls, repo: HostedRepository, pr: PullRequest) -> dict[str, Any]:
    body = pull_request(urls, repo, pr)
    for key in _FULL_PULL_REQUEST_ONLY:
        body.pop(key)
    return body


def issue(urls: Urls, repo: HostedRepository, item: Issue) -> dict[str, Any]:
    api = urls.repo_api(repo)
    self_url = f"{api}/issues/{item.number}"
    return {
        "id": item.id,
        "node_id": f"I_{item.id}",
        "number": item.number,
        "url": self_url,
        "repository_url": api,
        "labels_url": f"{self_url}/labels{{/name}}",
        "comments_url": f"{self_url}/comments",
        "events_url": f"{self_url}/events",
        "html_url": f"{urls.repo_web(repo)}/issues/{item.number}",
        "title": item.title,
        "body": item.body,
        "state": item.state,
        "locked": False,
        "user": account(urls, item.user),
        "labels": [label(urls, repo, lab) for lab in item.labels],
        "assignee": None,
        "assignees": [],
        "milestone": None,
        "comments": 0,
        "created_at": timestamp(item.created_at),
        "updated_at": timestamp(item.updated_at),
        "closed_at": timestamp(item.closed_at),
        "author_association": "MEMBER",
    }


def issue_comment(urls: Urls, repo: HostedRepository, comment: IssueComment) -> dict[str, Any]:
    api = urls.repo_api(repo)
    kind = "pull" if comment.issue_number in repo.pulls else "issues"
    return {
        "id": comment.id,
        "node_id": f"IC_{comment.id}",
        "url": f"{api}/issues/comments/{comment.id}",
        "body": comment.body,
        "html_url": f"{urls.repo_web(repo)}/{kind}/{comment.issue_number}#issuecomment-{comment.id}",
        "user": account(urls, comment.user),
        "created_at": timestamp(comment.created_at),
        "updated_at": timestamp(comment.updated_at),
        "issue_url": f"{api}/issues/{comment.issue_number}",
        "author_association": "MEMBER",
    }


def pull_request_as_issue(urls: Urls, repo: HostedRepository, pr: PullRequest) -> dict[str, Any]:
    """How GitHub lists a pull request among issues: an issue with a pull_request member."""
    api = urls.repo_api(repo)
    html_url = f"{urls.repo_web(repo)}/pull/{pr.number}"
    as_issue = Issue(
        id=pr.id,
        number=pr.number,
        title=pr.title,
        body=pr.body,
        labels=[],
        user=pr.user,
        created_at=pr.created_at,
        updated_at=pr.updated_at,
        state=pr.state,
        closed_at=pr.closed_at,
    )
    body = issue(urls, repo, as_issue)
    body["html_url"] = html_url
    body["draft"] = pr.draft
    body["pull_request"] = {
        "url": f"{api}/pulls/{pr.number}",
        "html_url": html_url,
        "diff_url": f"{html_url}.diff",
        "patch_url": f"{html_url}.patch",
        "merged_at": timestamp(pr.merged_at),
    }
    return body


def content_entry(urls: Urls, repo: HostedRepository, ref: str, entry: TreeEntry) -> dict[str, Any]:
    kind = {"blob": "file", "tree": "dir", "commit": "submodule"}[entry.kind]
    api = urls.repo_api(repo)
    self_url = f"{api}/contents/{entry.path}?ref={ref}"
    git_url = f"{api}/git/{'trees' if entry.kind == 'tree' else 'blobs'}/{entry.sha}"
    html_url = f"{urls.repo_web(repo)}/{'tree' if entry.kind == 'tree' else 'blob'}/{ref}/{entry.path}"
    download_url = f"{urls.web}/raw/{repo.full_name}/{ref}/{entry.path}" if kind == "file" else None
    return {
        "type": kind,
        "size": entry.size,
        "name": entry.name,
        "path": entry.path,
        "sha": entry.sha,
        "url": self_url,
        "git_url": git_url,
        "html_url": html_url,
        "download_url": download_url,
        "_links": {"self": self_url, "git": git_url, "html": html_url},
    }


def content_file(urls: Urls, repo: HostedRepository, ref: str, entry: TreeEntry, data: bytes) -> dict[str, Any]:
    body = content_entry(urls, repo, ref, entry)
    encoded = base64.b64encode(data).decode()
    # GitHub wraps the base64 text at 60 columns; clients must cope, so the server does too.
    body["content"] = "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60)) + "\n"
    body["encoding"] = "base64"
    return body


def content_tree(
    urls: Urls, repo: HostedRepository, ref: str, entry: TreeEntry, entries: list[TreeEntry]
) -> dict[str, Any]:
    """The application/vnd.github.object form: one object, a directory's entries inside it."""
    body = content_entry(urls, repo, ref, entry)
    body["entries"] = [content_entry(urls, repo, ref, child) for child in entries]
    return body


def installation_token(token: str, expires_at: datetime) -> dict[str, Any]:
    return {
        "token": token,
        "expires_at": timestamp(expires_at),
        "permissions": {"contents": "write", "pull_requests": "write", "issues": "write"},
        "repository_selection": "all",
    }


def error(message: str, documentation: str = "https://docs.github.com/rest", **extra: Any) -> dict[str, Any]:
    return {"message": message, "documentation_url": documentation, **extra}
