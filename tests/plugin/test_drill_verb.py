"""kubectl hotfix drill: create's code path and local checks, with a drill's defaults and spec.drill set."""

from __future__ import annotations

import argparse
import datetime
from typing import Any

import pytest

from hotfix_operator.plugin import create, drill
from hotfix_operator.plugin.connection import Identity
from hotfix_operator.plugin.main import parser
from hotfix_operator.plugin.output import Output
from tests.support.releases import COMMIT, HOTFIX_IMAGE, SOURCE

NOW = datetime.datetime(2026, 11, 23, 9, 12, tzinfo=datetime.UTC)


class FakeConnection:
    namespace = "shop"

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def whoami(self) -> Identity:
        return Identity("alice", ("system:authenticated",))

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.sent.append(manifest)
        return manifest


def args(*extra: str) -> argparse.Namespace:
    return parser().parse_args(["drill", "--target", "checkout", "--image", HOTFIX_IMAGE, "--commit", COMMIT,
                                "--source-repo", SOURCE, "-n", "shop", *extra])


def test_a_drill_is_create_with_spec_drill_and_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    conn = FakeConnection()
    assert drill.run(args("--preview-service", "checkout-preview"), conn, Output.standard()) == 0  # type: ignore[arg-type]
    spec = conn.sent[0]["spec"]
    assert spec["drill"] is True and spec["requestedBy"] == "alice"
    assert spec["target"] == {"deployment": "checkout", "service": "checkout", "container": "checkout",
                              "previewService": "checkout-preview"}
    assert spec["version"] == "0.0.0" and spec["severity"] == "P1" and spec["riskLevel"] == "low"
    assert spec["ticketUrl"] == "https://drill.invalid/checkout" and len(spec["justification"]) >= 50
    assert conn.sent[0]["metadata"]["name"].startswith("checkout-drill-")
    assert "drill created in shop as alice" in capsys.readouterr().out


def test_defaults_never_override_flags() -> None:
    given = args("--service", "web", "--container", "app", "--version", "4.1.2")
    drill.defaults(given, NOW)
    assert (given.service, given.container, given.version, given.name) == ("web", "app", "4.1.2",
                                                                           "checkout-drill-20261123-091200")


def test_a_drill_is_checked_locally_like_create(capsys: pytest.CaptureFixture[str]) -> None:
    conn = FakeConnection()
    bad = parser().parse_args(["drill", "--target", "checkout", "--image", "registry.example.com/shop/checkout:4.1.2",
                               "--source-repo", SOURCE, "-n", "shop"])
    assert drill.run(bad, conn, Output.standard()) == create.EXIT_INVALID  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert "spec.commitSha: is required (--commit)" in err and "pinned by digest" in err and not conn.sent
