"""Debian's prometheus on loopback, scraping one metrics URL, and the demo hotfix's SLA figures read
back through PromQL. Used by the dashboard test (tests/observability) and meant for `make dev`:

    with LocalPrometheus.scraping("http://127.0.0.1:8080/metrics", workdir) as prom:
        ...  # run the hotfix
        for line in sla_report(prom, "shop", "checkout-4-1-2-hotfix-1"): print(line)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localcluster.cluster import _die_with_parent, free_port

# The job name the alerts expect (charts/hotfix-operator/files/prometheus-rules.yaml).
JOB = "hotfix-operator"


@dataclass
class LocalPrometheus:
    url: str
    process: subprocess.Popen[bytes]

    @classmethod
    @contextmanager
    def scraping(cls, metrics_url: str, workdir: Path, interval: str = "1s") -> Iterator[LocalPrometheus]:
        binary = shutil.which("prometheus") or "/usr/bin/prometheus"
        if not Path(binary).exists():
            raise FileNotFoundError("prometheus not installed; run `make deps` (Debian package prometheus)")
        target = urllib.parse.urlparse(metrics_url)
        workdir.mkdir(parents=True, exist_ok=True)
        config = {"global": {"scrape_interval": interval, "evaluation_interval": interval},
                  "scrape_configs": [{"job_name": JOB, "metrics_path": target.path or "/metrics",
                                      "static_configs": [{"targets": [target.netloc]}]}]}
        (workdir / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        port = free_port()
        with (workdir / "prometheus.log").open("ab") as log:
            process = subprocess.Popen(
                [binary, f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{port}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        prom = cls(f"http://127.0.0.1:{port}", process)
        try:
            prom.wait_ready()
            prom.wait_scraped()
            yield prom
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"prometheus at {self.url} not ready after {timeout}s")

    def wait_scraped(self, timeout: float = 30.0) -> None:
        """Ready is not scraping: target discovery hands over new targets only every few seconds, so wait
        for the first scrape, or the first seconds of what the caller does next are never recorded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.query(f'up{{job="{JOB}"}} == 1'):
                return
            time.sleep(0.2)
        raise TimeoutError(f"prometheus at {self.url} did not scrape job {JOB} within {timeout}s")

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as answer:
            body = json.load(answer)
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus {path} {params}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def query_range(self, expr: str, start: float, end: float, step: str = "1s") -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query_range", query=expr, start=str(start), end=str(end),
                                                step=step)["result"]
        return result


def _scalar(prom: LocalPrometheus, expr: str) -> float | None:
    result = prom.query(expr)
    return float(result[0]["value"][1]) if result else None


def sla_figures(prom: LocalPrometheus, namespace: str) -> dict[str, float | None]:
    """The SLA figures of a namespace's hotfixes, as the dashboard computes them (all time)."""
    ns = f'namespace="{namespace}"'
    ttp = "hotfix_time_to_production_seconds"
    return {
        "time_to_production_seconds": _scalar(prom, f"sum({ttp}_sum{{{ns}}}) / sum({ttp}_count{{{ns}}})"),
        "approval_wait_seconds": _scalar(prom, f"sum(hotfix_approval_wait_seconds_sum{{{ns}}}) / "
                                               f"sum(hotfix_approval_wait_seconds_count{{{ns}}})"),
        "approval_to_production_seconds": _scalar(prom, f"sum(hotfix_approval_to_production_seconds_sum{{{ns}}}) / "
                                                        f"sum(hotfix_approval_to_production_seconds_count{{{ns}}})"),
        "within_sla_ratio": _scalar(prom, f'sum({ttp}_bucket{{le="1800.0",{ns}}}) / sum({ttp}_count{{{ns}}})'),
        "sla_breaches": _scalar(prom, f"sum(hotfix_sla_breaches_total{{{ns}}})"),
        "succeeded": _scalar(prom, f'sum(hotfix_releases_total{{outcome="Succeeded",{ns}}})'),
    }


def sla_report(prom: LocalPrometheus, namespace: str) -> list[str]:
    """Lines for a terminal: each figure and the PromQL-backed source, then where to look."""
    figures = sla_figures(prom, namespace)
    lines = [f"  {name:32} {'-' if value is None else f'{value:g}'}" for name, value in figures.items()]
    return [*lines, f"  Prometheus: {prom.url}/graph?g0.expr=hotfix_time_to_production_seconds_count"]
