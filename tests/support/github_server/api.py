"""The REST operations the loopback GitHub implements, keyed by the description's operationId.

Each handler behaves the way GitHub documents, including the refusals clients depend on:
422 for an existing ref, pull request or asset name, 404 for anything missing, drafts invisible
to get-release-by-tag, make_latest honoured.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import threading
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from . import representations as rep
from .git_store import BareRepository
from .model import (
    Account,
    AppInstallation,
    HostedRepository,
    Issue,
    IssueComment,
    Label,
    PullRequest,
    Release,
    ReleaseAsset,
    utc_now,
)
from .representations import Urls
from .spec import RouteMatch
from .validation import ApiRequest, ApiResponse


class Reply(Exception):
    """Raised by handlers to answer early (mostly with 4xx)."""

    def __init__(self, response: ApiResponse) -> None:
        super().__init__(response.status)
        self.response = response


def not_found(message: str = "Not Found") -> Reply:
    return Reply(ApiResponse.json(404, rep.error(message)))


def validation_failed(*errors: Mapping[str, str], message: str = "Validation Failed") -> Reply:
    return Reply(ApiResponse.json(422, rep.error(message, errors=[dict(e) for e in errors])))


def unauthorized() -> Reply:
    return Reply(ApiResponse.json(401, rep.error("Bad credentials", status="401")))


@dataclass(frozen=True)
class Call:
    match: RouteMatch
    request: ApiRequest
    caller: Account

    def param(self, name: str) -> str:
        return self.match.path_params[name]

    def query(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.request.query:
            if key == name:
                return value
        return default

    def json(self) -> dict[str, Any]:
        if not self.request.body:
            return {}
        payload = json.loads(self.request.body)
        if not isinstance(payload, dict):
            raise validation_failed(message="Problems parsing JSON")
        return payload


Handler = Callable[[Call], ApiResponse]


class GitHubState:
    """Repositories, accounts, tokens and the handlers that read and change them."""

    def __init__(self, root: Path, urls: Urls) -> None:
        self.root = root
        self.urls = urls
        self.lock = threading.RLock()
        self._ids = itertools.count(1001)
        self.accounts: dict[str, Account] = {}
        self.tokens: dict[str, Account] = {}
        self.apps: dict[int, AppInstallation] = {}
        self.repositories: dict[str, HostedRepository] = {}
        self.handlers: dict[str, Handler] = {
            "repos/get": self.get_repository,
            "git/get-ref": self.get_ref,
            "git/list-matching-refs": self.list_matching_refs,
            "git/create-ref": self.create_ref,
            "git/create-tag": self.create_tag,
            "git/get-tag": self.get_tag,
            "repos/list-releases": self.list_releases,
            "repos/create-release": self.create_release,
            "repos/get-release": self.get_release,
            "repos/get-release-by-tag": self.get_release_by_tag,
            "repos/get-latest-release": self.get_latest_release,
            "repos/update-release": self.update_release,
            "repos/list-release-assets": self.list_release_assets,
            "repos/upload-release-asset": self.upload_release_asset,
            "repos/get-release-asset": self.get_release_asset,
            "pulls/list": self.list_pulls,
            "pulls/create": self.create_pull,
            "pulls/get": self.get_pull,
            "issues/list-for-repo": self.list_issues,
            "issues/create": self.create_issue,
            "issues/get": self.get_issue,
            "issues/list-comments": self.list_comments,
            "issues/create-comment": self.create_comment,
            "issues/get-label": self.get_label,
            "issues/create-label": self.create_label,
            "repos/get-content": self.get_content,
            "apps/create-installation-access-token": self.create_installation_token,
        }

    # -- accounts, tokens, repositories ------------------------------------------------------

    def next_id(self) -> int:
        return next(self._ids)

    def account(self, login: str, kind: str = "User") -> Account:
        with self.lock:
            if login not in self.accounts:
                self.accounts[login] = Account(login, self.next_id(), kind)
            return self.accounts[login]

    def issue_token(self, login: str, kind: str = "User", prefix: str = "ghp_") -> str:
        token = prefix + secrets.token_hex(18)
        with self.lock:
            self.tokens[token] = self.account(login, kind)
        return token

    def authenticate(self, headers: Mapping[str, str]) -> Account | None:
        scheme, _, credential = _authorization(headers).partition(" ")
        if scheme.lower() in ("token", "bearer"):
            return self.tokens.get(credential.strip())
        if scheme.lower() == "basic":
            # git sends the token as the password of HTTP basic auth; any user name goes.
            try:
                decoded = base64.b64decode(credential.strip()).decode()
            except ValueError:
                return None
            return self.tokens.get(decoded.partition(":")[2])
        return None

    def create_repository(
        self, full_name: str, default_branch: str, files: Mapping[str, bytes] | None, copy_of: Path | None = None
    ) -> HostedRepository:
        owner_login, name = full_name.split("/", 1)
        path = self.root / owner_login / f"{name}.git"
        with self.lock:
            if full_name in self.repositories:
                raise ValueError(f"{full_name} already exists")
            git = BareRepository.create(path, default_branch) if copy_of is None else BareRepository.copy(copy_of, path)
            repo = HostedRepository(
                id=self.next_id(),
                owner=self.account(owner_login, "Organization"),
                name=name,
                default_branch=default_branch,
                git=git,
                created_at=utc_now(),
            )
            if files:
                git.commit_files(default_branch, files, "Initial commit")
            self.repositories[full_name] = repo
            return repo

    def repository(self, call: Call) -> HostedRepository:
        repo = self.repositories.get(f"{call.param('owner')}/{call.param('repo')}")
        if repo is None:
            raise not_found()
        return repo

    # -- repositories ---------------------------------------------------------------------

    def get_repository(self, call: Call) -> ApiResponse:
        return ApiResponse.json(200, rep.repository(self.urls, self.repository(call)))

    # -- git refs and tags (straight from the bare repository) ----------------------------

    def _ref_body(self, repo: HostedRepository, name: str) -> dict[str, Any] | None:
        for ref_name, sha, kind in repo.git.refs(name):
            if ref_name == name:
                return rep.git_ref(self.urls, repo, ref_name, sha, kind)
        return None

    def get_ref(self, call: Call) -> ApiResponse:
        repo = self.repository(call)
        body = self._ref_body(repo, "refs/" + call.param("ref"))
        if body is None:
            raise not_found()
        return ApiResponse.json(200, body)

    def list_matching_refs(self, call: Call) -> ApiResponse:
        repo = self.repository(call)
        items = [
            rep.git_ref(self.urls, repo, name, sha, kind)
            for name, sha, kind in repo.git.refs("refs/" + call.param("ref"))
        ]
        return self._page(call, items)

    def create_ref(self, call: Call) -> ApiResponse:
        repo = self.repository(call)
        payload = call.json()
        name, sha = str(payload.get("ref", "")), str(payload.get("sha", ""))
        if not name.startswith("refs/") or name.count("/") < 2:
            raise validation_failed(message="Reference name must start with 'refs/' and have at least two slashes.")
        if repo.git.object_type(sha) is None:
            raise validation_failed(message="Object does not exist")
        if not repo.git.create_ref(name, sha):
            raise validation_failed(message="Reference already exists")
        body = self._ref_body(repo, name)
        return ApiResponse.json(201, body, {"Location": body["url"] if body else ""})

    def create_tag(self, call: Call) -> ApiResponse:
        repo = self.repository(call)
        payload = call.json()
        object_sha, object_type = str(payload["object"]), str(payload["type"])
        if repo.git.object_type(object_sha) != object_type:
            raise validation_failed(message="Object does not exist")
        tagger = payload.get("tagger") or {}
        when = _parse_time(tagger["date"]) if "date" in tagger else utc_now()
        sha = repo.git.write_tag(
            str(payload["tag"]),
            object_sha,
            object_type,
            (str(tagger.get("name", call.caller.login)), str(tagger.get("email", "noreply@loopback")), when),
            str(payload["message"]),
        )
        tag = repo.git.read_tag(sha)
        assert tag is not None
        body = rep.git_tag(self.urls, repo, tag)
        return ApiResponse.json(201, body, {"Location": body["url"]})

    def get_tag(self, call: Call) -> ApiResponse:
        repo = self.repository(call)
        tag = repo.git.read_tag(call.param("tag_sha"))
        if tag is None:
            raise not_found()
        return ApiResponse.json(200, rep.git_tag(self.urls, repo, tag))

    # -- releases and their assets ----------------------------------------------------------

    def _release(self, repo: HostedRepository, release_id: str) -> Release:
        release = repo.releases.get(int(release_id)) if release_id.isdigit() else None
        if release is None:
            raise not_found()
        return release

    def list_releases(self, call: Call) -> ApiResponse:
        repo = self.repository(call)
        newest_first = sorted(repo.releases.values(), key=lambda r: (r.created_at, r.id), reverse=True)
        return self._page(call, [rep.release(self.urls, repo, r) for r in newest_first])

    def create_release(self, call: Call) -> ApiResponse:
        repo = self.repository(call)
        payload = call.json()
        tag_name = str(payload["tag_name"])
        draft = bool(payload.get("draft", False))
        published = [r for r in repo.releases.values() if r.tag_name == tag_name and not r.draft]
        if published and not draft:
            raise validation_failed({"resource": "Release", "code": "already_exists", "field": "tag_name"})
        now = utc_now()
        release = Release(
            id=self.next_id(),
            tag_name=tag_name,
            target_commitish=str(payload.get("target_commitish") or repo.default_branch),
            name=payload.get("name"),
            body=payload.get("body"),
            draft=draft,
            prerelease=bool(payload.get("prerelease", False)),
            author=call.caller,
            created_at=now,
        )
        if not draft:
            self._publish(repo, release, str(payload.get("make_latest", "true")))
        repo.releases[release.id] = release
        body = rep.release(self.urls, repo, release)
        return ApiResponse.json(201, body, {"Location": body["url"]})

    def _publish(self, repo: HostedRepository, release: Release, make_latest: str) -> None:
        """What GitHub does on publication: stamp it, create a missing tag, maybe mark latest."""
        release.draft = False
        release.published_at = utc_now()
        tag_ref = f"refs/tags/{release.tag_name}"
        if repo.git.resolve(tag_ref) is None:
            target = repo.git.resolve(f"{release.target_commitish}^{{commit}}")
            if target is None:
                raise validation_failed({"resource": "Release", "code": "invalid", "field": "target_commitish"})
            repo.git.create_ref(tag_ref, target)
        if make_latest != "false" and not release.prerelease:
            repo.latest_release_id = release.id

    def get_release(self, call: Call) -> ApiResponse:
        repo = self.repository(call)
        return ApiResponse.json(200, rep.release(self.urls, repo, self._release(repo, call.param("release_id"))))

    def get_release_by_tag(self, call: Call) -> ApiResponse:
        repo = self.repository(call)
        # Drafts are not attached to their tag until published, so GitHub does not find them here.
        for release in repo.releases.values():
            if release.tag_name == call.param("tag") and not release.draft:
                return ApiResponse.json(200, rep.release(self.urls, repo, release))
        raise not_found()

    def get_latest_release(self, call: Call) -> ApiResponse:
        repo = self.repository(call)
        if repo.latest_release_id is None:
            raise not_found()
        return ApiResponse.json(200, rep.release(self.urls, repo, repo.releases[repo.latest_release_id]))

    def update_release(self, call: Call) -> ApiResponse:
        repo = self.repository(call)
        release = self._release(repo, call.param("release_id"))
        payload = call.json()
        for field_name in ("tag_name", "target_commitish", "name", "body", "prerelease"):
            if field_name in payload:
                setattr(release, field_name, payload[field_name])
        release.updated_at = utc_now()
        if release.draft and payload.get("draft") is False:
            self._publish(repo, release, str(payload.get("make_latest", "true")))
        elif not release.draft and payload.get("make_latest") == "true":
            repo.latest_release_id = release.id
        return ApiResponse.json(200, rep.release(self.urls, repo, release))

    def list_release_assets(self, call: Call) -> ApiResponse:
        repo = self.repository(call)
        release = self._release(repo, call.param("release_id"))
        return self._page(call, [rep.release_asset(self.urls, repo, release, a) for a in release.assets])

    def upload_release_asset(self, call: Call) -> ApiResponse:
        repo = self.repository(call)
        release = self._release(repo, call.param("release_id"))
        name = call.query("name") or ""
        if any(asset.name == name for asset in release.assets):
            raise validation_failed({"resource": "ReleaseAsset", "code": "already_exists", "field": "name"})
        asset = ReleaseAsset(
            id=self.next_id(),
            name=name,
            label=call.query("label") or None,
            content_type=call.request.content_type or "application/octet-stream",
            data=call.request.body,
            uploader=call.caller,
            created_at=utc_now(),
        )
        release.assets.append(asset)
        return ApiResponse.json(201, rep.release_asset(self.urls, repo, release, asset))

    def find_asset(self, repo: HostedRepository, asset_id: int) -> tuple[Release, ReleaseAsset] | None:
        for release in repo.releases.values():
            for asset in release.assets:
                if asset.id == asset_id:
                    return release, asset
        return None

    def get_release_asset(self, call: Call) -> ApiResponse:
        repo = self.repository(call)
        asset_id = call.param("asset_id")
        found = self.find_asset(repo, int(asset_id)) if asset_id.isdigit() else None
        if found is None:
            raise not_found()
        body = rep.release_asset(self.urls, repo, *found)
        accept = {k.lower(): v for k, v in call.request.headers.items()}.get("accept", "")
        if "application/octet-stream" in accept:
            # GitHub answers binary requests with a redirect to where the bytes are stored.
            return ApiResponse.empty(302, {"Location": body["browser_download_url"]})
        return ApiResponse.json(200, body)

    # -- pull requests ------------------------------------------------------------------------

    def _branch_name(self, repo: HostedRepository, head: str) -> str:
        owner, sep, branch = head.partition(":")
        if not sep:
            return head
        if owner != repo.owner.login:
            raise validation_failed({"resource": "PullRequest", "code": "invalid", "field": "head"})
        return branch

    def list_pulls(self, call: Call) -> ApiResponse:
        repo = self.repository(call)
        state = call.query("state", "open")
        head = call.query("head")
        base = call.query("base")
        selected = []
        for pr in sorted(repo.pulls.values(), key=lambda p: p.number, reverse=True):
            if state != "all" and pr.state != state:
                continue
            if head is not None and f"{repo.owner.login}:{pr.head_ref}" != head:
                continue
            if base is not None and pr.base_ref != base:
                continue
            selected.append(self._refreshed(repo, pr))
        return self._page(call, [rep.pull_request_listed(self.urls, repo, pr) for pr in selected])

    def _refreshed(self, repo: HostedRepository, pr: PullRequest) -> PullRequest:
        """Head and base follow their branches while the pull request is open."""
        if pr.state == "open":
            pr.head_sha = repo.git.resolve(f"refs/heads/{pr.head_ref}") or pr.head_sha
            pr.base_sha = repo.git.resolve(f"refs/heads/{pr.base_ref}") or pr.base_sha
        return pr

    def create_pull(self, call: Call) -> ApiResponse:
        repo = self.repository(call)
        payload = call.json()
        head = self._branch_name(repo, str(payload["head"]))
        base = str(payload["base"])
        head_sha = repo.git.resolve(f"refs/heads/{head}")
        base_sha = repo.git.resolve(f"refs/heads/{base}")
        if base_sha is None:
            raise validation_failed({"resource": "PullRequest", "code": "invalid", "field": "base"})
        if head_sha is None:
            raise validation_failed({"resource": "PullRequest", "code": "invalid", "field": "head"})
        for existing in repo.pulls.values():
            if existing.state == "open" and existing.head_ref == head and existing.base_ref == base:
                raise validation_failed(
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "message": f"A pull request already exists for {repo.owner.login}:{head}.",
                    }
                )
        if repo.git.commits_between(base_sha, head_sha) == 0:
            raise validation_failed(
                {"resource": "PullRequest", "code": "custom", "message": f"No commits between {base} and {head}"}
            )
        now = utc_now()
        pr = PullRequest(
            id=self.next_id(),
            number=next(repo.numbers),
            title=str(payload.get("title", "")),
            body=payload.get("body"),
            head_ref=head,
            head_sha=head_sha,
            base_ref=base,
            base_sha=base_sha,
            draft=bool(payload.get("draft", False)),
            user=call.caller,
            created_at=now,
            updated_at=now,
            maintainer_can_modify=bool(payload.get("maintainer_can_modify", True)),
        )
        repo.pulls[pr.number] = pr
        body = rep.pull_request(self.urls, repo, pr)
        return ApiResponse.json(201, body, {"Location": body["url"]})

    def get_pull(self, call: Call) -> ApiResponse:
        repo = self.repository(call)
        pr = repo.pulls.get(int(call.param("pull_number")))
        if pr is None:
            raise not_found()
        return ApiResponse.json(200, rep.pull_request(self.urls, repo, self._refreshed(repo, pr)))

    # -- issues and labels --------------------------------------------------------------------

    def list_issues(self, call: Call) -> ApiResponse:
        repo = self.repository(call)
        state = call.query("state", "open")
        wanted = {name.strip().lower() for name in (call.query("labels") or "").split(",") if name.strip()}
        rows: list[tuple[int, dict[str, Any]]] = []
        for item in repo.issues.values():
            if state != "all" and item.state != state:
                continue
            if not wanted <= {lab.name.lower() for lab in item.labels}:
                continue
            rows.append((item.number, rep.issue(self.urls, repo, item)))
        if not wanted:
            # Pull requests are issues too, and GitHub lists them here unless labels exclude them.
            for pr in repo.pulls.values():
                if state == "all" or pr.state == state:
                    rows.append((pr.number, rep.pull_request_as_issue(self.urls, repo, pr)))
        rows.sort(key=lambda row: row[0], reverse=True)
        return self._page(call, [body for _, body in rows])

    def get_issue(self, call: Call) -> ApiResponse:
        repo = self.repository(call)
        number = int(call.param("issue_number"))
        if number in repo.issues:
            return ApiResponse.json(200, rep.issue(self.urls, repo, repo.issues[number]))
        if number in repo.pulls:
            return ApiResponse.json(200, rep.pull_request_as_issue(self.urls, repo, repo.pulls[number]))
        raise not_found()

    def _commented(self, call: Call) -> tuple[HostedRepository, int]:
        repo = self.repository(call)
        number = int(call.param("issue_number"))
        if number not in repo.issues and number not in repo.pulls:
            raise not_found()
        return repo, number

    def list_comments(self, call: Call) -> ApiResponse:
        repo, number = self._commented(call)
        mine = sorted((c for c in repo.comments if c.issue_number == number), key=lambda c: c.id)
        return self._page(call, [rep.issue_comment(self.urls, repo, c) for c in mine])

    def create_comment(self, call: Call) -> ApiResponse:
        repo, number = self._commented(call)
        now = utc_now()
        comment = IssueComment(id=self.next_id(), issue_number=number, body=str(call.json()["body"]),
                               user=call.caller, created_at=now, updated_at=now)
        repo.comments.append(comment)
        body = rep.issue_comment(self.urls, repo, comment)
        return ApiResponse.json(201, body, {"Location": body["url"]})

    def _ensure_label(self, repo: HostedRepository, name: str) -> Label:
        existing = repo.label(name)
        if existing is not None:
            return existing
        created = Label(self.next_id(), name, "ededed", None)
        repo.labels[name.lower()] = created
        return created

    def create_issue(self, call: Call) -> ApiResponse:
        repo = self.repository(call)
        payload = call.json()
        names = [lab if isinstance(lab, str) else str(lab.get("name", "")) for lab in payload.get("labels", [])]
        now = utc_now()
        item = Issue(
            id=self.next_id(),
            number=next(repo.numbers),
            title=str(payload["title"]),
            body=payload.get("body"),
            # Like GitHub for users with push access, unknown labels are created on the fly.
            labels=[self._ensure_label(repo, name) for name in names],
            user=call.caller,
            created_at=now,
            updated_at=now,
        )
        repo.issues[item.number] = item
        body = rep.issue(self.urls, repo, item)
        return ApiResponse.json(201, body, {"Location": body["url"]})

    def get_label(self, call: Call) -> ApiResponse:
        repo = self.repository(call)
        found = repo.label(call.param("name"))
        if found is None:
            raise not_found()
        return ApiResponse.json(200, rep.label(self.urls, repo, found))

    def create_label(self, call: Call) -> ApiResponse:
        repo = self.repository(call)
        payload = call.json()
        name = str(payload["name"])
        if repo.label(name) is not None:
            raise validation_failed({"resource": "Label", "code": "already_exists", "field": "name"})
        created = Label(self.next_id(), name, str(payload.get("color", "ededed")), payload.get("description"))
        repo.labels[name.lower()] = created
        body = rep.label(self.urls, repo, created)
        return ApiResponse.json(201, body, {"Location": body["url"]})

    # -- contents ---------------------------------------------------------------------------

    def get_content(self, call: Call) -> ApiResponse:
        repo = self.repository(call)
        ref = call.query("ref") or repo.default_branch
        if repo.git.resolve(f"{ref}^{{commit}}") is None:
            raise not_found(f"No commit found for the ref {ref}")
        path = call.param("path").strip("/")
        entry = repo.git.entry(ref, path)
        if entry is None:
            raise not_found()
        accept = {k.lower(): v for k, v in call.request.headers.items()}.get("accept", "")
        if entry.kind == "tree":
            children = repo.git.list_directory(ref, path)
            if "application/vnd.github.object" in accept:
                body = rep.content_tree(self.urls, repo, ref, entry, children)
                return ApiResponse(200, json.dumps(body).encode(), "application/vnd.github.object; charset=utf-8")
            return ApiResponse.json(200, [rep.content_entry(self.urls, repo, ref, e) for e in children])
        return ApiResponse.json(200, rep.content_file(self.urls, repo, ref, entry, repo.git.read_blob(entry.sha)))

    # -- GitHub Apps ------------------------------------------------------------------------

    def register_app(self, app_id: int, installation_id: int, public_key_pem: bytes) -> AppInstallation:
        installation = AppInstallation(
            app_id, installation_id, public_key_pem, self.account(f"hotfix-app-{app_id}[bot]", "Bot")
        )
        with self.lock:
            self.apps[installation_id] = installation
        return installation

    def verify_app_jwt(self, headers: Mapping[str, str], installation_id: str) -> AppInstallation | None:
        scheme, _, credential = _authorization(headers).partition(" ")
        installation = self.apps.get(int(installation_id)) if installation_id.isdigit() else None
        if scheme.lower() != "bearer" or installation is None:
            return None
        try:
            claims = jwt.decode(credential.strip(), installation.public_key_pem, algorithms=["RS256"])
        except jwt.PyJWTError:
            return None
        return installation if str(claims.get("iss")) == str(installation.app_id) else None

    def create_installation_token(self, call: Call) -> ApiResponse:
        installation = self.apps[int(call.param("installation_id"))]
        token = self.issue_token(installation.bot.login, "Bot", prefix="ghs_")
        expires = utc_now() + timedelta(hours=1)
        return ApiResponse.json(201, rep.installation_token(token, expires))

    # -- pagination ------------------------------------------------------------------------

    def _page(self, call: Call, items: Sequence[Any]) -> ApiResponse:
        per_page = min(int(call.query("per_page") or 30), 100)
        page = max(int(call.query("page") or 1), 1)
        chunk = list(items[(page - 1) * per_page : page * per_page])
        headers: dict[str, str] = {}
        if page * per_page < len(items):
            query = [(k, v) for k, v in call.request.query if k != "page"] + [("page", str(page + 1))]
            prefix = "/api/uploads" if call.match.operation.server == "uploads" else "/api/v3"
            url = f"{self.urls.web}{prefix}{call.request.path}?{urllib.parse.urlencode(query)}"
            headers["Link"] = f'<{url}>; rel="next"'
        return ApiResponse.json(200, chunk, headers)


def _authorization(headers: Mapping[str, str]) -> str:
    for key, value in headers.items():
        if key.lower() == "authorization":
            return value
    return ""


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
