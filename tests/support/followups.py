"""A hotfix just promoted, as the follow-up tests (core and shell) start from."""

from __future__ import annotations

import datetime

from hotfix_operator.core.followup import Config
from hotfix_operator.core.followup_results import PullRequestRef
from hotfix_operator.core.model import AuditEntry, ObservedApproval, Release, Status, Timestamps
from tests.support.releases import COMMIT, release_object, release_spec

T0 = datetime.datetime(2026, 1, 8, 10, 45, tzinfo=datetime.UTC)
CONFIG = Config(deadline=datetime.timedelta(hours=24), check_interval=600, base_backoff=5, max_backoff=300,
                permanent_retry=3600)
DUE = T0 + datetime.timedelta(hours=24)


def make_release() -> Release:
    """Promoted 20 minutes after it was filed; alice (the requester) and bob approved it."""
    spec = release_spec(target={"deployment": "checkout", "service": "checkout", "container": "app"},
                        approval={"approvals": [{"approver": "alice", "decision": "Approve"},
                                                {"approver": "bob", "decision": "Approve", "comment": "ok"}]})
    return release_object(spec, created=T0 - datetime.timedelta(minutes=20), generation=2)


def promoted_status(**changes: object) -> Status:
    base = Status(
        phase="Succeeded", incident_id="INC-20260108-102500", tag="v4.1.2-hotfix.1", policy="prod",
        provenance={"builderId": "https://ci.example/builder", "commitSha": COMMIT},
        timestamps=Timestamps(created=T0 - datetime.timedelta(minutes=20), verified=T0 - datetime.timedelta(minutes=19),
                              approved=T0 - datetime.timedelta(minutes=10), promoted=T0,
                              completed=T0 + datetime.timedelta(minutes=2)),
        approved_by=("bob",), approvals_required=1,
        observed_approvals=(
            ObservedApproval(approver="alice", decision="Approve", observed_at=T0 - datetime.timedelta(minutes=12)),
            ObservedApproval(approver="bob", decision="Approve", observed_at=T0 - datetime.timedelta(minutes=10),
                             allowed=True)),
        audit=(AuditEntry(time=T0 - datetime.timedelta(minutes=20), actor="alice", action="Pending"),
               AuditEntry(time=T0, actor="hotfix-operator", action="Promoted")),
    )
    return base.model_copy(update=changes)


def pull(number: int, draft: bool = False) -> PullRequestRef:
    return PullRequestRef(number, f"https://github.com/acme/checkout/pull/{number}", draft, "open", False)
