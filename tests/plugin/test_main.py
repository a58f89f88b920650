"""kubectl's flags are read before or after the verb, and mistakes in the command never reach a cluster."""

from __future__ import annotations

import pytest

from hotfix_operator.plugin.main import main, parser


def test_connection_flags_before_or_after_the_verb() -> None:
    before = parser().parse_args(["--kubeconfig", "k", "--context", "c", "-n", "shop", "status", "x"])
    after = parser().parse_args(["status", "x", "--kubeconfig", "k", "--context", "c", "-n", "shop"])
    for args in (before, after):
        assert (args.kubeconfig, args.context, args.namespace, args.all_namespaces) == ("k", "c", "shop", False)
    assert parser().parse_args(["list", "-A", "-o", "yaml"]).all_namespaces is True
    assert parser().parse_args(["list"]).output is None


def test_status_timeout_takes_a_duration() -> None:
    assert parser().parse_args(["status", "x", "--watch", "--timeout", "1m30s"]).timeout == 90
    with pytest.raises(SystemExit):
        parser().parse_args(["status", "x", "--timeout", "soon"])


def test_reject_needs_a_comment_and_abort_a_reason() -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["reject", "x"])
    with pytest.raises(SystemExit):
        parser().parse_args(["abort", "x"])


def test_an_unloadable_kubeconfig_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--kubeconfig", "/nonexistent/kubeconfig", "list"]) == 2
    assert "cannot load the kubeconfig (/nonexistent/kubeconfig)" in capsys.readouterr().err


def test_verify_is_the_operators_verify_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["verify", "--help"])
    assert "provenance gate" in capsys.readouterr().out
