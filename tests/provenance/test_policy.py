"""The HotfixPolicy provenance spec: what loads, and what is refused at load time with a message."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pydantic import ValidationError

from hotfix_operator.provenance import ProvenancePolicy, SignerPolicy
from tests.provenance.private_sigstore import PrivateSigstore, new_key, public_pem

ROOT = PrivateSigstore().trusted_root()
KEY = public_pem(new_key())


def spec(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "trustedKeys": [{"name": "ci", "publicKey": KEY}],
        "keylessIdentities": [
            {
                "issuer": {"exact": "https://token.actions.githubusercontent.com"},
                "subject": {"regex": r"https://github\.com/acme/.*"},
            }
        ],
        "trustedRoot": ROOT,
        "allowedBuilders": ["https://github.com/acme/ci/.github/workflows/build.yml"],
        "allowedSourceRepositories": ["https://github.com/Acme/Checkout.git"],
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def refused(fragment: str, **changes: Any) -> None:
    with pytest.raises(ValidationError, match=fragment):
        ProvenancePolicy.model_validate(spec(**changes))


def pem(key: Any) -> str:
    return str(
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_a_complete_policy_loads_and_normalizes() -> None:
    policy = ProvenancePolicy.model_validate(
        spec(
            vulnerabilityScan={"failAt": "CRITICAL", "ignoreIds": ["CVE-2024-1"]},
            requiredPredicateTypes=["https://spdx.dev/Document"],
        )
    )
    assert policy.allowed_source_repositories == ["github.com/acme/checkout"]
    assert policy.require_tagged_builder is True
    assert policy.require_transparency_log is True
    assert policy.vulnerability_scan is not None
    assert policy.vulnerability_scan.fail_at == "CRITICAL"
    assert policy.keys[0].name == "ci"
    assert policy.root is not None


def test_snake_case_names_work_for_python_callers() -> None:
    snake = ProvenancePolicy(
        trusted_keys=[{"name": "ci", "public_key": KEY}],  # type: ignore[list-item]
        trusted_root=ROOT,
        allowed_builders=["b"],
        allowed_source_repositories=["github.com/acme/checkout"],
    )
    camel = ProvenancePolicy.model_validate(
        {
            "trustedKeys": [{"name": "ci", "publicKey": KEY}],
            "trustedRoot": ROOT,
            "allowedBuilders": ["b"],
            "allowedSourceRepositories": ["github.com/acme/checkout"],
        }
    )
    assert [(key.name, key.public_key) for key in snake.trusted_keys] == [("ci", KEY)]
    assert [key.name for key in snake.keys] == ["ci"]
    assert (snake.trusted_root, snake.allowed_builders) == (ROOT, ["b"])
    assert snake.allowed_source_repositories == ["github.com/acme/checkout"]
    assert snake.root is not None
    assert snake.model_dump() == camel.model_dump()


def test_policy_is_immutable() -> None:
    policy = ProvenancePolicy.model_validate(spec())
    with pytest.raises(ValidationError):
        policy.allowed_builders = ["anything"]


def test_typos_are_refused() -> None:
    refused("allowedBuilder", allowedBuilder=["x"])


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"trustedKeys": [], "keylessIdentities": []}, "trust at least one"),
        ({"trustedRoot": None}, "trustedRoot is required"),
        ({"allowedBuilders": []}, "allowedBuilders"),
        ({"allowedSourceRepositories": []}, "allowedSourceRepositories"),
        ({"allowedSourceRepositories": ["ssh://git@github.com/acme/checkout"]}, "unsupported scheme"),
        (
            {"allowedBuilders": ["https://github.com/acme/ci/.github/workflows/build.yml@refs/heads/main"]},
            "requireTaggedBuilder",
        ),
        ({"keylessIdentities": [{"issuer": {"exact": "x"}, "subject": {"exact": "a", "regex": "a"}}]}, "exactly one"),
        ({"keylessIdentities": [{"issuer": {"exact": "x"}, "subject": {}}]}, "exactly one"),
        (
            {"keylessIdentities": [{"issuer": {"exact": "x"}, "subject": {"regex": "(unclosed"}}]},
            "invalid regular expression",
        ),
        ({"trustedKeys": [{"name": "a", "publicKey": KEY}, {"name": "a", "publicKey": KEY}]}, "unique"),
        (
            {
                "trustedKeys": [
                    {"name": "ci", "publicKey": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}
                ]
            },
            "not a PEM public key",
        ),
        (
            {"trustedKeys": [{"name": "ci", "publicKey": pem(ec.generate_private_key(ec.SECP384R1()))}]},
            "P-256 or Ed25519",
        ),
        ({"trustedKeys": [{"name": "ci", "publicKey": pem(rsa.generate_private_key(65537, 2048))}]}, "only ECDSA"),
        ({"trustedRoot": "{}"}, "mediaType"),
        ({"trustedRoot": ROOT.replace('"tlogs"', '"tlogs": [], "Tlogs"', 1)}, "differ only in case"),
        ({"trustedRoot": json.dumps({**json.loads(ROOT), "tlogs": []})}, "no usable transparency log"),
        ({"trustedRoot": json.dumps({**json.loads(ROOT), "certificateAuthorities": []})}, "no certificate authority"),
        ({"vulnerabilityScan": {"failAt": "SEVERE"}}, "failAt"),
    ],
)
def test_unusable_policies_are_refused_at_load_time(changes: dict[str, Any], fragment: str) -> None:
    refused(fragment, **changes)


def test_ed25519_keys_are_trusted() -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    policy = ProvenancePolicy.model_validate(spec(trustedKeys=[{"name": "ed", "publicKey": pem(private)}]))
    assert [(key.name, key.algorithm) for key in policy.keys] == [("ed", "Ed25519")]
    assert policy.keys[0].verifies(private.sign(b"release"), b"release")
    assert not policy.keys[0].verifies(private.sign(b"release"), b"another release")


def test_bare_key_trust_without_a_log_needs_no_root() -> None:
    policy = SignerPolicy.model_validate(
        {"trustedKeys": [{"name": "ci", "publicKey": KEY}], "requireTransparencyLog": False}
    )
    assert policy.root is None


def test_identity_matching_is_full_match() -> None:
    policy = ProvenancePolicy.model_validate(spec())
    issuer = "https://token.actions.githubusercontent.com"
    assert policy.matching_identity("https://github.com/acme/ci/x.yml@refs/tags/v1", issuer) is not None
    assert policy.matching_identity("https://github.com/acme-evil/ci/x.yml", issuer) is None
    assert policy.matching_identity("prefix https://github.com/acme/x", issuer) is None
    assert policy.matching_identity("https://github.com/acme/x", issuer + "/") is None
    assert policy.matching_identity("https://github.com/acme/x", None) is None


def test_load_policy_reports_every_problem_as_policy_invalid() -> None:
    from hotfix_operator.provenance import Reason, Rejected, load_policy

    with pytest.raises(Rejected) as caught:
        load_policy({"trustedKeys": [{"name": "ci", "publicKey": "garbage"}], "allowedBuilders": []})
    assert caught.value.reason == Reason.POLICY_INVALID
    assert "trustedKeys.0.publicKey" in caught.value.message
    assert "allowedBuilders" in caught.value.message
    assert "allowedSourceRepositories" in caught.value.message
    assert load_policy(spec()).allowed_source_repositories == ["github.com/acme/checkout"]
