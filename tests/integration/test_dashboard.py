"""The dashboard: the committed JSON is what hack/dashboards/generate.py builds, and every panel's query
returns data from a real Prometheus that scraped the operator during a real hotfix."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboards.generate import OUT, build, render
from observability import LocalPrometheus, sla_figures
from tests.integration.conftest import FileHotfix, OperatorProcess, approve
from tests.kube import Kube

# what Grafana substitutes; the test's window is minutes, so the ranges only need to cover it
GRAFANA = {"$__range": "1h", "$namespace": ".*", "$sla_seconds": "1800"}


def targets(board: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in board["panels"] for t in p.get("targets", [])]


@pytest.mark.unit
def test_the_committed_dashboard_is_what_the_script_generates() -> None:
    assert OUT.read_text() == render(), "run: .venv/bin/python hack/dashboards/generate.py"


@pytest.mark.unit
def test_the_dashboard_is_sla_first_and_every_panel_has_a_query() -> None:
    board = build()
    titles = [p["title"] for p in board["panels"]]
    assert titles[0].startswith("SLA") and "Time to production vs SLA" in titles
    assert all(p.get("targets") for p in board["panels"] if p["type"] != "row")


@pytest.fixture
def prometheus(running_operator: OperatorProcess, tmp_path: Path) -> Iterator[LocalPrometheus]:
    url = f"http://127.0.0.1:{running_operator.metrics_port}/metrics"
    with LocalPrometheus.scraping(url, tmp_path / "prometheus") as prom:
        yield prom


@pytest.mark.cluster
def test_every_panel_query_returns_data_after_a_real_hotfix(kube: Kube, quickstart: str, file_hotfix: FileHotfix,
                                                             prometheus: LocalPrometheus) -> None:
    started = time.time()
    ns = quickstart
    file_hotfix(ns)
    kube.wait_phase(ns, "checkout-hotfix", "AwaitingApproval")
    time.sleep(3)  # a few scrapes while it waits: the in-flight panels
    approve(kube, ns, "checkout-hotfix")
    done = kube.wait_phase(ns, "checkout-hotfix", "Succeeded", "RolledBack", "Failed", "Rejected")
    assert done["status"]["phase"] == "Succeeded", done["status"]["message"]
    time.sleep(3)  # the last transitions scraped
    empty = []
    for title, expr in targets(build()):
        for var, value in GRAFANA.items():
            expr = expr.replace(var, value)
        series = prometheus.query_range(expr, started, time.time())
        values = [float(v) for s in series for _, v in s["values"]]
        if not any(not math.isnan(v) for v in values):
            empty.append(f"{title}: {expr}")
    assert not empty, "panels without data:\n" + "\n".join(empty)
    figures = sla_figures(prometheus, ns)
    assert figures["succeeded"] == 1 and figures["sla_breaches"] == 0
    assert figures["time_to_production_seconds"] and figures["time_to_production_seconds"] > 0
    assert json.dumps(figures)
