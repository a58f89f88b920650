"""The small decoders everything else stands on: JSON, base64, PAE, digests, repositories."""

from __future__ import annotations

import pytest

from hotfix_operator.provenance.digests import parse_image_digest
from hotfix_operator.provenance.dsse import pae
from hotfix_operator.provenance.encoding import decode_base64, der_utf8_string
from hotfix_operator.provenance.reasons import Reason, Rejected, abbreviate_pair
from hotfix_operator.provenance.sourcerepo import normalize_commit, parse_source_uri
from hotfix_operator.provenance.strictjson import get_int, parse_json
from hotfix_operator.provenance.trustroot import parse_timestamp

DIGEST = "sha256:" + "ab" * 32


def rejection(reason: Reason, call: object, *args: object, **kwargs: object) -> Rejected:
    with pytest.raises(Rejected) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    assert caught.value.reason == reason, caught.value.message
    return caught.value


class TestStrictJson:
    def test_parses_ordinary_json(self) -> None:
        assert parse_json(b'{"a": [1, 2.5, "x", true, null]}', what="doc") == {"a": [1, 2.5, "x", True, None]}

    @pytest.mark.parametrize(
        ("text", "fragment"),
        [
            (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
            (b'{"a": 1, "A": 2}', "differ only in case"),
            (b'{"x": {"k": 1, "\\u212a": 2}}', "differ only in case"),  # KELVIN SIGN folds to k, as in Go
            (b'{"a": NaN}', "non-finite"),
            (b'{"a": Infinity}', "non-finite"),
            (b'{"a": "\\ud800"}', "surrogate"),
            (b"\xef\xbb\xbf{}", "byte-order mark"),
            (b'{"a": "\xff"}', "not valid UTF-8"),
            (b'{"a": 1} trailing', "not valid JSON"),
            (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        ],
    )
    def test_refuses_ambiguous_or_invalid_documents(self, text: bytes, fragment: str) -> None:
        error = rejection(Reason.MALFORMED_INPUT, parse_json, text, what="doc")
        assert fragment in error.message
        assert error.message.startswith("doc")

    def test_refuses_oversized_documents(self) -> None:
        error = rejection(Reason.MALFORMED_INPUT, parse_json, b"[" + b"1," * 100 + b"1]", what="doc", max_bytes=50)
        assert "limit of 50" in error.message

    def test_integers_may_be_protobuf_strings_only_when_allowed(self) -> None:
        assert get_int({"n": "123"}, "n", "entry", allow_string=True) == 123
        rejection(Reason.MALFORMED_INPUT, get_int, {"n": "123"}, "n", "entry")
        rejection(Reason.MALFORMED_INPUT, get_int, {"n": True}, "n", "entry")
        rejection(Reason.MALFORMED_INPUT, get_int, {"n": 2**64}, "n", "entry")


class TestBase64:
    @pytest.mark.parametrize("text", ["aGk/Pz4+", "aGk_Pz4-", "aGk/Pz4", "aGk_Pz4"])
    def test_accepts_both_alphabets_padded_or_not(self, text: str) -> None:
        assert decode_base64(text + ("" if len(text) % 4 == 0 else "="), what="x").startswith(b"hi")
        assert decode_base64(text, what="x").startswith(b"hi")

    @pytest.mark.parametrize(
        ("text", "fragment"),
        [
            ("aGk/Pz4-", "mixes"),
            ("aGk gaGk=", "unexpected characters"),
            ("aGkK\n", "unexpected characters"),
            ("a", "impossible base64 length"),
            ("aGk==", "padding"),
            ("", "empty"),
        ],
    )
    def test_refuses_lenient_forms(self, text: str, fragment: str) -> None:
        assert fragment in rejection(Reason.MALFORMED_INPUT, decode_base64, text, what="x").message


def test_pae_matches_the_dsse_specification_example() -> None:
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters() -> None:
    assert pae("tÿpe", "bödy".encode()) == "DSSEv1 5 tÿpe 5 bödy".encode()


class TestImageDigests:
    @pytest.mark.parametrize(
        "reference", [DIGEST, f"registry.example.com/shop/checkout@{DIGEST}", f"host:5000/a/b:tag@{DIGEST}"]
    )
    def test_pinned_references(self, reference: str) -> None:
        assert parse_image_digest(reference) == DIGEST

    @pytest.mark.parametrize(
        "reference", ["registry.example.com/shop/checkout:4.1.2", "checkout", "nginx:latest", "x@sha512:" + "a" * 128]
    )
    def test_unpinned_references(self, reference: str) -> None:
        rejection(Reason.NOT_DIGEST_PINNED, parse_image_digest, reference)

    @pytest.mark.parametrize("reference", ["x@sha256:" + "AB" * 32, "x@sha256:abc", "sha256:" + "g" * 64])
    def test_malformed_digests(self, reference: str) -> None:
        rejection(Reason.MALFORMED_INPUT, parse_image_digest, reference)


class TestSourceRepositories:
    @pytest.mark.parametrize(
        ("spelling", "ref"),
        [
            ("github.com/acme/checkout", None),
            ("https://github.com/acme/checkout", None),
            ("https://github.com/acme/checkout.git", None),
            ("https://GitHub.com/Acme/Checkout/", None),
            ("git+https://github.com/acme/checkout@refs/tags/v1", "refs/tags/v1"),
            ("git+https://github.com/acme/checkout.git@refs/heads/main", "refs/heads/main"),
        ],
    )
    def test_spellings(self, spelling: str, ref: str | None) -> None:
        location = parse_source_uri(spelling)
        assert location.repository == "github.com/acme/checkout"
        assert location.ref == ref

    @pytest.mark.parametrize(
        "spelling",
        [
            "",
            "acme/checkout",
            "http://github.com/acme/checkout",
            "ssh://git@github.com/acme/checkout",
            "https://user@github.com/acme/checkout",
            "https://github.com/acme",
            "https://github.com/acme/../checkout",
            "https://github.com/acme/checkout?x=1",
            "git+https://github.com/acme/checkout@",
            "git+https://github.com/acme/checkout@refs/../x",
        ],
    )
    def test_refused_spellings(self, spelling: str) -> None:
        with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
            parse_source_uri(spelling)

    def test_commits_must_be_full(self) -> None:
        assert normalize_commit("A" * 40) == "a" * 40
        for bad in ["a" * 39, "a" * 7, "g" * 40, "a" * 64]:
            with pytest.raises(ValueError, match="full 40-hex"):
                normalize_commit(bad)


def test_der_utf8_strings() -> None:
    assert der_utf8_string(b"\x0c\x03abc", what="x") == "abc"
    long = "h" * 200
    assert der_utf8_string(b"\x0c\x81\xc8" + long.encode(), what="x") == long
    for bad in [b"\x13\x03abc", b"\x0c\x04abc", b"\x0c\x81\x03abc", b"\x0c\x02\xff\xfe"]:
        rejection(Reason.MALFORMED_INPUT, der_utf8_string, bad, what="x")


def test_timestamps_in_protobuf_json() -> None:
    assert parse_timestamp("2022-12-31T23:59:59.999Z", what="t").isoformat() == "2022-12-31T23:59:59.999000+00:00"
    assert parse_timestamp("2021-01-12T11:53:27Z", what="t").isoformat() == "2021-01-12T11:53:27+00:00"
    assert (
        parse_timestamp("2021-01-12T13:53:27.123456789+02:00", what="t").isoformat()
        == "2021-01-12T11:53:27.123456+00:00"
    )
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_timestamp("yesterday", what="t")


def test_messages_abbreviate_only_when_the_difference_stays_visible() -> None:
    assert abbreviate_pair(
        "693130cb6cb840a7bc9cb18c6510d536a95dc7e6", "a8b1963f0a9d5d8c6a8b7c0e5f2d1e3c4b5a6978", keep=7
    ) == (
        "693130c…",
        "a8b1963…",
    )
    same_prefix = ("693130cb6cb840a7bc9cb18c6510d536a95dc7e6", "693130cb6cb840a7bc9cb18c6510d536a95dc7e7")
    assert abbreviate_pair(*same_prefix, keep=7) == same_prefix


def test_the_offline_guard_is_active() -> None:
    import socket

    from tests.provenance.conftest import NetworkUsed

    with pytest.raises(NetworkUsed):
        socket.create_connection(("rekor.sigstore.dev", 443))
