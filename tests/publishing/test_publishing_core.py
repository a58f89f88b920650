"""The functional core: facts validation, rendered texts, evidence integrity, deadline state."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from hotfix_operator.publishing import (
    EvidenceIntegrityError,
    HotfixFacts,
    InvalidFactsError,
    PermanentError,
    PostmortemState,
    postmortem_state,
    verify_checksums,
)
from hotfix_operator.publishing.checksums import parse_checksums
from hotfix_operator.publishing.rendering import (
    backport_conflict_body,
    backport_conflict_commit_message,
    has_incident_trailer,
    overdue_issue_body,
    parse_conflict_trailer,
    postmortem_document,
    release_notes,
    tag_message,
)

from .builders import PROMOTED_AT, evidence_files

SEED_SECTIONS = (
    "# Hotfix Post-Mortem: v4.1.2-hotfix.1",
    "## Incident Summary",
    "## Timeline",
    "## Root Cause",
    "## Fix Description",
    "## Verification",
    "## Preventive Measures",
    "## Related",
)


def _facts(**overrides: object) -> HotfixFacts:
    values: dict[str, object] = {
        "version": "4.1.2-hotfix.1",
        "commit_sha": "a8b1963b58452371e7749f714e2b9bea9f482ad0",
        "incident_id": "INC-20260108-100000",
        "ticket_url": "https://tracker.example.com/INCIDENT-123",
        "justification": "Critical auth bypass vulnerability affecting all users | needs an immediate patch",
        "severity": "P0",
        "risk_level": "high",
        "requested_by": "alice",
        "repository": "acme/checkout",
        "promoted_at": PROMOTED_AT,
        "postmortem_due_at": PROMOTED_AT + timedelta(hours=24),
        "approvals": [("bob", datetime(2026, 1, 8, 10, 20, tzinfo=UTC))],
        "timeline": [
            ("Hotfix deployed", datetime(2026, 1, 8, 10, 45, tzinfo=UTC)),
            ("Issue discovered", datetime(2026, 1, 8, 11, 0, tzinfo=timezone(timedelta(hours=1)))),
        ],
        "evidence": evidence_files(),
    }
    values.update(overrides)
    return HotfixFacts(**values)  # type: ignore[arg-type]


def test_facts_derive_the_names_the_seeds_prescribe() -> None:
    facts = _facts()

    assert facts.tag == "v4.1.2-hotfix.1"
    assert facts.backport_branch == "hotfix/backport-v4.1.2-hotfix.1"
    assert facts.postmortem_branch == "hotfix/postmortem-v4.1.2-hotfix.1"
    assert facts.postmortem_path == "docs/releases/HOTFIX_POSTMORTEMS/v4.1.2-hotfix.1.md"
    assert _facts(version="4.1.3").tag == "v4.1.3"


def test_facts_accept_plain_tuples_and_keep_times_in_utc_order() -> None:
    facts = _facts()

    assert facts.approvals[0].approver == "bob"
    assert [event.event for event in facts.timeline] == ["Issue discovered", "Hotfix deployed"]
    assert all(event.at.tzinfo == UTC for event in facts.timeline)
    with pytest.raises(TypeError):
        facts.evidence["evidence.tar.gz"] = b"changed"  # type: ignore[index]
    assert hash(facts) == hash(_facts())  # usable as a key, e.g. to deduplicate work


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"version": "4.1"}, "version '4.1'"),
        ({"version": "4.1.2-rc.1"}, "version '4.1.2-rc.1'"),
        ({"commit_sha": "a8b1963"}, "commit_sha 'a8b1963'"),
        ({"repository": "checkout"}, "repository 'checkout'"),
        ({"evidence": {"../evil": b""}}, "evidence name '../evil'"),
        ({"ticket_url": " "}, "ticket_url is empty"),
        ({"promoted_at": datetime(2026, 1, 8, 10, 45)}, "has no timezone"),
    ],
)
def test_malformed_facts_are_refused_with_the_reason(overrides: dict[str, object], complaint: str) -> None:
    with pytest.raises(InvalidFactsError, match="invalid hotfix facts") as refused:
        _facts(**overrides)

    assert complaint in str(refused.value)
    assert isinstance(refused.value, PermanentError)
    assert isinstance(refused.value, ValueError)


def test_the_tag_message_follows_the_seeds_fallback_and_carries_the_trailer() -> None:
    message = tag_message(_facts())

    assert message.startswith("Hotfix v4.1.2-hotfix.1\n\nJustification: Critical auth bypass")
    assert "Ticket: https://tracker.example.com/INCIDENT-123\n" in message
    assert "Commit: a8b1963b58452371e7749f714e2b9bea9f482ad0\n" in message
    assert "Risk Level: high\n" in message
    assert has_incident_trailer(message)
    assert not has_incident_trailer("Release 4.1.4\n\nRegular release.\n")
    assert tag_message(_facts()) == message  # deterministic: retries write identical tag objects


def test_the_post_mortem_has_every_section_of_the_seeds_template_in_order() -> None:
    document = postmortem_document(_facts(), "https://r", "https://b")

    positions = [document.index(section) for section in SEED_SECTIONS]
    assert positions == sorted(positions)
    assert "| 2026-01-08 10:00:00 UTC | Issue discovered |" in document
    assert "| 2026-01-08 10:45:00 UTC | Hotfix deployed |" in document
    assert "**Due:** 2026-01-09 10:45:00 UTC" in document


def test_user_text_cannot_break_the_markdown_tables() -> None:
    facts = _facts(timeline=[("rolled back | retried\nthen fixed", PROMOTED_AT)])

    document = postmortem_document(facts, None, None)
    notes = release_notes(facts, {"a": "sha256:00"})

    assert "| rolled back \\| retried<br>then fixed |" in document
    assert "> Critical auth bypass vulnerability affecting all users | needs" in notes  # quoted, not a cell


def test_release_notes_list_every_asset_digest() -> None:
    facts = _facts()
    digests = {name: "sha256:" + hashlib.sha256(data).hexdigest() for name, data in facts.evidence.items()}

    notes = release_notes(facts, digests)

    for name, digest in digests.items():
        assert f"| {name} | {digest.removeprefix('sha256:')} |" in notes
    assert "not marked as the latest release" in notes


def test_a_conflicted_backport_names_its_files_in_the_body_and_the_commit() -> None:
    facts = _facts()
    files = ("app/config.py", "app/limits.py")

    body = backport_conflict_body(facts, "main", None, files)
    message = backport_conflict_commit_message(facts, "Cut timeout", files)

    assert "- `app/config.py`\n- `app/limits.py`" in body
    assert "git add -- 'app/config.py' 'app/limits.py'" in body
    assert parse_conflict_trailer(message) == files
    assert f"(cherry picked from commit {facts.commit_sha})" in message


def test_the_overdue_issue_says_how_late_and_what_to_do() -> None:
    facts = _facts()

    body = overdue_issue_body(facts, facts.postmortem_due_at + timedelta(hours=5, minutes=10), "https://pr/9")

    assert "about 5 h late" in body
    assert facts.postmortem_path in body
    assert "https://pr/9" in body


@pytest.mark.parametrize(
    ("present", "offset", "state"),
    [
        (False, timedelta(hours=-1), PostmortemState.PENDING),
        (False, timedelta(0), PostmortemState.PENDING),
        (False, timedelta(seconds=1), PostmortemState.OVERDUE),
        (True, timedelta(days=30), PostmortemState.COMPLETE),
        (True, timedelta(hours=-1), PostmortemState.COMPLETE),
    ],
)
def test_post_mortem_state(present: bool, offset: timedelta, state: PostmortemState) -> None:
    due = PROMOTED_AT + timedelta(hours=24)

    assert postmortem_state(present, due, due + offset) is state


UPPER_HEX, LOWER_HEX = "ABCDEF0123456789" * 4, "0123456789abcdef" * 4


def test_checksums_in_text_and_binary_mode_are_understood() -> None:
    listed = parse_checksums(f"{UPPER_HEX}  ./dist/evidence.tar.gz\n{LOWER_HEX} *provenance.json\n# comment\n")

    assert listed == {"evidence.tar.gz": UPPER_HEX.lower(), "provenance.json": LOWER_HEX}


@pytest.mark.parametrize(
    ("sums", "fragment"),
    [
        ("ABCDEF  provenance.json\n", "line 1 is not '<sha256>  <name>'"),
        (f"{LOWER_HEX}  provenance.json\n  {LOWER_HEX}  evidence.tar.gz\n", "line 2 is not"),
        ("# a comment vouches for nothing\n", "lists no files"),
        (f"{LOWER_HEX}  provenance.json\n{UPPER_HEX}  ./provenance.json\n", "lists 'provenance.json' twice"),
        (
            f"{LOWER_HEX}  a/provenance.json\n{UPPER_HEX}  b/provenance.json\n",
            "different digests for 'provenance.json'",
        ),
    ],
    ids=["short-digest", "leading-blank", "no-files", "listed-twice", "one-asset-two-digests"],
)
def test_checksums_that_break_the_sha256sums_rule_are_refused(sums: str, fragment: str) -> None:
    evidence = {**evidence_files(), "SHA256SUMS": sums.encode()}

    with pytest.raises(EvidenceIntegrityError, match=re.escape(fragment)):
        verify_checksums(evidence)


def test_evidence_contradicting_its_checksums_is_refused() -> None:
    evidence = evidence_files()
    verify_checksums(evidence)  # consistent evidence passes
    evidence["provenance.json"] = b"{}"

    with pytest.raises(EvidenceIntegrityError, match=r"provenance\.json: SHA256SUMS says"):
        verify_checksums(evidence)
    verify_checksums({k: v for k, v in evidence.items() if k != "SHA256SUMS"})  # nothing to check against


def test_replace_revalidates_facts() -> None:
    with pytest.raises(InvalidFactsError):
        replace(_facts(), version="latest")
