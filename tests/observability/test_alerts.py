"""The alerts, tested by Prometheus itself: `promtool test rules` on the chart's rule file, and every
alert has at least one case where it fires."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit
HERE = Path(__file__).parent
RULES = HERE.parents[1] / "charts" / "hotfix-operator" / "files" / "prometheus-rules.yaml"
TESTS = HERE / "alerts_test.yaml"


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool missing: `make deps` installs Debian's prometheus package, which ships it"
    return path


def test_promtool_checks_the_rule_file() -> None:
    run = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_promtool_rule_unit_tests_pass() -> None:
    run = subprocess.run([promtool(), "test", "rules", TESTS.name], cwd=HERE, capture_output=True, text=True,
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_alert_has_a_case_that_fires() -> None:
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r}
    fired = {case["alertname"] for t in yaml.safe_load(TESTS.read_text())["tests"]
             for case in t.get("alert_rule_test", []) if case.get("exp_alerts")}
    assert alerts == fired
    assert {"HotfixSLAAtRisk", "HotfixSLABreached", "HotfixRolledBack", "HotfixPostmortemOverdue",
            "HotfixOperatorAbsent", "HotfixVerificationFailuresSpike", "HotfixReconcileErrors"} <= alerts
