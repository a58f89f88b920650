"""How failures surface: transient (retry, honouring Retry-After) versus permanent, never leaking secrets."""

from __future__ import annotations

import base64
import logging
import socket
from dataclasses import replace
from datetime import timedelta

import pytest

from hotfix_operator.publishing import (
    GitHubSession,
    HotfixFacts,
    PermanentError,
    TransientError,
    ensure_backport,
    ensure_overdue_issue,
    ensure_tag,
)
from hotfix_operator.publishing.redaction import Redactor
from tests.support.github_server import LoopbackGitHub

from .builders import SeededRepository

CREATE_ISSUE = ("POST", "/repos/{owner}/{repo}/issues")
GET_REPOSITORY = ("GET", "/repos/{owner}/{repo}")
CREATE_REF = ("POST", "/repos/{owner}/{repo}/git/refs")


@pytest.mark.parametrize("status", [403, 429])
def test_a_secondary_rate_limit_is_transient_with_githubs_retry_after_then_succeeds(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository, status: int
) -> None:
    now = facts.postmortem_due_at + timedelta(hours=1)
    github.fail_next(*CREATE_ISSUE, status=status, retry_after=42)

    with pytest.raises(TransientError) as limited:
        ensure_overdue_issue(session, facts, now=now)

    assert limited.value.retry_after == 42
    assert "secondary rate limit" in str(limited.value)
    assert not checkout.hosted.issues
    issue = ensure_overdue_issue(session, facts, now=now)
    assert issue.created
    assert len(checkout.hosted.issues) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient_and_the_retry_succeeds(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts, status: int
) -> None:
    github.fail_next(*GET_REPOSITORY, status=status, times=2)

    for _ in range(2):
        with pytest.raises(TransientError) as failed:
            ensure_tag(session, facts)
        assert failed.value.retry_after is None
        assert f"GitHub answered {status}" in str(failed.value)

    assert ensure_tag(session, facts).created
    assert github.writes(*CREATE_REF) == 1


def test_an_unreachable_github_is_transient(facts: HotfixFacts) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = GitHubSession.from_token(
        "ghp_" + "x" * 36, base_url=f"http://127.0.0.1:{port}/api/v3", seconds_between_writes=0, timeout=5
    )

    with pytest.raises(TransientError, match="cannot reach GitHub"):
        ensure_tag(unreachable, facts)


def test_bad_credentials_are_permanent_and_the_token_is_not_repeated(
    github: LoopbackGitHub, facts: HotfixFacts, caplog: pytest.LogCaptureFixture
) -> None:
    wrong_token = "ghp_" + "Q" * 36
    stranger = GitHubSession.from_token(wrong_token, base_url=github.base_url, seconds_between_writes=0)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(PermanentError) as refused:
        ensure_tag(stranger, facts)

    assert not isinstance(refused.value, TransientError)
    assert "401" in str(refused.value)
    assert wrong_token not in str(refused.value)
    assert wrong_token not in caplog.text


def test_git_failures_name_the_command_but_never_the_credentials(
    github: LoopbackGitHub, session: GitHubSession, facts: HotfixFacts, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    basic = base64.b64encode(f"x-access-token:{github.token}".encode()).decode()

    with pytest.raises(PermanentError) as failed:
        ensure_backport(session, replace(facts, commit_sha="e" * 40))

    text = str(failed.value)
    assert "git fetch" in text
    assert "e" * 40 in text
    for secret in (github.token, basic):
        assert secret not in text
        assert secret not in repr(failed.value.args)
        assert secret not in caplog.text


def test_the_redactor_masks_tokens_headers_url_credentials_and_keys() -> None:
    redact = Redactor()
    token = "ghs_" + "A1b2" * 9
    redact.add(token)
    header = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    text = (
        f"token {token}; Authorization: Basic {header}\n"
        "clone https://user:hunter22@github.com/acme/checkout.git\n"
        "jwt eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiI0MiJ9.c2lnbmF0dXJlc2lnbmF0dXJl\n"
        "stranger ghp_abcdefghijklmnopqrstuvwxyz0123456789\n"
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----"
    )

    masked = redact(text)

    for secret in (token, header, "hunter22", "eyJhbGciOiJSUzI1NiJ9", "ghp_abcdefghij", "MIIEow"):
        assert secret not in masked
    assert "github.com/acme/checkout.git" in masked
