"""Bare git repositories on disk: the loopback server's source of truth for refs, tags and files.

Everything here runs the git CLI, so tags, branches, commits and file contents are exactly what
git itself would produce, and a clone over smart HTTP sees the same objects the REST API reports.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

ZERO_SHA = "0" * 40

# Seeded commits get fixed dates and identities so repeated runs build identical histories.
_SEED_DATE = "2026-01-05T09:00:00Z"


def hermetic_git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment in which no user or system git configuration leaks into the test."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": tempfile.gettempdir(),
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "Loopback Seeder",
        "GIT_AUTHOR_EMAIL": "seeder@loopback.invalid",
        "GIT_COMMITTER_NAME": "Loopback Seeder",
        "GIT_COMMITTER_EMAIL": "seeder@loopback.invalid",
        "GIT_AUTHOR_DATE": _SEED_DATE,
        "GIT_COMMITTER_DATE": _SEED_DATE,
    }
    env.update(extra or {})
    return env


class GitCommandError(RuntimeError):
    pass


@dataclass(frozen=True)
class TagObject:
    sha: str
    object_sha: str
    object_type: str
    name: str
    tagger_name: str
    tagger_email: str
    tagged_at: datetime
    message: str


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    kind: str  # blob | tree | commit
    sha: str
    size: int
    path: str

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


class BareRepository:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, path: Path, default_branch: str) -> BareRepository:
        path.parent.mkdir(parents=True, exist_ok=True)
        _run(["git", "init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(path)])
        repository = cls(path)
        # GitHub lets clients fetch any commit by id and do partial clones; so does this server.
        repository.git("config", "uploadpack.allowAnySHA1InWant", "true")
        repository.git("config", "uploadpack.allowFilter", "true")
        return repository

    @classmethod
    def copy(cls, source: Path, path: Path) -> BareRepository:
        """A byte-for-byte copy of another bare repository: same objects, same commit ids."""
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, path)
        return cls(path)

    def git(self, *args: str, stdin: bytes | None = None, env: Mapping[str, str] | None = None) -> str:
        return _run(["git", f"--git-dir={self.path}", *args], stdin=stdin, env=env).decode()

    def git_bytes(self, *args: str) -> bytes:
        return _run(["git", f"--git-dir={self.path}", *args])

    def succeeds(self, *args: str) -> bool:
        completed = subprocess.run(
            ["git", f"--git-dir={self.path}", *args], env=hermetic_git_env(), capture_output=True, check=False
        )
        return completed.returncode == 0

    def resolve(self, ref: str) -> str | None:
        completed = subprocess.run(
            ["git", f"--git-dir={self.path}", "rev-parse", "--verify", "--quiet", "--end-of-options", ref],
            env=hermetic_git_env(),
            capture_output=True,
            check=False,
        )
        if completed.returncode != 0:
            return None
        return completed.stdout.decode().strip() or None

    def object_type(self, sha: str) -> str | None:
        if not self.succeeds("cat-file", "-e", sha):
            return None
        return self.git("cat-file", "-t", sha).strip()

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self.succeeds("merge-base", "--is-ancestor", ancestor, descendant)

    def commits_between(self, base: str, head: str) -> int:
        return int(self.git("rev-list", "--count", f"{base}..{head}").strip())

    def refs(self, prefix: str = "refs/") -> list[tuple[str, str, str]]:
        """(name, sha, object type) of every ref whose full name starts with prefix, sorted."""
        output = self.git("for-each-ref", "--format=%(refname) %(objectname) %(objecttype)")
        entries = [tuple(line.split(" ")) for line in output.splitlines() if line.strip()]
        return sorted((name, sha, kind) for name, sha, kind in entries if name.startswith(prefix))

    def create_ref(self, name: str, sha: str) -> bool:
        """Creates the ref only if it does not exist yet; False when it already did."""
        completed = subprocess.run(
            ["git", f"--git-dir={self.path}", "update-ref", name, sha, ZERO_SHA],
            env=hermetic_git_env(),
            capture_output=True,
            check=False,
        )
        return completed.returncode == 0

    def read_tag(self, sha: str) -> TagObject | None:
        if self.object_type(sha) != "tag":
            return None
        raw = self.git("cat-file", "tag", sha)
        header, _, message = raw.partition("\n\n")
        fields: dict[str, str] = {}
        for line in header.splitlines():
            key, _, value = line.partition(" ")
            fields[key] = value
        tagger = fields.get("tagger", "")
        name_email, _, stamp = tagger.rpartition("> ")
        name, _, email = name_email.partition(" <")
        return TagObject(
            sha=sha,
            object_sha=fields["object"],
            object_type=fields["type"],
            name=fields["tag"],
            tagger_name=name,
            tagger_email=email,
            tagged_at=_parse_git_stamp(stamp),
            message=message,
        )

    def write_tag(
        self, name: str, object_sha: str, object_type: str, tagger: tuple[str, str, datetime], message: str
    ) -> str:
        tagger_name, tagger_email, tagged_at = tagger
        body = (
            f"object {object_sha}\ntype {object_type}\ntag {name}\n"
            f"tagger {tagger_name} <{tagger_email}> {_format_git_stamp(tagged_at)}\n\n{message}"
        )
        if not body.endswith("\n"):
            body += "\n"
        return self.git("mktag", stdin=body.encode()).strip()

    def entry(self, ref: str, path: str) -> TreeEntry | None:
        """The tree entry at path in ref; the root tree itself for an empty path."""
        commit = self.resolve(f"{ref}^{{commit}}")
        if commit is None:
            return None
        if path in ("", "/"):
            tree = self.git("rev-parse", f"{commit}^{{tree}}").strip()
            return TreeEntry("040000", "tree", tree, 0, "")
        lines = self.git("ls-tree", "-l", "--full-tree", commit, "--", path.strip("/")).splitlines()
        return _parse_ls_tree(lines[0]) if lines else None

    def list_directory(self, ref: str, path: str) -> list[TreeEntry]:
        commit = self.resolve(f"{ref}^{{commit}}")
        if commit is None:
            return []
        target = f"{path.strip('/')}/" if path.strip("/") else "."
        lines = self.git("ls-tree", "-l", "--full-tree", commit, "--", target).splitlines()
        return [_parse_ls_tree(line) for line in lines]

    def read_blob(self, sha: str) -> bytes:
        return self.git_bytes("cat-file", "blob", sha)

    def read_file(self, ref: str, path: str) -> bytes | None:
        entry = self.entry(ref, path)
        if entry is None or entry.kind != "blob":
            return None
        return self.read_blob(entry.sha)

    def commit_files(
        self, branch: str, files: Mapping[str, bytes | None], message: str, parent: str | None = None
    ) -> str:
        """Commits files (None deletes) on top of parent (default: the branch) and moves the branch.

        Uses a private index file, so no working tree is needed and nothing else is disturbed.
        """
        base = parent if parent is not None else self.resolve(f"refs/heads/{branch}")
        with tempfile.TemporaryDirectory() as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            if base is not None:
                self.git("read-tree", base, env=env)
            for path, content in sorted(files.items()):
                if content is None:
                    self.git("update-index", "--force-remove", "--", path, env=env)
                    continue
                blob = self.git("hash-object", "-w", "--stdin", stdin=content).strip()
                self.git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
            tree = self.git("write-tree", env=env).strip()
        parents = ["-p", base] if base is not None else []
        commit = self.git("commit-tree", tree, *parents, "-m", message).strip()
        self.git("update-ref", f"refs/heads/{branch}", commit)
        return commit

    def tag_objects(self) -> list[str]:
        """Every annotated tag object stored, referenced or not."""
        output = self.git("cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype)")
        return sorted(line.split(" ")[0] for line in output.splitlines() if line.endswith(" tag"))


def _run(argv: list[str], stdin: bytes | None = None, env: Mapping[str, str] | None = None) -> bytes:
    completed = subprocess.run(argv, input=stdin, env=hermetic_git_env(env), capture_output=True, check=False)
    if completed.returncode != 0:
        raise GitCommandError(f"{' '.join(argv)} failed: {completed.stderr.decode().strip()}")
    return completed.stdout


def _parse_ls_tree(line: str) -> TreeEntry:
    meta, _, path = line.partition("\t")
    mode, kind, sha, size = meta.split()
    return TreeEntry(mode, kind, sha, 0 if size == "-" else int(size), path)


def _format_git_stamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("tag dates must be timezone-aware")
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{int(moment.timestamp())} {sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


def _parse_git_stamp(stamp: str) -> datetime:
    seconds, _, zone = stamp.strip().partition(" ")
    sign = -1 if zone.startswith("-") else 1
    hours, minutes = int(zone[1:3] or 0), int(zone[3:5] or 0)
    tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    return datetime.fromtimestamp(int(seconds), tz=UTC).astimezone(tz)
