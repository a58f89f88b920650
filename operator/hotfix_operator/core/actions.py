"""What the lifecycle asks the shell to do. Each action states a desired end state, so executing it
twice (after a retry or a restart) changes nothing the second time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class SetServiceSelector:
    service: str
    selector: Mapping[str, str]
    why: str


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


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str
    actor: str = "hotfix-operator"


Action = SetServiceSelector | CreateDeployment | DeleteDeployment | SetContainerImage


def removes_objects(actions: Iterable[Action]) -> bool:
    """Whether carrying these out removes something (the shell confirms such a decision on live reads)."""
    return any(isinstance(action, DeleteDeployment) for action in actions)
