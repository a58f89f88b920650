"""The real git CLI in a throwaway clone, with credentials kept out of argv, URLs and config files.

The token travels as an HTTP header set through git's GIT_CONFIG_* environment variables,
scoped to the GitHub origin only: it never appears in a command line (visible in `ps` and in
error messages), in a remote URL (stored in .git/config and echoed by git), or on disk.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import PermanentError, TransientError
from .session import GitHubSession

# stderr phrases meaning "the network or the server had a bad moment", worth retrying.
_TRANSIENT_GIT_FAILURES = re.compile(
    r"Could not resolve host|Connection refused|Connection reset|timed out|Operation timed out"
    r"|The requested URL returned error: (5\d\d|429)|RPC failed|early EOF|unexpected disconnect"
    r"|remote end hung up|\(fetch first\)|non-fast-forward|cannot lock ref",
    re.IGNORECASE,
)
GIT_TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class GitResult:
    returncode: int
    stdout: str
    stderr: str


class GitWorkspace:
    """A clone in a temporary directory; every git command runs with the scoped credentials."""

    def __init__(self, session: GitHubSession, remote_url: str, directory: Path) -> None:
        self.session = session
        self.remote_url = remote_url
        self.directory = directory

    @classmethod
    @contextmanager
    def clone(
        cls, session: GitHubSession, remote_url: str, branch: str, *, shallow: bool = False
    ) -> Iterator[GitWorkspace]:
        """Clones one branch; partial (blobs on demand) or shallow, since repos can be huge."""
        scratch = Path(tempfile.mkdtemp(prefix="hotfix-git-"))
        try:
            workspace = cls(session, remote_url, scratch / "repo")
            history = ["--depth=1"] if shallow else ["--filter=blob:none"]
            workspace.run(
                "clone", "--quiet", "--no-tags", "--single-branch", f"--branch={branch}", *history,
                remote_url, str(workspace.directory), cwd=scratch, action=f"cloning {branch}",
            )  # fmt: skip
            yield workspace
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def run(self, *args: str, cwd: Path | None = None, action: str, check: bool = True) -> GitResult:
        completed = subprocess.run(
            ["git", *args],
            cwd=cwd or self.directory,
            env=self._environment(),
            capture_output=True,
            text=True,
            check=False,
            timeout=GIT_TIMEOUT_SECONDS,
        )
        result = GitResult(completed.returncode, completed.stdout, completed.stderr)
        if check and result.returncode != 0:
            raise self.failure(action, args, result)
        return result

    def failure(self, action: str, args: tuple[str, ...], result: GitResult) -> TransientError | PermanentError:
        command = self.session.redact("git " + " ".join(args))
        detail = self.session.redact(result.stderr.strip() or result.stdout.strip() or "no output")
        message = f"{action}: `{command}` exited {result.returncode}: {detail}"
        if _TRANSIENT_GIT_FAILURES.search(result.stderr):
            return TransientError(message)
        return PermanentError(message)

    def remote_branch(self, branch: str) -> str | None:
        """The commit a branch of the remote points at, or None when it does not exist."""
        output = self.run(
            "ls-remote", "--heads", "origin", f"refs/heads/{branch}", action=f"looking up branch {branch}"
        ).stdout
        for line in output.splitlines():
            sha, _, ref = line.partition("\t")
            if ref == f"refs/heads/{branch}":
                return sha
        return None

    def _environment(self) -> dict[str, str]:
        token = self.session.git_token()
        parts = urllib.parse.urlsplit(self.remote_url)
        origin = f"{parts.scheme}://{parts.netloc}/"
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        identity = self.session.identity
        # Built from scratch rather than copied: inherited GIT_TRACE / GIT_CURL_VERBOSE would make
        # git print the Authorization header.
        return {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": str(self.directory.parent),
            "LC_ALL": "C",
            # Nothing from the machine's git configuration (credential helpers that would store
            # the token, insteadOf rewrites) applies, and git never waits for a password prompt.
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "",
            "GIT_AUTHOR_NAME": identity.name,
            "GIT_AUTHOR_EMAIL": identity.email,
            "GIT_COMMITTER_NAME": identity.name,
            "GIT_COMMITTER_EMAIL": identity.email,
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": f"http.{origin}.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        }
