"""The loopback GitHub holds itself and its clients to GitHub's OpenAPI description.

These tests prove the validator can fail: otherwise a clean run of the publishing tests would
prove nothing about their requests.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
import requests
from github import Auth, Github

from tests.support.github_server import ApiRequest, ApiResponse, ContractValidator, GitHubSpec, LoopbackGitHub

from .builders import REPOSITORY, SeededRepository


def _rest(github: LoopbackGitHub, method: str, path: str, payload: dict[str, Any] | None = None) -> requests.Response:
    return requests.request(
        method,
        f"{github.base_url}{path}",
        headers={"Authorization": f"token {github.token}", "Accept": "application/vnd.github+json"},
        json=payload,
        timeout=10,
    )


def test_a_path_outside_the_description_is_answered_404_and_recorded(
    github: LoopbackGitHub, checkout: SeededRepository
) -> None:
    answer = _rest(github, "GET", f"/repos/{REPOSITORY}/hotfix-shortcuts")

    [violation] = github.take_violations()
    assert answer.status_code == 404
    assert (violation.kind, violation.path) == ("unknown-operation", f"/repos/{REPOSITORY}/hotfix-shortcuts")


def test_a_method_the_description_does_not_define_for_a_path_is_refused(
    github: LoopbackGitHub, checkout: SeededRepository
) -> None:
    answer = _rest(github, "DELETE", f"/repos/{REPOSITORY}/releases/tags/v1.0.0")

    assert answer.status_code == 404
    assert [v.kind for v in github.take_violations()] == ["unknown-operation"]


def test_a_request_body_against_the_schema_is_refused_with_the_reason(
    github: LoopbackGitHub, checkout: SeededRepository
) -> None:
    answer = _rest(github, "POST", f"/repos/{REPOSITORY}/pulls", {"head": 7, "base": "main"})

    [violation] = github.take_violations()
    assert answer.status_code == 422
    assert violation.kind == "request"
    assert "is not of type 'string'" in violation.detail
    assert not checkout.hosted.pulls


def test_a_misspelt_request_property_is_a_violation_although_github_would_ignore_it(
    github: LoopbackGitHub, checkout: SeededRepository
) -> None:
    _rest(github, "POST", f"/repos/{REPOSITORY}/releases", {"tag_name": "v9.9.9", "make_latset": "false"})

    [violation] = github.take_violations()
    assert violation.kind == "request"
    assert "$.make_latset" in violation.detail


def test_an_empty_query_value_the_description_forbids_is_caught(
    github: LoopbackGitHub, checkout: SeededRepository
) -> None:
    # PyGithub sends label= (empty) unless told otherwise; the description does not allow that,
    # which is why the release step always gives its assets a label.
    repo = Github(auth=Auth.Token(github.token), base_url=github.base_url, retry=None).get_repo(REPOSITORY)
    draft = repo.create_git_release("v9.9.9", "v9.9.9", "draft", draft=True)

    with pytest.raises(Exception, match="label"):
        draft.upload_asset_from_memory(io.BytesIO(b"x"), 1, "x.bin")

    [violation] = github.take_violations()
    assert violation.kind == "request"
    assert "label" in violation.detail


def test_an_operation_the_server_does_not_emulate_is_reported_as_such(
    github: LoopbackGitHub, checkout: SeededRepository
) -> None:
    answer = _rest(github, "GET", f"/repos/{REPOSITORY}/topics")

    assert answer.status_code == 501
    assert [v.kind for v in github.take_violations()] == ["unimplemented"]


def test_requests_without_valid_credentials_are_refused(github: LoopbackGitHub, checkout: SeededRepository) -> None:
    answer = requests.get(f"{github.base_url}/repos/{REPOSITORY}", headers={"Authorization": "token nope"}, timeout=10)

    assert answer.status_code == 401
    assert answer.json()["message"] == "Bad credentials"


def test_responses_are_checked_against_the_schema(github_spec: GitHubSpec) -> None:
    validator = ContractValidator(github_spec)
    match = github_spec.find("GET", "api", "/repos/acme/checkout")
    assert match is not None
    request = ApiRequest("GET", "/repos/acme/checkout", [], {}, b"", "")

    problems = validator.check_response(match, request, ApiResponse.json(200, {"id": 1, "name": "checkout"}))

    assert any("'full_name' is a required property" in p for p in problems)


def test_a_status_the_operation_does_not_document_is_a_violation(github_spec: GitHubSpec) -> None:
    validator = ContractValidator(github_spec)
    match = github_spec.find("POST", "api", "/repos/acme/checkout/git/refs")
    assert match is not None
    request = ApiRequest("POST", "/repos/acme/checkout/git/refs", [], {}, b"{}", "application/json")

    assert validator.check_response(match, request, ApiResponse.json(418, {"message": "teapot"}))
    # Failures GitHub documents for its whole API pass, if shaped like its basic-error...
    assert validator.check_response(match, request, ApiResponse.json(502, {"message": "Server Error"})) == []
    # ...and only then.
    assert validator.check_response(match, request, ApiResponse.json(502, ["not", "an", "error"]))


def test_routing_follows_the_descriptions_templates_including_multi_segment_parameters(
    github_spec: GitHubSpec,
) -> None:
    ref = github_spec.find("GET", "api", "/repos/acme/checkout/git/ref/tags/v4.1.2-hotfix.1")
    latest = github_spec.find("GET", "api", "/repos/acme/checkout/releases/latest")
    upload = github_spec.find("POST", "uploads", "/repos/acme/checkout/releases/5/assets")

    assert ref is not None
    assert ref.operation.operation_id == "git/get-ref"
    assert dict(ref.path_params) == {"owner": "acme", "repo": "checkout", "ref": "tags/v4.1.2-hotfix.1"}
    assert latest is not None
    assert latest.operation.operation_id == "repos/get-latest-release"
    assert upload is not None
    assert upload.operation.operation_id == "repos/upload-release-asset"
    assert github_spec.find("POST", "api", "/repos/acme/checkout/releases/5/assets") is None


def test_scheduling_a_fault_on_an_endpoint_github_does_not_have_fails_loudly(github: LoopbackGitHub) -> None:
    with pytest.raises(KeyError, match="not in GitHub's OpenAPI description"):
        github.fail_next("POST", "/repos/{owner}/{repo}/hotfixes")


def test_a_client_hanging_up_mid_answer_is_not_recorded_as_a_server_error(
    github: LoopbackGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Integration tests SIGKILL the operator mid-request; its vanished socket is not GitHub failing."""

    def hung_up(handler: object) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(github, "handle", hung_up)
    with pytest.raises(requests.ConnectionError):
        _rest(github, "GET", f"/repos/{REPOSITORY}")

    assert github.take_violations() == []


def test_an_exception_inside_the_server_is_answered_500_and_recorded(
    github: LoopbackGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(handler: object) -> None:
        raise ValueError("emulation bug")

    monkeypatch.setattr(github, "handle", broken)
    answer = _rest(github, "GET", f"/repos/{REPOSITORY}")

    [violation] = github.take_violations()
    assert answer.status_code == 500
    assert (violation.kind, violation.detail) == ("server-error", "ValueError: emulation bug")
