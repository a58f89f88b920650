"""Formats shared by the verifier, the registry client and the publisher: one home for each.

- SHA-256 content digests in OCI notation, `sha256:<64 lowercase hex>`;
- SHA256SUMS, the `sha256sum` checksum list shipped with release evidence;
- UTC times as ISO 8601 with a `Z`, `YYYY-MM-DDTHH:MM:SSZ`, the form Kubernetes and GitHub write.

Standard library only and free of I/O, so any layer may use it without importing another.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime

# -- SHA-256 digests ----------------------------------------------------------------------------


def sha256_digest(data: bytes) -> str:
    """The content digest of `data` as OCI, cosign and GitHub write it: `sha256:<64 lowercase hex>`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- SHA256SUMS ---------------------------------------------------------------------------------
# The rule is what `sha256sum --check --strict` accepts, minus what no evidence bundle needs:
#   - a line is 64 hex digits (either case), one space, then a space (text mode) or `*`
#     (binary mode), then the file name verbatim to the end of the line;
#   - a line ending in CR LF is read as ending in LF; empty lines and lines starting with `#`
#     say nothing and are skipped;
#   - a leading `./` is dropped from a name, so `./a` and `a` are the same file;
#   - refused: any other line (leading blanks, a short digest, the BSD `SHA256 (name) = …` form,
#     a backslash-escaped name), a file listed twice, and a list that names no file at all.
# A list that is read one way here and another way by the tool that wrote it could vouch for
# bytes nobody checked; so nothing is guessed, and every line either counts or is refused.

_SUMS_LINE = re.compile(r"([0-9a-fA-F]{64}) [ *](.+)")


class Sha256SumsError(ValueError):
    """A SHA256SUMS text that breaks the rule; the subclass says how, `str()` says where."""


class Sha256SumsLineError(Sha256SumsError):
    def __init__(self, line_number: int) -> None:
        super().__init__(f"line {line_number} is not '<sha256>  <name>'")
        self.line_number = line_number


class Sha256SumsDuplicateError(Sha256SumsError):
    def __init__(self, name: str) -> None:
        super().__init__(f"lists {name!r} twice")
        self.name = name


class Sha256SumsEmptyError(Sha256SumsError):
    def __init__(self) -> None:
        super().__init__("lists no files")


def parse_sha256sums(text: str) -> dict[str, str]:
    """`sha256sum` output as {file name: lowercase hex digest}; raises a Sha256SumsError subclass."""
    listed: dict[str, str] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line or line.startswith("#"):
            continue
        match = _SUMS_LINE.fullmatch(line)
        name = match.group(2).removeprefix("./") if match else ""
        if match is None or not name:
            raise Sha256SumsLineError(number)
        if name in listed:
            raise Sha256SumsDuplicateError(name)
        listed[name] = match.group(1).lower()
    if not listed:
        raise Sha256SumsEmptyError()
    return listed


def render_sha256sums(files: Mapping[str, bytes]) -> str:
    """The SHA256SUMS of `files` exactly as `sha256sum` writes it in text mode, sorted by name.

    Names `sha256sum` would have to escape (line breaks) or that would vanish (empty) raise
    ValueError: this writer never escapes, so whatever it writes parse_sha256sums reads back.
    """
    for name in files:
        if not name or "\n" in name or "\r" in name:
            raise ValueError(f"file name {name!r} cannot be listed in SHA256SUMS")
    return "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items()))


# -- UTC times ----------------------------------------------------------------------------------


def utc_iso(moment: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ` in UTC; fractions of a second are dropped, a naive time is taken as UTC."""
    aware = moment.replace(tzinfo=UTC) if moment.utcoffset() is None else moment
    # isoformat, not strftime("%Y"): glibc writes year 987 as "987", not the "0987" ISO 8601 asks for.
    return aware.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def parse_utc_iso(value: object) -> datetime | None:
    """A timezone-aware time from a datetime or an ISO 8601 string (`Z` or an offset), else None.

    Tolerant on purpose, for reading what earlier versions or other tools wrote into a status:
    anything unreadable is None rather than an error. A time without a zone is taken as UTC;
    one with an offset keeps it (it is the same instant).
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=UTC)
