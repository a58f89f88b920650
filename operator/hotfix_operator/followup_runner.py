"""The follow-ups' imperative shell: one GitHub step at a time, decided by the core and run by `followup_steps`.

The controller calls FollowupRunner.run once per reconcile when the phase is Finalizing or Succeeded
and the namespace's HotfixPolicy has a github section. It asks the pure core (core.followup) which
step is due, has `followup_steps` run it through the publishing adapters and turn their
TransientError / PermanentError into plain data, and lets the core decide the new status, events and
requeue. `followup_steps` (and GitHub's client with it) is imported only when a step is first due.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hotfix_operator.adapters.policies import GitHubSettings
from hotfix_operator.core import followup as core
from hotfix_operator.core.followup import Config, Failure, FollowupDecision
from hotfix_operator.core.model import Release, Status

if TYPE_CHECKING:
    from hotfix_operator.publishing import GitHubSession

log = logging.getLogger(__name__)

SessionFactory = Callable[[GitHubSettings, float], "GitHubSession"]


@dataclass(frozen=True)
class FollowupSettings:
    """Operator-wide knobs (flags of `hotfix-operator run`)."""

    check_seconds: float = 600.0
    # overrides every policy's postmortemDeadlineHours: drills and tests only
    deadline_seconds: float | None = None
    github_write_interval: float = 1.0
    backoff_seconds: float = 5.0
    max_backoff_seconds: float = 300.0
    permanent_retry_seconds: float = 3600.0

    def config(self, github: GitHubSettings) -> Config:
        deadline = (datetime.timedelta(seconds=self.deadline_seconds) if self.deadline_seconds is not None
                    else datetime.timedelta(hours=github.postmortem_deadline_hours))
        return Config(deadline=deadline, check_interval=self.check_seconds, base_backoff=self.backoff_seconds,
                      max_backoff=self.max_backoff_seconds, permanent_retry=self.permanent_retry_seconds)


class FollowupRunner:
    def __init__(self, settings: FollowupSettings | None = None, sessions: SessionFactory | None = None) -> None:
        self.settings = settings or FollowupSettings()
        self._open = sessions
        self._sessions: dict[GitHubSettings, GitHubSession] = {}
        self._lock = threading.Lock()

    def run(self, release: Release, status: Status, github: GitHubSettings,
            now: datetime.datetime) -> FollowupDecision:
        """At most one GitHub step; the returned status is `status` plus the follow-up's changes."""
        config = self.settings.config(github)
        planned = core.plan(release, status, now, config)
        if planned.step is None:
            return FollowupDecision(planned.status, requeue_after=planned.requeue_after, done=planned.done)
        # imported when a step is first due: GitHub's client takes about 15 MB, which an operator whose
        # policies publish nowhere never needs
        from hotfix_operator import followup_steps

        outcome = followup_steps.attempt(planned.step, release, planned.status, config, github, now,
                                         lambda: self.session(github))
        if isinstance(outcome, Failure):
            log.warning("%s/%s: follow-up %s %s: %s", release.namespace, release.name, planned.step,
                        "delayed" if outcome.transient else "failed", outcome.message)
            if not outcome.transient:
                self.forget(github)  # credentials may have been rotated: open a fresh session next time
        return core.record(release, planned.status, planned.step, outcome, now, config)

    def session(self, github: GitHubSettings) -> GitHubSession:
        with self._lock:
            found = self._sessions.get(github)
            if found is None:
                if len(self._sessions) >= 16:
                    for old in self._sessions.values():
                        old.close()
                    self._sessions.clear()
                found = self._sessions[github] = self._opener()(github, self.settings.github_write_interval)
            return found

    def _opener(self) -> SessionFactory:
        if self._open is None:
            from hotfix_operator.followup_steps import open_session

            self._open = open_session
        return self._open

    def forget(self, github: GitHubSettings) -> None:
        with self._lock:
            old = self._sessions.pop(github, None)
        if old is not None:
            old.close()



__all__ = ["FollowupRunner", "FollowupSettings"]
