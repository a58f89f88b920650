"""The shared formats, as a specification: SHA-256 digests, SHA256SUMS, and UTC ISO 8601 times."""

from __future__ import annotations

import ast
import hashlib
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from hotfix_operator import formats
from hotfix_operator.formats import (
    Sha256SumsDuplicateError,
    Sha256SumsEmptyError,
    Sha256SumsError,
    Sha256SumsLineError,
    parse_sha256sums,
    parse_utc_iso,
    render_sha256sums,
    sha256_digest,
    utc_iso,
)

A = "a" * 64
B = "0123456789abcdef" * 4
MIXED = "ABCDEF0123456789abcdef0123456789" * 2


def test_formats_needs_nothing_but_the_standard_library() -> None:
    tree = ast.parse(Path(formats.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {name.split(".")[0] for name in imported} <= set(sys.stdlib_module_names)


# -- sha256_digest --------------------------------------------------------------------------------


class TestSha256Digest:
    def test_is_sha256_in_oci_notation(self) -> None:
        assert sha256_digest(b"abc") == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

    def test_of_no_bytes_is_the_digest_of_the_empty_string(self) -> None:
        assert sha256_digest(b"") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    def test_is_lowercase_hex_of_exactly_64_digits(self) -> None:
        algorithm, _, hex_digest = sha256_digest(bytes(range(256))).partition(":")
        assert algorithm == "sha256"
        assert len(hex_digest) == 64 and hex_digest == hex_digest.lower()
        assert hex_digest == hashlib.sha256(bytes(range(256))).hexdigest()


# -- parse_sha256sums -----------------------------------------------------------------------------


class TestParseSha256Sums:
    def test_reads_text_and_binary_mode_lines(self) -> None:
        assert parse_sha256sums(f"{A}  provenance.json\n{B} *evidence.tar.gz\n") == {
            "provenance.json": A,
            "evidence.tar.gz": B,
        }

    def test_folds_the_digest_to_lowercase(self) -> None:
        assert parse_sha256sums(f"{MIXED}  x\n") == {"x": MIXED.lower()}

    def test_drops_a_leading_dot_slash_and_keeps_directories(self) -> None:
        assert parse_sha256sums(f"{A}  ./dist/app\n{B}  dist/other\n") == {"dist/app": A, "dist/other": B}

    def test_keeps_the_name_verbatim_to_the_end_of_the_line(self) -> None:
        listed = parse_sha256sums(f"{A}  release notes.txt \n{B}  *starred\n")
        assert listed == {"release notes.txt ": A, "*starred": B}

    def test_skips_comments_and_empty_lines(self) -> None:
        assert parse_sha256sums(f"# made by the release job\n\n{A}  x\n\n# end\n") == {"x": A}

    def test_reads_crlf_line_endings_as_lf(self) -> None:
        assert parse_sha256sums(f"{A}  x\r\n{B}  y\r\n") == {"x": A, "y": B}

    def test_needs_no_final_newline(self) -> None:
        assert parse_sha256sums(f"{A}  x") == {"x": A}

    @pytest.mark.parametrize(
        "line",
        [
            "abcdef  short-digest",
            f"{A}a  long-digest",
            f"{'g' * 64}  not-hex",
            f"{A} one-space",
            f"{A}\ttab",
            f" {A}  leading-blank",
            f"{A}  ",
            f"{A}  ./",
            f"SHA256 (bsd-style) = {A}",
            f"\\{A}  escaped\\nname",
            "   ",
            "not a checksum line",
        ],
        ids=[
            "short-digest",
            "long-digest",
            "not-hex",
            "one-space",
            "tab",
            "leading-blank",
            "no-name",
            "only-dot-slash",
            "bsd-tagged",
            "escaped-name",
            "blank-but-not-empty",
            "prose",
        ],
    )
    def test_refuses_any_other_line_naming_its_number(self, line: str) -> None:
        with pytest.raises(Sha256SumsLineError, match=r"^line 3 is not '<sha256>  <name>'$") as caught:
            parse_sha256sums(f"# header\n{A}  fine\n{line}\n{B}  after\n")
        assert caught.value.line_number == 3

    @pytest.mark.parametrize("second", ["x", "./x"])
    def test_refuses_a_file_listed_twice(self, second: str) -> None:
        with pytest.raises(Sha256SumsDuplicateError, match=r"^lists 'x' twice$") as caught:
            parse_sha256sums(f"{A}  x\n{B} *{second}\n")
        assert caught.value.name == "x"

    @pytest.mark.parametrize("text", ["", "\n", "# only a comment\n"], ids=["empty", "newline", "comment"])
    def test_refuses_a_list_of_no_files(self, text: str) -> None:
        with pytest.raises(Sha256SumsEmptyError, match=r"^lists no files$"):
            parse_sha256sums(text)

    def test_every_refusal_is_a_value_error(self) -> None:
        assert issubclass(Sha256SumsError, ValueError)
        for refusal in (Sha256SumsLineError, Sha256SumsDuplicateError, Sha256SumsEmptyError):
            assert issubclass(refusal, Sha256SumsError)


# -- render_sha256sums ----------------------------------------------------------------------------


class TestRenderSha256Sums:
    def test_writes_sha256sum_text_mode_sorted_by_name(self) -> None:
        files = {"provenance.json": b"{}", "evidence.tar.gz": b"tar", "hotfix_record.json": b"[]"}
        assert render_sha256sums(files) == (
            f"{hashlib.sha256(b'tar').hexdigest()}  evidence.tar.gz\n"
            f"{hashlib.sha256(b'[]').hexdigest()}  hotfix_record.json\n"
            f"{hashlib.sha256(b'{}').hexdigest()}  provenance.json\n"
        )

    def test_is_byte_identical_to_the_evidence_writer_it_replaces(self) -> None:
        files = {"b.json": b"second", "a.tar.gz": bytes(1000), "c": b""}
        earlier = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items()))
        assert render_sha256sums(files).encode() == earlier.encode()

    def test_reads_back_as_what_was_written(self) -> None:
        files = {"a": b"1", "dir/b c": b"2", "*d": b"3"}
        assert parse_sha256sums(render_sha256sums(files)) == {
            name: hashlib.sha256(data).hexdigest() for name, data in files.items()
        }

    def test_of_no_files_is_empty(self) -> None:
        assert render_sha256sums({}) == ""

    @pytest.mark.parametrize("name", ["", "two\nlines", "carriage\r", "mid\rdle"])
    def test_refuses_names_the_format_cannot_hold(self, name: str) -> None:
        with pytest.raises(ValueError, match="cannot be listed in SHA256SUMS"):
            render_sha256sums({name: b"x"})


# -- utc_iso --------------------------------------------------------------------------------------


class TestUtcIso:
    def test_writes_utc_with_a_z(self) -> None:
        assert utc_iso(datetime(2026, 1, 8, 10, 0, 5, tzinfo=UTC)) == "2026-01-08T10:00:05Z"

    def test_converts_other_offsets_to_utc(self) -> None:
        moment = datetime(2026, 1, 8, 0, 30, tzinfo=timezone(timedelta(hours=2)))
        assert utc_iso(moment) == "2026-01-07T22:30:00Z"

    def test_drops_fractions_of_a_second_without_rounding(self) -> None:
        assert utc_iso(datetime(2026, 1, 8, 10, 0, 59, 999_999, tzinfo=UTC)) == "2026-01-08T10:00:59Z"

    def test_takes_a_naive_time_as_utc(self) -> None:
        assert utc_iso(datetime(2026, 1, 8, 10, 0)) == "2026-01-08T10:00:00Z"

    def test_pads_the_year_to_four_digits(self) -> None:
        assert utc_iso(datetime(987, 6, 5, 4, 3, 2, tzinfo=UTC)) == "0987-06-05T04:03:02Z"

    def test_matches_the_strftime_form_written_before_it(self) -> None:
        moment = datetime(2026, 3, 21, 10, 34, 4, 123, tzinfo=timezone(timedelta(hours=-5)))
        assert utc_iso(moment) == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- parse_utc_iso --------------------------------------------------------------------------------


class TestParseUtcIso:
    def test_reads_a_z_time_as_utc(self) -> None:
        parsed = parse_utc_iso("2026-01-08T10:00:05Z")
        assert parsed == datetime(2026, 1, 8, 10, 0, 5, tzinfo=UTC)
        assert parsed is not None and parsed.utcoffset() == timedelta(0)

    def test_keeps_an_offset_as_the_same_instant(self) -> None:
        parsed = parse_utc_iso("2026-01-08T12:00:05+02:00")
        assert parsed == datetime(2026, 1, 8, 10, 0, 5, tzinfo=UTC)
        assert parsed is not None and parsed.utcoffset() == timedelta(hours=2)

    def test_keeps_fractions_of_a_second(self) -> None:
        assert parse_utc_iso("2026-01-08T10:00:05.25Z") == datetime(2026, 1, 8, 10, 0, 5, 250_000, tzinfo=UTC)

    def test_takes_a_time_without_a_zone_as_utc(self) -> None:
        assert parse_utc_iso("2026-01-08T10:00:05") == datetime(2026, 1, 8, 10, 0, 5, tzinfo=UTC)
        assert parse_utc_iso(datetime(2026, 1, 8, 10, 0, 5)) == datetime(2026, 1, 8, 10, 0, 5, tzinfo=UTC)

    def test_passes_an_aware_datetime_through(self) -> None:
        moment = datetime(2026, 1, 8, 10, 0, 5, tzinfo=timezone(timedelta(hours=-3)))
        assert parse_utc_iso(moment) is moment

    def test_reads_back_what_utc_iso_wrote(self) -> None:
        moment = datetime(2026, 1, 8, 10, 0, 5, tzinfo=UTC)
        assert parse_utc_iso(utc_iso(moment)) == moment

    @pytest.mark.parametrize(
        "value",
        [None, "", "yesterday", "2026-13-01T00:00:00Z", "2026-01-08T25:00:00Z", 1_767_866_405, b"2026-01-08", []],
        ids=["none", "empty", "prose", "month-13", "hour-25", "epoch-number", "bytes", "list"],
    )
    def test_gives_none_for_anything_else(self, value: object) -> None:
        assert parse_utc_iso(value) is None
