"""Fixtures: a loopback GitHub per test (the parsed OpenAPI description is shared per session).

The `github` fixture fails the test when anything the adapters sent, or anything the server
answered, falls outside GitHub's OpenAPI description.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hotfix_operator.publishing import GitHubSession, HotfixFacts
from tests.support.github_server import GitHubSpec, LoopbackGitHub, load_github_spec

from .builders import CheckoutSeeder, SeededRepository, make_facts


@pytest.fixture(scope="session")
def github_spec() -> GitHubSpec:
    return load_github_spec()


@pytest.fixture
def github(tmp_path: Path, github_spec: GitHubSpec) -> Iterator[LoopbackGitHub]:
    with LoopbackGitHub(tmp_path / "github", github_spec) as server:
        yield server
        violations = server.take_violations()
    assert not violations, "outside GitHub's OpenAPI description:\n" + "\n".join(map(str, violations))


@pytest.fixture
def session(github: LoopbackGitHub) -> Iterator[GitHubSession]:
    connected = GitHubSession.from_token(github.token, base_url=github.base_url, seconds_between_writes=0)
    yield connected
    connected.close()


@pytest.fixture(scope="session")
def seeder(tmp_path_factory: pytest.TempPathFactory) -> CheckoutSeeder:
    return CheckoutSeeder(tmp_path_factory.mktemp("seeded-histories"))


@pytest.fixture
def checkout(github: LoopbackGitHub, seeder: CheckoutSeeder) -> SeededRepository:
    return seeder.seed(github)


@pytest.fixture
def facts(checkout: SeededRepository) -> HotfixFacts:
    return make_facts(checkout)
