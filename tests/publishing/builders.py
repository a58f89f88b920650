"""Seeded repositories, evidence and hotfix facts the publishing tests share."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from hotfix_operator.publishing import Approval, HotfixFacts, TimelineEvent
from tests.support.github_server import LoopbackGitHub
from tests.support.github_server.git_store import BareRepository
from tests.support.github_server.model import HostedRepository

REPOSITORY = "acme/checkout"
VERSION = "4.1.2-hotfix.1"
PROMOTED_AT = datetime(2026, 1, 8, 10, 45, tzinfo=UTC)
CONFIG_BEFORE = "TIMEOUT_SECONDS = 30\nRETRIES = 3\n"
CONFIG_HOTFIX = "TIMEOUT_SECONDS = 5\nRETRIES = 3\n"
CONFIG_DIVERGED = "TIMEOUT_SECONDS = 60\nRETRIES = 3\n"


@dataclass(frozen=True)
class SeededRepository:
    """main: initial -> later work; release/4.1: initial -> the hotfix commit."""

    hosted: HostedRepository
    initial_commit: str
    hotfix_commit: str
    main_head: str

    def file_at(self, ref: str, path: str) -> str | None:
        data = self.hosted.git.read_file(ref, path)
        return None if data is None else data.decode()

    def commits_beyond_main(self, branch: str) -> list[str]:
        output = self.hosted.git.git("rev-list", f"refs/heads/main..refs/heads/{branch}")
        return output.split()


MainWork = Literal["unrelated", "conflicting", "same-fix"]


@dataclass(frozen=True)
class _Template:
    path: Path
    initial_commit: str
    hotfix_commit: str
    main_head: str


class CheckoutSeeder:
    """Builds each seeded history once per session; every test hosts its own copy.

    Seeded commits have fixed dates and authors, so copies share commit ids with the template.
    """

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._templates: dict[MainWork, _Template] = {}

    def seed(self, github: LoopbackGitHub, *, main_work: MainWork = "unrelated") -> SeededRepository:
        """acme/checkout whose main has moved on since the release branch was cut.

        unrelated: the hotfix cherry-picks cleanly; conflicting: main changed the same line;
        same-fix: main already made the identical change in a commit of its own.
        """
        if main_work not in self._templates:
            self._templates[main_work] = self._build(main_work)
        template = self._templates[main_work]
        hosted = github.create_repository(REPOSITORY, copy_of=template.path)
        return SeededRepository(hosted, template.initial_commit, template.hotfix_commit, template.main_head)

    def _build(self, main_work: MainWork) -> _Template:
        git = BareRepository.create(self._workdir / f"checkout-{main_work}.git", "main")
        initial = git.commit_files(
            "main", {"app/config.py": CONFIG_BEFORE.encode(), "README.md": b"# checkout\n"}, "Initial commit"
        )
        hotfix = git.commit_files(
            "release/4.1", {"app/config.py": CONFIG_HOTFIX.encode()}, "Cut checkout timeout to 5 s", parent=initial
        )
        later_work = {
            "unrelated": {"docs/guide.md": b"# Guide\n"},
            "conflicting": {"app/config.py": CONFIG_DIVERGED.encode()},
            "same-fix": {"app/config.py": CONFIG_HOTFIX.encode()},
        }[main_work]
        main_head = git.commit_files("main", later_work, "Regular work on main")
        return _Template(git.path, initial, hotfix, main_head)


def evidence_files(version: str = VERSION) -> dict[str, bytes]:
    bundle = io.BytesIO()
    with tarfile.open(fileobj=bundle, mode="w") as archive:
        report = f"release gates passed for {version}\n".encode()
        info = tarfile.TarInfo("gates/report.txt")
        info.size = len(report)
        info.mtime = int(PROMOTED_AT.timestamp())
        archive.addfile(info, io.BytesIO(report))
    files: dict[str, bytes] = {
        # Fixed gzip timestamp: the same evidence must be the same bytes on every call.
        "evidence.tar.gz": gzip.compress(bundle.getvalue(), mtime=0),
        "provenance.json": _json({"subject": f"checkout@{version}", "builder": "ci"}),
        "hotfix_record.json": _json({"version": version, "justification": "see ticket", "approvals": ["bob"]}),
    }
    files["SHA256SUMS"] = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items())
    ).encode()
    return files


def make_facts(seeded: SeededRepository, **overrides: Any) -> HotfixFacts:
    facts = HotfixFacts(
        version=VERSION,
        commit_sha=seeded.hotfix_commit,
        incident_id="INC-20260108-100000",
        ticket_url="https://tracker.example.com/INCIDENT-123",
        justification=(
            "Checkout requests hang for 30 s when the payment provider stalls; "
            "cutting the timeout to 5 s restores service | fallback path."
        ),
        severity="P0",
        risk_level="high",
        requested_by="alice",
        repository=REPOSITORY,
        promoted_at=PROMOTED_AT,
        postmortem_due_at=PROMOTED_AT + timedelta(hours=24),
        approvals=(Approval("bob", datetime(2026, 1, 8, 10, 20, tzinfo=UTC)),),
        timeline=(
            TimelineEvent("Issue discovered", datetime(2026, 1, 8, 10, 0, tzinfo=UTC)),
            TimelineEvent("Hotfix deployed", PROMOTED_AT),
            TimelineEvent("Approved by bob", datetime(2026, 1, 8, 10, 20, tzinfo=UTC)),
        ),
        evidence=evidence_files(),
    )
    return replace(facts, **overrides) if overrides else facts


def _json(payload: dict[str, Any]) -> bytes:
    return (json.dumps(payload, sort_keys=True, indent=2) + "\n").encode()
