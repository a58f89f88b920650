"""The follow-ups' shell: GitHub's client is loaded the first time a step is due, not when the operator starts,
so an operator whose policies publish nowhere never pays for it."""

from __future__ import annotations

from tests.support.fresh_python import run_fresh

PROBE = """
import sys
import hotfix_operator.handlers
from hotfix_operator.adapters.policies import GitHubSettings
from hotfix_operator.followup_runner import FollowupRunner

def refuse(settings, interval):
    raise RuntimeError("no GitHub here")
runner = FollowupRunner(sessions=refuse)
print("at start:", "github" in sys.modules)

from tests.support.followups import T0, make_release, promoted_status
GITHUB = GitHubSettings(api_url="https://github.invalid/api/v3", postmortem_deadline_hours=48, token="t")
decision = runner.run(make_release(), promoted_status(), GITHUB, T0)
print("a step due:", "github" in sys.modules)
print("outcome:", decision.failure.reason if decision.failure else None)
"""


def test_githubs_client_is_loaded_only_once_a_follow_up_step_is_due() -> None:
    lines = dict(line.split(": ", 1) for line in run_fresh(PROBE).splitlines())
    assert lines["at start"] == "False", "the operator's import loaded GitHub's client"
    assert lines["a step due"] == "True"
    assert lines["outcome"] == "UnexpectedError", "the due step did not run through the session factory"
