"""Publishing a promoted hotfix on GitHub: tag, release with evidence, backport, post-mortem.

Functional core (facts, rendering, evidence, postmortem_state) and a thin imperative shell: each
ensure_* step looks up what exists before it writes, so Kopf retries, operator restarts and
lost responses never create anything twice. Steps raise TransientError (retry later, maybe after
``retry_after`` seconds) or PermanentError (a person must act); messages never hold secrets.
"""

from hotfix_operator.core.followup_results import (
    BackportOutcome,
    BackportResult,
    IssueRef,
    PostmortemCheck,
    PostmortemPullRequestResult,
    PostmortemState,
    PullRequestRef,
    ReleaseResult,
    TagResult,
)

from .backport import ensure_backport
from .checksums import evidence_digests, verify_checksums
from .errors import (
    AssetConflictError,
    EvidenceIntegrityError,
    InvalidFactsError,
    PermanentError,
    PublishingError,
    TagConflictError,
    TransientError,
)
from .facts import Approval, HotfixFacts, TimelineEvent
from .postmortem import (
    check_postmortem,
    ensure_overdue_issue,
    ensure_postmortem_pr,
    list_tags_without_postmortem,
    postmortem_state,
)
from .releases import ensure_release
from .rendering import OVERDUE_LABEL
from .session import GitHubSession, GitIdentity
from .tags import ensure_tag
from .undo import UndoFacts, ensure_postmortem_undo_comment, ensure_undo_note

__all__ = [
    "OVERDUE_LABEL",
    "Approval",
    "AssetConflictError",
    "BackportOutcome",
    "BackportResult",
    "EvidenceIntegrityError",
    "GitHubSession",
    "GitIdentity",
    "HotfixFacts",
    "InvalidFactsError",
    "IssueRef",
    "PermanentError",
    "PostmortemCheck",
    "PostmortemPullRequestResult",
    "PostmortemState",
    "PublishingError",
    "PullRequestRef",
    "ReleaseResult",
    "TagConflictError",
    "TagResult",
    "TimelineEvent",
    "TransientError",
    "UndoFacts",
    "check_postmortem",
    "ensure_backport",
    "ensure_overdue_issue",
    "ensure_postmortem_pr",
    "ensure_postmortem_undo_comment",
    "ensure_release",
    "ensure_tag",
    "ensure_undo_note",
    "evidence_digests",
    "list_tags_without_postmortem",
    "postmortem_state",
    "verify_checksums",
]
