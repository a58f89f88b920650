"""One authenticated connection to GitHub (or GitHub Enterprise Server) for REST and git.

PyGithub's own retries are switched off: it would retry POSTs by itself and sleep through rate
limits inside a Kopf handler. Failures surface at once as TransientError / PermanentError and
the operator decides when to try again, with its state safely in the resource's status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from github import Auth, Github, GithubException
from github.Repository import Repository

from .errors import PermanentError, PublishingError, TransientError
from .redaction import Redactor

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.github.com"


@dataclass(frozen=True)
class GitIdentity:
    """Who the operator's commits and tags are attributed to."""

    name: str = "hotfix-operator"
    email: str = "hotfix-operator@users.noreply.github.com"


class GitHubSession:
    def __init__(
        self,
        client: Github,
        token_source: Callable[[], str],
        *,
        identity: GitIdentity | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.client = client
        self.identity = identity or GitIdentity()
        self.redact = redactor or Redactor()
        self._token_source = token_source

    @classmethod
    def from_token(
        cls,
        token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        identity: GitIdentity | None = None,
        timeout: int = 30,
        seconds_between_writes: float = 1.0,
    ) -> GitHubSession:
        """A session authenticated by a personal access or installation token.

        seconds_between_writes follows GitHub's advice for content-creating requests (one per
        second) to stay clear of secondary rate limits; tests against a loopback server pass 0.
        """
        redactor = Redactor()
        redactor.add(token)
        client = _client(Auth.Token(token), base_url, timeout, seconds_between_writes)
        return cls(client, lambda: token, identity=identity, redactor=redactor)

    @classmethod
    def from_app_installation(
        cls,
        app_id: int | str,
        private_key: str,
        installation_id: int,
        *,
        base_url: str = DEFAULT_BASE_URL,
        identity: GitIdentity | None = None,
        timeout: int = 30,
        seconds_between_writes: float = 1.0,
    ) -> GitHubSession:
        """A session acting as a GitHub App installation; tokens are exchanged and renewed by PyGithub."""
        redactor = Redactor()
        redactor.add(private_key)
        auth = Auth.AppInstallationAuth(Auth.AppAuth(app_id, private_key), installation_id)
        client = _client(auth, base_url, timeout, seconds_between_writes)
        session: GitHubSession

        def installation_token() -> str:
            # Reading .token performs the exchange (or reuses an unexpired token).
            with session.errors("obtaining a GitHub App installation token"):
                token = auth.token
            redactor.add(token)
            return token

        session = cls(client, installation_token, identity=identity, redactor=redactor)
        return session

    def git_token(self) -> str:
        """The current token, for git over HTTPS; registered with the redactor before use."""
        token = self._token_source()
        self.redact.add(token)
        return token

    def repository(self, full_name: str) -> Repository:
        with self.errors(f"reading repository {full_name}"):
            return self.client.get_repo(full_name)

    @contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Turns whatever escapes the block into TransientError / PermanentError, secrets removed."""
        try:
            yield
        except PublishingError as error:
            error.message = self.redact(error.message)
            error.args = (error.message,)
            raise
        except GithubException as error:
            raise self._from_github(action, error) from None
        except (requests.ConnectionError, requests.Timeout) as error:
            raise TransientError(self.redact(f"{action}: cannot reach GitHub: {error}")) from None
        except requests.RequestException as error:
            raise PermanentError(self.redact(f"{action}: {error}")) from None

    def _from_github(self, action: str, error: GithubException) -> PublishingError:
        status = int(error.status or 0)
        headers = {str(k).lower(): str(v) for k, v in (error.headers or {}).items()}
        message = self.redact(f"{action}: GitHub answered {status}: {describe_github_error(error)}")
        retry_after = _retry_after(headers)
        rate_limited = (
            status == 429
            or (status == 403 and retry_after is not None)
            or (status == 403 and "rate limit" in message.lower())
        )
        if status >= 500 or status == 408 or rate_limited:
            log.warning("%s (transient, retry after %s s)", message, retry_after)
            return TransientError(message, retry_after=retry_after)
        log.warning("%s (permanent)", message)
        return PermanentError(message)

    def close(self) -> None:
        self.client.close()


def describe_github_error(error: GithubException) -> str:
    """GitHub's message plus the per-field reasons a 422 carries."""
    data: Any = error.data
    if not isinstance(data, dict):
        return str(error.message or data or "no details")
    parts = [str(data.get("message", "no message"))]
    for detail in data.get("errors", []) or []:
        if isinstance(detail, dict):
            text = detail.get("message") or " ".join(
                str(detail[k]) for k in ("resource", "field", "code") if k in detail
            )
            parts.append(str(text))
        else:
            parts.append(str(detail))
    return "; ".join(parts)


def is_already_exists(error: GithubException) -> bool:
    """GitHub's 422 for 'that ref / pull request / asset / label already exists'."""
    if error.status != 422:
        return False
    text = describe_github_error(error).lower()
    return "already exists" in text or "already_exists" in text


def _retry_after(headers: dict[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value:
        try:
            return max(float(value), 0.0)
        except ValueError:
            try:
                return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
            except (TypeError, ValueError):
                return None
    if headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset", "").isdigit():
        # Primary rate limit: GitHub says when the window resets instead of how long to wait.
        return max(float(headers["x-ratelimit-reset"]) - time.time(), 0.0)
    return None


def _client(auth: Auth.Auth, base_url: str, timeout: int, seconds_between_writes: float) -> Github:
    return Github(
        auth=auth,
        base_url=base_url,
        timeout=timeout,
        retry=None,
        per_page=100,
        user_agent="hotfix-operator",
        seconds_between_requests=None,
        seconds_between_writes=seconds_between_writes or None,
    )
