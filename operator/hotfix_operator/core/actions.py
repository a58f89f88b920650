"""What the lifecycle asks the shell to do. Each action states a desired end state, so executing it
twice (after a retry or a restart) changes nothing the second time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hotfix_operator.api import POD_TEMPLATE_HASH


@dataclass(frozen=True)
class SetServiceSelector:
    service: str
    selector: Mapping[str, str]
    why: str
    # Carried out before the decision's status is written, not after. Only three writes are: the switch of
    # the active Service to green once its checks have passed, blue still warm (should the status write then
    # never land, the next reconcile finds the Service on a side status does not record, says so in the audit
    # trail and moves it back: core.traffic.account_for_unrecorded), the preview Service pointed at green
    # for its checks (it carries no production traffic), and the fold's image (SetContainerImage).
    ahead_of_status: bool = False


@dataclass(frozen=True)
class CreateDeployment:
    manifest: Mapping[str, Any]


@dataclass(frozen=True)
class DeleteDeployment:
    name: str
    # only delete what this release created: the shell checks this label before deleting
    release_uid: str


@dataclass(frozen=True)
class SetContainerImage:
    deployment: str
    container: str
    image: str
    # The fold's write goes before the status write that records it (Finalizing, fold begun): green serves
    # throughout, and should that status write never land, the next reconcile finds the Deployment on the
    # hotfix image in Promoted and records the fold as begun (core.cutover.account_for_unrecorded_fold), so
    # a rollback from there still rolls the Deployment back first.
    ahead_of_status: bool = False


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str
    actor: str = "hotfix-operator"


Action = SetServiceSelector | CreateDeployment | DeleteDeployment | SetContainerImage


def ahead_of_status(actions: Iterable[Action]) -> tuple[Action, ...]:
    """The actions the shell carries out before it writes the decision's status (the rest come after)."""
    return tuple(a for a in actions if isinstance(a, SetServiceSelector | SetContainerImage) and a.ahead_of_status)


def removes_protection(actions: Iterable[Action], active_service: str) -> bool:
    """Whether carrying these out removes something, or unpins the active Service (a selector without the
    pod-template-hash selects every pod of the app, green's too if any were left). The shell confirms such
    a decision on live reads: a view a few milliseconds old can show the other side serving, or green's
    pods gone, when it is not so. Unpinning the preview Service is not among them: it takes no production
    traffic."""
    return any(isinstance(action, DeleteDeployment) or
               (isinstance(action, SetServiceSelector) and action.service == active_service and
                POD_TEMPLATE_HASH not in action.selector)
               for action in actions)


def one_per_passage(events: Sequence[Event]) -> tuple[Event, ...]:
    """The Events of one reconcile, with each run of Normal ones from one actor told as one: a reconcile that
    passes through several phases (Verifying, then AwaitingApproval) tells where it ended and what it passed
    on the way, and costs one write, not one per step. A Warning always stands alone. Every step keeps its
    own entry in the status's audit trail."""
    told: list[Event] = []
    run: list[Event] = []
    for event in events:
        if run and (event.type != "Normal" or event.actor != run[-1].actor):
            told.append(_as_one(run))
            run = []
        if event.type == "Normal":
            run.append(event)
        else:
            told.append(event)
    if run:
        told.append(_as_one(run))
    return tuple(told)


def _as_one(run: Sequence[Event]) -> Event:
    last, passed = run[-1], run[:-1]
    if not passed:
        return last
    before = "; ".join(f"{e.reason}: {e.message}" for e in passed)
    return Event("Normal", last.reason, f"{last.message} (after {before})", last.actor)
