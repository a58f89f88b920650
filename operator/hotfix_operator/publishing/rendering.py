"""Every text the publishing steps write to GitHub, rendered from the facts alone (pure).

The same facts always render the same text, so a retried step writes identical content and
finding "what we already wrote" is reliable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from .checksums import CHECKSUMS_NAME
from .facts import HotfixFacts


class UndoLike(Protocol):
    @property
    def by(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def previous_image(self) -> str: ...

# Trailer written into the annotated tag; marks tags made by this process even without -hotfix.N.
INCIDENT_TRAILER = "Hotfix-Incident"
OVERDUE_LABEL = "hotfix-postmortem-overdue"
OVERDUE_LABEL_COLOR = "d93f0b"
OVERDUE_LABEL_DESCRIPTION = "A hotfix post-mortem is past its deadline"

_ASSET_LABELS = {
    "evidence.tar.gz": "Evidence bundle",
    "provenance.json": "Build provenance",
    CHECKSUMS_NAME: "SHA-256 checksums",
    "hotfix_record.json": "Hotfix record (justification and approvals)",
}


def utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.strip().splitlines())


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
    return "\n".join(lines)


def _approvals(facts: HotfixFacts) -> str:
    return ", ".join(f"{a.approver} ({utc(a.at)})" for a in facts.approvals) or "none recorded"


def asset_label(name: str) -> str:
    """The label shown for an asset on the release page."""
    return f"{_ASSET_LABELS[name]} ({name})" if name in _ASSET_LABELS else name


# -- tag ---------------------------------------------------------------------------------------


def tag_message(facts: HotfixFacts) -> str:
    """The annotated tag message, in the shape of the seeds' manual fallback plus trailers."""
    lines = [
        f"Hotfix {facts.tag}",
        "",
        f"Justification: {' '.join(facts.justification.split())}",
        f"Ticket: {facts.ticket_url}",
        f"Commit: {facts.commit_sha}",
        f"Risk Level: {facts.risk_level}",
        f"Severity: {facts.severity}",
        f"Requested-By: {facts.requested_by}",
        *(f"Approved-By: {a.approver} at {utc(a.at)}" for a in facts.approvals),
        "",
        f"{INCIDENT_TRAILER}: {facts.incident_id}",
        f"Hotfix-Version: {facts.version}",
    ]
    return "\n".join(lines) + "\n"


def has_incident_trailer(message: str) -> bool:
    return any(line.startswith(f"{INCIDENT_TRAILER}:") for line in message.splitlines())


# -- release -----------------------------------------------------------------------------------


def release_title(facts: HotfixFacts) -> str:
    return facts.tag


def release_notes(facts: HotfixFacts, asset_digests: Mapping[str, str]) -> str:
    summary = _table(
        ("Fact", "Value"),
        [
            ("Commit", f"`{facts.commit_sha}`"),
            ("Incident", facts.incident_id),
            ("Ticket", facts.ticket_url),
            ("Severity", facts.severity),
            ("Risk level", facts.risk_level),
            ("Requested by", facts.requested_by),
            ("Approved by", _approvals(facts)),
            ("Promoted to production", utc(facts.promoted_at)),
            ("Post-mortem due", utc(facts.postmortem_due_at)),
        ],
    )
    assets = _table(
        ("Asset", "SHA-256"),
        [(name, digest.removeprefix("sha256:")) for name, digest in sorted(asset_digests.items())],
    )
    return (
        f"## Emergency hotfix {facts.tag}\n\n"
        "Released through the emergency hotfix process, outside the regular release train. "
        f"This release is deliberately not marked as the latest release.\n\n"
        f"{summary}\n\n"
        f"### Justification\n\n{_quote(facts.justification)}\n\n"
        f"### Evidence\n\n{assets}\n\n"
        f"Verify downloaded assets with `sha256sum -c {CHECKSUMS_NAME}` and the digests above.\n\n"
        f"The post-mortem belongs in `{facts.postmortem_path}`.\n"
    )


# Marks the undo line in a release's notes, so it is found before it is written again.
UNDO_MARKER = "<!-- hotfix-operator: undone -->"


def undo_line(facts: HotfixFacts, undo: UndoLike) -> str:
    reason = " ".join(undo.reason.split())
    return (f"{UNDO_MARKER}\n**Undone at {utc(undo.at)} by {undo.by} because:** {reason}. Production runs "
            f"`{undo.previous_image}` again; the tag {facts.tag} stays as the record of what ran.")


def postmortem_undo_comment(facts: HotfixFacts, undo: UndoLike) -> str:
    return (f"{undo_line(facts, undo)}\n\nThe post-mortem ({facts.postmortem_path}) should cover the undo too: "
            "what the hotfix made worse, and how it was seen.")


# -- backport ----------------------------------------------------------------------------------


def backport_title(facts: HotfixFacts, base: str) -> str:
    return f"Backport hotfix {facts.tag} to {base}"


def _links(facts: HotfixFacts, release_url: str | None) -> str:
    return (
        f"- Release: {release_url or 'not published yet'}\n"
        f"- Incident: {facts.incident_id}\n"
        f"- Ticket: {facts.ticket_url}\n"
        f"- Hotfix commit: `{facts.commit_sha}`\n"
    )


def backport_body(facts: HotfixFacts, base: str, release_url: str | None) -> str:
    return (
        f"Backport of emergency hotfix **{facts.tag}** to `{base}`, cherry-picked with "
        f"`git cherry-pick -x {facts.commit_sha[:12]}`.\n\n"
        f"{_links(facts, release_url)}\n"
        f"Merge this so the fix is not lost from `{base}` and the next regular release.\n"
    )


def backport_conflict_body(
    facts: HotfixFacts, base: str, release_url: str | None, conflicted_files: Sequence[str]
) -> str:
    branch = facts.backport_branch
    files = "\n".join(f"- `{path}`" for path in conflicted_files)
    return (
        f"Backport of emergency hotfix **{facts.tag}** to `{base}`.\n\n"
        f"{_links(facts, release_url)}\n"
        f"**`git cherry-pick -x {facts.commit_sha}` conflicted.** The conflicted state, *with conflict "
        "markers*, was committed as-is so this branch exists; it must not be merged until resolved. "
        "Conflicting files:\n\n"
        f"{files}\n\n"
        "To finish by hand:\n\n"
        "```sh\n"
        f"git fetch origin {branch}\n"
        f"git switch {branch}\n"
        "# edit each file listed above: keep the right code, remove every <<<<<<< ======= >>>>>>> line\n"
        "git grep -n -E '^(<<<<<<<|=======|>>>>>>>)( |$)' -- . || echo 'no markers left'\n"
        "git add -- " + " ".join(f"'{p}'" for p in conflicted_files) + "\n"
        f'git commit -m "Resolve backport conflicts for {facts.tag}"\n'
        f"git push origin {branch}\n"
        "```\n\n"
        "Then mark this pull request ready for review. To redo the pick from scratch instead: "
        f"`git switch -C {branch} origin/{base} && git cherry-pick -x {facts.commit_sha}`, resolve, "
        f"and `git push --force-with-lease origin {branch}`.\n"
    )


def backport_conflict_commit_message(facts: HotfixFacts, original_subject: str, conflicted_files: Sequence[str]) -> str:
    """Message of the commit holding the conflicted pick; the trailer lets a rerun find the files."""
    return (
        f"Backport {facts.tag}: {original_subject} (UNRESOLVED CONFLICTS)\n\n"
        "The cherry-pick conflicted; this commit contains conflict markers and must be fixed "
        "before merging.\n\n"
        f"(cherry picked from commit {facts.commit_sha})\n\n"
        f"Backport-Conflicts: {', '.join(conflicted_files)}\n"
    )


def parse_conflict_trailer(message: str) -> tuple[str, ...]:
    for line in message.splitlines():
        if line.startswith("Backport-Conflicts:"):
            return tuple(p.strip() for p in line.partition(":")[2].split(",") if p.strip())
    return ()


# -- post-mortem -------------------------------------------------------------------------------


def postmortem_document(facts: HotfixFacts, release_url: str | None, backport_url: str | None) -> str:
    """The seeds' post-mortem template, with everything the operator knows filled in."""
    timeline = (
        _table(("Time (UTC)", "Event"), [(utc(e.at), e.event) for e in facts.timeline])
        if facts.timeline
        else ("_No timeline was recorded._")
    )
    approvals = (
        _table(("Approver", "Approved at (UTC)"), [(a.approver, utc(a.at)) for a in facts.approvals])
        if facts.approvals
        else "_No approvals were recorded._"
    )
    todo = "<!-- to be written by the people who handled the incident -->"
    return (
        f"# Hotfix Post-Mortem: {facts.tag}\n\n"
        f"**Date:** {facts.promoted_at:%Y-%m-%d}\n"
        "**Author:** <!-- @your-handle -->\n"
        "**Reviewed By:** <!-- @team-lead -->\n"
        f"**Due:** {utc(facts.postmortem_due_at)}\n\n"
        "## Incident Summary\n\n"
        f"Incident {facts.incident_id} (severity {facts.severity}, risk level {facts.risk_level}), "
        f"hotfix requested by {facts.requested_by}. Justification given at the time:\n\n"
        f"{_quote(facts.justification)}\n\n"
        f"{todo}\n\n"
        f"## Timeline\n\n{timeline}\n\n"
        f"## Approvals\n\n{approvals}\n\n"
        f"## Root Cause\n\n{todo}\n\n"
        "## Fix Description\n\n"
        f"Commit `{facts.commit_sha}`, released as {facts.tag}.\n\n"
        f"{todo}\n\n"
        "## Verification\n\n"
        "Evidence attached to the release: "
        + (", ".join(f"`{name}`" for name in sorted(facts.evidence)) or "none")
        + ".\n\n"
        f"{todo}\n\n"
        "## Preventive Measures\n\n"
        "What changes will prevent similar issues:\n\n"
        "- [ ] Add test coverage for edge case\n"
        "- [ ] Update monitoring/alerting\n"
        "- [ ] Update documentation\n\n"
        "## Related\n\n"
        f"- Incident Ticket: [{facts.incident_id}]({facts.ticket_url})\n"
        f"- Release: {release_url or 'not published'}\n"
        f"- Backport: {backport_url or 'none'}\n"
    )


def postmortem_title(facts: HotfixFacts) -> str:
    return f"Post-mortem for hotfix {facts.tag}"


def postmortem_body(facts: HotfixFacts, release_url: str | None, backport_url: str | None) -> str:
    return (
        f"Adds `{facts.postmortem_path}`, pre-filled from what the operator recorded for hotfix "
        f"**{facts.tag}** (incident {facts.incident_id}).\n\n"
        f"**Due: {utc(facts.postmortem_due_at)}.** Complete the sections marked for people (incident "
        "summary, root cause, fix description, verification, preventive measures), get a review "
        "from the team lead and merge. The hotfix counts as closed once this file is on the default branch.\n\n"
        f"{_links(facts, release_url)}"
        f"- Backport: {backport_url or 'none'}\n"
    )


def postmortem_commit_message(facts: HotfixFacts) -> str:
    return f"Add post-mortem template for hotfix {facts.tag}\n\n{INCIDENT_TRAILER}: {facts.incident_id}\n"


def overdue_issue_title(facts: HotfixFacts) -> str:
    return f"Post-mortem overdue for hotfix {facts.tag}"


def overdue_issue_body(facts: HotfixFacts, now: datetime, postmortem_pull_request_url: str | None) -> str:
    overdue_by = now - facts.postmortem_due_at
    hours = max(int(overdue_by.total_seconds() // 3600), 0)
    return (
        f"The post-mortem for emergency hotfix **{facts.tag}** was due {utc(facts.postmortem_due_at)} "
        f"and `{facts.postmortem_path}` is still not on the default branch "
        f"(checked {utc(now)}, about {hours} h late).\n\n"
        f"- Incident: {facts.incident_id}\n"
        f"- Ticket: {facts.ticket_url}\n"
        f"- Requested by: {facts.requested_by}\n"
        f"- Approved by: {_approvals(facts)}\n"
        f"- Post-mortem pull request: {postmortem_pull_request_url or 'none found'}\n\n"
        "Every hotfix needs its post-mortem by its deadline. Fill in the template and merge it; "
        "close this issue once the file is on the default branch.\n"
    )
