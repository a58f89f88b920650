"""The Grafana dashboard, as code (grafana-foundation-sdk). Writes charts/hotfix-operator/dashboards/
hotfix-operator.json; tests/observability checks the committed file equals this output and runs every
query against a real Prometheus that scraped a real hotfix.

    .venv/bin/python hack/dashboards/generate.py          # regenerate after a change here
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableOption

OUT = Path(__file__).resolve().parents[2] / "charts" / "hotfix-operator" / "dashboards" / "hotfix-operator.json"
DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
NS = 'namespace=~"$namespace"'
# the default SLA (HotfixPolicy sla.targetSeconds); a bucket boundary of the duration histograms
SLA_DEFAULT = "1800"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


def quantile(q: float, metric: str, by: str = "le", selector: str = NS, window: str = "1h") -> str:
    return f"histogram_quantile({q}, sum by ({by}) (rate({metric}_bucket{{{selector}}}[{window}])))"


def _series(title: str, unit: str, queries: list[Query], width: int, description: str) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).description(description).unit(unit).datasource(DS).span(width).height(8)
    for i, q in enumerate(queries):
        panel = panel.with_target(prometheus.Dataquery().expr(q.expr).legend_format(q.legend).ref_id("ABCDEFGH"[i]))
    return panel


def _stat(title: str, unit: str, expr: str, width: int, description: str) -> stat.Panel:
    target = prometheus.Dataquery().expr(expr).instant().ref_id("A")
    return stat.Panel().title(title).description(description).unit(unit).datasource(DS).span(width).height(4) \
        .with_target(target)


def sla_row(board: dashboard.Dashboard) -> dashboard.Dashboard:
    ttp = "hotfix_time_to_production_seconds"
    return board.with_row(dashboard.Row("SLA: time to traffic on the hotfix")) \
        .with_panel(_stat("Within SLA", "percentunit",
                          f'sum(increase({ttp}_bucket{{le="{SLA_DEFAULT}.0",{NS}}}[$__range])) / '
                          f"sum(increase({ttp}_count{{{NS}}}[$__range]))", 6,
                          "Share of hotfixes whose traffic reached the hotfix within the default SLA (30 min)")) \
        .with_panel(_stat("SLA breaches", "short", f"sum(increase(hotfix_sla_breaches_total{{{NS}}}[$__range]))", 6,
                          "Releases whose SLA deadline passed before traffic switched (condition SLABreached)")) \
        .with_panel(_stat("Least SLA time left (in flight)", "s",
                          f"min(hotfix_sla_remaining_seconds{{{NS}}})", 6,
                          "Releases whose traffic is not on the hotfix yet; negative: breached")) \
        .with_panel(_stat("Rollback rate", "percentunit",
                          f'sum(increase(hotfix_releases_total{{outcome="RolledBack",{NS}}}[$__range])) / '
                          f'clamp_min(sum(increase(hotfix_releases_total{{outcome=~"Succeeded|RolledBack",{NS}}}'
                          f"[$__range])), 1)", 6, "Rolled back among hotfixes that reached production")) \
        .with_panel(_series("Time to production vs SLA", "s", [
            Query(quantile(0.5, ttp), "p50"), Query(quantile(0.95, ttp), "p95"),
            Query("vector($sla_seconds)", "SLA")], 12,
            "From filing to traffic on the hotfix (EndpointSlices seen on green), over the last hour")) \
        .with_panel(_series("SLA time left, per release in flight", "s", [
            Query(f"hotfix_sla_remaining_seconds{{{NS}}}", "{{namespace}}/{{release}}")], 12,
            "Counts down until traffic switches; the HotfixSLAAtRisk alert fires under 10 minutes"))


def flow_row(board: dashboard.Dashboard) -> dashboard.Dashboard:
    return board.with_row(dashboard.Row("Hotfixes")) \
        .with_panel(_series("Succeeded vs rolled back (per hour)", "short", [
            Query(f'sum by (outcome) (increase(hotfix_releases_total{{outcome=~"Succeeded|RolledBack",{NS}}}[1h]))',
                  "{{outcome}}")], 12, "Finished hotfixes by outcome")) \
        .with_panel(_series("Active hotfixes by phase", "short", [
            Query(f"sum by (phase) (hotfix_active_releases{{{NS}}})", "{{phase}}")], 12,
            "Releases in flight, by phase")) \
        .with_panel(_series("Approval wait", "s", [
            Query(quantile(0.5, "hotfix_approval_wait_seconds"), "p50"),
            Query(quantile(0.95, "hotfix_approval_wait_seconds"), "p95")], 12,
            "From proven provenance (approval requested) to the counted approval")) \
        .with_panel(_series("Time per phase (p95)", "s", [
            Query(quantile(0.95, "hotfix_phase_duration_seconds", by="le, phase", selector=""), "{{phase}}")], 12,
            "How long releases stay in each phase, observed on leaving it"))


def followup_row(board: dashboard.Dashboard) -> dashboard.Dashboard:
    return board.with_row(dashboard.Row("After the bake, and the operator")) \
        .with_panel(_stat("Overdue post-mortems", "short", f"sum(hotfix_postmortems_overdue{{{NS}}})", 6,
                          "Promoted hotfixes whose post-mortem is overdue (an issue was opened)")) \
        .with_panel(_stat("Operator up", "short", 'min(up{job="hotfix-operator"})', 6,
                          "1 when Prometheus scrapes the operator")) \
        .with_panel(_stat("Admission policy installed", "short", "min(hotfix_admission_policy_installed)", 6,
                          "0: no approval is counted (kubectl apply -f crds/admission.yaml)")) \
        .with_panel(_stat("Reconcile errors", "short", "sum(increase(hotfix_reconcile_errors_total[$__range]))", 6,
                          "Reconciles that raised (retried with backoff)")) \
        .with_panel(_series("Reconcile duration", "s", [
            Query(quantile(0.5, "hotfix_reconcile_duration_seconds", selector="", window="5m"), "p50"),
            Query(quantile(0.95, "hotfix_reconcile_duration_seconds", selector="", window="5m"), "p95")], 12,
            "Wall time of one reconcile")) \
        .with_panel(_series("Provenance verifications", "short", [
            Query("sum by (result) (increase(hotfix_provenance_verifications_total[1h]))", "{{result}}")], 12,
            "verified, refused, retry (registry outage)"))


def build() -> dict[str, Any]:
    board = dashboard.Dashboard("Hotfix operator: SLA").uid("hotfix-operator").tags(["hotfix", "sla"]) \
        .refresh("30s").time("now-24h", "now").timezone("utc") \
        .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")) \
        .with_variable(dashboard.QueryVariable("namespace").label("Namespace").datasource(DS)
                       .query("label_values(hotfix_active_releases, namespace)").multi(True).include_all(True)
                       .all_value(".*").current(VariableOption(selected=True, text="All", value="$__all"))) \
        .with_variable(dashboard.ConstantVariable("sla_seconds").value(SLA_DEFAULT))
    board = followup_row(flow_row(sla_row(board)))
    data: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True, indent=2).encode(board.build()))
    return data


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}", file=sys.stderr)
