"""GitHub App installation auth: a signed JWT is exchanged for an installation token, used for REST and git."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hotfix_operator.publishing import (
    BackportOutcome,
    GitHubSession,
    HotfixFacts,
    PermanentError,
    ensure_backport,
    ensure_tag,
)
from tests.support.github_server import LoopbackGitHub

from .builders import SeededRepository

APP_ID = 4242
INSTALLATION_ID = 77
TOKEN_EXCHANGE = ("POST", "/app/installations/{installation_id}/access_tokens")


def _key_pair() -> tuple[str, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


@pytest.fixture(scope="module")
def app_keys() -> tuple[str, bytes]:
    return _key_pair()


@pytest.fixture
def app_session(github: LoopbackGitHub, app_keys: tuple[str, bytes]) -> Iterator[GitHubSession]:
    private, public = app_keys
    github.register_app(APP_ID, INSTALLATION_ID, public)
    session = GitHubSession.from_app_installation(
        APP_ID, private, INSTALLATION_ID, base_url=github.base_url, seconds_between_writes=0
    )
    yield session
    session.close()


def test_rest_calls_run_as_the_installation_after_one_token_exchange(
    github: LoopbackGitHub, app_session: GitHubSession, facts: HotfixFacts
) -> None:
    result = ensure_tag(app_session, facts)
    ensure_tag(app_session, facts)

    assert result.created
    assert github.writes(*TOKEN_EXCHANGE) == 1
    callers = {e.caller for e in github.exchanges if e.template != TOKEN_EXCHANGE[1]}
    assert callers == {f"hotfix-app-{APP_ID}[bot]"}


def test_git_pushes_with_the_installation_token(
    github: LoopbackGitHub, app_session: GitHubSession, facts: HotfixFacts, checkout: SeededRepository
) -> None:
    result = ensure_backport(app_session, facts)

    assert result.outcome is BackportOutcome.OPENED
    assert result.pull_request is not None
    assert checkout.hosted.pulls[result.pull_request.number].user.login == f"hotfix-app-{APP_ID}[bot]"
    assert github.writes(*TOKEN_EXCHANGE) == 1


def test_a_key_github_does_not_know_is_a_permanent_error_that_leaks_no_key(
    github: LoopbackGitHub, app_keys: tuple[str, bytes], facts: HotfixFacts, checkout: SeededRepository
) -> None:
    _, public = app_keys
    github.register_app(APP_ID, INSTALLATION_ID, public)
    wrong_private, _ = _key_pair()
    session = GitHubSession.from_app_installation(
        APP_ID, wrong_private, INSTALLATION_ID, base_url=github.base_url, seconds_between_writes=0
    )

    with pytest.raises(PermanentError, match="401") as refused:
        ensure_tag(session, facts)

    assert "PRIVATE KEY" not in str(refused.value)
    assert github.writes(*TOKEN_EXCHANGE) == 0
    assert checkout.hosted.git.resolve("refs/tags/v4.1.2-hotfix.1") is None
