"""Source repositories and commits, in the several spellings provenance and certificates use.

`github.com/o/r`, `https://github.com/o/r(.git)` and `git+https://github.com/o/r@refs/tags/v1`
all name one repository. We compare the normalized form `host/owner/name`, lower-cased:
GitHub treats owner and repository names case-insensitively, so `Acme/Checkout` and
`acme/checkout` are the same repository and must not be told apart, nor confused with another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HOST = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+(?::[0-9]{1,5})?")
_SEGMENT = re.compile(r"[A-Za-z0-9_.-]+")
_COMMIT = re.compile(r"[0-9a-fA-F]{40}")
GITHUB_HOST = "github.com"


@dataclass(frozen=True)
class SourceLocation:
    """A repository (normalized) and, when the URI carried one, the git ref after `@`."""

    repository: str
    ref: str | None


def parse_source_uri(value: str) -> SourceLocation:
    """Parse any accepted spelling; raises ValueError with a reason for anything else."""
    text = value.strip()
    if not text:
        raise ValueError("empty repository")
    ref: str | None = None
    lowered = text.lower()
    if lowered.startswith("git+https://"):
        rest = text[len("git+https://") :]
    elif lowered.startswith("https://"):
        rest = text[len("https://") :]
    elif "://" in text:
        raise ValueError(f"unsupported scheme in {value!r} (only https and git+https)")
    else:
        rest = text
    if any(mark in rest for mark in ("?", "#", "\\", " ")):
        raise ValueError(f"{value!r} carries a query, fragment or unexpected character")
    host, slash, path = rest.partition("/")
    if not slash:
        raise ValueError(f"{value!r} has no owner/repository path")
    if "@" in host:
        raise ValueError(f"{value!r} carries user information")
    host = host.lower()
    if not _HOST.fullmatch(host):
        raise ValueError(f"{value!r} does not start with a host name")
    if "@" in path:
        path, ref = path.split("@", 1)
        if not ref or any(part in ("", ".", "..") for part in ref.split("/")):
            raise ValueError(f"{value!r} has an invalid git ref")
    path = path.rstrip("/")
    if path.lower().endswith(".git"):
        path = path[: -len(".git")]
    segments = path.split("/")
    if len(segments) < 2:
        raise ValueError(f"{value!r} does not name owner/repository")
    for segment in segments:
        if not _SEGMENT.fullmatch(segment) or segment in (".", ".."):
            raise ValueError(f"{value!r} has an invalid path segment {segment!r}")
    return SourceLocation(repository=f"{host}/{'/'.join(segments).lower()}", ref=ref)


def normalize_repository(value: str) -> str:
    """The normalized repository; a ref in the input is dropped."""
    return parse_source_uri(value).repository


def normalize_commit(value: str) -> str:
    """A full 40-hex git commit id, lower-cased; abbreviated ids are refused as ambiguous."""
    if not _COMMIT.fullmatch(value):
        raise ValueError(f"{value!r} is not a full 40-hex commit id")
    return value.lower()
